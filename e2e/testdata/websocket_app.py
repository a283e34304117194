"""WebSockets and upgraded connections through uWSGI's Python API, the same
under uWSGI and under gowsgi.

Routes:
    GET /echo       uwsgi.websocket_handshake(), then echoes each message
                    (websocket_recv): one starting with a NUL byte with
                    websocket_send_binary, others with websocket_send; when
                    recv raises, logs "websocket ended: <exception type>"
    GET /echo_nb    the same with websocket_recv_nb, polling the connection
                    (uwsgi.connection_fd()) between calls
    GET /echo_late  /echo after 100 ms: the client's first message comes
                    long after gowsgi's master would begin watching a plain
                    request's connection (20 ms)
    GET /upgrade    answers "101 Switching Protocols" itself with
                    "Upgrade: line-echo", then on uwsgi.connection_fd()
                    reads one line and answers "echo: <line>"
    GET /plain      tries websocket_handshake() on whatever request came and
                    answers 200 with the error it raised, or "no error"
"""

import os
import select
import sys
import time

import uwsgi

from apphelp import routed, text


def _echo(recv, delay=0):
    def route(environ, start_response):
        time.sleep(delay)
        uwsgi.websocket_handshake(environ["HTTP_SEC_WEBSOCKET_KEY"], environ.get("HTTP_ORIGIN", ""))
        try:
            while True:
                msg = recv()
                if not msg:
                    continue
                if msg[:1] == b"\0":
                    uwsgi.websocket_send_binary(msg)
                else:
                    uwsgi.websocket_send(msg)
        except OSError as e:
            sys.stderr.write("websocket ended: %s\n" % type(e).__name__)
            sys.stderr.flush()
        return []

    return route


def _recv_polling():
    """websocket_recv_nb, waiting on the socket while no message is whole."""
    while True:
        msg = uwsgi.websocket_recv_nb()
        if msg:
            return msg
        select.select([uwsgi.connection_fd()], [], [], 1.0)


def upgrade(environ, start_response):
    write = start_response("101 Switching Protocols", [("Upgrade", "line-echo"), ("Connection", "Upgrade")])
    write(b"")  # uWSGI sends the head with the first write; gowsgi already has
    fd = uwsgi.connection_fd()
    line = b""
    while not line.endswith(b"\n"):
        select.select([fd], [], [], 5.0)
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not chunk:
            break
        line += chunk
    reply = b"echo: " + line
    while reply:
        select.select([], [fd], [], 5.0)
        try:
            reply = reply[os.write(fd, reply):]
        except BlockingIOError:
            pass
    return []


def plain(environ, start_response):
    try:
        uwsgi.websocket_handshake()
        answer = b"no error"
    except Exception as e:
        answer = ("%s: %s" % (type(e).__name__, e)).encode()
    return text(start_response, answer)


application = routed(
    {
        "/echo": _echo(uwsgi.websocket_recv),
        "/echo_nb": _echo(_recv_polling),
        "/echo_late": _echo(uwsgi.websocket_recv, delay=0.1),
        "/upgrade": upgrade,
        "/plain": plain,
    }
)
