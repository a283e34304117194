"""A small Bottle application, used by the end-to-end tests (e2e/frameworks_test.go).

Routes (the same in flask_app, django_app and falcon_app):
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
    cd examples && gowsgi --module bottle_app:app
"""

import hashlib
import json

import bottle
from bottle import request, response

app = bottle.Bottle()
application = app


def as_json(value):
    response.content_type = "application/json"
    return json.dumps(value)


@app.get("/")
def hello():
    response.content_type = "text/plain"
    return "Hello World!\n"


@app.get("/greet/<name>")
def greet(name):
    response.content_type = "text/plain; charset=utf-8"
    return f"Hello, {name}!"


@app.get("/search")
def search():
    return as_json({"q": request.query.getunicode("q"), "page": request.query.getunicode("page")})


@app.post("/form")
def form():
    return as_json({"name": request.forms.getunicode("name"), "message": request.forms.getunicode("message")})


@app.post("/upload")
def upload():
    upload = request.files.get("file")
    data = upload.file.read()
    return as_json({"filename": upload.raw_filename, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})


@app.post("/json")
def echo_json():
    return as_json({"received": request.json})


@app.get("/cookie/set")
def set_cookie():
    response.set_cookie("flavour", "oatmeal")
    response.content_type = "text/plain"
    return "cookie set\n"


@app.get("/cookie/get")
def get_cookie():
    return as_json({"flavour": request.get_cookie("flavour")})


@app.get("/redirect")
def go_elsewhere():
    bottle.redirect("/greet/world", 302)


@app.get("/stream")
def stream():
    lines = int(request.query.get("lines", "10"))
    response.content_type = "text/plain"
    return (f"line {i}\n".encode() for i in range(lines))
