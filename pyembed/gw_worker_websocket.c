/*
 * Upgraded connections and WebSockets (RFC 6455) in the worker: uWSGI's
 * websocket_handshake, websocket_recv, websocket_recv_nb, websocket_send,
 * websocket_send_binary and connection_fd, and an app's own
 * "101 Switching Protocols". Both need the client's socket, which the
 * worker holds only for a direct request on the plain-HTTP socket
 * (FramingHTTP1, gw_worker_direct.c); the master marks a request that asked
 * to upgrade (GW_HTTP_UPGRADE), stops reading its connection while it runs
 * and closes the connection after it (gateways/http1conn.go).
 *
 * Once the 101 has gone out the connection is the app's: the HTTP framing
 * is over, whatever the app still yields goes to the client as it is, and
 * the completion tells the master to close. The client's descriptor is
 * non-blocking (the master's Go runtime set it so, and the flag is the
 * connection's), so reads wait in poll(2) and writes wait up to
 * GW_WS_WRITE_TIMEOUT_MS for room, as uWSGI's --socket-timeout default;
 * the GIL is released around both.
 *
 * As uWSGI does, websocket_recv answers pings, sends a ping of its own
 * after --websockets-ping-freq idle seconds and fails when its pong is
 * more than --websockets-pong-tolerance seconds late, and raises OSError (IOError) when the
 * client closes or breaks the protocol. Unlike uWSGI 2.0 it returns a
 * fragmented message whole (uWSGI returns b"\0" for each fragment but the
 * last), echoes a ping's payload and a close's code (RFC 6455 sections
 * 5.5.1 and 5.5.3), and refuses unmasked client frames (section 5.1).
 */
#include "gw.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define GW_WS_WRITE_TIMEOUT_MS 4000 /* uWSGI's --socket-timeout default */
#define GW_WS_READ_CHUNK (16 << 10)
#define GW_WS_LINGER_MS 1000 /* how long a failed WebSocket drains the client's bytes */
#define GW_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 section 1.3 */

/* Opcodes (RFC 6455 section 5.2) and close codes (section 7.4.1). */
enum { GW_WS_CONT = 0, GW_WS_TEXT = 1, GW_WS_BINARY = 2, GW_WS_CLOSE = 8, GW_WS_PING = 9, GW_WS_PONG = 10 };
enum { GW_WS_PROTOCOL_ERROR = 1002, GW_WS_TOO_BIG = 1009 };

/* The largest message websocket_recv accepts (--websockets-max-size, in
 * KiB), the seconds of silence before it pings (--websockets-ping-freq)
 * and how late a pong may be (--websockets-pong-tolerance): uWSGI's
 * defaults unless gw_uwsgi_configure sets them. */
static uint64_t gw_ws_max_size = 1024 << 10;
static int gw_ws_ping_freq = 30, gw_ws_pong_tolerance = 3;

/* GIL: any. Sets the limits above, in bytes and seconds, where not 0;
 * before the first request. */
void gw_ws_configure(uint64_t max_size, int ping_freq, int pong_tolerance)
{
    if (max_size > 0)
        gw_ws_max_size = max_size;
    if (ping_freq > 0)
        gw_ws_ping_freq = ping_freq;
    if (pong_tolerance > 0)
        gw_ws_pong_tolerance = pong_tolerance;
}

/* GIL: any. Readies s for a request: nothing upgraded, no WebSocket. */
void gw_ws_begin(gw_slot *s)
{
    s->upgraded = s->websocket = s->ws_closed = s->ws_fragmented = 0;
    s->ws_in.len = s->ws_msg.len = 0;
    s->ws_last_ping = s->ws_last_pong = 0;
}

/* GIL: any. Frees what a long message made the buffers grow to. */
void gw_ws_end(gw_slot *s)
{
    if (s->ws_in.cap > 4 * GW_WS_READ_CHUNK)
        gw_buf_free(&s->ws_in);
    gw_buf_free(&s->ws_msg);
}

