/*
 * HTTP/1.x framing of a direct response (FramingHTTP1): the worker writes
 * the response to the client of the plain-HTTP socket itself, framed as
 * the master's own writer frames it (gateways/http1response.go, whose
 * frameResponse is the rule this mirrors, checked against it by
 * pyembed/http_framing_test.go): the status line, the app's headers,
 * Server and Date unless the app set them, Content-Length when the whole
 * body fits what is held back before the head, else chunked encoding on
 * HTTP/1.1 or a body ended by the close on HTTP/1.0, Connection when the
 * default does not hold, and no body for HEAD, 1xx, 204 and 304 (RFC 9110
 * section 15, RFC 9112 sections 6.3, 7.1 and 9.3). The bytes go through
 * gw_worker_direct.c, which writes them without blocking and hands the rest to
 * the master when the client reads slowly.
 */
#include "gw.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Body bytes held back before the head is written: a response that ends
 * within them goes out with a Content-Length even when the app set none
 * (gateways/http1response.go's heldBodyBytes). */
#define GW_HTTP_HELD 2048

/* GIL: any. Readies s for a response to a request with the master's
 * GW_HTTP_* flags. */
void gw_http_begin(gw_slot *s, uint8_t flags)
{
    s->http_flags = flags;
    s->http_status = 0;
    s->http_declared = -1;
    s->http_has_server = s->http_has_date = 0;
    s->http_committed = s->http_bodyless = s->http_chunked = s->http_keep_alive = 0;
    s->held.len = 0;
    s->http_counted = 0;
}

/* RFC 9110 sections 15.2, 15.3.5 and 15.4.5. */
static int gw_body_allowed(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

static int gw_is_field(const unsigned char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp((const char *)name, want, len) == 0;
}

/* Calls f for each (name, value) of a vars block; stops when f returns
 * non-zero and returns that. */
typedef int (*gw_field_fn)(gw_slot *s, const unsigned char *name, size_t name_len, const unsigned char *value,
                           size_t value_len);
static int gw_each_header(gw_slot *s, gw_field_fn f)
{
    for (size_t i = 0; i + 4 <= s->headers.len;) {
        const unsigned char *h = (const unsigned char *)s->headers.data + i;
        size_t name_len = (size_t)h[0] | (size_t)h[1] << 8;
        const unsigned char *v = h + 2 + name_len;
        size_t value_len = (size_t)v[0] | (size_t)v[1] << 8;
        int rc = f(s, h + 2, name_len, v + 2, value_len);
        if (rc != 0)
            return rc;
        i += 4 + name_len + value_len;
    }
    return 0;
}

/* Notes the fields the framing depends on. start_response has checked
 * every value, so a Content-Length is a decimal number; the first one
 * counts, and none for a status without a body. */
static int gw_note_field(gw_slot *s, const unsigned char *name, size_t name_len, const unsigned char *value,
                         size_t value_len)
{
    if (gw_is_field(name, name_len, "Content-Length")) {
        if (gw_body_allowed(s->http_status) && s->http_declared < 0) {
            int64_t n = 0;
            for (size_t i = 0; i < value_len; i++)
                n = n * 10 + (value[i] - '0');
            s->http_declared = n;
        }
    } else if (gw_is_field(name, name_len, "Server")) {
        s->http_has_server = 1;
    } else if (gw_is_field(name, name_len, "Date")) {
        s->http_has_date = 1;
    }
    return 0;
}

/* The most the fields gowsgi adds to a head take: Server, Date,
 * Content-Length, Connection, Transfer-Encoding and the line ends. */
#define GW_HTTP_ADDED 160

/* GIL held. The head is known: notes what the framing needs, and makes room
 * for the whole framed head now, while failing can still be answered with a
 * 500. The head itself waits in s->status and s->headers until
 * gw_http_commit. */
int gw_http_head(gw_slot *s)
{
    const char *st = s->status.data;
    /* A vars field's two length bytes stand for ": " or "\r\n". */
    if (gw_buf_reserve(&s->out, 9 + s->status.len + 2 + s->headers.len + GW_HTTP_ADDED) < 0)
        return -1;
    s->http_status = (st[0] - '0') * 100 + (st[1] - '0') * 10 + (st[2] - '0');
    gw_each_header(s, gw_note_field);
    s->head_sent = 1;
    return 0;
}

/* Appends one app header as it goes out: a repeated or bodyless-status
 * Content-Length, and a 304's Content-Type, are dropped, as the master's
 * writer drops them. */
static int gw_append_field(gw_slot *s, const unsigned char *name, size_t name_len, const unsigned char *value,
                           size_t value_len)
{
    if (gw_is_field(name, name_len, "Content-Length")) {
        if (!gw_body_allowed(s->http_status) || s->http_length_sent)
            return 0;
        s->http_length_sent = 1;
    } else if (s->http_status == 304 && gw_is_field(name, name_len, "Content-Type")) {
        return 0;
    }
    if (gw_buf_append(&s->out, name, name_len) < 0 || gw_buf_append(&s->out, ": ", 2) < 0 ||
        gw_buf_append(&s->out, value, value_len) < 0 || gw_buf_append(&s->out, "\r\n", 2) < 0)
        return -1;
    return 0;
}

/* Appends the current time in the IMF-fixdate form (RFC 9110 section
 * 5.6.7), formatted once a second per thread; names are spelled out so no
 * locale the app sets can change them. */
static int gw_append_date(gw_buf *b)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static __thread time_t cached_at = -1;
    static __thread char text[40];
    static __thread int text_len;
    time_t now = time(NULL);
    if (now != cached_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        text_len = snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                            months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_at = now;
    }
    return gw_buf_append(b, text, (size_t)text_len);
}

/* Decides the framing, as gateways/http1response.go's frameResponse does:
 * ended says the whole body is held. Returns the Content-Length to add, -1
 * for none, and sets the Connection value to send, NULL for none. */
static int64_t gw_http_frame(gw_slot *s, int ended, const char **connection)
{
    uint8_t p = s->http_flags;
    int http11 = (p & GW_HTTP_11) != 0, head = (p & GW_HTTP_HEAD) != 0, stopping = (p & GW_HTTP_STOPPING) != 0;
    int allowed = gw_body_allowed(s->http_status);
    int64_t add = -1, length = s->http_declared;
    /* After a request that asked to upgrade the master closes the connection. */
    s->http_keep_alive = !(p & (GW_HTTP_WANTS_CLOSE | GW_HTTP_UPGRADE)) && !stopping;
    s->http_bodyless = head || !allowed;
    if (ended && s->http_declared < 0 && allowed && (!head || s->http_counted > 0))
        add = length = (int64_t)s->http_counted;
    if (s->http_bodyless || length >= 0) {
    } else if (http11) {
        s->http_chunked = 1;
    } else {
        s->http_keep_alive = 0; /* the body ends with the connection */
    }
    *connection = NULL;
    if ((p & GW_HTTP_KEEP10) && !stopping && (head || length >= 0 || !allowed)) {
        s->http_keep_alive = 1;
        *connection = "keep-alive";
    }
    if (!s->http_keep_alive && http11)
        *connection = "close";
    return add;
}

/* GIL held. Writes body bytes after the head, in a chunk when chunked. */
static int gw_http_emit(gw_slot *s, const char *p, size_t n)
{
    if (n == 0 || s->http_bodyless)
        return 0;
    if (!s->http_chunked)
        return gw_direct_raw(s, p, n);
    char line[24];
    int k = snprintf(line, sizeof line, "%zx\r\n", n);
    if (gw_direct_raw(s, line, (size_t)k) < 0 || gw_direct_raw(s, p, n) < 0)
        return -1;
    return gw_direct_raw(s, "\r\n", 2);
}

/* GIL held. Decides the framing, puts the head in out (nothing has gone to
 * the client before it), then the body held so far. */
int gw_http_commit(gw_slot *s, int ended)
{
    const char *connection;
    char number[24];
    int64_t add = gw_http_frame(s, ended, &connection);
    size_t mark = s->out.len;
    const char *version = (s->http_flags & GW_HTTP_11) ? "HTTP/1.1 " : "HTTP/1.0 ";
    s->http_length_sent = 0;
    int rc = gw_buf_append(&s->out, version, 9) < 0 || gw_buf_append(&s->out, s->status.data, s->status.len) < 0 ||
             gw_buf_append(&s->out, "\r\n", 2) < 0;
    if (!rc)
        rc = gw_each_header(s, gw_append_field);
    if (!rc && !s->http_has_server)
        rc = gw_buf_append(&s->out, "Server: gowsgi\r\n", 16);
    if (!rc && !s->http_has_date)
        rc = gw_buf_append(&s->out, "Date: ", 6) < 0 || gw_append_date(&s->out) < 0 || gw_buf_append(&s->out, "\r\n", 2) < 0;
    if (!rc && add >= 0) {
        int k = snprintf(number, sizeof number, "%lld", (long long)add);
        rc = gw_buf_append(&s->out, "Content-Length: ", 16) < 0 || gw_buf_append(&s->out, number, (size_t)k) < 0 ||
             gw_buf_append(&s->out, "\r\n", 2) < 0;
    }
    if (!rc && connection != NULL)
        rc = gw_buf_append(&s->out, "Connection: ", 12) < 0 || gw_buf_append(&s->out, connection, strlen(connection)) < 0 ||
             gw_buf_append(&s->out, "\r\n", 2) < 0;
    if (!rc && s->http_chunked)
        rc = gw_buf_append(&s->out, "Transfer-Encoding: chunked\r\n", 28);
    if (!rc)
        rc = gw_buf_append(&s->out, "\r\n", 2);
    if (rc) {
        s->out.len = mark;
        return -1;
    }
    s->head_bytes = s->out.len - mark;
    s->head_fields = gw_head_fields(s->out.data + mark, s->head_bytes);
    s->http_committed = 1;
    rc = gw_http_emit(s, s->held.data, s->held.len);
    s->held.len = 0;
    return rc;
}

/* GIL held. Counts n body bytes, refusing a body the status does not allow
 * and one longer than the app's Content-Length. */
static int gw_http_count(gw_slot *s, uint64_t n)
{
    if (!gw_body_allowed(s->http_status)) {
        PyErr_Format(PyExc_ValueError, "a %d response has no body (RFC 9110 section 15), but the app sent body bytes",
                     s->http_status);
        return -1;
    }
    s->http_counted += n;
    if (s->http_declared >= 0 && s->http_counted > (uint64_t)s->http_declared) {
        PyErr_Format(PyExc_ValueError, "the app sent more body than its Content-Length of %lld bytes",
                     (long long)s->http_declared);
        return -1;
    }
    if (!(s->http_flags & GW_HTTP_HEAD))
        s->body_bytes += n;
    return 0;
}

/* GIL held, released while writing. A chunk of the body: held back while
 * the head is not out and the held bytes fit GW_HTTP_HELD. */
int gw_http_body(gw_slot *s, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (gw_http_count(s, n) < 0)
        return -1;
    if (!s->http_committed) {
        if (s->http_counted <= GW_HTTP_HELD)
            return (s->http_flags & GW_HTTP_HEAD) ? 0 : gw_buf_append(&s->held, p, n);
        if (gw_http_commit(s, 0) < 0)
            return -1;
    }
    return gw_http_emit(s, p, n);
}

/* GIL held, released while writing. count bytes of fd from offset, after
 * the head, with sendfile(2) (gw_direct_file). */
int gw_http_file(gw_slot *s, int fd, uint64_t offset, int64_t count)
{
    if (gw_http_count(s, (uint64_t)count) < 0)
        return -1;
    if (!s->http_committed && gw_http_commit(s, 0) < 0)
        return -1;
    if (s->http_bodyless)
        return 0;
    s->body_bytes -= (uint64_t)count; /* gw_direct_file counts them again */
    if (s->http_chunked) {
        char line[24];
        int k = snprintf(line, sizeof line, "%llx\r\n", (long long)count);
        if (gw_direct_raw(s, line, (size_t)k) < 0 || gw_direct_file(s, fd, offset, count) < 0)
            return -1;
        return gw_direct_raw(s, "\r\n", 2);
    }
    return gw_direct_file(s, fd, offset, count);
}

/* GIL held, released while writing. Ends the response: whole, with its
 * head and last chunk; else (the app failed after its head) only what it
 * gave, so closing the connection tells the client it is cut. The
 * connection stays open only after a whole response that framing allows
 * to and that is not shorter than its Content-Length. */
int gw_http_end(gw_slot *s, int whole)
{
    if (!s->head_sent)
        return 0;
    if (!s->http_committed && gw_http_commit(s, whole) < 0)
        return -1;
    if (!whole) {
        s->http_keep_alive = 0;
        return 0;
    }
    if (s->http_chunked && gw_direct_raw(s, "0\r\n\r\n", 5) < 0)
        return -1;
    if (s->http_declared >= 0 && !s->http_bodyless && s->http_counted != (uint64_t)s->http_declared)
        s->http_keep_alive = 0;
    return 0;
}
