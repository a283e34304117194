/*
 * The direct response (wsgi/direct.go): the worker writes the response to
 * the client's connection itself, whose descriptor came with the request,
 * framed as the gateway would have framed it (gateways/head.go), so the
 * master relays nothing. Writes never wait: when the client's socket would
 * block, what is left of the response goes to the master as a FrameHandoff
 * and then FrameRaw/FrameFile frames of bytes already framed, which the
 * master forwards, so a client that reads slowly never holds the worker.
 * HTTP/1.x framing for the plain-HTTP socket is gw_worker_http.c's.
 * Before the first byte goes to the client the slot's scoreboard record
 * says so (GW_SLOT_HEAD_OUT): a master that finds the worker dead answers
 * 502/504 itself only when no byte can have left.
 */
#include "gw.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Buffered client bytes past this are written at once, and chunks this big
 * are written from the app's bytes object rather than copied. */
#define GW_CLIENT_BATCH (256 << 10)

/* The largest sendfile(2) call, under the kernel's own cap per call. */
#define GW_SENDFILE_MAX (1 << 30)

static uint32_t gw_status_code(gw_slot *s);

/* GIL: any. Stores, before the first write to the client, that bytes of
 * this request's response may be leaving, and its status code first, so a
 * reader who sees the id sees the status with it; a master that sees the
 * worker dead and the record without the id knows nothing left
 * (docs/internals.md, "The scoreboard"). */
void gw_mark_head_out(gw_slot *s)
{
    if (s->head_out)
        return;
    __atomic_store_n((uint32_t *)(s->record + GW_SLOT_HEAD_STATUS), gw_status_code(s), __ATOMIC_RELEASE);
    __atomic_store_n((uint32_t *)(s->record + GW_SLOT_HEAD_OUT), s->id, __ATOMIC_RELEASE);
    s->head_out = 1;
}

/* No GIL needed. The header fields in a head of len bytes: its lines but
 * the status line and the empty one that ends it. uWSGI's request line
 * says "N headers in M bytes"; the master only sees the sizes. */
uint32_t gw_head_fields(const char *head, size_t len)
{
    uint32_t lines = 0;
    for (size_t i = 0; i + 1 < len; i++)
        if (head[i] == '\r' && head[i + 1] == '\n')
            lines++;
    return lines >= 2 ? lines - 2 : 0;
}

/* GIL held. Appends the head the gateway would write: an HTTP/1.1 status
 * line (uwsgi) or a CGI "Status:" line (SCGI), the headers, an empty line.
 * A 1xx status cannot end a response: the peer would wait for another. */
int gw_direct_head(gw_slot *s)
{
    const char *prefix = s->framing == GW_FRAMING_CGI ? "Status: " : "HTTP/1.1 ";
    size_t mark = s->out.len;
    if (s->status.len > 0 && s->status.data[0] == '1') {
        PyErr_SetString(PyExc_ValueError, "a 1xx status cannot end a response; send the final status");
        return -1;
    }
    if (s->framing == GW_FRAMING_HTTP1)
        return gw_http_head(s);
    if (gw_buf_append(&s->out, prefix, strlen(prefix)) < 0 || gw_buf_append(&s->out, s->status.data, s->status.len) < 0 ||
        gw_buf_append(&s->out, "\r\n", 2) < 0)
        goto fail;
    for (size_t i = 0; i + 2 <= s->headers.len;) {
        const unsigned char *h = (const unsigned char *)s->headers.data + i;
        size_t name_len = (size_t)h[0] | (size_t)h[1] << 8;
        const unsigned char *v = h + 2 + name_len;
        size_t value_len = (size_t)v[0] | (size_t)v[1] << 8;
        if (gw_buf_append(&s->out, h + 2, name_len) < 0 || gw_buf_append(&s->out, ": ", 2) < 0 ||
            gw_buf_append(&s->out, v + 2, value_len) < 0 || gw_buf_append(&s->out, "\r\n", 2) < 0)
            goto fail;
        i += 4 + name_len + value_len;
    }
    if (gw_buf_append(&s->out, "\r\n", 2) < 0)
        goto fail;
    s->head_bytes = s->out.len - mark;
    s->head_fields = gw_head_fields(s->out.data + mark, s->head_bytes);
    s->head_sent = 1;
    return 0;
fail:
    s->out.len = mark;
    return -1;
}