static time_t gw_ws_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* GIL held. Whether the worker holds this request's connection and the
 * client asked to upgrade it; else raises OSError saying what works. */
int gw_ws_can_upgrade(gw_slot *s, const char *function)
{
    if (s->client_fd < 0 || (s->framing != GW_FRAMING_HTTP1 && s->framing != GW_FRAMING_HTTP_HEAD)) {
        PyErr_Format(PyExc_OSError,
                     "uwsgi.%s(): the worker does not hold this request's connection, so it cannot upgrade it; "
                     "serve WebSockets from the plain HTTP socket (--http-socket, directly or behind nginx's "
                     "proxy_pass) or a uwsgi socket on TCP (nginx's uwsgi_pass), not over HTTPS/HTTP/2, "
                     "FastCGI, SCGI or a unix socket",
                     function);
        return -1;
    }
    if (!(s->http_flags & GW_HTTP_UPGRADE)) {
        PyErr_Format(PyExc_OSError,
                     "uwsgi.%s(): the request did not ask to upgrade the connection "
                     "(it needs \"Upgrade: websocket\" and \"Connection: Upgrade\")",
                     function);
        return -1;
    }
    if (s->head_sent || s->upgraded) {
        PyErr_Format(PyExc_OSError, "uwsgi.%s(): the response has already begun", function);
        return -1;
    }
    return 0;
}

/* GIL not held. Writes all of iov to fd, waiting for room at most
 * GW_WS_WRITE_TIMEOUT_MS each time. 0, or -1 with errno set. */
static int gw_write_all(int fd, struct iovec *iov, int n, uint64_t *written)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (w < 0) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int r = poll(&p, 1, GW_WS_WRITE_TIMEOUT_MS);
            if (r == 0)
                errno = ETIMEDOUT;
            if (r == 0 || (r < 0 && errno != EINTR))
                return -1;
            continue;
        }
        *written += (uint64_t)w;
        gw_iov_advance(&iov, &n, (size_t)w);
    }
    return 0;
}

/* GIL held, released while writing. Writes iov to the client, waiting for
 * room; a failure ends the WebSocket and raises OSError. */
static int gw_client_write(gw_slot *s, struct iovec *iov, int n)
{
    int rc, err;
    gw_mark_head_out(s);
    Py_BEGIN_ALLOW_THREADS
    rc = gw_write_all(s->client_fd, iov, n, &s->written);
    err = errno;
    Py_END_ALLOW_THREADS
    if (rc == 0)
        return 0;
    s->ws_closed = 1;
    PyErr_Format(PyExc_OSError, "writing to the client failed: %s", strerror(err));
    return -1;
}

/* GIL held, released while writing. Bytes the app yields after its 101:
 * the connection is its protocol's now, so they go as they are. */
int gw_upgraded_body(gw_slot *s, const char *p, size_t n)
{
    struct iovec iov = {(void *)p, n};
    s->body_bytes += n;
    return gw_client_write(s, &iov, 1);
}

/* GIL held, released while writing. Writes the 101 in s->status and
 * s->headers at once, and from then on the connection is the app's. */
int gw_upgrade_head(gw_slot *s)
{
    gw_buf head = {0};
    int rc = gw_buf_append(&head, "HTTP/1.1 ", 9) < 0 || gw_buf_append(&head, s->status.data, s->status.len) < 0 ||
             gw_buf_append(&head, "\r\n", 2) < 0;
    for (size_t i = 0; !rc && i + 4 <= s->headers.len;) {
        const unsigned char *h = (const unsigned char *)s->headers.data + i;
        size_t name_len = (size_t)h[0] | (size_t)h[1] << 8;
        const unsigned char *v = h + 2 + name_len;
        size_t value_len = (size_t)v[0] | (size_t)v[1] << 8;
        rc = gw_buf_append(&head, h + 2, name_len) < 0 || gw_buf_append(&head, ": ", 2) < 0 ||
             gw_buf_append(&head, v + 2, value_len) < 0 || gw_buf_append(&head, "\r\n", 2) < 0;
        i += 4 + name_len + value_len;
    }
    if (!rc)
        rc = gw_buf_append(&head, "\r\n", 2) < 0;
    if (!rc) {
        s->head_sent = s->upgraded = 1;
        s->http_committed = 1;
        s->head_bytes = head.len;
        s->head_fields = gw_head_fields(head.data, head.len);
        struct iovec iov = {head.data, head.len};
        rc = gw_client_write(s, &iov, 1) < 0;
    }
    gw_buf_free(&head);
    return rc ? -1 : 0;
}

