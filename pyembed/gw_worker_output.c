/*
 * Response output: frames are laid out in the slot's buffer and written to
 * the slot socket with the GIL released, so other slots run Python while one
 * waits on the socket. Large chunks skip the buffer and are written straight
 * from the bytes object. Sends use sendmsg with MSG_NOSIGNAL so a master that
 * went away shows up as EPIPE rather than a SIGPIPE.
 */
#include "gw.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Chunks at least this big are written from the bytes object, not copied. */
#define GW_DIRECT_MIN (256 << 10)

/* Chunks at least this big go to the master in a memfd, sent as a
 * FrameFile, instead of through the slot socket: the master then hands the
 * pages to the client with sendfile(2) and never copies them itself, where
 * a socket write would cost three copies and a wake-up per socket buffer.
 * Up to GW_MEMFD_MAX bytes of one response travel this way; past it, body
 * frames go on the socket again, and the master spools what a slow client
 * has not read to a file (server/response_spool.go), so a slow client
 * cannot make one response pin unbounded memory. */
#define GW_MEMFD_MIN (256 << 10)
#define GW_MEMFD_MAX (4 << 20)

static void gw_put_u16(char *p, uint32_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
}

void gw_put_u32(char *p, uint32_t v)
{
    gw_put_u16(p, v & 0xffff);
    gw_put_u16(p + 2, v >> 16);
}

