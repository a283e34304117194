"""The soak test's app: one route per kind of response the server handles,
and a debug route that reports the worker's memory, so a million requests can
show whether any path leaks.

It is not wrapped in wsgiref.validate: the soak measures the server's own
allocations, and the validator's wrappers would add theirs to the count.

Routes:
    GET  /hello    200 "Hello World!\\n" with Content-Length
    POST /echo     echoes the body, read with one wsgi.input.read()
    GET  /stream   a generator of 8 chunks, no Content-Length
    GET  /raise    raises RuntimeError before start_response: the server's 500
    GET  /file     this file through wsgi.file_wrapper
    GET  /debug    JSON {"pid", "blocks", "objects", "rss_kib"}: the worker's
                   pid, sys.getallocatedblocks() and len(gc.get_objects())
                   after a full gc.collect(), and VmRSS as the worker reads it
"""

import gc
import json
import os
import sys

HELLO = b"Hello World!\n"
STREAM_CHUNKS = 8


def respond(start_response, body, content_type="text/plain"):
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def hello(environ, start_response):
    return respond(start_response, HELLO)


def echo(environ, start_response):
    return respond(start_response, environ["wsgi.input"].read(), "application/octet-stream")


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(STREAM_CHUNKS):
        yield b"chunk %d\n" % i


def fail(environ, start_response):
    raise RuntimeError("soak: an app error the server must turn into a 500")


def send_file(environ, start_response):
    f = open(__file__, "rb")
    size = os.fstat(f.fileno()).st_size
    start_response("200 OK", [("Content-Type", "text/x-python"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](f, 8192)


def vm_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def debug(environ, start_response):
    # Two passes: the first can free objects whose finalizers create garbage.
    gc.collect()
    gc.collect()
    return respond(start_response, json.dumps({
        "pid": os.getpid(),
        "blocks": sys.getallocatedblocks(),
        "objects": len(gc.get_objects()),
        "rss_kib": vm_rss_kib(),
    }).encode(), "application/json")


ROUTES = {
    "/hello": hello,
    "/echo": echo,
    "/stream": stream,
    "/raise": fail,
    "/file": send_file,
    "/debug": debug,
}


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"not found\n"]


def application(environ, start_response):
    return ROUTES.get(environ["PATH_INFO"], not_found)(environ, start_response)
