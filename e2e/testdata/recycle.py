"""The application the worker recycling and harakiri tests run.

Routes:
    GET /pid           text: the worker's pid
    GET /sleep?s=N     writes its pid to the file "sleeping" in the working
                       directory, sleeps N seconds (at most 30), then
                       answers "slept"
    GET /grow?mb=N     allocates N MiB (at most 512) and keeps it for the
                       worker's life, then answers its pid
"""

import os
import time

from apphelp import number, record, text

HELD = []


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        record("sleeping")
        time.sleep(number(environ, "s", 30))
        return text(start_response, b"slept")
    if path == "/grow":
        # Filled, not zeroed, so every page is resident.
        HELD.append(b"x" * (number(environ, "mb", 512) << 20))
    if path in ("/pid", "/grow"):
        return text(start_response, str(os.getpid()).encode())
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
