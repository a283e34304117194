"""WSGI app for the worker role's tests.

Routes: any path answers 200 with "hello <PATH_INFO>" and says in an
X-Multiprocess header what environ's wsgi.multiprocess is.
"""


def application(environ, start_response):
    start_response("200 OK", [
        ("Content-Type", "text/plain"),
        ("X-Multiprocess", str(environ["wsgi.multiprocess"])),
    ])
    return [b"hello ", environ["PATH_INFO"].encode("latin-1")]
