"""A PEP 3333 probe: every route checks one rule of the server, and the whole
app runs under wsgiref.validate.validator, so any breach of the spec by the
server (or by this app) turns into an AssertionError and a 500.

Records (close() calls, started streams) are files in the working directory,
so a later request, served by any worker, or the test itself can read them.

Routes:
    GET  /hello             200 "Hello World!\\n" with Content-Length (also HEAD)
    ANY  /environ[/...]     200 JSON: "vars" (every str environ value),
                            "types" (type name of every environ value),
                            "wsgi" (wsgi.version, url_scheme, multithread,
                            multiprocess, run_once, input_terminated),
                            "latin1" (true when every str key and value is
                            latin-1 encodable, PEP 3333 "native strings")
    POST /input/read        echoes the body read with one wsgi.input.read()
    POST /input/read-n?n=N  echoes the body read with read(N) until b"";
                            X-Reads says how many reads it took
    POST /input/readline    JSON list of the lines readline() returned
    POST /input/readlines   JSON list of readlines()
    POST /input/iter        JSON list of the lines iterating wsgi.input gave
    POST /input/sha256      JSON {"size", "sha256"} of the body, read in 64 KiB reads
    GET  /write             "written;" through write(), then "returned" from the iterable
    GET  /stream?tag=T      yields "first\\n", waits (at most 10 s) for the file
                            release-T, yields "second\\n" (or "timeout\\n");
                            no Content-Length, so the server must stream it
    GET  /forever?tag=T     yields 16 KiB chunks for at most 100 s; close() writes closed-T
    GET  /big?size=N        N bytes in 64 KiB chunks, no Content-Length
    GET  /file              this file through wsgi.file_wrapper
    GET  /exc-info/before   start_response, an error, start_response(500, exc_info) -> 500 "handled"
    GET  /exc-info/after?tag=T  yields "partial", waits (at most 10 s) for
                            release-T, then start_response(exc_info) must re-raise
    GET  /close?tag=T       body "closing"; close() writes closed-T
    GET  /closed?tag=T      "yes" when closed-T exists, else "no"
"""

import hashlib
import json
import os
import sys
import time
from wsgiref.validate import validator

from apphelp import record, tag, wait_for_file

HELLO = b"Hello World!\n"


def query_int(environ, key, default):
    for pair in environ.get("QUERY_STRING", "").split("&"):
        name, _, value = pair.partition("=")
        if name == key:
            return int(value)
    return default


def bare_input(environ):
    """wsgiref.validate only allows read(size), and iterates wsgi.input itself
    through readline(); read() and real iteration are what frameworks use, so
    those routes reach past the validator to the server's own object."""
    stream = environ["wsgi.input"]
    return getattr(stream, "input", stream)


def respond(start_response, body, content_type="text/plain", extra=()):
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra])
    return [body]


def as_json(start_response, value):
    return respond(start_response, json.dumps(value).encode(), "application/json")


def latin1_lines(lines):
    return [line.decode("latin-1") for line in lines]


def hello(environ, start_response):
    return respond(start_response, HELLO)


def show_environ(environ, start_response):
    strings = {k: v for k, v in environ.items() if isinstance(v, str)}
    latin1 = True
    for key, value in strings.items():
        try:
            key.encode("latin-1")
            value.encode("latin-1")
        except UnicodeEncodeError:
            latin1 = False
    return as_json(start_response, {
        "vars": strings,
        "types": {k: type(v).__name__ for k, v in environ.items()},
        "wsgi": {
            "version": list(environ["wsgi.version"]),
            "url_scheme": environ["wsgi.url_scheme"],
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
            "run_once": environ["wsgi.run_once"],
            "input_terminated": environ.get("wsgi.input_terminated"),
        },
        "latin1": latin1,
    })


def input_read(environ, start_response):
    return respond(start_response, bare_input(environ).read(), "application/octet-stream")


