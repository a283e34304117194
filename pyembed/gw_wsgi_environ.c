/*
 * The environ dict (PEP 3333, "environ Variables"), built in one pass: a
 * copy of a template holding the keys that never change, then every CGI
 * variable of the request's vars block, then wsgi.input. Keys come from a
 * cache of interned str objects so the usual ones are never decoded twice;
 * values are decoded as latin-1, which PEP 3333 ("Unicode Issues") asks for.
 */
#include "gw.h"

#include <string.h>
#include <unistd.h>

/* Key cache: open addressing, at most GW_KEYS_MAX entries so a client that
 * invents header names cannot grow it without bound. */
#define GW_KEYS_SIZE 1024
#define GW_KEYS_MAX 512

static PyObject *gw_keys[GW_KEYS_SIZE];
static int gw_keys_count;
static PyObject *gw_template;   /* the constant keys */
static PyObject *gw_bytes_io;   /* io.BytesIO */
static PyObject *gw_io_open;    /* io.open */
static PyObject *gw_input_key;  /* "wsgi.input" */

static uint32_t gw_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

/* GIL held. Returns a new reference to the str for key p[:n]. */
static PyObject *gw_key(const char *p, size_t n)
{
    uint32_t i = gw_hash(p, n) & (GW_KEYS_SIZE - 1);
    for (PyObject *k; (k = gw_keys[i]) != NULL; i = (i + 1) & (GW_KEYS_SIZE - 1)) {
        if ((size_t)PyUnicode_GET_LENGTH(k) == n && memcmp(PyUnicode_1BYTE_DATA(k), p, n) == 0) {
            Py_INCREF(k);
            return k;
        }
    }
    PyObject *k = PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
    if (k != NULL && gw_keys_count < GW_KEYS_MAX) {
        PyUnicode_InternInPlace(&k);
        Py_INCREF(k);
        gw_keys[i] = k;
        gw_keys_count++;
    }
    return k;
}

static int gw_set(PyObject *d, const char *key, PyObject *value)
{
    if (value == NULL)
        return -1;
    int rc = PyDict_SetItemString(d, key, value);
    Py_DECREF(value);
    return rc;
}

/* GIL held. Builds the template and caches the io callables. A NULL
 * file_wrapper leaves wsgi.file_wrapper out, as uWSGI's
 * --wsgi-disable-file-wrapper does. */
int gw_environ_setup(int multithread, int multiprocess, int run_once, PyObject *file_wrapper)
{
    static const char *const common[] = {
        "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
        "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR",
        "REMOTE_PORT", "REQUEST_URI", "wsgi.url_scheme", "HTTP_HOST", "HTTP_USER_AGENT",
        "HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING", "HTTP_ACCEPT_LANGUAGE", "HTTP_CONNECTION",
        "HTTP_COOKIE", "HTTP_REFERER", "HTTP_CACHE_CONTROL", NULL,
    };
    PyObject *io = PyImport_ImportModule("io");
    if (io == NULL)
        return -1;
    gw_bytes_io = PyObject_GetAttrString(io, "BytesIO");
    gw_io_open = PyObject_GetAttrString(io, "open");
    Py_DECREF(io);
    gw_input_key = PyUnicode_InternFromString("wsgi.input");
    gw_template = PyDict_New();
    if (gw_bytes_io == NULL || gw_io_open == NULL || gw_input_key == NULL || gw_template == NULL)
        return -1;
    for (int i = 0; common[i] != NULL; i++) {
        PyObject *k = gw_key(common[i], strlen(common[i]));
        if (k == NULL)
            return -1;
        Py_DECREF(k);
    }
    PyObject *errors = PySys_GetObject("stderr"); /* borrowed */
    if (errors == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "sys.stderr is missing, so wsgi.errors has nowhere to go");
        return -1;
    }
    Py_INCREF(errors);
    Py_XINCREF(file_wrapper);
    if (gw_set(gw_template, "wsgi.version", Py_BuildValue("(ii)", 1, 0)) < 0 ||
        gw_set(gw_template, "wsgi.multithread", PyBool_FromLong(multithread)) < 0 ||
        gw_set(gw_template, "wsgi.multiprocess", PyBool_FromLong(multiprocess)) < 0 ||
        gw_set(gw_template, "wsgi.run_once", PyBool_FromLong(run_once)) < 0 ||
        gw_set(gw_template, "wsgi.input_terminated", PyBool_FromLong(1)) < 0 ||
        gw_set(gw_template, "wsgi.errors", errors) < 0 ||
        (file_wrapper != NULL && gw_set(gw_template, "wsgi.file_wrapper", file_wrapper) < 0) ||
        gw_set(gw_template, "SCRIPT_NAME", PyUnicode_FromString("")) < 0 || gw_uwsgi_environ(gw_template) < 0)
        return -1;
    return 0;
}

