"""The app's own harakiri: uwsgi.set_user_harakiri and
uwsgidecorators.harakiri.

    GET /sleep?ms=M&limit=S   set_user_harakiri(S), then sleeps M ms
    GET /cleared?ms=M         set_user_harakiri(1), set_user_harakiri(0),
                              then sleeps M ms
    GET /set?limit=S          set_user_harakiri(S) and answers at once: the
                              deadline ends with the request
    GET /plain?ms=M           sleeps M ms, leaving harakiri alone
    GET /decorated?ms=M       calls a function under @harakiri(1) that
                              sleeps M ms
    GET /pid                  this worker's pid
"""

import os
import time

import uwsgi
from uwsgidecorators import harakiri

from apphelp import number, text


@harakiri(1)
def slow(ms):
    time.sleep(ms / 1000)
    return b"decorated"


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        uwsgi.set_user_harakiri(number(environ, "limit", 60))
        time.sleep(number(environ, "ms", 60000) / 1000)
        return text(start_response, b"slept")
    if path == "/cleared":
        uwsgi.set_user_harakiri(1)
        uwsgi.set_user_harakiri(0)
        time.sleep(number(environ, "ms", 60000) / 1000)
        return text(start_response, b"slept")
    if path == "/plain":
        time.sleep(number(environ, "ms", 60000) / 1000)
        return text(start_response, b"slept")
    if path == "/set":
        uwsgi.set_user_harakiri(number(environ, "limit", 60))
        return text(start_response, b"set")
    if path == "/decorated":
        return text(start_response, slow(number(environ, "ms", 60000)))
    if path == "/pid":
        return text(start_response, str(os.getpid()).encode())
    return text(start_response, b"not found\n", status="404 Not Found")
