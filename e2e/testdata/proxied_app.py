"""The application the proxy, JSON log and load balancer tests run.

Routes:
    GET  /whoami            JSON: REMOTE_ADDR, REMOTE_PORT, wsgi.url_scheme,
                            gowsgi.request_id and HTTP_X_REQUEST_ID as the
                            app sees them, and the host's name (HOST_NAME
                            from the environment)
    GET  /print             writes a line with quotes, a backslash, control
                            bytes and bytes that are not UTF-8 to stdout
                            and to stderr, flushed; answers "printed"
    GET  /boom              raises, so the worker logs a traceback (500)
    POST /echo              answers the body's length and the host's name
    GET  anything else      text: "hello from HOST_NAME"
"""

import json
import os
import sys

HOST = os.environ.get("HOST_NAME", "host")

ODD = b'odd "quoted" \\ back\x01\x1b[31m \xff\xfe tail'


def whoami(environ):
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "gowsgi.request_id", "HTTP_X_REQUEST_ID")
    seen = {key: environ.get(key) for key in keys}
    seen["host"] = HOST
    return json.dumps(seen).encode()


def printed():
    for stream in (sys.stdout, sys.stderr):
        stream.buffer.write(ODD + b"\n")
        stream.flush()
    return b"printed"


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/boom":
        raise RuntimeError('boom with "quotes"')
    if environ["REQUEST_METHOD"] == "POST":
        size = len(environ["wsgi.input"].read())
        body = ("%d from %s" % (size, HOST)).encode()
    elif path == "/whoami":
        body = whoami(environ)
    elif path == "/print":
        body = printed()
    else:
        body = ("hello from %s" % HOST).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