/* GW_CLIENT_WAIT_MS (gw.h) is how long, in all, one response's writes may
 * wait for the client's socket to take more before the rest goes to the
 * master: a client that reads at the speed of the network drains it within
 * that, and handing over costs the master a copy or a sendfile of its own;
 * a slow one is handed over after it, so it never holds the worker longer. */

/* GIL not held. The client's socket would block: waits for room while the
 * response's wait budget lasts. Returns 1 when there is room, 0 when the
 * budget is spent (hand the rest over), -1 with errno set. */
static int gw_client_wait(gw_slot *s)
{
    while (s->client_wait_ms > 0) {
        struct timespec a, b;
        struct pollfd p = {.fd = s->client_fd, .events = POLLOUT};
        clock_gettime(CLOCK_MONOTONIC, &a);
        int r = poll(&p, 1, s->client_wait_ms);
        clock_gettime(CLOCK_MONOTONIC, &b);
        long spent = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        s->client_wait_ms -= spent > 0 ? (int)spent : 1;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r > 0)
            return 1; /* room, or an error the next write reports */
    }
    return 0;
}

/* GIL not held. Writes out's bytes from *out_done on, then extra's from
 * *extra_done on, to the client without waiting, advancing both. Returns 0
 * when all left, 1 when the socket would block, -1 with errno set when the
 * client is gone. */
static int gw_client_send(gw_slot *s, const char *extra, size_t extra_len, size_t *out_done, size_t *extra_done)
{
    gw_mark_head_out(s);
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        if (*out_done < s->out.len)
            iov[n++] = (struct iovec){s->out.data + *out_done, s->out.len - *out_done};
        if (*extra_done < extra_len)
            iov[n++] = (struct iovec){(char *)extra + *extra_done, extra_len - *extra_done};
        if (n == 0)
            return 0;
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(s->client_fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int room = gw_client_wait(s);
            if (room > 0)
                continue;
            return room == 0 ? 1 : -1;
        }
        if (w < 0)
            return -1;
        s->written += (uint64_t)w;
        size_t from_out = s->out.len - *out_done;
        if ((size_t)w < from_out)
            from_out = (size_t)w;
        *out_done += from_out;
        *extra_done += (size_t)w - from_out;
    }
}

/* GIL held. The client has gone (EPIPE, ECONNRESET): nothing more can
 * reach it, so the app's iteration stops with this error and its close()
 * is called (PEP 3333); the master closes its side. */
static int gw_client_gone(gw_slot *s, int err)
{
    s->client_gone = 1;
    s->out.len = 0;
    errno = err;
    PyErr_SetFromErrnoWithFilename(PyExc_ConnectionError, "client");
    return -1;
}

/* GIL held, released while writing. The client's socket would block: from
 * here on the rest of the response goes to the master, which forwards it.
 * out's bytes from out_done on and then rest become a FrameHandoff and raw
 * frames, sent to the master at once. */
static int gw_hand_off(gw_slot *s, size_t out_done, const char *rest, size_t rest_len)
{
    size_t left = s->out.len - out_done;
    size_t front = GW_FRAME_HEADER_LEN + 8 + (left > 0 ? GW_FRAME_HEADER_LEN : 0);
    if (front > out_done && gw_buf_reserve(&s->out, front - out_done) < 0)
        return -1;
    memmove(s->out.data + front, s->out.data + out_done, left);
    s->out.len = 0;
    s->handed_off = 1;
    if (gw_out_frame(s, GW_FRAME_HANDOFF, 0, 8) < 0)
        return -1; /* cannot fail: room was reserved */
    gw_put_u64(s->out.data + s->out.len, s->written);
    s->out.len += 8;
    if (left > 0) {
        if (gw_out_frame(s, GW_FRAME_RAW, 0, left) < 0)
            return -1;
        s->out.len += left;
    }
    if (rest_len > 0 && gw_out_frames(s, GW_FRAME_RAW, rest, rest_len) < 0)
        return -1;
    return gw_out_flush(s);
}

