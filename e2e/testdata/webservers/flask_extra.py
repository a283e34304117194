"""examples/flask_app.py with the routes the web-server tests need on top:

    GET /boom        an uncaught exception: Flask answers 500
    GET /download    this file through send_file, which uses wsgi.file_wrapper
    GET /where       JSON {"script_root", "path", "url"}: Flask's view of
                     SCRIPT_NAME and PATH_INFO, and the URL it builds for "/"
"""

import os

from flask import jsonify, request, send_file, url_for

from flask_app import app


@app.get("/boom")
def boom():
    raise RuntimeError("flask_extra: a deliberate failure")


@app.get("/download")
def download():
    return send_file(os.path.abspath(__file__), mimetype="text/x-python")


@app.get("/where")
def where():
    return jsonify(script_root=request.script_root, path=request.path, url=url_for("hello"))


application = app