/* GIL held, released while writing. Sends one frame, unmasked as a server
 * sends (RFC 6455 section 5.1); p's owner must stay alive. */
static int gw_ws_send_frame(gw_slot *s, int opcode, const char *p, size_t n)
{
    unsigned char h[10];
    size_t len = 2;
    h[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        h[1] = (unsigned char)n;
    } else if (n <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        len = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        len = 10;
    }
    struct iovec iov[2] = {{h, len}, {(void *)p, n}};
    s->body_bytes += len + n;
    return gw_client_write(s, iov, n > 0 ? 2 : 1);
}

/* GIL not held. Reads and drops what the client still sends, until it
 * closes or GW_WS_LINGER_MS pass: closing a socket with unread bytes resets
 * the connection, and the reset could destroy the close frame just sent
 * before the client reads it (a client still writing a message too big). */
static void gw_ws_linger(int fd)
{
    char scratch[16 << 10];
    struct timespec now, end;
    shutdown(fd, SHUT_WR); /* the client sees the end after the close frame (RFC 6455 section 7.1.1) */
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += GW_WS_LINGER_MS / 1000;
    for (;;) {
        ssize_t r = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (r > 0 || (r < 0 && errno == EINTR))
            continue;
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = (long)(end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) == 0)
            return;
    }
}

/* GIL held, released while writing. Ends the WebSocket after the client
 * broke the protocol: a close frame with code, what the client still sends
 * drained for a moment, then OSError naming why. Always -1. */
static int gw_ws_fail(gw_slot *s, int code, const char *why)
{
    unsigned char payload[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    if (!s->ws_closed && gw_ws_send_frame(s, GW_WS_CLOSE, (const char *)payload, 2) < 0)
        PyErr_Clear();
    if (!s->ws_closed) {
        Py_BEGIN_ALLOW_THREADS
        gw_ws_linger(s->client_fd);
        Py_END_ALLOW_THREADS
    }
    s->ws_closed = 1;
    PyErr_Format(PyExc_OSError, "websocket: %s", why);
    return -1;
}

/* GIL held, released while writing. What uWSGI does when no frame comes:
 * a ping when none is out and the last was gw_ws_ping_freq ago (or never),
 * and a failure when a pong is gw_ws_pong_tolerance seconds late. */
static int gw_ws_keepalive(gw_slot *s)
{
    time_t now = gw_ws_now();
    if (s->ws_last_ping != 0 && s->ws_last_pong < s->ws_last_ping) {
        if (now - s->ws_last_ping <= gw_ws_pong_tolerance)
            return 0;
        s->ws_closed = 1;
        PyErr_Format(PyExc_OSError, "websocket: no pong from the client in %d seconds", gw_ws_pong_tolerance);
        return -1;
    }
    if (s->ws_last_ping != 0 && now - s->ws_last_ping < gw_ws_ping_freq)
        return 0;
    s->ws_last_ping = now;
    return gw_ws_send_frame(s, GW_WS_PING, NULL, 0);
}

/* GIL held, released while waiting. Reads what the client sent into ws_in:
 * 1 when bytes came, 0 when none did (with wait unset, or after a quiet
 * gw_ws_ping_freq), -1 with OSError set when the connection ended. */
static int gw_ws_fill(gw_slot *s, int wait)
{
    ssize_t r;
    int err;
    if (gw_buf_reserve(&s->ws_in, GW_WS_READ_CHUNK) < 0)
        return -1;
    char *at = s->ws_in.data + s->ws_in.len;
    size_t room = s->ws_in.cap - s->ws_in.len;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        r = recv(s->client_fd, at, room, MSG_DONTWAIT);
        if (r >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) || !wait)
            break;
        if (errno == EINTR)
            continue;
        struct pollfd p = {.fd = s->client_fd, .events = POLLIN};
        int ready = poll(&p, 1, gw_ws_ping_freq * 1000);
        if (ready == 0) {
            errno = EAGAIN;
            break;
        }
        if (ready < 0 && errno != EINTR)
            break;
    }
    err = errno;
    Py_END_ALLOW_THREADS
    if (r > 0) {
        s->ws_in.len += (size_t)r;
        return 1;
    }
    if (r < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
        return gw_ws_keepalive(s) < 0 ? -1 : 0;
    s->ws_closed = 1;
    if (r == 0)
        PyErr_SetString(PyExc_OSError, "websocket: the client closed the connection");
    else
        PyErr_Format(PyExc_OSError, "websocket: reading from the client failed: %s", strerror(err));
    return -1;
}

