"""Apps for the --mount tests: each answers "NAME|SCRIPT_NAME|PATH_INFO".

Callables: application (the default app), a and b (apps to mount).
mount_file.py is the same kind of app, loaded from a file.
"""


def _named(name):
    def app(environ, start_response):
        body = "%s|%s|%s" % (name, environ["SCRIPT_NAME"], environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode("latin-1")]

    return app


application = _named("default")
a = _named("a")
b = _named("b")
