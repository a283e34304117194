"""Tells what a worker's standard input is, for the --honour-stdin tests.

Routes:
    GET /       -> 200 "null" when fd 0 is /dev/null, "fifo" when it is a
                   pipe, else "other"
    GET /line   -> 200 the first line read from sys.stdin
"""

import os
import stat
import sys


def kind():
    st = os.fstat(0)
    if stat.S_ISFIFO(st.st_mode):
        return "fifo"
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat(os.devnull).st_rdev:
        return "null"
    return "other"


def application(environ, start_response):
    if environ["PATH_INFO"] == "/line":
        body = sys.stdin.readline()
    else:
        body = kind()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