static uint32_t gw_u16(const char *p)
{
    return (uint32_t)(unsigned char)p[0] | (uint32_t)(unsigned char)p[1] << 8;
}

/* GIL held. Cuts one length-prefixed field off a vars block. */
static int gw_cut_var(const char **p, const char *end, const char **field, size_t *n)
{
    if (end - *p < 2 || (size_t)(end - *p - 2) < gw_u16(*p)) {
        PyErr_SetString(PyExc_ValueError, "wsgi: request vars block overruns its length");
        return -1;
    }
    *n = gw_u16(*p);
    *field = *p + 2;
    *p += 2 + *n;
    return 0;
}

/* GIL held. Notes the variables the worker itself needs: the method (HEAD
 * sends no body), SCRIPT_NAME and PATH_INFO (which choose the app, see
 * gw_route) and, for log lines, the method and path. */
static void gw_note_var(gw_slot *s, const char *k, size_t kn, const char *v, size_t vn)
{
    if (kn == 14 && memcmp(k, "REQUEST_METHOD", 14) == 0) {
        s->method = v;
        s->method_len = vn;
        s->is_head = vn == 4 && memcmp(v, "HEAD", 4) == 0;
    } else if (kn == 9 && memcmp(k, "PATH_INFO", 9) == 0) {
        s->path = s->path_info = v;
        s->path_len = s->path_info_len = vn;
    } else if (kn == 11 && memcmp(k, "SCRIPT_NAME", 11) == 0) {
        s->script_name = v;
        s->script_name_len = vn;
    }
}

/* GIL held. The wsgi.input stream: the inline body in a BytesIO, or the
 * spool file whose descriptor came with the request (*body_fd, not -1),
 * read from its start; both end at the body's end, so a read never blocks
 * past it (PEP 3333, "Input and Error Streams"). The file object takes the
 * descriptor over: *body_fd is then -1. */
static PyObject *gw_input_new(const char *body, size_t body_len, int *body_fd)
{
    if (*body_fd >= 0) {
        if (lseek(*body_fd, 0, SEEK_SET) < 0)
            return PyErr_SetFromErrno(PyExc_OSError);
        PyObject *f = PyObject_CallFunction(gw_io_open, "is", *body_fd, "rb");
        if (f != NULL)
            *body_fd = -1;
        return f;
    }
    if (body_len == 0)
        return PyObject_CallNoArgs(gw_bytes_io);
    PyObject *b = PyBytes_FromStringAndSize(body, (Py_ssize_t)body_len);
    if (b == NULL)
        return NULL;
    PyObject *f = PyObject_CallOneArg(gw_bytes_io, b);
    Py_DECREF(b);
    return f;
}

/* GIL held. Returns a new environ for the request; *input receives a new
 * reference to its wsgi.input so the caller can close a spool file, whose
 * descriptor *body_fd (-1 for an inline body) it takes over. */
PyObject *gw_environ_new(gw_slot *s, const char *vars, size_t vars_len, const char *body, size_t body_len,
                         int *body_fd, PyObject **input)
{
    const char *p = vars, *end = vars + vars_len;
    PyObject *environ = PyDict_Copy(gw_template);
    *input = NULL;
    if (environ == NULL)
        return NULL;
    while (p < end) {
        const char *k, *v;
        size_t kn, vn;
        if (gw_cut_var(&p, end, &k, &kn) < 0 || gw_cut_var(&p, end, &v, &vn) < 0)
            goto error;
        gw_note_var(s, k, kn, v, vn);
        PyObject *key = gw_key(k, kn);
        PyObject *value = key ? PyUnicode_DecodeLatin1(v, (Py_ssize_t)vn, NULL) : NULL;
        int rc = value ? PyDict_SetItem(environ, key, value) : -1;
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (rc < 0)
            goto error;
    }
    *input = gw_input_new(body, body_len, body_fd);
    if (*input == NULL || PyDict_SetItem(environ, gw_input_key, *input) < 0)
        goto error;
    return environ;
error:
    Py_CLEAR(*input);
    Py_DECREF(environ);
    return NULL;
}
