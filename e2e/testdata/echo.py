"""Echoes what the server made of a request, for the HTTP parser corpus.

Every call appends one line to calls.log in the working directory, so a test
can tell whether a request it expects the server to refuse reached the app.

Routes:
    any method, any path -> 200 JSON {"environ": every str environ value,
                            "body_hex": the body read from wsgi.input, hex,
                            "input_terminated": wsgi.input_terminated}
"""

import json
import os


def count_call():
    fd = os.open("calls.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"call\n")
    finally:
        os.close(fd)


def application(environ, start_response):
    count_call()
    body = environ["wsgi.input"].read()
    echo = {
        "environ": {k: v for k, v in environ.items() if isinstance(v, str)},
        "body_hex": body.hex(),
        "input_terminated": environ.get("wsgi.input_terminated"),
    }
    out = json.dumps(echo).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
