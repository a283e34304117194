/*
 * Serving one request on a slot, in one call from Go: build environ, call
 * the app, turn what it returns into response frames (PEP 3333, "The
 * Application/Framework Side" and "Buffering and Streaming"), call close()
 * on every path, and keep the slot's scoreboard record up to date (and the
 * worker's line of the shared area's worker table, for uwsgi.workers()).
 * The end frame carries the log variables the app set, if any.
 */
#include "gw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char gw_error_body[] = "Internal Server Error";
static const char gw_not_found_body[] = "Not Found";

/* An output buffer grown past this is freed once written out. */
#define GW_OUT_KEEP (4 << 20)

/* GIL not held. Creates the slot and its Python thread state on the calling
 * thread, which must stay this slot's thread for life. Ensure then
 * SaveThread keeps the thread state registered with PyGILState, so app code
 * that calls PyGILState_Ensure on this thread finds it. */
gw_slot *gw_slot_new(int fd, uint8_t *record)
{
    gw_slot *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->fd = fd;
    s->client_fd = -1;
    s->record = record;
    gw_uwsgi_bind_slot(s);
    s->gstate = PyGILState_Ensure();
    s->tstate = PyEval_SaveThread();
    return s;
}

/* GIL not held. Writes what is still buffered and frees the slot; must run
 * on the slot's thread. */
void gw_slot_close(gw_slot *s)
{
    gw_send_pending(s);
    PyEval_RestoreThread(s->tstate);
    Py_CLEAR(s->logvars);
    gw_responder_clear(s);
    PyGILState_Release(s->gstate);
    gw_uwsgi_bind_slot(NULL);
    gw_buf_free(&s->out);
    gw_buf_free(&s->status);
    gw_buf_free(&s->headers);
    gw_buf_free(&s->scratch);
    gw_buf_free(&s->held);
    gw_buf_free(&s->ws_in);
    gw_buf_free(&s->ws_msg);
    free(s);
}

static uint32_t *gw_record_u32(uint8_t *record, int off)
{
    return (uint32_t *)(record + off);
}

static uint64_t *gw_record_u64(uint8_t *record, int off)
{
    return (uint64_t *)(record + off);
}

/* GIL: any. Makes stores [from, to) of those a slot makes to its scoreboard
 * record over one request (the GW_STORE_* order). The master reads the
 * record at any time, hence atomics, and when the worker dies it finds the
 * record as the last store left it; from that it decides whether the
 * request may have run or can go to another worker (wsgi.Scoreboard.Begun).
 * No prefix of the stores may look "never began" once the app may have been
 * called, so: the start time before the id, which a reader then sees with
 * it; the id before the app runs; the request counted in served before the
 * id is cleared, since a worker dying between a clear and a count would
 * leave the record of a request never begun, and the master would run it
 * twice (docs/internals.md, "The scoreboard"). */
