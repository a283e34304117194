/*
 * The callables an app talks back through: start_response and the write
 * callable it returns (PEP 3333, "The start_response() Callable"), with the
 * checks of status and headers. wsgi.file_wrapper is in gw_wsgi_file_wrapper.c.
 */
#include "gw.h"

#include <limits.h>
#include <strings.h>

/* start_response and the write callable it returns. A slot makes one pair
 * and hands it to request after request while the app keeps neither (see
 * gw_responder_begin); between requests, slot is NULL. Neither type takes
 * weak references, so a reference count tells whether the app kept one. */
typedef struct {
    PyObject_HEAD
    gw_slot *slot; /* NULL outside the request it serves */
} gw_responder;

typedef struct {
    PyObject_HEAD
    gw_slot *slot; /* as the responder's */
    vectorcallfunc vectorcall;
} gw_writer;

/* Hop-by-hop headers, which PEP 3333 ("Other HTTP Features") leaves to the
 * server (RFC 9110 section 7.6.1). */
static const char *const gw_hop_by_hop[] = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailers", "transfer-encoding", "upgrade", NULL,
};

/* GIL held. A str's latin-1 bytes without copying: a str whose characters
 * all fit one byte stores exactly its latin-1 encoding. */
static int gw_latin1(PyObject *str, const char *what, const char **p, Py_ssize_t *n)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(str) < 0)
        return -1;
#endif
    if (PyUnicode_KIND(str) != PyUnicode_1BYTE_KIND) {
        PyErr_Format(PyExc_ValueError,
                     "%s %R is not latin-1 encodable, as PEP 3333 requires "
                     "(encode other text, e.g. with RFC 2047 or percent-encoding)",
                     what, str);
        return -1;
    }
    *p = (const char *)PyUnicode_1BYTE_DATA(str);
    *n = PyUnicode_GET_LENGTH(str);
    return 0;
}

/* A control character other than HTAB: what a reason phrase and a field
 * value may not contain (RFC 9112 section 4, RFC 9110 section 5.5); bytes
 * 0x80-0xFF (obs-text) are allowed. wsgi.CheckStatus and CheckHeader apply
 * the same rules, and a test runs one table through both. */
static int gw_has_control(const char *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 1;
    }
    return 0;
}

/* RFC 9110 section 5.6.2 token characters. */
static int gw_is_token(const char *p, Py_ssize_t n)
{
    if (n == 0)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            continue;
        if (c == 0 || strchr("!#$%&'*+-.^_`|~", c) == NULL)
            return 0;
    }
    return 1;
}

static int gw_is_hop_by_hop(const char *p, Py_ssize_t n)
{
    for (int i = 0; gw_hop_by_hop[i] != NULL; i++) {
        if ((size_t)n == strlen(gw_hop_by_hop[i]) && strncasecmp(p, gw_hop_by_hop[i], (size_t)n) == 0)
            return 1;
    }
    return 0;
}

/* GIL held. PEP 3333's "a status code and a reason phrase, separated by a
 * single space", as RFC 9112 section 4 spells it: three digits (100 to 999,
 * no leading zero), SP, and a possibly empty reason phrase of HTAB, SP,
 * VCHAR and obs-text. */
static int gw_check_status(PyObject *status, const char **p, Py_ssize_t *n)
{
    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError, "start_response() status must be a str such as '200 OK', not %.100s",
                     Py_TYPE(status)->tp_name);
        return -1;
    }
    if (gw_latin1(status, "status", p, n) < 0)
        return -1;
    const char *s = *p;
    if (*n < 4 || *n > GW_MAX_VAR_LEN || s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
        s[2] < '0' || s[2] > '9' || s[3] != ' ' || gw_has_control(s + 4, *n - 4)) {
        PyErr_Format(PyExc_ValueError,
                     "start_response() status must be a three-digit code, a space and a reason "
                     "phrase, such as '200 OK'; got %R",
                     status);
        return -1;
    }
    return 0;
}

static int gw_parse_content_length(const char *p, Py_ssize_t n, int64_t *out)
{
    int64_t v = 0;
    if (n == 0 || n > 18)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* GIL held. A head goes to the master in one frame, so it is bounded by a
 * frame's payload limit (GW_MAX_FRAME_PAYLOAD, which a test checks against
 * wsgi.MaxFramePayload). Refused here, the app gets a 500 and a log line
 * naming its headers; sent, the master would refuse the frame, drop the
 * worker and answer 502. */
