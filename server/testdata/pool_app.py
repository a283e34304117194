"""WSGI app for the master's pool tests.

Routes:
    /pid    -> 200, the worker's process id
    /crash  -> the worker process exits at once with status 3
    other   -> 200 "ok"
"""

import os


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/crash":
        os._exit(3)
    body = str(os.getpid()).encode() if path == "/pid" else b"ok"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
