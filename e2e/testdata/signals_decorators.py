"""uwsgidecorators' signal decorators, each on a handler that appends
"<name> <worker id> <pid> <unix time>" to ./events:

    @signal(40, target='workers')            "broadcast"
    @timer(1, target='worker1')              "timer"
    @mstimer(300, target='worker2')          "mstimer"
    @rbtimer(1, target='worker2')            "rbtimer"
    @cron(-1, -1, -1, -1, -1, target='workers')  "cron" (every minute)
    @filemon('./watched')                    "filemon"

    GET /raise?sig=N   uwsgi.signal(N)
    GET /events        the events file
    GET /free          JSON: the signal numbers the decorators took, and
                       get_free_signal()'s answer now
"""

import json
import os
import time

import uwsgi
from uwsgidecorators import cron, filemon, get_free_signal, mstimer, rbtimer, signal, timer

from apphelp import query, text

EVENTS = os.path.abspath("events")
WATCHED = os.path.abspath("watched")
if not os.path.exists(WATCHED):
    open(WATCHED, "w").close()


def note(name):
    line = "%s %d %d %.3f\n" % (name, uwsgi.worker_id(), os.getpid(), time.time())
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


taken = {}


def noting(name, decorator):
    def handle(signum):
        note(name)

    taken[name] = decorator.num if hasattr(decorator, "num") else None
    return decorator(handle)


noting("broadcast", signal(40, target="workers"))
noting("timer", timer(1, target="worker1"))
noting("mstimer", mstimer(300, target="worker2"))
noting("rbtimer", rbtimer(1, target="worker2"))
noting("cron", cron(-1, -1, -1, -1, -1, target="workers"))
noting("filemon", filemon(WATCHED))


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/raise":
        uwsgi.signal(int(query(environ, "sig")))
        return text(start_response, b"ok")
    if path == "/events":
        try:
            with open(EVENTS, "rb") as f:
                return text(start_response, f.read())
        except FileNotFoundError:
            return text(start_response, b"")
    if path == "/free":
        answer = {"taken": taken, "free": get_free_signal()}
        return text(start_response, json.dumps(answer).encode(), content_type="application/json")
    return text(start_response, b"not found\n", status="404 Not Found")
