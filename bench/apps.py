"""The WSGI applications every server runs in gowsgi's benchmark.

One file, routed on PATH_INFO, so each server imports exactly the same code
and pays for the same Flask import:

    /hello        200 text/plain "Hello World!\\n" with Content-Length
    /hello-nocl   the same body without Content-Length (the server must
                  chunk or close)
    /json         a small JSON object, serialised per request
    /flask        a Flask route returning the same JSON object (jsonify)
    /echo         the request body back (the benchmark POSTs 4 KiB)
    /1mib         a 1 MiB body as one bytes object
    /file10m      the file named by BENCH_FILE (10 MiB, written by the
                  benchmark at start) through wsgi.file_wrapper
    anything else 404
"""

import json
import os

import flask

HELLO = b"Hello World!\n"
ONE_MIB = b"x" * (1 << 20)
MESSAGE = {"message": "Hello, World!"}

flask_app = flask.Flask(__name__)


@flask_app.route("/flask")
def flask_json():
    return flask.jsonify(MESSAGE)


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def hello_without_length(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [HELLO]


def json_message(environ, start_response):
    body = json.dumps(MESSAGE).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def echo(environ, start_response):
    # PEP 3333 "wsgi.input": read no more than CONTENT_LENGTH.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]


def one_mib(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(ONE_MIB)))])
    return [ONE_MIB]


def big_file(environ, start_response):
    path = os.environ["BENCH_FILE"]
    f = open(path, "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(os.path.getsize(path)))])
    # PEP 3333 "Optional Platform-Specific File Handling".
    return environ["wsgi.file_wrapper"](f, 1 << 16)


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"),
                                     ("Content-Length", "10")])
    return [b"not found\n"]


ROUTES = {
    "/hello": hello,
    "/hello-nocl": hello_without_length,
    "/json": json_message,
    "/flask": flask_app.wsgi_app,
    "/echo": echo,
    "/1mib": one_mib,
    "/file10m": big_file,
}


def application(environ, start_response):
    route = ROUTES.get(environ.get("PATH_INFO", ""), not_found)
    return route(environ, start_response)
