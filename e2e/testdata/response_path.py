"""The response path's guarantees (response_path_test.go): what the client
gets when the worker dies, when the client leaves, and when the client
reads slowly, whether the worker writes the response itself or it travels
through the master.

Routes:
    GET /hello              200 "hello"
    GET /hold?tag=T         writes started-T, waits (at most 20 s) for
                            release-T, then answers "released"
    GET /stream-hold?tag=T  yields "streamed;", writes started-T, waits (at
                            most 20 s) for release-T, then yields "late;"
    GET /endless?tag=T      yields 64 KiB blocks for at most 20 s; its
                            close() writes closed-T
    GET /big?mib=N          N MiB (at most 64) of b"0123456789abcdef" with
                            its Content-Length, in 64 KiB blocks
"""

import time

from apphelp import number, record, tag, text, wait_for_file

BLOCK = b"0123456789abcdef" * 4096


def hello(environ, start_response):
    return text(start_response, b"hello")


def hold(environ, start_response):
    name = tag(environ)
    record("started-" + name)
    wait_for_file("release-" + name, 20)
    return text(start_response, b"released")


def stream_hold(environ, start_response):
    name = tag(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"streamed;"
    record("started-" + name)
    wait_for_file("release-" + name, 20)
    yield b"late;"


class Endless:
    """Blocks until its client leaves or 20 s pass; close() is recorded."""

    def __init__(self, name):
        self.name = name
        self.deadline = time.monotonic() + 20

    def __iter__(self):
        while time.monotonic() < self.deadline:
            yield BLOCK
            time.sleep(0.005)

    def close(self):
        record("closed-" + self.name)


def endless(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Endless(tag(environ))


def big(environ, start_response):
    blocks = number(environ, "mib", 64) * 16
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(blocks * len(BLOCK)))])
    return (BLOCK for _ in range(blocks))


ROUTES = {
    "/hello": hello,
    "/hold": hold,
    "/stream-hold": stream_hold,
    "/endless": endless,
    "/big": big,
}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        return text(start_response, b"not found\n", "404 Not Found")
    return route(environ, start_response)
