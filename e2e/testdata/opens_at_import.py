"""An app that opens a file while it is imported, as apps that set up a log
file do, and writes to it on every request.

Routes:
  /write?line=TEXT  appends TEXT to the file opened at import, answers its fd
"""
import os
from urllib.parse import parse_qs

LOG = open(os.path.join(os.getcwd(), "import-time.log"), "a", buffering=1)


def application(environ, start_response):
    line = parse_qs(environ.get("QUERY_STRING", "")).get("line", [""])[0]
    LOG.write(line + "\n")
    body = str(LOG.fileno()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
