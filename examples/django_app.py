"""A small Django application in one file, used by examples/uwsgi.ini and the
end-to-end tests: the settings, views and URLconf live here, no project tree.

Routes (the same in flask_app, bottle_app and falcon_app):
    GET  /                  200 text/plain "Hello World!\\n"
    GET  /greet/<name>      200 text/plain "Hello, <name>!" (UTF-8 names welcome)
    GET  /search?q=..&page=  200 JSON {"q": ..., "page": ...}
    POST /form              200 JSON of the urlencoded fields "name" and "message"
    POST /upload            200 JSON {"filename", "size", "sha256"} of multipart field "file"
    POST /json              200 JSON {"received": <the posted JSON>}
    GET  /cookie/set        200, sets the cookie flavour=oatmeal
    GET  /cookie/get        200 JSON {"flavour": <the cookie's value or null>}
    GET  /redirect          302 to /greet/world
    GET  /stream?lines=N    200 text/plain, N lines "line i\\n" streamed without Content-Length
    anything else           404

Start it with:
    cd examples && gowsgi --module django_app
"""

import hashlib
import json

from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="example-only-not-secret",
    # No CSRF middleware: the example's POST routes are an API, not forms.
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATA_UPLOAD_MAX_MEMORY_SIZE=16 << 20,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402  (needs settings first)
from django.http import (  # noqa: E402
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path  # noqa: E402


def only(method, view):
    """Wraps view so that other methods get 405, as the other frameworks do."""

    def checked(request, *args, **kwargs):
        if request.method != method:
            return HttpResponseNotAllowed([method])
        return view(request, *args, **kwargs)

    return checked


def hello(request):
    return HttpResponse("Hello World!\n", content_type="text/plain")


def greet(request, name):
    return HttpResponse(f"Hello, {name}!", content_type="text/plain; charset=utf-8")


def search(request):
    return JsonResponse({"q": request.GET.get("q"), "page": request.GET.get("page")})


def form(request):
    return JsonResponse({"name": request.POST.get("name"), "message": request.POST.get("message")})


def upload(request):
    upload = request.FILES["file"]
    digest, size = hashlib.sha256(), 0
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    return JsonResponse({"filename": upload.name, "size": size, "sha256": digest.hexdigest()})


def echo_json(request):
    return JsonResponse({"received": json.loads(request.body)})


def set_cookie(request):
    response = HttpResponse("cookie set\n", content_type="text/plain")
    response.set_cookie("flavour", "oatmeal")
    return response


def get_cookie(request):
    return JsonResponse({"flavour": request.COOKIES.get("flavour")})


def go_elsewhere(request):
    return HttpResponseRedirect("/greet/world")


def stream(request):
    lines = int(request.GET.get("lines", "10"))
    return StreamingHttpResponse((f"line {i}\n" for i in range(lines)), content_type="text/plain")


urlpatterns = [
    path("", only("GET", hello)),
    path("greet/<str:name>", only("GET", greet)),
    path("search", only("GET", search)),
    path("form", only("POST", form)),
    path("upload", only("POST", upload)),
    path("json", only("POST", echo_json)),
    path("cookie/set", only("GET", set_cookie)),
    path("cookie/get", only("GET", get_cookie)),
    path("redirect", only("GET", go_elsewhere)),
    path("stream", only("GET", stream)),
]

application = get_wsgi_application()
