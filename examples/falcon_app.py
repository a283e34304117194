"""A small Falcon application, used by the end-to-end tests (e2e/frameworks_test.go).

Routes (the same in flask_app, bottle_app and django_app):
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
    cd examples && gowsgi --module falcon_app:app
"""

import hashlib

import falcon


class Hello:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "Hello World!\n"


class Greet:
    def on_get(self, req, resp, name):
        resp.content_type = "text/plain; charset=utf-8"
        resp.text = f"Hello, {name}!"


class Search:
    def on_get(self, req, resp):
        resp.media = {"q": req.get_param("q"), "page": req.get_param("page")}


class Form:
    def on_post(self, req, resp):
        fields = req.get_media()
        resp.media = {"name": fields.get("name"), "message": fields.get("message")}


class Upload:
    def on_post(self, req, resp):
        for part in req.get_media():
            if part.name == "file":
                digest, size = hashlib.sha256(), 0
                for chunk in iter(lambda: part.stream.read(64 << 10), b""):
                    digest.update(chunk)
                    size += len(chunk)
                resp.media = {"filename": part.filename, "size": size, "sha256": digest.hexdigest()}
                return
        raise falcon.HTTPBadRequest(title="no file field")


class EchoJSON:
    def on_post(self, req, resp):
        resp.media = {"received": req.get_media()}


class SetCookie:
    def on_get(self, req, resp):
        # Falcon marks cookies Secure by default; this example runs over plain HTTP.
        resp.set_cookie("flavour", "oatmeal", secure=False)
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "cookie set\n"


class GetCookie:
    def on_get(self, req, resp):
        resp.media = {"flavour": req.cookies.get("flavour")}


class Redirect:
    def on_get(self, req, resp):
        raise falcon.HTTPFound("/greet/world")


class Stream:
    def on_get(self, req, resp):
        lines = req.get_param_as_int("lines", default=10)
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = (f"line {i}\n".encode() for i in range(lines))


app = falcon.App()
app.add_route("/", Hello())
app.add_route("/greet/{name}", Greet())
app.add_route("/search", Search())
app.add_route("/form", Form())
app.add_route("/upload", Upload())
app.add_route("/json", EchoJSON())
app.add_route("/cookie/set", SetCookie())
app.add_route("/cookie/get", GetCookie())
app.add_route("/redirect", Redirect())
app.add_route("/stream", Stream())
application = app
