"""Responses that break after part of the body is out, and requests that
outlast a graceful stop: what a client gets then is what the tests check.
Records are files in the working directory, so the test can see them.

Routes:
    GET /yield-raise?blocks=N[&length=L]
                            200 (with Content-Length L when given), yields
                            "block-0;" ... "block-<N-1>;" and raises at once
                            -> the blocks, then the connection is cut; with
                            N=0 nothing was yielded -> 500
    GET /write-raise        writes "written;" with write(), then raises
                            -> "written;", then the connection is cut
    GET /list-bad-item      returns [b"listed;", a str] -> "listed;", then
                            the connection is cut; a log line says bytes
    GET /hold?tag=T         writes started-T, waits (at most 20 s) for
                            release-T, then answers "released"
    GET /stream-hold?tag=T  yields "streamed;", writes started-T, waits (at
                            most 20 s) for release-T, then yields "late;"
"""

from apphelp import query, record, routed, tag, wait_for_file


def yield_raise(environ, start_response):
    blocks = int(query(environ, "blocks") or "1")
    headers = [("Content-Type", "text/plain")]
    if query(environ, "length"):
        headers.append(("Content-Length", query(environ, "length")))
    start_response("200 OK", headers)
    for i in range(blocks):
        yield b"block-%d;" % i
    raise RuntimeError("answers: raised after %d blocks" % blocks)


def write_raise(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written;")
    raise RuntimeError("answers: raised after write()")


def list_bad_item(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"listed;", "a str where PEP 3333 wants bytes"]


def hold(environ, start_response):
    name = tag(environ)
    record("started-" + name)
    wait_for_file("release-" + name, 20)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "8")])
    return [b"released"]


def stream_hold(environ, start_response):
    name = tag(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"streamed;"
    record("started-" + name)
    wait_for_file("release-" + name, 20)
    yield b"late;"


ROUTES = {
    "/yield-raise": yield_raise,
    "/write-raise": write_raise,
    "/list-bad-item": list_bad_item,
    "/hold": hold,
    "/stream-hold": stream_hold,
}


application = routed(ROUTES)
