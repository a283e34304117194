"""A small Flask application, used by the end-to-end tests (e2e/frameworks_test.go).

Routes (the same in bottle_app, django_app and falcon_app):
    GET  /                  200 text/plain "Hello World!\\n"
    GET  /greet/<name>      200 text/plain "Hello, <name>!" (UTF-8 names welcome)
    GET  /search?q=..&page=  200 JSON {"q": ..., "page": ...}
    POST /form              200 JSON of the urlencoded fields "name" and "message"
    POST /upload            200 JSON {"filename", "size", "sha256"} of multipart field "file"
    POST /json              200 JSON {"received": <the posted JSON>}
    GET  /cookie/set        200, sets the cookie flavour=oatmeal
    GET  /cookie/get        200 JSON {"flavour": <the cookie's value or null>}
    GET  /redirect          302 to /greet/world
    GET  /stream?lines=N    200 text/plain, N lines "line i\\n" streamed without Content-Length
    anything else           404

Start it with:
    cd examples && gowsgi --module flask_app:app
"""

import hashlib

from flask import Flask, Response, jsonify, redirect, request

app = Flask(__name__)
application = app


@app.get("/")
def hello():
    return Response("Hello World!\n", mimetype="text/plain")


@app.get("/greet/<name>")
def greet(name):
    return Response(f"Hello, {name}!", mimetype="text/plain")


@app.get("/search")
def search():
    return jsonify(q=request.args.get("q"), page=request.args.get("page"))


@app.post("/form")
def form():
    return jsonify(name=request.form.get("name"), message=request.form.get("message"))


@app.post("/upload")
def upload():
    upload = request.files["file"]
    data = upload.read()
    return jsonify(filename=upload.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest())


@app.post("/json")
def echo_json():
    return jsonify(received=request.get_json())


@app.get("/cookie/set")
def set_cookie():
    response = Response("cookie set\n", mimetype="text/plain")
    response.set_cookie("flavour", "oatmeal")
    return response


@app.get("/cookie/get")
def get_cookie():
    return jsonify(flavour=request.cookies.get("flavour"))


@app.get("/redirect")
def go_elsewhere():
    return redirect("/greet/world", code=302)


@app.get("/stream")
def stream():
    lines = int(request.args.get("lines", "10"))
    return Response((f"line {i}\n" for i in range(lines)), mimetype="text/plain")
