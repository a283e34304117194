"""WSGI app for pyembed's tests: one route per behaviour under test.

Routes (PATH_INFO; QUERY_STRING picks a variant where noted):
  /hello               b"Hello World!\\n"
  /environ             JSON of environ: key -> [type name, value or repr]
  /input?<how>         JSON of what reading wsgi.input returns; how is
                       read, read3, readline, readlines or iter
  /validate?<case>     calls start_response wrongly, catches the error and
                       answers 200 with "<ExceptionType>: <message>"
  /bad-status          calls start_response with a bytes status (-> 500)
  /twice               calls start_response twice without exc_info (-> 500)
  /exc-info            replaces its head through exc_info before any body
  /exc-info-after-head writes, then calls start_response with exc_info
  /write               uses write() then returns the rest
  /str-body            returns a str in its body (-> 500)
  /raise               raises before start_response (-> 500)
  /raise-after-head    yields a chunk, then raises
  /no-start            returns a body without calling start_response
  /close?<mode>&<tok>  an iterable with close(); mode ok, raise, str,
                       close-raises, or list-subclass and tuple-subclass
                       (a subclass of list or tuple with close())
  /closed?<tok>        "1" if the iterable of token tok was closed
  /stream?<fd>         yields b"first", waits for a byte on fd, yields
                       b"second"
  /big?<n>             n bytes of "x", as a list (or ?iter:<n> as a generator;
                       ?chunks:<n> yields n chunks of 300,000 bytes)
  /file?<path>         wsgi.file_wrapper of path opened at offset 5
  /filelike            wsgi.file_wrapper of a BytesIO
  /gilstate            calls PyGILState_Ensure/Release through ctypes
  /emptied-list?<go>&<done>
                       a list of one 33 MiB bytes object that another thread
                       empties once a byte arrives on fd go, then writes a
                       byte to fd done
  /bad-len-block       wsgi.file_wrapper whose file reads a block that
                       raises from __len__
  /head-of?<n>         a head whose frame payload is exactly n bytes
  /swapped-file?<a>&<b> wsgi.file_wrapper of file a, whose tell() puts
                       file b under a's descriptor number
  /framing?<i>         case i of wsgi/testdata/http1_framing.json: its
                       status, headers and body, as a list or, for a
                       stream case, a generator
  /keep?<what>         keeps its start_response, its write or both
                       (what: start_response, write, both) in kept
  /use-kept            calls what /keep kept, then answers 200 with a
                       line "<name>: <ExceptionType>: <message>" (or
                       "<name>: accepted") for each, and forgets them
  /check-head          start_response(CHECK_STATUS, [(CHECK_NAME,
                       CHECK_VALUE)]) from environ (no header without
                       CHECK_NAME): answers that head with b"accepted", or
                       200 with "<ExceptionType>: <message>" if refused
"""
import io
import json
import os
import sys
import threading

closed = set()


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"], not_found)
    return route(environ, start_response)


def ok(start_response, body, content_type="text/plain"):
    start_response("200 OK", [("Content-Type", content_type)])
    return [body]


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello World!\n"]


def environ_dump(environ, start_response):
    out = {}
    for key, value in environ.items():
        shown = value if isinstance(value, (str, bool)) else repr(value)
        out[key] = [type(value).__name__, shown]
    return ok(start_response, json.dumps(out).encode(), "application/json")


def read_input(environ, start_response):
    stream = environ["wsgi.input"]
    how = environ["QUERY_STRING"]
    if how == "read":
        result = [stream.read().decode("latin-1"), stream.read().decode("latin-1")]
    elif how == "read3":
        result = [stream.read(3).decode("latin-1"), stream.read(100).decode("latin-1")]
    elif how == "readline":
        result = [stream.readline().decode("latin-1"), stream.readline().decode("latin-1")]
    elif how == "readlines":
        result = [line.decode("latin-1") for line in stream.readlines()]
    else:
        result = [line.decode("latin-1") for line in stream]
    return ok(start_response, json.dumps(result).encode(), "application/json")