/* GIL held, released while writing. Writes out and then extra to the
 * client, handing what is left to the master when the socket would block. */
static int gw_direct_write(gw_slot *s, const char *extra, size_t extra_len)
{
    size_t out_done = 0, extra_done = 0;
    int rc, err;
    if (s->out.len == 0 && extra_len == 0)
        return 0;
    Py_BEGIN_ALLOW_THREADS
    rc = gw_client_send(s, extra, extra_len, &out_done, &extra_done);
    err = errno;
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return gw_client_gone(s, err);
    if (rc > 0)
        return gw_hand_off(s, out_done, extra + extra_done, extra_len - extra_done);
    s->out.len = 0;
    return 0;
}

/* GIL held, released while writing. Writes what is buffered to the client. */
int gw_direct_flush(gw_slot *s)
{
    if (s->client_gone) {
        PyErr_SetString(PyExc_ConnectionError, "the client has gone");
        return -1;
    }
    /* A flush sends the head too: a stream's first chunk must reach the
     * client without waiting for held bytes to fill. */
    if (s->framing == GW_FRAMING_HTTP1 && s->head_sent && !s->http_committed && gw_http_commit(s, 0) < 0)
        return -1;
    if (s->handed_off)
        return gw_out_flush(s);
    return gw_direct_write(s, NULL, 0);
}

/* GIL held, released while writing. Adds a body chunk: buffered while
 * small, written at once with what is buffered when big (the caller keeps
 * p's owner alive). */
int gw_direct_body(gw_slot *s, const char *p, size_t n)
{
    if (s->client_gone)
        return gw_direct_flush(s);
    if (n >= GW_CLIENT_BATCH)
        return gw_direct_write(s, p, n);
    if (gw_buf_append(&s->out, p, n) < 0)
        return -1;
    return s->out.len >= GW_CLIENT_BATCH ? gw_direct_write(s, NULL, 0) : 0;
}

/* GIL held, released while writing. Bytes already framed for the client:
 * to the client, or after a hand-off to the master as raw frames. */
int gw_direct_raw(gw_slot *s, const char *p, size_t n)
{
    return s->handed_off ? gw_out_frames(s, GW_FRAME_RAW, p, n) : gw_direct_body(s, p, n);
}

/* GIL not held. sendfile(2)s the range to the client, advancing *offset
 * and *count. Returns as gw_client_send. */
static int gw_client_sendfile(gw_slot *s, int fd, off_t *offset, int64_t *count)
{
    gw_mark_head_out(s);
    while (*count > 0) {
        size_t n = *count < GW_SENDFILE_MAX ? (size_t)*count : GW_SENDFILE_MAX;
        ssize_t w = sendfile(s->client_fd, fd, offset, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int room = gw_client_wait(s);
            if (room > 0)
                continue;
            return room == 0 ? 1 : -1;
        }
        if (w < 0)
            return -1;
        if (w == 0)
            return 0; /* the file is shorter than the range: what it had is sent */
        s->written += (uint64_t)w;
        *count -= w;
    }
    return 0;
}

/* GIL held, released while writing. Sends count bytes of fd from offset
 * with sendfile(2) straight to the client, after what is buffered; when the
 * socket would block, the rest of the range goes to the master as a
 * FrameFile, with the descriptor. */
