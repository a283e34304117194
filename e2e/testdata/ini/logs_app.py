"""The app of the ini files of e2e/logs_uwsgi_test.go, under uWSGI and
under gowsgi.

Routes:
    /say?text=T    prints T on stderr (a line of the app's own), answers "said"
    /slow?ms=N     sleeps N milliseconds (at most 2000), answers "slow"
    anything else  answers "pid=<the worker's pid>"
"""

import os
import sys
import time
from urllib.parse import unquote


def _query(environ, key):
    for pair in environ.get("QUERY_STRING", "").split("&"):
        name, _, value = pair.partition("=")
        if name == key:
            return unquote(value)
    return ""


def application(environ, start_response):
    path = environ["PATH_INFO"]
    body = b"pid=%d" % os.getpid()
    if path == "/say":
        print(_query(environ, "text"), file=sys.stderr, flush=True)
        body = b"said"
    elif path == "/slow":
        time.sleep(min(int(_query(environ, "ms") or 0), 2000) / 1000)
        body = b"slow"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