/* A frame's head (RFC 6455 section 5.2). */
typedef struct {
    int fin, opcode;
    size_t head_len;
    uint64_t length;
} gw_ws_head;

/* GIL: any. Parses the head at the start of p: 1 when whole, 0 when more
 * bytes are needed, -1 with *why set when it breaks the protocol. */
static int gw_ws_parse_head(const unsigned char *p, size_t n, gw_ws_head *h, const char **why)
{
    if (n < 2)
        return 0;
    h->fin = p[0] >> 7;
    h->opcode = p[0] & 0x0f;
    h->length = p[1] & 0x7f;
    h->head_len = 2 + (h->length == 126 ? 2 : h->length == 127 ? 8 : 0) + 4;
    if (p[0] & 0x70) {
        *why = "a frame with reserved bits set (no extension was agreed)";
        return -1;
    }
    if (!(p[1] & 0x80)) {
        *why = "an unmasked frame from the client (RFC 6455 section 5.1)";
        return -1;
    }
    if (h->opcode >= GW_WS_CLOSE && (!h->fin || h->length > 125)) {
        *why = "a fragmented or long control frame";
        return -1;
    }
    if (n < h->head_len)
        return 0;
    if (h->length == 126) {
        h->length = (uint64_t)p[2] << 8 | p[3];
    } else if (h->length == 127) {
        h->length = 0;
        for (int i = 0; i < 8; i++)
            h->length = h->length << 8 | p[2 + i];
    }
    return 1;
}

/* GIL held. A message ended: bytes of it, as uWSGI returns text and
 * binary alike. */
static PyObject *gw_ws_message(gw_slot *s, const char *p, size_t n)
{
    if (s->ws_fragmented) {
        if (gw_buf_append(&s->ws_msg, p, n) < 0)
            return NULL;
        p = s->ws_msg.data;
        n = s->ws_msg.len;
    }
    PyObject *msg = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
    s->ws_fragmented = 0;
    s->ws_msg.len = 0;
    return msg;
}

/* GIL held, released while writing. Acts on one whole, unmasked frame:
 * returns the message it completes, NULL with no exception when the
 * frame completes none, NULL with an exception when the WebSocket ends. */