static int gw_check_head_len(size_t status_len, size_t headers_len)
{
    if (2 + status_len + headers_len <= GW_MAX_FRAME_PAYLOAD)
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "start_response() status and headers are over the %d byte limit of a response head; "
                 "send large data in the body",
                 GW_MAX_FRAME_PAYLOAD);
    return -1;
}

/* GIL held. Checks one (name, value) header and appends it to b. */
static int gw_add_header(gw_buf *b, PyObject *item, int64_t *content_length)
{
    const char *name, *value;
    Py_ssize_t name_len, value_len;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_Format(PyExc_TypeError, "start_response() headers must be (name, value) tuples, not %R", item);
        return -1;
    }
    PyObject *n = PyTuple_GET_ITEM(item, 0), *v = PyTuple_GET_ITEM(item, 1);
    if (!PyUnicode_Check(n) || !PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "start_response() header names and values must be str, got %R", item);
        return -1;
    }
    if (gw_latin1(n, "header name", &name, &name_len) < 0 || gw_latin1(v, "header value", &value, &value_len) < 0)
        return -1;
    if (!gw_is_token(name, name_len)) {
        PyErr_Format(PyExc_ValueError, "header name %R is not a valid HTTP token", n);
        return -1;
    }
    if (gw_is_hop_by_hop(name, name_len)) {
        PyErr_Format(PyExc_ValueError,
                     "hop-by-hop header %R is not allowed from an application (PEP 3333, "
                     "Other HTTP Features); leave it to the server",
                     n);
        return -1;
    }
    if (gw_has_control(value, value_len)) {
        PyErr_Format(PyExc_ValueError, "header %R has a control character (such as CR or LF) in its value", n);
        return -1;
    }
    if (name_len == 14 && strncasecmp(name, "content-length", 14) == 0 &&
        gw_parse_content_length(value, value_len, content_length) < 0) {
        PyErr_Format(PyExc_ValueError, "Content-Length must be a non-negative decimal number, got %R", v);
        return -1;
    }
    if (gw_buf_append_var(b, name, (size_t)name_len) < 0 || gw_buf_append_var(b, value, (size_t)value_len) < 0)
        return -1;
    return 0;
}

/* GIL held. Re-raises the exception in exc_info, as PEP 3333 asks once the
 * head has gone out. Always returns NULL. */
static PyObject *gw_reraise(PyObject *exc_info)
{
    if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "start_response() exc_info must be a (type, value, traceback) tuple as sys.exc_info() returns");
        return NULL;
    }
    PyObject *type = PyTuple_GET_ITEM(exc_info, 0), *value = PyTuple_GET_ITEM(exc_info, 1),
             *tb = PyTuple_GET_ITEM(exc_info, 2);
    Py_INCREF(type);
    Py_INCREF(value);
    if (tb == Py_None)
        tb = NULL;
    Py_XINCREF(tb);
    PyErr_Restore(type, value, tb);
    return NULL;
}

/* start_response(status, headers, exc_info=None). GIL held. */
static PyObject *gw_start_response(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"status", "headers", "exc_info", NULL};
    PyObject *status, *headers, *exc_info = Py_None;
    gw_slot *s = ((gw_responder *)self)->slot;
    const char *status_p;
    Py_ssize_t status_n;
    int64_t content_length = -1;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", kwlist, &status, &headers, &exc_info))
        return NULL;
    if (s == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after the response ended");
        return NULL;
    }
    if (exc_info != Py_None && s->head_sent)
        return gw_reraise(exc_info);
    if (exc_info == Py_None && s->started) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called more than once without exc_info");
        return NULL;
    }
    if (gw_check_status(status, &status_p, &status_n) < 0)
        return NULL;
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError, "start_response() headers must be a list of (name, value) tuples, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return NULL;
    }
    /* Build into scratch so a rejected call leaves an earlier head intact;
     * the size is checked as it grows, since a list that repeats one long
     * header costs the app little memory and scratch a lot. */
    s->scratch.len = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        if (gw_add_header(&s->scratch, PyList_GET_ITEM(headers, i), &content_length) < 0 ||
            gw_check_head_len((size_t)status_n, s->scratch.len) < 0)
            return NULL;
    }
    s->status.len = 0;
    if (gw_buf_append(&s->status, status_p, (size_t)status_n) < 0)
        return NULL;
    gw_buf built = s->scratch;
    s->scratch = s->headers;
    s->headers = built;
    s->content_length = content_length;
    s->started = 1;
    Py_INCREF(s->write);
    return s->write;
}

