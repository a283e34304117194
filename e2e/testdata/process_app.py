"""The application the process-option tests run: it reports what a worker
process looks like from the inside.

Routes:
    GET /pid                text: the worker's pid
    GET /import-pid         text: "IMPORTED SERVING", the pid of the process
                            that imported this module and the worker's
    GET /ids                text: "UID GID GROUPS" (groups comma-separated)
    GET /env?name=N         text: os.environ[N], or 404 when unset
    GET /write?path=P       text: "written" when P can be opened for
                            appending, else "denied"
"""

import os

from apphelp import query, routed, text

IMPORT_PID = os.getpid()


def pid(environ, start_response):
    return text(start_response, str(os.getpid()).encode())


def import_pid(environ, start_response):
    return text(start_response, b"%d %d" % (IMPORT_PID, os.getpid()))


def ids(environ, start_response):
    groups = ",".join(str(g) for g in sorted(os.getgroups()))
    return text(start_response, ("%d %d %s" % (os.getuid(), os.getgid(), groups)).encode())


def env(environ, start_response):
    value = os.environ.get(query(environ, "name"))
    if value is None:
        return text(start_response, b"unset", status="404 Not Found")
    return text(start_response, value.encode())


def write(environ, start_response):
    try:
        with open(query(environ, "path"), "a"):
            pass
    except PermissionError:
        return text(start_response, b"denied")
    return text(start_response, b"written")


ROUTES = {"/pid": pid, "/import-pid": import_pid, "/ids": ids, "/env": env, "/write": write}


application = routed(ROUTES)