static PyObject *gw_ws_frame(gw_slot *s, const gw_ws_head *h, const char *p, size_t n)
{
    switch (h->opcode) {
    case GW_WS_PING:
        gw_ws_send_frame(s, GW_WS_PONG, p, n); /* a failure leaves OSError set */
        return NULL;
    case GW_WS_PONG:
        s->ws_last_pong = gw_ws_now();
        return NULL;
    case GW_WS_CLOSE:
        if (n == 1) {
            gw_ws_fail(s, GW_WS_PROTOCOL_ERROR, "a close frame of one byte");
            return NULL;
        }
        if (gw_ws_send_frame(s, GW_WS_CLOSE, p, n < 2 ? n : 2) < 0)
            PyErr_Clear();
        s->ws_closed = 1;
        if (n >= 2)
            PyErr_Format(PyExc_OSError, "websocket: the client closed it (code %d)",
                         (int)((unsigned char)p[0] << 8 | (unsigned char)p[1]));
        else
            PyErr_SetString(PyExc_OSError, "websocket: the client closed it");
        return NULL;
    case GW_WS_TEXT:
    case GW_WS_BINARY:
        if (s->ws_fragmented) {
            gw_ws_fail(s, GW_WS_PROTOCOL_ERROR, "a new message inside a fragmented one");
            return NULL;
        }
        if (h->fin)
            return gw_ws_message(s, p, n);
        s->ws_fragmented = 1;
        s->ws_msg.len = 0;
        gw_buf_append(&s->ws_msg, p, n); /* a failure leaves MemoryError set */
        return NULL;
    case GW_WS_CONT:
        if (!s->ws_fragmented) {
            gw_ws_fail(s, GW_WS_PROTOCOL_ERROR, "a continuation frame outside a fragmented message");
            return NULL;
        }
        if (h->fin)
            return gw_ws_message(s, p, n);
        gw_buf_append(&s->ws_msg, p, n);
        return NULL;
    default:
        gw_ws_fail(s, GW_WS_PROTOCOL_ERROR, "a frame with an unknown opcode");
        return NULL;
    }
}

/* GIL held, released while waiting. The next message: waits for it when
 * wait is set, else returns b"" when none is whole yet. */
static PyObject *gw_ws_recv(gw_slot *s, int wait)
{
    for (;;) {
        gw_ws_head h;
        const char *why = NULL;
        int rc = gw_ws_parse_head((const unsigned char *)s->ws_in.data, s->ws_in.len, &h, &why);
        if (rc < 0) {
            gw_ws_fail(s, GW_WS_PROTOCOL_ERROR, why);
            return NULL;
        }
        if (rc > 0 && (h.length > gw_ws_max_size || h.length + s->ws_msg.len > gw_ws_max_size)) {
            char text[120];
            snprintf(text, sizeof text, "a message of more than the %llu bytes allowed (--websockets-max-size)",
                     (unsigned long long)gw_ws_max_size);
            gw_ws_fail(s, GW_WS_TOO_BIG, text);
            return NULL;
        }
        if (rc > 0 && s->ws_in.len - h.head_len >= h.length) {
            char *payload = s->ws_in.data + h.head_len;
            const unsigned char *mask = (const unsigned char *)payload - 4;
            for (uint64_t i = 0; i < h.length; i++)
                payload[i] ^= (char)mask[i & 3];
            PyObject *msg = gw_ws_frame(s, &h, payload, (size_t)h.length);
            size_t used = h.head_len + (size_t)h.length;
            memmove(s->ws_in.data, s->ws_in.data + used, s->ws_in.len - used);
            s->ws_in.len -= used;
            if (msg != NULL || PyErr_Occurred())
                return msg;
            continue;
        }
        if (rc > 0 && gw_buf_reserve(&s->ws_in, h.head_len + (size_t)h.length - s->ws_in.len) < 0)
            return NULL;
        rc = gw_ws_fill(s, wait);
        if (rc < 0)
            return NULL;
        if (rc == 0 && !wait)
            return PyBytes_FromStringAndSize(NULL, 0);
    }
}

/* GIL held. The request's CGI variable name from the vars block the
 * master sent, or NULL. */
static const char *gw_request_var(gw_slot *s, const char *name, size_t *len)
{
    size_t want = strlen(name);
    const unsigned char *p = (const unsigned char *)s->vars, *end = p + s->vars_len;
    while (p + 2 <= end) {
        size_t k = (size_t)p[0] | (size_t)p[1] << 8;
        if (p + 2 + k + 2 > end)
            break;
        const unsigned char *v = p + 2 + k;
        size_t vl = (size_t)v[0] | (size_t)v[1] << 8;
        if (v + 2 + vl > end)
            break;
        if (k == want && memcmp(p + 2, name, k) == 0) {
            *len = vl;
            return (const char *)v + 2;
        }
        p = v + 2 + vl;
    }
    return NULL;
}