int gw_direct_file(gw_slot *s, int fd, uint64_t offset, int64_t count)
{
    off_t at = (off_t)offset;
    int rc, err;
    s->body_bytes += (uint64_t)count;
    if (gw_direct_flush(s) < 0)
        return -1;
    if (s->handed_off)
        return gw_out_send_fd(s, fd, offset, count);
    Py_BEGIN_ALLOW_THREADS
    rc = gw_client_sendfile(s, fd, &at, &count);
    err = errno;
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return gw_client_gone(s, err);
    if (rc == 0)
        return 0;
    if (gw_hand_off(s, 0, NULL, 0) < 0)
        return -1;
    return gw_out_send_fd(s, fd, (uint64_t)at, count);
}

/* GIL held. The status code the head carried, 0 when none went out. */
static uint32_t gw_status_code(gw_slot *s)
{
    if (s->upgraded)
        return 101; /* whatever start_response the app calls after */
    if (!s->head_sent || s->status.len < 3)
        return 0;
    return (uint32_t)((s->status.data[0] - '0') * 100 + (s->status.data[1] - '0') * 10 + (s->status.data[2] - '0'));
}

/* GIL held, released while writing. Ends a direct response: writes what is
 * buffered, closes the worker's copy of the client's descriptor (the master
 * keeps its own, and the peer sees the end of a close-delimited body only
 * once both are closed) and stores the completion record in the request's
 * table entry, if it has one (gw_worker_requests.c); then, unless the
 * master reads it there, appends the FrameEnd carrying it
 * (wsgi.Completion) and then logvars, the log variables the app set (a
 * vars block, empty mostly). Returns the FrameEnd's flags. */
uint8_t gw_direct_finish(gw_slot *s, uint8_t end_flags, const gw_buf *logvars)
{
    int http = s->framing == GW_FRAMING_HTTP1;
    if (s->client_gone)
        end_flags = GW_FLAG_END_BROKEN;
    if (http && !s->upgraded && !s->client_gone && !s->broken && gw_http_end(s, end_flags == 0) < 0) {
        PyErr_Clear();
        end_flags = GW_FLAG_END_BROKEN;
    }
    if (!s->client_gone && !s->broken && gw_out_flush(s) < 0)
        PyErr_Clear();
    if (s->client_gone)
        end_flags = GW_FLAG_END_BROKEN;
    /* An upgraded connection carries the app's protocol: never another request. */
    int keep_alive = http && end_flags == 0 && s->http_keep_alive && !s->upgraded;
    close(s->client_fd);
    s->client_fd = -1;
    /* The FrameEnd goes in any case with the app's log variables, and when
     * the connection is not kept: the client sees its end only once the
     * master closes its own copy too, so the master must learn of the end
     * now; there is no next request to wake it. */
    int frame_follows = logvars->len > 0 || (http && !keep_alive);
    if (s->request_entry != NULL && gw_request_done(s->request_entry, s->id, gw_status_code(s), keep_alive,
                                                    end_flags != 0, frame_follows, s->head_fields, s->head_bytes,
                                                    s->body_bytes) == 0)
        return end_flags; /* the master did not wait: it reads the entry */
    /* The completion record, then the log variables the app set (none
     * mostly): room for both first, so the frame is always whole. */
    if (gw_buf_reserve(&s->out, GW_FRAME_HEADER_LEN + GW_COMPLETION_LEN + logvars->len) < 0 ||
        gw_out_frame(s, GW_FRAME_END, end_flags, GW_COMPLETION_LEN + logvars->len) < 0) {
        PyErr_Clear(); /* out of memory: the master sees the worker stall */
        return end_flags;
    }
    char *p = s->out.data + s->out.len;
    gw_put_u32(p, gw_status_code(s));
    gw_put_u32(p + 4, (keep_alive ? GW_COMPLETION_KEEP_ALIVE : 0) | s->head_fields << GW_COMPLETION_FIELDS_SHIFT);
    gw_put_u64(p + 8, s->head_bytes);
    gw_put_u64(p + 16, s->body_bytes);
    s->out.len += GW_COMPLETION_LEN;
    if (logvars->len > 0) {
        memcpy(s->out.data + s->out.len, logvars->data, logvars->len);
        s->out.len += logvars->len;
    }
    return end_flags;
}
