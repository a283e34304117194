"""A Django app whose cache framework stores in uWSGI's shared cache, with
the small backend django-uwsgi-cache provides written here (UWSGICache):
Django's cache API over uwsgi.cache_get/cache_update/cache_del, values
pickled, Django's timeout as the cache item's expiry.

Routes (the cache "django" of --cache2 is Django's default cache):
    GET /set?key=K&value=V[&timeout=S]  cache.set (digits as an int); answers the pid
    GET /add?key=K&value=V              cache.add: "True" or "False"
    GET /get?key=K                      cache.get, "<missing>" when absent
    GET /incr?key=K                     cache.incr; the new value
    GET /delete?key=K                   cache.delete: "True" or "False"
    GET /raw?key=K                      whether uwsgi.cache_get holds Django's key for K
"""

import os
import pickle
import time

import uwsgi
from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="test-only-not-secret",
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    CACHES={"default": {"BACKEND": __name__ + ".UWSGICache", "LOCATION": "django"}},
)


class UWSGICache(BaseCache):
    """Django's cache API over uWSGI's shared cache LOCATION."""

    def __init__(self, location, params):
        super().__init__(params)
        self._name = location or None

    def _key(self, key, version):
        key = self.make_key(key, version=version)
        self.validate_key(key)
        return key

    def _expires(self, timeout):
        # uWSGI's expiry is whole seconds from now, 0 for never.
        timeout = self.get_backend_timeout(timeout)
        if timeout is None:
            return 0
        return max(int(round(timeout - time.time())), 1)

    def _dead(self, timeout):
        return timeout is not DEFAULT_TIMEOUT and timeout is not None and timeout <= 0

    def get(self, key, default=None, version=None):
        key = self._key(key, version)
        value = uwsgi.cache_get(key, self._name)
        return default if value is None else pickle.loads(value)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self._key(key, version)
        if self._dead(timeout):
            uwsgi.cache_del(key, self._name)
            return
        uwsgi.cache_update(key, pickle.dumps(value), self._expires(timeout), self._name)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self._key(key, version)
        # cache_set refuses a key that exists: Django's add.
        return uwsgi.cache_set(key, pickle.dumps(value), self._expires(timeout), self._name) is True

    def delete(self, key, version=None):
        key = self._key(key, version)
        return uwsgi.cache_del(key, self._name) is True

    def has_key(self, key, version=None):
        key = self._key(key, version)
        return uwsgi.cache_exists(key, self._name) is True

    def clear(self):
        uwsgi.cache_clear(self._name)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        value = self.get(key, version=version)
        if value is None:
            return False
        self.set(key, value, timeout, version=version)
        return True


from django.core.cache import cache  # noqa: E402  (needs settings first)
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


def _answer(value):
    return HttpResponse(str(value), content_type="text/plain")


def set_view(request):
    timeout, value = request.GET.get("timeout"), request.GET["value"]
    # Numbers are stored as ints, which cache.incr adds to.
    value = int(value) if value.isdigit() else value
    cache.set(request.GET["key"], value, int(timeout) if timeout else DEFAULT_TIMEOUT)
    return _answer(os.getpid())


def add_view(request):
    return _answer(cache.add(request.GET["key"], request.GET["value"]))


def get_view(request):
    return _answer(cache.get(request.GET["key"], "<missing>"))


def incr_view(request):
    return _answer(cache.incr(request.GET["key"]))


def delete_view(request):
    return _answer(cache.delete(request.GET["key"]))


def raw_view(request):
    return _answer(uwsgi.cache_get(cache.make_key(request.GET["key"]), "django") is not None)


urlpatterns = [
    path("set", set_view),
    path("add", add_view),
    path("get", get_view),
    path("incr", incr_view),
    path("delete", delete_view),
    path("raw", raw_view),
]

application = get_wsgi_application()