BAD_CALLS = {
    "bytes-status": lambda sr: sr(b"200 OK", []),
    "no-reason-space": lambda sr: sr("200", []),
    "tuple-headers": lambda sr: sr("200 OK", (("A", "b"),)),
    "bytes-header": lambda sr: sr("200 OK", [(b"A", b"b")]),
    "hop-by-hop": lambda sr: sr("200 OK", [("Connection", "close")]),
    "crlf-value": lambda sr: sr("200 OK", [("X-A", "a\r\nSet-Cookie: x=1")]),
    "not-latin1": lambda sr: sr("200 OK", [("X-A", "\u20ac")]),
    "bad-name": lambda sr: sr("200 OK", [("X A", "b")]),
    "bad-length": lambda sr: sr("200 OK", [("Content-Length", "ten")]),
}


def validate(environ, start_response):
    try:
        BAD_CALLS[environ["QUERY_STRING"]](start_response)
    except Exception as exc:
        return ok(start_response, ("%s: %s" % (type(exc).__name__, exc)).encode())
    return ok(start_response, b"accepted")


def bad_status(environ, start_response):
    start_response(b"200 OK", [])
    return [b"unreachable"]


def twice(environ, start_response):
    start_response("200 OK", [])
    start_response("201 Created", [])
    return [b"unreachable"]


def exc_info(environ, start_response):
    start_response("200 OK", [("X-Gone", "1")])
    try:
        raise ValueError("replaced")
    except ValueError:
        start_response("503 Service Unavailable", [("Retry-After", "1")], sys.exc_info())
    return [b"replaced"]


def exc_info_after_head(environ, start_response):
    write = start_response("200 OK", [])
    write(b"partial")
    try:
        raise ValueError("too late")
    except ValueError:
        start_response("500 Oops", [], sys.exc_info())
    return [b"unreachable"]


def write_then_return(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"a")
    write(b"")
    write(b"b")
    return [b"c"]


def str_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["Hello World!\n"]


def raise_early(environ, start_response):
    raise RuntimeError("app failed")


def raise_after_head(environ, start_response):
    start_response("200 OK", [])
    yield b"x"
    raise RuntimeError("app failed late")


def no_start(environ, start_response):
    return [b"body"]


class Closing:
    """An iterable that records close() under a token."""

    def __init__(self, token, items, close_raises=False):
        self.token, self.items, self.close_raises = token, items, close_raises

    def __iter__(self):
        for item in self.items:
            if item is None:
                raise RuntimeError("iteration failed")
            yield item

    def close(self):
        closed.add(self.token)
        if self.close_raises:
            raise RuntimeError("close failed")


class ClosingList(list):
    def close(self):
        closed.add(self.token)


class ClosingTuple(tuple):
    def close(self):
        closed.add(self.token)


def close_route(environ, start_response):
    mode, token = environ["QUERY_STRING"].split("&")
    start_response("200 OK", [])
    if mode in ("list-subclass", "tuple-subclass"):
        result = (ClosingList if mode == "list-subclass" else ClosingTuple)([b"a", b"b"])
        result.token = token
        return result
    items = {"ok": [b"a", b"b"], "raise": [b"a", None], "str": ["a"], "close-raises": [b"a", b"b"]}[mode]
    return Closing(token, items, close_raises=mode == "close-raises")


def closed_route(environ, start_response):
    return ok(start_response, b"1" if environ["QUERY_STRING"] in closed else b"0")


def stream(environ, start_response):
    fd = int(environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Closing("stream:%d" % fd, _stream_items(fd))


def _stream_items(fd):
    yield b"first"
    os.read(fd, 1)
    yield b"second"


def big(environ, start_response):
    how, _, n = environ["QUERY_STRING"].rpartition(":")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if how == "chunks":
        # n chunks of 300,000 bytes, each of its own letter, so order shows
        return (bytes([ord("a") + i % 26]) * 300_000 for i in range(int(n)))
    body = b"x" * int(n)
    if how == "iter":
        return iter([body])
    return [body]


def file_route(environ, start_response):
    f = open(environ["QUERY_STRING"], "rb")
    f.seek(5)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](f, 4)