/* GIL held. Appends the pending head as a FrameHead, once. On failure the
 * output is left as it was: a frame header without its payload would make
 * the master read the frames after it as that payload. */
int gw_emit_head(gw_slot *s)
{
    if (s->head_sent)
        return 0;
    if (s->client_fd >= 0)
        return gw_direct_head(s);
    size_t mark = s->out.len;
    if (gw_check_head_len(s->status.len, s->headers.len) < 0 ||
        gw_out_frame(s, GW_FRAME_HEAD, 0, 2 + s->status.len + s->headers.len) < 0 ||
        gw_buf_append_var(&s->out, s->status.data, s->status.len) < 0 ||
        gw_buf_append(&s->out, s->headers.data, s->headers.len) < 0) {
        s->out.len = mark;
        return -1;
    }
    s->head_sent = 1;
    return 0;
}

/* write(data): PEP 3333 says its data must be transmitted before it
 * returns, so it flushes. GIL held. */
static PyObject *gw_write(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    gw_slot *s = ((gw_writer *)self)->slot;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "write() takes exactly one bytes argument");
        return NULL;
    }
    PyObject *data = args[0];
    if (s == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after the response ended");
        return NULL;
    }
    if (!s->started) {
        PyErr_SetString(PyExc_RuntimeError, "write() called before start_response()");
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "write() argument must be bytes, not %.100s", Py_TYPE(data)->tp_name);
        return NULL;
    }
    if (PyBytes_GET_SIZE(data) > 0 &&
        (gw_emit_head(s) < 0 || gw_out_body(s, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data)) < 0 ||
         gw_out_flush(s) < 0))
        return NULL;
    Py_RETURN_NONE;
}

PyTypeObject gw_responder_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gowsgi.start_response",
    .tp_basicsize = sizeof(gw_responder),
    .tp_dealloc = (destructor)PyObject_Free,
    .tp_call = gw_start_response,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "start_response(status, headers, exc_info=None), as PEP 3333 defines it.",
};

PyTypeObject gw_writer_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gowsgi.write",
    .tp_basicsize = sizeof(gw_writer),
    .tp_dealloc = (destructor)PyObject_Free,
    .tp_vectorcall_offset = offsetof(gw_writer, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "write(data): send bytes to the client now (PEP 3333).",
};

/* GIL held. Drops the slot's responder and writer. */
void gw_responder_clear(gw_slot *s)
{
    Py_CLEAR(s->responder);
    Py_CLEAR(s->write);
}

/* GIL held. The pair that kept no reference of the app's: the slot's one
 * and, while an app keeps the responder or its writer (in a global, a
 * closure, a traceback), nobody else's. */
static int gw_responder_unshared(gw_slot *s)
{
    return s->responder != NULL && Py_REFCNT(s->responder) == 1 && Py_REFCNT(s->write) == 1;
}

/* GIL held. Returns the slot's start_response (borrowed), tied to the
 * request about to run. One the app kept from an earlier request stays
 * detached, so it cannot touch this one (gw_responder_end): the slot then
 * makes a new pair. */
PyObject *gw_responder_begin(gw_slot *s)
{
    if (!gw_responder_unshared(s)) {
        gw_responder_clear(s);
        s->responder = (PyObject *)PyObject_New(gw_responder, &gw_responder_type);
        gw_writer *w = PyObject_New(gw_writer, &gw_writer_type);
        if (w != NULL)
            w->vectorcall = gw_write;
        s->write = (PyObject *)w;
        if (s->responder == NULL || s->write == NULL) {
            gw_responder_clear(s);
            return NULL;
        }
        s->responders_made++;
    }
    ((gw_responder *)s->responder)->slot = s;
    ((gw_writer *)s->write)->slot = s;
    return s->responder;
}

/* GIL held. Cuts the responder and writer off from the slot once the
 * request has ended, so an app that kept them cannot touch a later
 * request. */
void gw_responder_end(gw_slot *s)
{
    if (s->responder != NULL) {
        ((gw_responder *)s->responder)->slot = NULL;
        ((gw_writer *)s->write)->slot = NULL;
    }
}
