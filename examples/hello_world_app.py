"""The smallest WSGI application gowsgi can serve.

Routes:
    any method, any path -> 200 text/plain "Hello World!\\n"

Start it with:
    cd examples && gowsgi --module hello_world_app
"""

BODY = b"Hello World!\n"
HEADERS = [
    ("Content-Type", "text/plain"),
    ("Content-Length", str(len(BODY))),
]


def application(environ, start_response):
    # PEP 3333: the body is an iterable of bytes, never str.
    start_response("200 OK", HEADERS)
    return [BODY]
