"""A --wsgi-file app: answers {"app": "file"} (see ini_app.py)."""

import json


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"app": "file"}).encode()]
