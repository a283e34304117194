"""A --mount app loaded from a file: answers "file|SCRIPT_NAME|PATH_INFO"."""


def application(environ, start_response):
    body = "file|%s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode("latin-1")]
