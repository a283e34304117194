"""The application the fault tests run under load.

Records are files in the working directory, so the test can see them.

Routes:
    GET /work?ms=N      sleeps N milliseconds (at most 1000), then answers
                        text: the worker's pid
    GET /version        text: APP_VERSION (the reload tests edit it)
    GET /sleep?s=N      writes its pid to "sleeping", sleeps N seconds (at
                        most 30), then answers "slept"
    GET /wait?tag=T     writes its pid to started-T, waits (at most 20 s) for
                        release-T, then answers "released"
    GET /grow?mb=N      allocates N MiB (at most 512), kept for the worker's
                        life, then answers its pid
    GET /abort          writes its pid to "crashing", then os.abort()
    GET /segv           writes its pid to "crashing", then reads address 0
                        through ctypes: a segfault in C code
    GET /brokenpipe     writes to a pipe whose reader has closed and answers
                        with the exception that raised (BrokenPipeError, as
                        under plain Python, which ignores SIGPIPE)
    GET /stream?mib=N&tag=T
                        streams N * 16 chunks of 65,528 bytes (N at most 64),
                        with its Content-Length: chunk i is b"%07d\n" % i
                        repeated; not a page's multiple, so the chunks
                        straddle pages wherever the server keeps them;
                        writes streamed-T once the worker has handed over
                        the last chunk

The reload tests set RAISE_ON_IMPORT to True to make the import fail, and
IMPORT_SECONDS to make it slow.
"""

import ctypes
import os
import time

from apphelp import number, record, routed, tag, text, wait_for_file

APP_VERSION = "original"
RAISE_ON_IMPORT = False
IMPORT_SECONDS = 0

if RAISE_ON_IMPORT:
    raise RuntimeError("faults: raised on import, as the test asked")
time.sleep(min(IMPORT_SECONDS, 30))

HELD = []


def pid_text(start_response):
    return text(start_response, str(os.getpid()).encode())


def work(environ, start_response):
    time.sleep(number(environ, "ms", 1000) / 1000)
    return pid_text(start_response)


def version(environ, start_response):
    return text(start_response, APP_VERSION.encode())


def sleep(environ, start_response):
    record("sleeping")
    time.sleep(number(environ, "s", 30))
    return text(start_response, b"slept")


def wait(environ, start_response):
    name = tag(environ)
    record("started-" + name)
    released = wait_for_file("release-" + name, 20)
    return text(start_response, b"released" if released else b"timed out")


def grow(environ, start_response):
    # Filled, not zeroed, so every page is resident.
    HELD.append(b"x" * (number(environ, "mb", 512) << 20))
    return pid_text(start_response)


def abort(environ, start_response):
    record("crashing")
    os.abort()


def segv(environ, start_response):
    record("crashing")
    ctypes.string_at(0)


def broken_pipe(environ, start_response):
    reader, writer = os.pipe()
    os.close(reader)
    try:
        os.write(writer, b"x")
        outcome = "written"
    except OSError as e:
        outcome = type(e).__name__
    finally:
        os.close(writer)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [outcome.encode()]


STREAM_CHUNK = 8 * 8191


def stream(environ, start_response):
    chunks = number(environ, "mib", 64) * 16
    name = tag(environ)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(chunks * STREAM_CHUNK))])
    for i in range(chunks):
        yield b"%07d\n" % i * (STREAM_CHUNK // 8)
    # Reached when the worker asks for the chunk after the last: it has
    # written every chunk to the master.
    record("streamed-" + name)


ROUTES = {
    "/work": work,
    "/version": version,
    "/sleep": sleep,
    "/wait": wait,
    "/grow": grow,
    "/abort": abort,
    "/segv": segv,
    "/brokenpipe": broken_pipe,
    "/stream": stream,
}


application = routed(ROUTES)