/* GIL held. base64(SHA-1(key + GUID)), the Sec-WebSocket-Accept (RFC 6455
 * section 4.2.2), with Python's own hashlib and base64: once per
 * connection, and no second crypto library in the worker. */
static PyObject *gw_ws_accept(const char *key, size_t key_len)
{
    PyObject *hashlib = PyImport_ImportModule("hashlib"), *base64 = NULL, *digest = NULL, *accept = NULL;
    PyObject *text = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(key_len + strlen(GW_WS_GUID)));
    if (hashlib == NULL || text == NULL || (base64 = PyImport_ImportModule("base64")) == NULL)
        goto cleanup;
    memcpy(PyBytes_AS_STRING(text), key, key_len);
    memcpy(PyBytes_AS_STRING(text) + key_len, GW_WS_GUID, strlen(GW_WS_GUID));
    PyObject *sha1 = PyObject_CallMethod(hashlib, "sha1", "O", text);
    digest = sha1 != NULL ? PyObject_CallMethod(sha1, "digest", NULL) : NULL;
    Py_XDECREF(sha1);
    if (digest != NULL)
        accept = PyObject_CallMethod(base64, "b64encode", "O", digest);
cleanup:
    Py_XDECREF(digest);
    Py_XDECREF(base64);
    Py_XDECREF(text);
    Py_XDECREF(hashlib);
    return accept;
}

/* GIL held. Appends one header to s->headers. */
static int gw_ws_header(gw_slot *s, const char *name, const char *value, size_t value_len)
{
    if (gw_buf_append_var(&s->headers, name, strlen(name)) < 0 ||
        gw_buf_append_var(&s->headers, value, value_len) < 0)
        return -1;
    return 0;
}

/* uwsgi.websocket_handshake(key=None, origin=None, proto=None). GIL held.
 * Writes the 101 with Sec-WebSocket-Accept to the client; the key, origin
 * and protocol default to the request's Sec-WebSocket-Key, Origin and
 * first Sec-WebSocket-Protocol, as uWSGI reads them. */
PyObject *gw_uw_websocket_handshake(PyObject *self, PyObject *args)
{
    const char *key = NULL, *origin = NULL, *proto = NULL;
    Py_ssize_t key_len = 0, origin_len = 0, proto_len = 0;
    if (!PyArg_ParseTuple(args, "|z#z#z#:websocket_handshake", &key, &key_len, &origin, &origin_len, &proto,
                          &proto_len))
        return NULL;
    gw_slot *s = gw_uwsgi_request_slot("websocket_handshake");
    if (s == NULL || gw_ws_can_upgrade(s, "websocket_handshake") < 0)
        return NULL;
    size_t n = 0;
    if (key_len == 0 && (key = gw_request_var(s, "HTTP_SEC_WEBSOCKET_KEY", &n)) != NULL)
        key_len = (Py_ssize_t)n;
    if (key == NULL || key_len == 0) {
        PyErr_SetString(PyExc_OSError, "uwsgi.websocket_handshake(): the request has no Sec-WebSocket-Key");
        return NULL;
    }
    if (origin_len == 0 && (origin = gw_request_var(s, "HTTP_ORIGIN", &n)) != NULL)
        origin_len = (Py_ssize_t)n;
    if (proto_len == 0 && (proto = gw_request_var(s, "HTTP_SEC_WEBSOCKET_PROTOCOL", &n)) != NULL) {
        const char *comma = memchr(proto, ',', n);
        proto_len = (Py_ssize_t)(comma != NULL ? (size_t)(comma - proto) : n);
    }
    PyObject *accept = gw_ws_accept(key, (size_t)key_len);
    if (accept == NULL)
        return NULL;
    s->status.len = s->headers.len = 0;
    int rc = gw_buf_append(&s->status, "101 Switching Protocols", 23) < 0 ||
             gw_ws_header(s, "Upgrade", "websocket", 9) < 0 || gw_ws_header(s, "Connection", "Upgrade", 7) < 0 ||
             (origin_len > 0 && gw_ws_header(s, "Sec-WebSocket-Origin", origin, (size_t)origin_len) < 0) ||
             (proto_len > 0 && gw_ws_header(s, "Sec-WebSocket-Protocol", proto, (size_t)proto_len) < 0) ||
             gw_ws_header(s, "Sec-WebSocket-Accept", PyBytes_AS_STRING(accept), (size_t)PyBytes_GET_SIZE(accept)) < 0;
    Py_DECREF(accept);
    if (rc || gw_upgrade_head(s) < 0)
        return NULL;
    s->websocket = 1;
    s->ws_last_pong = gw_ws_now();
    Py_RETURN_NONE;
}