void gw_put_u64(char *p, uint64_t v)
{
    gw_put_u32(p, (uint32_t)v);
    gw_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* GIL held. Makes room for n more bytes. */
int gw_buf_reserve(gw_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/* GIL held. */
int gw_buf_append(gw_buf *b, const void *p, size_t n)
{
    if (gw_buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* GIL held. Appends one vars-block field: a u16 length and the bytes. */
int gw_buf_append_var(gw_buf *b, const char *p, size_t n)
{
    if (n > GW_MAX_VAR_LEN) {
        PyErr_Format(PyExc_ValueError, "header field of %zu bytes is over the 65535 byte limit", n);
        return -1;
    }
    if (gw_buf_reserve(b, 2 + n) < 0)
        return -1;
    gw_put_u16(b->data + b->len, (uint32_t)n);
    memcpy(b->data + b->len + 2, p, n);
    b->len += 2 + n;
    return 0;
}

/* GIL: any. */
void gw_buf_free(gw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* GIL held. Appends a frame header for the current request. Its payload
 * must follow, or the header be taken back (out.len reset) when appending
 * the payload fails: the master would read the frames after a lone header
 * as its payload. */
int gw_out_frame(gw_slot *s, char kind, uint8_t flags, size_t len)
{
    if (gw_buf_reserve(&s->out, GW_FRAME_HEADER_LEN) < 0)
        return -1;
    char *h = s->out.data + s->out.len;
    h[0] = kind;
    h[1] = (char)flags;
    gw_put_u16(h + 2, 0);
    gw_put_u32(h + 4, s->id);
    gw_put_u32(h + 8, (uint32_t)len);
    s->out.len += GW_FRAME_HEADER_LEN;
    return 0;
}

/* GIL: any. Moves *iov and *n past the first w bytes a write took: the
 * vectors written whole are dropped, a partly written one is shortened. */
void gw_iov_advance(struct iovec **iov, int *n, size_t w)
{
    while (*n > 0 && w >= (*iov)->iov_len) {
        w -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + w;
        (*iov)->iov_len -= w;
    }
}

/* GIL not held. Writes every byte of iov, waiting when the socket is full.
 * Returns 0, or -1 with errno set. */
static int gw_send_iov(int fd, struct iovec *iov, int n, struct msghdr *first)
{
    while (n > 0) {
        struct msghdr m;
        if (first != NULL) {
            m = *first;
        } else {
            memset(&m, 0, sizeof m);
        }
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)n;
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                    return -1;
                continue;
            }
            return -1;
        }
        first = NULL; /* ancillary data travels once, with the first byte */
        gw_iov_advance(&iov, &n, (size_t)w);
    }
    return 0;
}

/* GIL not held. Writes the buffer and then extra; on failure marks the slot
 * broken. */
static int gw_send_with(gw_slot *s, const char *extra, size_t extra_len)
{
    struct iovec iov[2] = {
        {.iov_base = s->out.data, .iov_len = s->out.len},
        {.iov_base = (void *)extra, .iov_len = extra_len},
    };
    int rc = s->broken ? -1 : gw_send_iov(s->fd, iov, extra_len ? 2 : 1, NULL);
    s->out.len = 0;
    if (rc < 0 && !s->broken) {
        s->broken = 1;
        s->send_errno = errno;
    }
    return rc;
}

/* GIL not held. */
int gw_send_pending(gw_slot *s)
{
    if (s->out.len == 0)
        return s->broken ? -1 : 0;
    return gw_send_with(s, NULL, 0);
}

static void gw_raise_broken(gw_slot *s)
{
    errno = s->send_errno;
    PyErr_SetFromErrnoWithFilename(PyExc_ConnectionError, "gowsgi master");
}

/* GIL held, released while writing. */
int gw_out_flush(gw_slot *s)
{
    int rc;
    if (s->client_fd >= 0 && !s->handed_off)
        return gw_direct_flush(s);
    if (s->out.len == 0 && !s->broken)
        return 0;
    Py_BEGIN_ALLOW_THREADS
    rc = gw_send_pending(s);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        gw_raise_broken(s);
    return rc;
}

/* GIL not held. Returns a memfd holding the n bytes at p, or -1 when one
 * cannot be made (no memfd support, no descriptors, no memory), in which
 * case the bytes go through the socket instead. */
static int gw_memfd_of(const char *p, size_t n)
{
    int fd = memfd_create("gowsgi-body", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return fd;
}

/* GIL held. Sends the n bytes at p as a memfd when they are big enough and
 * the response is within its memfd budget. Returns 1 when sent, 0 when the
 * caller is to send them as body frames, -1 with an exception set. */
static int gw_out_body_memfd(gw_slot *s, const char *p, size_t n)
{
    if (n < GW_MEMFD_MIN || s->memfd_bytes + n > GW_MEMFD_MAX)
        return 0;
    int fd;
    Py_BEGIN_ALLOW_THREADS
    fd = gw_memfd_of(p, n);
    Py_END_ALLOW_THREADS
    if (fd < 0)
        return 0;
    int rc = gw_out_send_fd(s, fd, 0, (int64_t)n);
    close(fd);
    if (rc < 0)
        return -1;
    s->memfd_bytes += n;
    return 1;
}

/* GIL held. Appends body frames for p, or sends p as a memfd
 * (gw_out_body_memfd); a direct response's body goes to the client
 * (gw_worker_direct.c), or after a hand-off to the master as raw frames. */
int gw_out_body(gw_slot *s, const char *p, size_t n)
{
    if (s->upgraded)
        return gw_upgraded_body(s, p, n); /* the connection is the app's protocol now */
    if (s->client_fd >= 0 && s->framing == GW_FRAMING_HTTP1)
        return gw_http_body(s, p, n); /* counts HEAD's body for its Content-Length */
    if (s->is_head)
        return 0;
    if (s->client_fd >= 0) {
        s->body_bytes += n;
        return s->handed_off ? gw_out_frames(s, GW_FRAME_RAW, p, n) : gw_direct_body(s, p, n);
    }
    int sent = gw_out_body_memfd(s, p, n);
    if (sent != 0)
        return sent < 0 ? -1 : 0;
    return gw_out_frames(s, GW_FRAME_BODY, p, n);
}

/* GIL held, released while writing. Appends frames of kind carrying p,
 * splitting at the frame limit. A big chunk is written at once from p (the
 * caller keeps p's owner alive), which saves copying it into the buffer. */
int gw_out_frames(gw_slot *s, char kind, const char *p, size_t n)
{
    while (n > 0) {
        size_t chunk = n < GW_MAX_FRAME_PAYLOAD ? n : GW_MAX_FRAME_PAYLOAD;
        if (gw_out_frame(s, kind, 0, chunk) < 0)
            return -1;
        if (chunk >= GW_DIRECT_MIN) {
            int rc;
            Py_BEGIN_ALLOW_THREADS
            rc = gw_send_with(s, p, chunk);
            Py_END_ALLOW_THREADS
            if (rc < 0) {
                gw_raise_broken(s);
                return -1;
            }
        } else if (gw_buf_append(&s->out, p, chunk) < 0) {
            s->out.len -= GW_FRAME_HEADER_LEN;
            return -1;
        }
        p += chunk;
        n -= chunk;
    }
    return 0;
}

/* GIL held, released while writing. Writes what is buffered, then a
 * FrameFile carrying a duplicate of fd as SCM_RIGHTS data in its own
 * sendmsg, so the descriptor arrives with the frame's first byte. */
int gw_out_send_fd(gw_slot *s, int fd, uint64_t offset, int64_t count)
{
    if (gw_out_flush(s) < 0 || gw_buf_reserve(&s->out, GW_FRAME_HEADER_LEN + 16) < 0 ||
        gw_out_frame(s, GW_FRAME_FILE, 0, 16) < 0)
        return -1;
    gw_put_u64(s->out.data + s->out.len, offset);
    gw_put_u64(s->out.data + s->out.len + 8, (uint64_t)count);
    s->out.len += 16;

    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
        s->out.len -= GW_FRAME_HEADER_LEN + 16;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr m = {.msg_control = control.buf, .msg_controllen = sizeof control.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &dup_fd, sizeof(int));

    struct iovec iov = {.iov_base = s->out.data, .iov_len = s->out.len};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = gw_send_iov(s->fd, &iov, 1, &m);
    if (rc < 0) {
        s->broken = 1;
        s->send_errno = errno;
    }
    close(dup_fd);
    Py_END_ALLOW_THREADS
    s->out.len = 0;
    if (rc < 0)
        gw_raise_broken(s);
    return rc;
}
