"""An application that breaks PEP 3333 on purpose, to see the server refuse
it cleanly, plus the slow and pid-reporting routes the process tests need.
Deliberately not wrapped in wsgiref.validate: the point is to reach the
server with what the validator would stop first.

Records are files in the working directory, so the test can see them.

Routes:
    GET /str-body           returns a str body item -> 500, a log line saying to return bytes
    GET /raise-before       raises before start_response -> 500, traceback on stderr
    GET /raise-midstream?tag=T  yields "partial", waits (at most 10 s) for
                            release-T, then raises -> connection closed
                            before the chunked terminator
    GET /bad-status         status "200" without a reason phrase -> 500
    GET /hop-by-hop         sets "Connection: close" -> 500
    GET /non-str-header     a header value that is an int -> 500
    GET /newline-header     a header value with CR LF in it -> 500
    GET /pid                JSON {"pid", "version"}
    GET /wait?tag=T         writes started-T (holding the pid), waits (at most
                            20 s) for release-T, then answers JSON {"pid", "released"}
    GET /version            text: APP_VERSION (the reload test edits it)
    GET /log?line=L         writes L to wsgi.errors, answers "logged"
"""

import json
import os

from apphelp import query, record, routed, tag, text, wait_for_file

APP_VERSION = "original"

NOT_CALLABLE = "a module attribute that is not callable"


def str_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str where PEP 3333 wants bytes"]


def raise_before(environ, start_response):
    raise RuntimeError("misbehave: raised before start_response")


def raise_midstream(environ, start_response):
    name = tag(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial"
    wait_for_file("release-" + name, 10)
    raise RuntimeError("misbehave: raised after the head went out")


def bad_status(environ, start_response):
    return text(start_response, b"bad status", status="200")


def hop_by_hop(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
    return [b"hop-by-hop"]


def non_str_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Number", 42)])
    return [b"non-str header"]


def newline_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Injected", "a\r\nSet-Cookie: evil=1")])
    return [b"newline header"]


def pid(environ, start_response):
    body = {"pid": os.getpid(), "version": APP_VERSION}
    return text(start_response, json.dumps(body).encode(), content_type="application/json")


def wait(environ, start_response):
    name = tag(environ)
    record("started-" + name)
    released = wait_for_file("release-" + name, 20)
    body = {"pid": os.getpid(), "released": released}
    return text(start_response, json.dumps(body).encode(), content_type="application/json")


def version(environ, start_response):
    return text(start_response, APP_VERSION.encode())


def log(environ, start_response):
    errors = environ["wsgi.errors"]
    errors.write(query(environ, "line") + "\n")
    errors.flush()
    return text(start_response, b"logged")


ROUTES = {
    "/str-body": str_body,
    "/raise-before": raise_before,
    "/raise-midstream": raise_midstream,
    "/bad-status": bad_status,
    "/hop-by-hop": hop_by_hop,
    "/non-str-header": non_str_header,
    "/newline-header": newline_header,
    "/pid": pid,
    "/wait": wait,
    "/version": version,
    "/log": log,
}


application = routed(ROUTES)
