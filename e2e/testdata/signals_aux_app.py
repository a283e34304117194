"""uWSGI's signals to mules and the spooler: at import it registers

    signal 30  target 'mule'     "mule"     (one mule)
    signal 31  target 'mules'    "mules"    (every mule)
    signal 32  target 'mule2'    "mule2"
    signal 33  target 'spooler'  "spooler"

and each handler appends "<name> <mule id> <pid> <i_am_the_spooler>" to
./events.

    GET /raise?sig=N  uwsgi.signal(N)
"""

import os

import uwsgi

from apphelp import number, text

EVENTS = os.path.abspath("events")


def handler(name):
    def handle(signum):
        line = "%s %d %d %d\n" % (name, uwsgi.mule_id(), os.getpid(), 1 if uwsgi.i_am_the_spooler() else 0)
        fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    return handle


for _sig, _target in [(30, "mule"), (31, "mules"), (32, "mule2"), (33, "spooler")]:
    uwsgi.register_signal(_sig, _target, handler(_target))

uwsgi.spooler = lambda job: uwsgi.SPOOL_OK


def application(environ, start_response):
    uwsgi.signal(number(environ, "sig", 255))
    return text(start_response, b"ok")