def input_read_n(environ, start_response):
    n = query_int(environ, "n", 7)
    chunks = []
    for _ in range(1 << 20):
        chunk = environ["wsgi.input"].read(n)
        if not chunk:
            break
        if len(chunk) > n:
            raise AssertionError(f"read({n}) returned {len(chunk)} bytes")
        chunks.append(chunk)
    return respond(start_response, b"".join(chunks), "application/octet-stream", [("X-Reads", str(len(chunks)))])


def input_readline(environ, start_response):
    lines = []
    for _ in range(1 << 20):
        line = environ["wsgi.input"].readline()
        if not line:
            break
        lines.append(line)
    return as_json(start_response, latin1_lines(lines))


def input_readlines(environ, start_response):
    return as_json(start_response, latin1_lines(environ["wsgi.input"].readlines()))


def input_iter(environ, start_response):
    return as_json(start_response, latin1_lines(list(bare_input(environ))))


def input_sha256(environ, start_response):
    digest, size = hashlib.sha256(), 0
    for _ in range(1 << 20):
        chunk = environ["wsgi.input"].read(64 << 10)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
    return as_json(start_response, {"size": size, "sha256": digest.hexdigest()})


def write_then_return(environ, start_response):
    # PEP 3333 "The write() Callable": bytes written go out before the iterable's.
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written;")
    return [b"returned"]


def stream(environ, start_response):
    name = tag(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first\n"
    yield b"second\n" if wait_for_file("release-" + name, 10) else b"timeout\n"


class Recorded:
    """An iterable whose close() leaves closed-<tag> behind (PEP 3333: the
    server must call close() on every path, a client that left included)."""

    def __init__(self, chunks, name):
        self.chunks = chunks
        self.name = name

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        record("closed-" + self.name)


def forever(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def chunks():
        deadline = time.monotonic() + 100
        while time.monotonic() < deadline:
            yield b"x" * (16 << 10)
            time.sleep(0.01)

    return Recorded(chunks(), tag(environ))


def big(environ, start_response):
    size = query_int(environ, "size", 1 << 20)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def chunks():
        left = size
        while left > 0:
            n = min(left, 64 << 10)
            yield bytes([65 + (left // 65536) % 26]) * n
            left -= n

    return chunks()


def send_file(environ, start_response):
    f = open(__file__, "rb")
    size = os.fstat(f.fileno()).st_size
    start_response("200 OK", [("Content-Type", "text/x-python"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](f, 8192)


def exc_info_before(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise RuntimeError("probe: failure before the body")
    except RuntimeError:
        # PEP 3333 "Error Handling": headers not sent yet, so they are replaced.
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"handled"]


def exc_info_after(environ, start_response):
    name = tag(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial"
    # Waiting until the test has read "partial" makes sure the head is on the
    # wire, so a clean 500 is no longer an option for the server.
    wait_for_file("release-" + name, 10)
    try:
        raise RuntimeError("probe: failure after the head went out")
    except RuntimeError:
        # Headers are sent: start_response must re-raise, and the server must
        # close the connection rather than end the response cleanly.
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    yield b"unreachable"


def close_recorded(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "7")])
    return Recorded([b"closing"], tag(environ))


def closed(environ, start_response):
    return respond(start_response, b"yes" if os.path.exists("closed-" + tag(environ)) else b"no")


ROUTES = {
    "/hello": hello,
    "/environ": show_environ,
    "/input/read": input_read,
    "/input/read-n": input_read_n,
    "/input/readline": input_readline,
    "/input/readlines": input_readlines,
    "/input/iter": input_iter,
    "/input/sha256": input_sha256,
    "/write": write_then_return,
    "/stream": stream,
    "/forever": forever,
    "/big": big,
    "/file": send_file,
    "/exc-info/before": exc_info_before,
    "/exc-info/after": exc_info_after,
    "/close": close_recorded,
    "/closed": closed,
}


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"not found\n"]


def routes(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/environ/"):
        return show_environ(environ, start_response)
    return ROUTES.get(path, not_found)(environ, start_response)


application = validator(routes)