void gw_record_stores(uint8_t *record, uint32_t id, int from, int to)
{
    struct timespec ts;
    for (int i = from; i < to; i++) {
        switch (i) {
        case GW_STORE_STARTED:
            clock_gettime(CLOCK_REALTIME, &ts);
            __atomic_store_n(gw_record_u64(record, GW_SLOT_STARTED_NS),
                             (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, __ATOMIC_RELEASE);
            break;
        case GW_STORE_ID:
            __atomic_store_n(gw_record_u32(record, GW_SLOT_CURRENT_ID), id, __ATOMIC_RELEASE);
            break;
        case GW_STORE_SERVED:
            __atomic_add_fetch(gw_record_u64(record, GW_SLOT_SERVED), 1, __ATOMIC_RELEASE);
            break;
        case GW_STORE_IDLE:
            __atomic_store_n(gw_record_u32(record, GW_SLOT_CURRENT_ID), 0, __ATOMIC_RELEASE);
            break;
        }
    }
}

/* GIL held. The request's log variables (uwsgi.set_logvar) in logvars, a
 * vars block the end frame carries to the access log; empty when the app
 * set none. */
static void gw_end_logvars(gw_slot *s, gw_buf *logvars)
{
    if (gw_uwsgi_logvars_block(s, logvars) < 0) {
        PyErr_Print(); /* the line goes without them; the response is whole */
        logvars->len = 0;
    }
}

/* GIL held. Queues the end frame of a relayed response, with the log
 * variables as its payload. The master waits for it (it posted the
 * request eager); the table's entry still moves to DONE, so the request
 * reads as ended there too. */
static void gw_out_end(gw_slot *s, uint8_t end_flags, const gw_buf *logvars)
{
    if (s->request_entry != NULL)
        gw_request_done(s->request_entry, s->id, 0, 0, end_flags != 0, 1, 0, 0, 0);
    /* Room for both first, so the frame is never left without its payload. */
    if (gw_buf_reserve(&s->out, GW_FRAME_HEADER_LEN + logvars->len) < 0 ||
        gw_out_frame(s, GW_FRAME_END, end_flags, logvars->len) < 0 ||
        (logvars->len > 0 && gw_buf_append(&s->out, logvars->data, logvars->len) < 0))
        PyErr_Clear(); /* out of memory: the master sees the worker stall */
}

/* GIL: any. The stores made before the app is called. */
static void gw_record_begin(gw_slot *s)
{
    gw_record_stores(s->record, s->id, 0, GW_STORES_BEFORE_APP);
    gw_uwsgi_request_begun();
}

/* GIL: any. The stores made once the response is complete. */
static void gw_record_finish(gw_slot *s)
{
    gw_record_stores(s->record, s->id, GW_STORES_BEFORE_APP, GW_STORES);
    gw_uwsgi_request_ended();
}

static int gw_aborted(gw_slot *s)
{
    return __atomic_load_n(gw_record_u32(s->record, GW_SLOT_ABORT_ID), __ATOMIC_ACQUIRE) == s->id;
}

/* GIL held. Writes "wsgi: <what> for <method> <path>[; <hint>]" to
 * sys.stderr, then the pending exception's traceback if there is one. The
 * path is decoded as latin-1, like environ, so any bytes can be logged. */
static void gw_log(gw_slot *s, const char *what, const char *hint)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *method = PyUnicode_DecodeLatin1(s->method, (Py_ssize_t)(s->method_len > 32 ? 32 : s->method_len), NULL);
    PyObject *path = PyUnicode_DecodeLatin1(s->path, (Py_ssize_t)(s->path_len > 400 ? 400 : s->path_len), NULL);
    PyObject *line = NULL, *err = PySys_GetObject("stderr");
    if (method != NULL && path != NULL)
        line = PyUnicode_FromFormat("wsgi: %s for %U %U%s%s\n", what, method, path, hint ? "; " : "", hint ? hint : "");
    if (line == NULL || err == NULL || PyFile_WriteObject(line, err, Py_PRINT_RAW) < 0)
        PyErr_Clear();
    Py_XDECREF(line);
    Py_XDECREF(path);
    Py_XDECREF(method);
    PyErr_Restore(type, value, tb);
    if (PyErr_Occurred())
        PyErr_PrintEx(0);
}

/* GIL held. Answers with status and a text/plain body while the head is
 * still unsent, else ends with a FrameEnd that tells the master to drop the
 * client's connection. Returns the FrameEnd flags. */
static uint8_t gw_plain_response(gw_slot *s, const char *status, const char *body)
{
    char length[24];
    int length_len = snprintf(length, sizeof length, "%zu", strlen(body));
    if (s->head_sent || s->broken || s->client_gone)
        return GW_FLAG_END_BROKEN;
    s->headers.len = s->status.len = 0;
    if (gw_buf_append(&s->status, status, strlen(status)) < 0 ||
        gw_buf_append_var(&s->headers, "Content-Type", 12) < 0 ||
        gw_buf_append_var(&s->headers, "text/plain", 10) < 0 ||
        gw_buf_append_var(&s->headers, "Content-Length", 14) < 0 ||
        gw_buf_append_var(&s->headers, length, (size_t)length_len) < 0 || gw_emit_head(s) < 0 ||
        gw_out_body(s, body, strlen(body)) < 0) {
        PyErr_Clear();
        return GW_FLAG_END_BROKEN;
    }
    return 0;
}

/* GIL held. Ends the response after a failure with a 500 (see
 * gw_plain_response). */
static uint8_t gw_error_response(gw_slot *s)
{
    return gw_plain_response(s, "500 Internal Server Error", gw_error_body);
}

/* GIL held. Logs the pending exception against the request and ends the
 * response as gw_error_response does. */
static uint8_t gw_fail(gw_slot *s, const char *what)
{
    if (s->broken || s->client_gone) { /* the master or the client is gone: nobody to answer or to blame */
        PyErr_Clear();
        return GW_FLAG_END_BROKEN;
    }
    gw_log(s, what, NULL);
    return gw_error_response(s);
}

/* GIL held. A body item that is not bytes: the classic mistake is a str,
 * which PEP 3333 ("Unicode Issues") forbids. */
static uint8_t gw_bad_item(gw_slot *s, PyObject *item)
{
    char what[120];
    snprintf(what, sizeof what, "app returned %.60s in its body", Py_TYPE(item)->tp_name);
    gw_log(s, what, "WSGI bodies must be bytes: return [b\"...\"] or encode the text");
    return gw_error_response(s);
}