def filelike(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory"), 4)


def gilstate(environ, start_response):
    try:
        import ctypes
    except ImportError:
        return ok(start_response, b"no ctypes")
    api = ctypes.pythonapi
    api.PyGILState_Ensure.restype = ctypes.c_int
    state = api.PyGILState_Ensure()
    api.PyGILState_Release(state)
    return ok(start_response, b"gilstate ok")


ROUTES = {
    "/hello": hello,
    "/environ": environ_dump,
    "/input": read_input,
    "/validate": validate,
    "/bad-status": bad_status,
    "/twice": twice,
    "/exc-info": exc_info,
    "/exc-info-after-head": exc_info_after_head,
    "/write": write_then_return,
    "/str-body": str_body,
    "/raise": raise_early,
    "/raise-after-head": raise_after_head,
    "/no-start": no_start,
    "/close": close_route,
    "/closed": closed_route,
    "/stream": stream,
    "/big": big,
    "/file": file_route,
    "/filelike": filelike,
    "/gilstate": gilstate,
}


EMPTIED_SIZE = 33 << 20  # over glibc's largest mmap threshold: freed, it is unmapped


def emptied_list(environ, start_response):
    go, done = (int(fd) for fd in environ["QUERY_STRING"].split("&"))
    body = [b"x" * EMPTIED_SIZE]

    def empty():
        os.read(go, 1)
        body.clear()  # the list held the only reference to its item
        filler = b"y" * EMPTIED_SIZE  # may land where the item was
        os.write(done, b"1")
        del filler

    threading.Thread(target=empty).start()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return body


class BadLenBlock(bytes):
    def __len__(self):
        raise ValueError("this block has no length")


class BadLenFile:
    def read(self, size):
        return BadLenBlock(b"block")


def bad_len_block(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](BadLenFile())


BIG_VALUE = "h" * 65_000


def head_of(environ, start_response):
    status, left = "200 OK", int(environ["QUERY_STRING"]) - 2 - len("200 OK")
    headers = []
    while left > 0:  # each header costs 2 + 5 + 2 bytes and its value
        value = min(len(BIG_VALUE), left - 9)
        headers.append(("X-Big", BIG_VALUE[:value]))
        left -= 9 + value
    start_response(status, headers)
    return [b"body"]


class SwappingFile:
    """File a, until tell() puts file b under a's descriptor number, as
    another thread closing a and opening b would."""

    def __init__(self, a, b):
        self.f, self.b = open(a, "rb"), b

    def fileno(self):
        return self.f.fileno()

    def tell(self):
        other = os.open(self.b, os.O_RDONLY | os.O_CLOEXEC)
        os.dup2(other, self.f.fileno())
        os.close(other)
        return 0

    def read(self, size):
        return self.f.read(size)

    def close(self):
        self.f.close()


def swapped_file(environ, start_response):
    a, b = environ["QUERY_STRING"].split("&")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](SwappingFile(a, b))


def check_head(environ, start_response):
    headers = []
    if "CHECK_NAME" in environ:
        headers.append((environ["CHECK_NAME"], environ["CHECK_VALUE"]))
    try:
        start_response(environ["CHECK_STATUS"], headers)
    except Exception as exc:
        return ok(start_response, ("%s: %s" % (type(exc).__name__, exc)).encode())
    return [b"accepted"]


kept = {}


def keep(environ, start_response):
    what = environ["QUERY_STRING"]
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    if what in ("start_response", "both"):
        kept["start_response"] = start_response
    if what in ("write", "both"):
        kept["write"] = write
    return [b"kept"]


def use_kept(environ, start_response):
    calls = {"start_response": lambda f: f("200 OK", []), "write": lambda f: f(b"stale")}
    lines = []
    for name, call in calls.items():
        if name in kept:
            try:
                call(kept[name])
                lines.append("%s: accepted" % name)
            except Exception as exc:
                lines.append("%s: %s: %s" % (name, type(exc).__name__, exc))
    kept.clear()
    return ok(start_response, "\n".join(lines).encode())


ROUTES.update({
    "/keep": keep,
    "/use-kept": use_kept,
    "/check-head": check_head,
    "/emptied-list": emptied_list,
    "/bad-len-block": bad_len_block,
    "/head-of": head_of,
    "/swapped-file": swapped_file,
})


FRAMING_TABLE = os.path.join(os.path.dirname(__file__), "..", "..", "wsgi", "testdata", "http1_framing.json")


def framing(environ, start_response):
    with open(FRAMING_TABLE) as f:
        case = json.load(f)["cases"][int(environ["QUERY_STRING"])]
    start_response(case["status"], [tuple(h) for h in case["headers"]])
    body = [chunk.encode() for chunk in case["body"]]
    if case["stream"]:
        return (chunk for chunk in body)
    return body


ROUTES["/framing"] = framing


def make_app():
    """A factory, as in module = cases_app:make_app(): returns the app."""
    return application


def broken_factory():
    """A factory that raises, for the loader's error line."""
    raise RuntimeError("no settings")
