"""WSGI app for the CGI role's tests.

Routes:
    ANY /echo      200 with the request body; X-Run-Once, X-Multiprocess and
                   X-Multithread say what environ's wsgi.* flags are
    GET /big?N     N bytes of b"x" in 64 KiB chunks, no Content-Length
    GET /file      this file through wsgi.file_wrapper
    GET /raise     raises before start_response
"""

import os


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/echo":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size)
        start_response("200 OK", [
            ("Content-Type", "application/octet-stream"),
            ("X-Run-Once", str(environ["wsgi.run_once"])),
            ("X-Multiprocess", str(environ["wsgi.multiprocess"])),
            ("X-Multithread", str(environ["wsgi.multithread"])),
        ])
        return [body]
    if path == "/big":
        left = int(environ["QUERY_STRING"])
        start_response("200 OK", [("Content-Type", "application/octet-stream")])

        def chunks(left):
            while left > 0:
                n = min(left, 64 << 10)
                yield b"x" * n
                left -= n

        return chunks(left)
    if path == "/file":
        f = open(__file__, "rb")
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", [("Content-Type", "text/x-python"), ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f)
    raise RuntimeError("cgi_app: raised on purpose")