/* GIL held. Appends one body chunk, with the head before the first. */
static int gw_chunk(gw_slot *s, PyObject *item)
{
    if (PyBytes_GET_SIZE(item) == 0)
        return 0;
    if (!s->started) {
        PyErr_SetString(PyExc_RuntimeError, "the app returned a body before calling start_response()");
        return -1;
    }
    if (gw_emit_head(s) < 0)
        return -1;
    return gw_out_body(s, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item));
}

/* GIL held. A list or tuple is fully built already: append every item and
 * leave the flush to the end of the request. Each item is held while it is
 * written, and the list read again for the next: writing releases the GIL,
 * and another thread may then empty or grow a list the app kept, freeing
 * the item or moving the array of items. */
static uint8_t gw_send_sequence(gw_slot *s, PyObject *seq)
{
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        uint8_t flags = 0;
        int ended = 1;
        Py_INCREF(item);
        if (!PyBytes_Check(item))
            flags = gw_bad_item(s, item);
        else if (gw_chunk(s, item) < 0)
            flags = gw_fail(s, "error sending the app's response");
        else
            ended = 0;
        Py_DECREF(item);
        if (ended)
            return flags;
    }
    return 0;
}

/* GIL held. Any other iterable may be a stream: each chunk is flushed as it
 * comes (PEP 3333, "Buffering and Streaming"), and before each chunk the
 * scoreboard says whether the client is still there to receive it. */
static uint8_t gw_send_iterable(gw_slot *s, PyObject *result)
{
    PyObject *it = PyObject_GetIter(result), *item;
    uint8_t flags = 0;
    if (it == NULL)
        return gw_fail(s, "app returned a non-iterable");
    while ((item = PyIter_Next(it)) != NULL) {
        if (gw_aborted(s)) {
            flags = GW_FLAG_END_BROKEN;
        } else if (!PyBytes_Check(item)) {
            flags = gw_bad_item(s, item);
        } else if (gw_chunk(s, item) < 0 || (s->head_sent && gw_out_flush(s) < 0)) {
            flags = gw_fail(s, "error sending the app's response");
        } else {
            Py_DECREF(item);
            continue;
        }
        Py_DECREF(item);
        break;
    }
    if (item == NULL && PyErr_Occurred())
        flags = gw_fail(s, "exception in the app's iterable");
    Py_DECREF(it);
    return flags;
}

/* GIL held. PEP 3333: close() is called on the iterable however the
 * response ended; an exception from it is logged, not sent. An exact list,
 * tuple or bytes, which most apps return, has no close(): looking it up
 * would raise and clear an AttributeError per request. */
static void gw_close_result(gw_slot *s, PyObject *result)
{
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result) || PyBytes_CheckExact(result))
        return;
    PyObject *close = PyObject_GetAttrString(result, "close");
    if (close == NULL) {
        PyErr_Clear();
        return;
    }
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (r == NULL)
        gw_log(s, "exception in close() of the app's iterable", NULL);
    Py_XDECREF(r);
}

/* GIL held. Runs the app and returns the FrameEnd flags. *body_fd is the
 * spooled body's descriptor, or -1; wsgi.input takes it over. */
static uint8_t gw_run(gw_slot *s, const char *vars, size_t vars_len, const char *body, size_t body_len, int *body_fd)
{
    PyObject *input = NULL, *responder = NULL, *result = NULL;
    uint8_t flags;
    int spooled = *body_fd >= 0;
    PyObject *environ = gw_environ_new(s, vars, vars_len, body, body_len, body_fd, &input);
    if (environ == NULL || gw_route(s, environ) < 0 || (responder = gw_responder_begin(s)) == NULL) {
        flags = gw_fail(s, "cannot build environ");
        goto cleanup;
    }
    if (s->app == NULL) { /* no mount takes the request and there is no default app */
        flags = gw_plain_response(s, "404 Not Found", gw_not_found_body);
        goto cleanup;
    }
    PyObject *args[2] = {environ, responder};
    result = PyObject_Vectorcall(s->app, args, 2, NULL);
    if (result == NULL) {
        flags = gw_fail(s, "exception in app");
        goto cleanup;
    }
    int sent = gw_try_send_file(s, result);
    if (sent < 0)
        flags = gw_fail(s, "error sending the app's file_wrapper");
    else if (sent > 0)
        flags = 0;
    else if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
        flags = gw_send_sequence(s, result);
    else
        flags = gw_send_iterable(s, result);
    gw_close_result(s, result);
    if (flags == 0 && !s->head_sent) {
        if (!s->started) {
            PyErr_SetString(PyExc_RuntimeError, "the app returned without calling start_response()");
            flags = gw_fail(s, "no response from app");
        } else if (gw_emit_head(s) < 0) {
            flags = gw_fail(s, "error sending the app's response");
        }
    }
cleanup:
    gw_responder_end(s);
    if (spooled && input != NULL) {
        PyObject *r = PyObject_CallMethod(input, "close", NULL);
        Py_XDECREF(r);
        PyErr_Clear();
    }
    Py_XDECREF(result);
    Py_XDECREF(input);
    Py_XDECREF(environ);
    return flags;
}

