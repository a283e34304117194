"""Helpers the test apps of this folder share: reading the query string,
records the test can see, and plain-text answers.

Records are files in the working directory, so the test itself, or a later
request served by any worker, can read them. A test that copies an app
elsewhere copies this module beside it (harness.CopyAppHelpers).
"""

import os
import time


def query(environ, key):
    """The value of key in the query string, or "" when it is absent."""
    for pair in environ.get("QUERY_STRING", "").split("&"):
        name, _, value = pair.partition("=")
        if name == key:
            return value
    return ""


def number(environ, key, limit):
    """The number key names in the query string, at most limit."""
    value = query(environ, key)
    if not value.isdigit():
        raise ValueError(key + "=<number> is required")
    return min(int(value), limit)


def tag(environ):
    """The tag=T of the query string, which names a test's records."""
    value = query(environ, "tag")
    if not value.isalnum():
        raise ValueError("a tag=<alphanumeric> query parameter is required")
    return value


def record(name):
    """Writes the record name, holding this worker's pid."""
    with open(name, "w") as f:
        f.write(str(os.getpid()))


def wait_for_file(name, seconds):
    """Polls for name; the test creates it when it has seen what came before."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(name):
            return True
        time.sleep(0.01)
    return False


def text(start_response, body, status="200 OK", content_type="text/plain"):
    """Answers the bytes body with its Content-Length."""
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def routed(routes):
    """A WSGI application that hands each request to routes[PATH_INFO], and
    answers 404 to a path routes lacks."""

    def application(environ, start_response):
        route = routes.get(environ["PATH_INFO"])
        if route is None:
            return text(start_response, b"not found\n", status="404 Not Found")
        return route(environ, start_response)

    return application
