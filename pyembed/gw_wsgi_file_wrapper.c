/*
 * wsgi.file_wrapper (PEP 3333, "Optional Platform-Specific File Handling"):
 * an iterable of a file-like object's blocks, which gw_try_send_file turns
 * into one FrameFile when it wraps a regular file, so the master hands the
 * file to the client with sendfile(2) instead of the worker copying it.
 */
#include "gw.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    PyObject *filelike;
    Py_ssize_t blksize;
} gw_file_wrapper;

static PyObject *gw_file_wrapper_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:file_wrapper", kwlist, &filelike, &blksize))
        return NULL;
    if (blksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "file_wrapper() blksize must be positive");
        return NULL;
    }
    gw_file_wrapper *w = (gw_file_wrapper *)type->tp_alloc(type, 0);
    if (w == NULL)
        return NULL;
    Py_INCREF(filelike);
    w->filelike = filelike;
    w->blksize = blksize;
    return (PyObject *)w;
}

static int gw_file_wrapper_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((gw_file_wrapper *)self)->filelike);
    return 0;
}

static int gw_file_wrapper_clear(PyObject *self)
{
    Py_CLEAR(((gw_file_wrapper *)self)->filelike);
    return 0;
}

static void gw_file_wrapper_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    gw_file_wrapper_clear(self);
    Py_TYPE(self)->tp_free(self);
}

/* Reads the next block; an empty read ends the iteration. */
static PyObject *gw_file_wrapper_next(PyObject *self)
{
    gw_file_wrapper *w = (gw_file_wrapper *)self;
    if (w->filelike == NULL)
        return NULL;
    PyObject *block = PyObject_CallMethod(w->filelike, "read", "n", w->blksize);
    if (block == NULL)
        return NULL;
    Py_ssize_t len = PyObject_Length(block);
    if (len <= 0) { /* len < 0: its exception ends the iteration as an error */
        Py_DECREF(block);
        return NULL;
    }
    return block;
}

static PyObject *gw_file_wrapper_close(PyObject *self, PyObject *unused)
{
    gw_file_wrapper *w = (gw_file_wrapper *)self;
    if (w->filelike != NULL && PyObject_HasAttrString(w->filelike, "close")) {
        PyObject *r = PyObject_CallMethod(w->filelike, "close", NULL);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

static PyMethodDef gw_file_wrapper_methods[] = {
    {"close", gw_file_wrapper_close, METH_NOARGS, "close(): close the wrapped file-like object."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject gw_file_wrapper_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gowsgi.file_wrapper",
    .tp_basicsize = sizeof(gw_file_wrapper),
    .tp_dealloc = gw_file_wrapper_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "file_wrapper(filelike, blksize=8192): iterate a file in blocks; PEP 3333 wsgi.file_wrapper.",
    .tp_traverse = gw_file_wrapper_traverse,
    .tp_clear = gw_file_wrapper_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = gw_file_wrapper_next,
    .tp_methods = gw_file_wrapper_methods,
    .tp_new = gw_file_wrapper_new,
};

/* GIL held. A duplicate of the descriptor of a wrapped regular file (the
 * caller closes it), and the file's position and size; 0 when the filelike
 * is not one (then the response is iterated instead). The file object's own
 * number is only borrowed: Python code run before the file is sent (tell()
 * here, another thread while the output is written with the GIL released)
 * may close it and give the number to another file, which would then go to
 * the client. The duplicate holds on to this one. */
static int gw_regular_file(PyObject *filelike, int *fd, int64_t *offset, int64_t *size)
{
    struct stat st;
    *fd = -1;
    PyObject *r = PyObject_CallMethod(filelike, "fileno", NULL);
    if (r == NULL)
        goto not_a_file;
    long borrowed = PyLong_AsLong(r);
    Py_DECREF(r);
    if (PyErr_Occurred() || borrowed < 0 || borrowed > INT_MAX ||
        (*fd = fcntl((int)borrowed, F_DUPFD_CLOEXEC, 0)) < 0 || fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode))
        goto not_a_file;
    r = PyObject_CallMethod(filelike, "tell", NULL);
    if (r == NULL)
        goto not_a_file;
    *offset = PyLong_AsLongLong(r);
    Py_DECREF(r);
    if (PyErr_Occurred() || *offset < 0)
        goto not_a_file;
    *size = (int64_t)st.st_size;
    return 1;
not_a_file:
    if (*fd >= 0)
        close(*fd);
    PyErr_Clear();
    return 0;
}

/* GIL held, released while writing. Sends the range to the client or the
 * master, as the request asked. */
static int gw_send_file_range(gw_slot *s, int fd, uint64_t offset, int64_t count)
{
    if (s->client_fd < 0)
        return gw_out_send_fd(s, fd, offset, count);
    if (s->framing == GW_FRAMING_HTTP1)
        return gw_http_file(s, fd, offset, count);
    return gw_direct_file(s, fd, offset, count);
}

/* GIL held. Sends a file_wrapper around a regular file as a FrameFile.
 * Returns 1 when sent, 0 when obj must be iterated instead, -1 on error. */
int gw_try_send_file(gw_slot *s, PyObject *obj)
{
    int fd, rc = -1;
    int64_t offset, size, count;
    if (Py_TYPE(obj) != &gw_file_wrapper_type || ((gw_file_wrapper *)obj)->filelike == NULL ||
        !gw_regular_file(((gw_file_wrapper *)obj)->filelike, &fd, &offset, &size))
        return 0;
    if (!s->started) {
        PyErr_SetString(PyExc_RuntimeError, "the app returned wsgi.file_wrapper without calling start_response()");
        goto done;
    }
    if (s->content_length >= 0) {
        count = s->content_length;
    } else {
        /* Without a length the master would have to chunk; with one it can
         * hand the whole range to sendfile. */
        char digits[24];
        count = size > offset ? size - offset : 0;
        int n = snprintf(digits, sizeof digits, "%lld", (long long)count);
        if (gw_buf_append_var(&s->headers, "Content-Length", 14) < 0 ||
            gw_buf_append_var(&s->headers, digits, (size_t)n) < 0)
            goto done;
        s->content_length = count;
    }
    if (gw_emit_head(s) < 0)
        goto done;
    if (!s->is_head && count > 0 &&
        gw_send_file_range(s, fd, (uint64_t)offset, count) < 0)
        goto done;
    rc = 1;
done:
    close(fd);
    return rc;
}