/* GIL not held on entry or exit. Serves one FrameRequest payload and
 * appends the response's frames; writes them out when flush is set or the
 * response streams. client_fd and body_fd are the descriptors that came
 * with the frame, -1 when none did; the slot takes them over. With
 * GW_FLAG_DIRECT the response goes to client_fd (gw_worker_direct.c) and only its
 * FrameEnd, with the completion record, to the master; without the
 * descriptor it goes through the master as usual. Returns 0, or -1
 * with errno set when the slot socket is broken (the master is gone). */
int gw_slot_serve(gw_slot *s, uint32_t id, uint8_t flags, const char *payload, size_t len, int client_fd,
                  int body_fd, int flush)
{
    int spooled = (flags & GW_FLAG_BODY_SPOOLED) != 0, direct = (flags & GW_FLAG_DIRECT) != 0;
    if (!spooled && body_fd >= 0) {
        close(body_fd); /* a descriptor the frame does not call for */
        body_fd = -1;
    }
    s->framing = 0;
    if (direct && len >= GW_DIRECT_PARAMS_LEN) {
        s->framing = (uint8_t)payload[0];
        gw_http_begin(s, (uint8_t)payload[1]);
        payload += GW_DIRECT_PARAMS_LEN;
        len -= GW_DIRECT_PARAMS_LEN;
    }
    if (client_fd >= 0 && s->framing != GW_FRAMING_HTTP_HEAD && s->framing != GW_FRAMING_CGI &&
        s->framing != GW_FRAMING_HTTP1) {
        /* Not a direct request, or one framed in a way this worker does not
         * know: the response goes through the master, which handles both. */
        close(client_fd);
        client_fd = -1;
    }
    s->client_fd = client_fd;
    s->handed_off = s->client_gone = s->head_out = 0;
    s->written = s->head_bytes = s->body_bytes = 0;
    s->head_fields = 0;
    s->client_wait_ms = GW_CLIENT_WAIT_MS;
    s->id = id;
    s->started = s->head_sent = s->is_head = 0;
    s->content_length = -1;
    s->memfd_bytes = 0;
    s->status.len = s->headers.len = 0;
    s->method = s->path = "-";
    s->method_len = s->path_len = 1;
    s->script_name = s->path_info = "";
    s->script_name_len = s->path_info_len = 0;
    s->vars = "";
    s->vars_len = 0;
    gw_ws_begin(s);
    gw_record_begin(s);

    PyEval_RestoreThread(s->tstate);
    uint8_t end_flags;
    uint32_t vars_len = len >= 4 ? gw_get_u32(payload) : 0;
    if (len < 4 || vars_len > len - 4) {
        PyErr_SetString(PyExc_ValueError, "wsgi: malformed request frame from the master");
        end_flags = gw_fail(s, "bad request frame");
    } else if (spooled && body_fd < 0) {
        PyErr_SetString(PyExc_ValueError, "wsgi: a spooled body's descriptor did not come with its request");
        end_flags = gw_fail(s, "bad request frame");
    } else {
        s->vars = payload + 4;
        s->vars_len = vars_len;
        end_flags = gw_run(s, payload + 4, vars_len, payload + 4 + vars_len, len - 4 - vars_len, &body_fd);
    }
    if (body_fd >= 0)
        close(body_fd); /* wsgi.input could not take it */
    gw_buf logvars = {0};
    gw_end_logvars(s, &logvars);
    if (s->client_fd >= 0)
        end_flags = gw_direct_finish(s, end_flags, &logvars);
    else
        gw_out_end(s, end_flags, &logvars);
    gw_buf_free(&logvars);
    gw_ws_end(s);
    gw_modules_note_new();
    Py_CLEAR(s->logvars); /* uwsgi.set_logvar's are the request's */
    s->tstate = PyEval_SaveThread();

    /* uwsgi.set_user_harakiri's deadline is the request's: cleared while
     * the request is still the slot's current one. */
    gw_uwsgi_user_harakiri(s, 0);
    gw_record_finish(s);
    if (flush || s->broken)
        gw_send_pending(s);
    if (s->out.len == 0 && s->out.cap > GW_OUT_KEEP)
        gw_buf_free(&s->out); /* one huge response must not pin its buffer */
    if (s->broken) {
        errno = s->send_errno;
        return -1;
    }
    return 0;
}
