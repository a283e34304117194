"""uWSGI's signal framework, driven through the uwsgi module alone (Debian's
uWSGI has no uwsgidecorators for Python 3), so the same app runs under
uWSGI and under gowsgi.

At import it registers handlers, timers, crons and a file monitor:

    signal 10  target 'workers'  "broadcast"
    signal 11  target 'worker2'  "only2"
    signal 12  target ''         "any"
    signal 13  target 'workers'  "barrier"
    signal 14  target 'workers'  "wake"
    signal 20  timer, every 1 s, target 'workers'              "timer"
    signal 21  rb timer, every 1 s, 2 times, target 'worker1'  "rbtimer"
    signal 22  cron at this minute (hour, day, month, weekday -1),
               target 'worker2'                                "cron"
    signal 23  cron 30 minutes from now, target 'workers'      "cron-later"
    signal 24  file monitor on ./watched, target ''            "filemon"
    signal 15  target 'workers'  "during-hold" while this process holds a
               request (GET /hold), else "idle"

Each handler appends "<name> <worker id> <pid> <unix time>" to ./events.

    GET /raise?sig=N      uwsgi.signal(N)
    GET /events           the events file
    GET /wait?sig=N       notes "waiting" in ./events, then
                          uwsgi.signal_wait(N); answers repr(its result) and
                          uwsgi.signal_received()
    GET /registered?sig=N repr(uwsgi.signal_registered(N))
    GET /register?sig=N&target=T  registers a handler for N in this worker;
                          answers the exception's type and message, or "ok"
    GET /hold?tag=T       notes "holding", then waits (30 s at most) for the
                          test's file release-T
"""

import os
import time

import uwsgi

from apphelp import query, tag, text, wait_for_file

EVENTS = os.path.abspath("events")
WATCHED = os.path.abspath("watched")


def note(name):
    line = "%s %d %d %.3f\n" % (name, uwsgi.worker_id(), os.getpid(), time.time())
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def handler(name):
    def handle(signum):
        note(name)

    return handle


holding = 0  # requests of this process in GET /hold


def hold_aware(signum):
    note("during-hold" if holding else "idle")


uwsgi.register_signal(15, "workers", hold_aware)

for _sig, _target, _name in [
    (10, "workers", "broadcast"),
    (11, "worker2", "only2"),
    (12, "", "any"),
    (13, "workers", "barrier"),
    (14, "workers", "wake"),
    (20, "workers", "timer"),
    (21, "worker1", "rbtimer"),
    (22, "worker2", "cron"),
    (23, "workers", "cron-later"),
    (24, "", "filemon"),
]:
    uwsgi.register_signal(_sig, _target, handler(_name))

uwsgi.add_timer(20, 1)
uwsgi.add_rb_timer(21, 1, 2)
_now = time.localtime()
uwsgi.add_cron(22, _now.tm_min, -1, -1, -1, -1)
uwsgi.add_cron(23, (_now.tm_min + 30) % 60, -1, -1, -1, -1)
if not os.path.exists(WATCHED):
    open(WATCHED, "w").close()
uwsgi.add_file_monitor(24, WATCHED)


def sig(environ):
    return int(query(environ, "sig"))


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/raise":
        uwsgi.signal(sig(environ))
        return text(start_response, b"ok")
    if path == "/events":
        try:
            with open(EVENTS, "rb") as f:
                return text(start_response, f.read())
        except FileNotFoundError:
            return text(start_response, b"")
    if path == "/wait":
        note("waiting")
        got = uwsgi.signal_wait(sig(environ))
        return text(start_response, ("%r %r" % (got, uwsgi.signal_received())).encode())
    if path == "/hold":
        global holding
        holding += 1
        note("holding")
        try:
            wait_for_file("release-" + tag(environ), 30)
        finally:
            holding -= 1
        return text(start_response, b"released")
    if path == "/registered":
        return text(start_response, repr(uwsgi.signal_registered(sig(environ))).encode())
    if path == "/register":
        try:
            uwsgi.register_signal(sig(environ), query(environ, "target"), handler("registered"))
            return text(start_response, b"ok")
        except Exception as exc:
            return text(start_response, ("%s: %s" % (type(exc).__name__, exc)).encode())
    return text(start_response, b"not found\n", status="404 Not Found")
