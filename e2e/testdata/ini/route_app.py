"""The app e2e/uwsgi_routing_test.go serves behind routing rules, under
uWSGI and under gowsgi.

Routes (any path):
    anything    {"path": PATH_INFO, "query": QUERY_STRING}, with the header
                X-App: 1
"""

import json


def application(environ, start_response):
    body = json.dumps({"path": environ.get("PATH_INFO", ""), "query": environ.get("QUERY_STRING", "")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("X-App", "1")])
    return [body]
