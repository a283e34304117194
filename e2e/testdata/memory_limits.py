"""An application that runs its worker out of memory or out of frame room on
purpose, to see the worker answer cleanly and serve on.

Every request first lifts the address-space limit a previous one set, so
the worker's own allocations between requests are not starved.

Routes:
    GET /head-of?n=N   a head whose frame payload is exactly N bytes
                       (over wsgi.MaxFramePayload -> 500, a log line)
    GET /oom-head      40 MB of headers, then an address-space limit
                       (RLIMIT_AS) too tight for the worker to copy them into
                       its output -> 500
    GET /oom-body      a list of 4,084-byte items, 48 MiB in all, under the
                       same limit: once a client that does not read has made
                       the worker hand the response to the master, the items
                       gather in the worker's output buffer, which cannot
                       grow to hold them -> the head and a truncated body
    GET /hello         "hello"
"""

import resource
from urllib.parse import parse_qs

BIG_VALUE = "h" * 65_000
# With its 12-byte frame header an item makes a 4 KiB frame, so the worker's
# output buffer, which doubles from 4 KiB, runs out of room at an item's
# payload, after its frame header went in.
ITEM = b"x" * 4084
OOM_BODY = [ITEM] * (48 * 256)


def lift_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def limit_to_now():
    """Leave 16 MiB of address space above what the worker maps now."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[0])
    now = pages * resource.getpagesize()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (now + (16 << 20), hard))


def head_of(n):
    status, left = "200 OK", n - 2 - len("200 OK")
    headers = []
    while left > 0:  # each header costs 2 + 5 + 2 bytes and its value
        value = min(len(BIG_VALUE), left - 9)
        headers.append(("X-Big", BIG_VALUE[:value]))
        left -= 9 + value
    return status, headers


def application(environ, start_response):
    lift_limit()
    path = environ["PATH_INFO"]
    query = parse_qs(environ["QUERY_STRING"])
    if path == "/head-of":
        start_response(*head_of(int(query["n"][0])))
        return [b"body"]
    if path == "/oom-head":
        start_response("200 OK", [("X-Big", BIG_VALUE)] * 620)
        limit_to_now()
        return [b"body"]
    if path == "/oom-body":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        limit_to_now()
        return OOM_BODY
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
