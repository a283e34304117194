"""The app e2e/uwsgi_app_options_test.go loads through PasteDeploy
(paste.ini's app:main), under uWSGI and under gowsgi.

Routes (any path):
    anything    {"app": "paste", "greeting": GREETING, "file_wrapper": bool}
                GREETING comes from paste.ini; file_wrapper says whether the
                environ has wsgi.file_wrapper
"""

import json


def make_app(global_config, greeting="", **settings):
    def app(environ, start_response):
        body = json.dumps({
            "app": "paste",
            "greeting": greeting,
            "file_wrapper": "wsgi.file_wrapper" in environ,
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    return app