/* GIL held. The slot of a WebSocket this request opened, or NULL with
 * OSError set. */
static gw_slot *gw_ws_slot(const char *function)
{
    gw_slot *s = gw_uwsgi_request_slot(function);
    if (s == NULL)
        return NULL;
    if (!s->websocket) {
        PyErr_Format(PyExc_OSError, "uwsgi.%s(): call uwsgi.websocket_handshake() first", function);
        return NULL;
    }
    if (s->ws_closed) {
        PyErr_Format(PyExc_OSError, "uwsgi.%s(): the websocket is closed", function);
        return NULL;
    }
    return s;
}

/* uwsgi.websocket_recv(): the next message, as bytes. GIL held. */
PyObject *gw_uw_websocket_recv(PyObject *self, PyObject *unused)
{
    gw_slot *s = gw_ws_slot("websocket_recv");
    return s != NULL ? gw_ws_recv(s, 1) : NULL;
}

/* uwsgi.websocket_recv_nb(): the next message, or b"" when none is whole
 * yet. GIL held. */
PyObject *gw_uw_websocket_recv_nb(PyObject *self, PyObject *unused)
{
    gw_slot *s = gw_ws_slot("websocket_recv_nb");
    return s != NULL ? gw_ws_recv(s, 0) : NULL;
}

/* GIL held. Sends msg (bytes-like, or str as UTF-8) as one frame. */
static PyObject *gw_ws_send(PyObject *args, int opcode, const char *function)
{
    Py_buffer msg;
    char format[40];
    snprintf(format, sizeof format, "s*:%s", function);
    if (!PyArg_ParseTuple(args, format, &msg))
        return NULL;
    gw_slot *s = gw_ws_slot(function);
    int rc = s != NULL ? gw_ws_send_frame(s, opcode, msg.buf, (size_t)msg.len) : -1;
    PyBuffer_Release(&msg);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* uwsgi.websocket_send(msg): a text message. GIL held. */
PyObject *gw_uw_websocket_send(PyObject *self, PyObject *args)
{
    return gw_ws_send(args, GW_WS_TEXT, "websocket_send");
}

/* uwsgi.websocket_send_binary(msg): a binary message. GIL held. */
PyObject *gw_uw_websocket_send_binary(PyObject *self, PyObject *args)
{
    return gw_ws_send(args, GW_WS_BINARY, "websocket_send_binary");
}

/* uwsgi.connection_fd(): the descriptor of the client's connection, for an
 * app that answered 101 itself to read and write its protocol. GIL held. */
PyObject *gw_uw_connection_fd(PyObject *self, PyObject *unused)
{
    gw_slot *s = gw_uwsgi_request_slot("connection_fd");
    if (s == NULL)
        return NULL;
    if (s->client_fd < 0) {
        PyErr_SetString(PyExc_OSError,
                        "uwsgi.connection_fd(): the worker does not hold this request's connection (HTTPS, "
                        "HTTP/2, FastCGI, or uwsgi and SCGI on a unix socket go through the master); use "
                        "gowsgi's plain HTTP socket, or uwsgi and SCGI over TCP");
        return NULL;
    }
    return PyLong_FromLong(s->client_fd);
}
