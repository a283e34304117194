"""The spooler's and the mules' raw API (the uwsgi module, no decorators),
answered as JSON so a test can run it under uWSGI and under gowsgi with the
same options and compare. Start it with one --spooler folder and a bare
--mule.

Routes:
    GET /spool       uwsgi.spool() of a fixed job (bytes, a body, a list of byte values):
                     the path it returns, its type, the job file's bytes in hex,
                     and whether the body key left the caller's dict
    GET /refused     for each job uwsgi.spool() refuses, the exception's type
                     and message
    GET /api         the other answers of the API: constants, types, results
    GET /handled     the job as the spooler function received it, once it has
                     (404 before): {repr(key): repr(value)}

The spooler function (uwsgi.spooler) records the job it gets in the file
handled.json of the app's folder and returns SPOOL_OK.
"""

import json
import os

import uwsgi

from apphelp import routed, text

HERE = os.getcwd()


def spooler(job):
    with open(os.path.join(HERE, "handled.json.tmp"), "w") as f:
        json.dump({repr(k): repr(v) for k, v in job.items()}, f)
    os.rename(os.path.join(HERE, "handled.json.tmp"), os.path.join(HERE, "handled.json"))
    return uwsgi.SPOOL_OK


uwsgi.spooler = spooler


def answer(start_response, value):
    return text(start_response, json.dumps(value, sort_keys=True).encode(), content_type="application/json")


def spool_route(environ, start_response):
    # A job for 2100 stays in the folder to be read; the other is run.
    later = {b"a": b"1", b"empty": b"", b"list": [104, 105], b"at": b"4102444800.5", b"body": b"BODY-BYTES"}
    path = uwsgi.spool(later)
    with open(path, "rb") as f:
        content = f.read()
    task = uwsgi.spooler_get_task(path.decode())
    task_name = task.pop("spooler_task_name")
    now = uwsgi.spool({b"a": b"1", b"list": [104, 105], b"body": b"NOW"})
    return answer(start_response, {
        "path": path.decode(), "type": type(path).__name__, "file": content.hex(),
        "mtime": os.stat(path).st_mtime, "body_left_dict": b"body" not in later,
        "dir": os.path.dirname(path).decode(), "now": now.decode(),
        "task": {repr(k): repr(v) for k, v in task.items()}, "task_name_is_path": task_name == path,
    })


def refused_route(environ, start_response):
    calls = {
        "str key": lambda: uwsgi.spool({"a": b"1"}),
        "str value": lambda: uwsgi.spool({b"a": "1"}),
        "keywords": lambda: uwsgi.spool(a=b"1"),
        "not a dict": lambda: uwsgi.spool([b"a"]),
        "unknown spooler": lambda: uwsgi.spool({b"spooler": b"/nonexistent"}),
        "mule_get_msg in a worker": lambda: uwsgi.mule_get_msg(),
        "mule_msg to a farm nobody has": lambda: uwsgi.mule_msg(b"x", b"nofarm"),
        "spooler_get_task of bytes": lambda: uwsgi.spooler_get_task(b"/nonexistent"),
        "spooler_get_task of no file": lambda: uwsgi.spooler_get_task("/nonexistent"),
    }
    raised = {}
    for name, call in calls.items():
        try:
            raised[name] = ["returned", repr(call())]
        except Exception as e:
            raised[name] = [type(e).__name__, str(e)]
    return answer(start_response, raised)


def api_route(environ, start_response):
    return answer(start_response, {
        "SPOOL_OK": uwsgi.SPOOL_OK, "SPOOL_RETRY": uwsgi.SPOOL_RETRY, "SPOOL_IGNORE": uwsgi.SPOOL_IGNORE,
        "spoolers": [type(d).__name__ for d in uwsgi.spoolers],
        "spooler_pid": type(uwsgi.spooler_pid()).__name__,
        "spooler_pid_positive": uwsgi.spooler_pid() > 0,
        "spooler_jobs": type(uwsgi.spooler_jobs()).__name__,
        "i_am_the_spooler": repr(uwsgi.i_am_the_spooler()),
        "mule_id": uwsgi.mule_id(),
        "mule_msg": repr(uwsgi.mule_msg(b"hello")),
        "mule_msg_to_1": repr(uwsgi.mule_msg(b"hello", 1)),
        "farm_msg": repr(uwsgi.farm_msg("nofarm", b"hello")),
        "in_farm": repr(uwsgi.in_farm()),
        "set_spooler_frequency": repr(uwsgi.set_spooler_frequency(1)),
    })


def handled_route(environ, start_response):
    try:
        with open(os.path.join(HERE, "handled.json"), "rb") as f:
            return text(start_response, f.read(), content_type="application/json")
    except FileNotFoundError:
        return text(start_response, b"not yet\n", status="404 Not Found")


application = routed({
    "/spool": spool_route,
    "/refused": refused_route,
    "/api": api_route,
    "/handled": handled_route,
})
