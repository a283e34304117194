"""The app the ini files of e2e/uwsgi_ini_test.go load, under uWSGI and
under gowsgi: each callable answers, as JSON, which one it is and what the
uwsgi module says of the workers.

Routes (any path):
    application        {"app": "module", "numproc": N, "cores": N, "env": GREETING}
    make()             a factory: returns an app that answers "factory"
"""

import json
import os

import uwsgi


def _answer(name):
    def app(environ, start_response):
        body = json.dumps({
            "app": name,
            "numproc": uwsgi.numproc,
            "cores": uwsgi.cores,
            "env": os.environ.get("GREETING", ""),
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    return app


application = _answer("module")


def make():
    return _answer("factory")
