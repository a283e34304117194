/*
 * uWSGI's Python API inside gowsgi: the built-in modules "uwsgi" and
 * "uwsgidecorators", which only an interpreter gowsgi starts has (an app
 * that does "import uwsgi" to tell whether it runs under uWSGI keeps
 * working elsewhere). Both are registered before Python starts
 * (gw_register_uwsgi) and built on first import, so an app that never
 * imports them pays nothing.
 *
 * The module is C where it reads the worker's own state: which worker and
 * request this is (the slot a thread serves and its scoreboard record),
 * the request's log variables, and the worker table of the shared area
 * (gw_shared.h) behind workers(), total_requests() and listen_queue();
 * the signal functions are in gw_uwsgi_signal.c, the caches and locks in
 * gw_uwsgi_cache.c, the metrics in gw_uwsgi_metrics.c. The rest — uWSGI's
 * option dict, the constants, and a function for every feature gowsgi
 * lacks, which raises
 * NotImplementedError naming it — is Python (gw_uwsgi_source.h): tables
 * of names read better there, and they are built once per import. The
 * spooler's and the mules' parts are added after it (gw_uwsgi_spooler.c,
 * gw_uwsgi_mule.c), and their decorators after uwsgidecorators' own.
 */
#include "gw.h"
#include "gw_shared.h"
#include "gw_uwsgi_aux.h"
#include "gw_uwsgi_aux_decorators_source.h"
#include "gw_uwsgi_source.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The uWSGI release whose Python API gowsgi follows, and its tag:
 * uwsgi.version, uwsgi.version_info and environ's uwsgi.version. */
#define GW_UWSGI_VERSION "2.0.21-gowsgi"

/* What the process knows of its place in the server; see gw_uwsgi_info. */
static gw_uwsgi_info gw_info;
static int gw_worker_id;        /* 0 in the zygote and in CGI mode */
static long gw_worker_spawned;  /* when this worker was forked, Unix seconds */
static uint8_t *gw_board;       /* this worker's scoreboard, NULL when none */
static int gw_board_slots;
/* The slot the calling thread serves: a slot's thread serves only it, for
 * life. NULL on any other thread. */
static __thread gw_slot *gw_this_slot;

/* GIL: any. Keeps info, whose strings must outlive the process's Python;
 * called before gw_start. */
void gw_uwsgi_configure(const gw_uwsgi_info *info)
{
    gw_info = *info;
    gw_ws_configure((uint64_t)(info->websockets_max_size > 0 ? info->websockets_max_size : 0) << 10,
                    (int)info->websockets_ping_freq, (int)info->websockets_pong_tolerance);
}

/* This worker's line of the shared area's worker table, NULL without one. */
static gw_shared_worker *gw_my_line;

/* GIL: any. Records that this process is worker num, forked now. */
void gw_uwsgi_set_worker(int num)
{
    gw_worker_id = num;
    gw_worker_spawned = (long)time(NULL);
    gw_my_line = gw_shared_worker_line(num);
}

/* GIL: any. A request begins and ends: the counts uwsgi.workers() and
 * total_requests() read, on this worker's own cache line. */
void gw_uwsgi_request_begun(void)
{
    if (gw_my_line != NULL)
        __atomic_add_fetch(&gw_my_line->running, 1, __ATOMIC_RELAXED);
}

void gw_uwsgi_request_ended(void)
{
    if (gw_my_line == NULL)
        return;
    __atomic_add_fetch(&gw_my_line->requests, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&gw_my_line->running, 1, __ATOMIC_RELAXED);
}

/* GIL: any. This worker's number, 0 outside a worker. */
int gw_uwsgi_worker_id(void)
{
    return gw_worker_id;
}

/* GIL: any. The worker's scoreboard, for total_requests(). */
void gw_uwsgi_set_board(uint8_t *board, int slots)
{
    gw_board = board;
    gw_board_slots = slots;
}

/* GIL: any. Binds the calling thread to s, for request_id() and the log
 * variables. */
void gw_uwsgi_bind_slot(gw_slot *s)
{
    gw_this_slot = s;
}

static uint64_t gw_record_served(const uint8_t *record)
{
    return __atomic_load_n((const uint64_t *)(record + GW_SLOT_SERVED), __ATOMIC_ACQUIRE);
}

/* GIL held. uwsgi.worker_id(): 1.. in a worker, 0 elsewhere. */
static PyObject *gw_uw_worker_id(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(gw_worker_id);
}

/* GIL held. uwsgi.masterpid(): the master's pid, 0 without one (CGI). */
static PyObject *gw_uw_masterpid(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(gw_info.masterpid);
}

/* GIL held. uwsgi.request_id(): how many requests the calling thread's slot
 * has served before this one, as uWSGI counts a core's requests. */
static PyObject *gw_uw_request_id(PyObject *self, PyObject *unused)
{
    gw_slot *s = gw_this_slot;
    return PyLong_FromUnsignedLongLong(s != NULL ? gw_record_served(s->record) : 0);
}

/* GIL held. uwsgi.total_requests(): the requests every worker of this
 * generation has served, as uWSGI counts them, from the shared area's
 * worker table; without a master (CGI mode, tests), this process's. */
static PyObject *gw_uw_total_requests(PyObject *self, PyObject *unused)
{
    uint64_t n = 0;
    if (gw_shared != NULL && gw_shared->nworkers > 0) {
        for (uint32_t i = 1; i <= gw_shared->nworkers; i++)
            n += __atomic_load_n(&gw_shared_worker_line((int)i)->requests, __ATOMIC_RELAXED);
    } else if (gw_board != NULL) {
        for (int i = 0; i < gw_board_slots; i++)
            n += gw_record_served(gw_board + (size_t)i * GW_SLOT_RECORD_LEN);
    } else if (gw_this_slot != NULL) {
        n = gw_record_served(gw_this_slot->record);
    }
    return PyLong_FromUnsignedLongLong(n);
}

/* GIL held. The calling thread's slot, or NULL with RuntimeError set. */
gw_slot *gw_uwsgi_request_slot(const char *function)
{
    if (gw_this_slot == NULL) {
        PyErr_Format(PyExc_RuntimeError, "uwsgi.%s() works only while serving a request", function);
        return NULL;
    }
    return gw_this_slot;
}

/* GIL held. uwsgi.set_logvar(key, value): a variable of this request's
 * log line, %(key) in --log-format. */
static PyObject *gw_uw_set_logvar(PyObject *self, PyObject *args)
{
    const char *key, *value;
    Py_ssize_t key_len, value_len;
    if (!PyArg_ParseTuple(args, "s#s#:set_logvar", &key, &key_len, &value, &value_len))
        return NULL;
    gw_slot *s = gw_uwsgi_request_slot("set_logvar");
    if (s == NULL)
        return NULL;
    if (s->logvars == NULL && (s->logvars = PyDict_New()) == NULL)
        return NULL;
    PyObject *k = PyBytes_FromStringAndSize(key, key_len);
    PyObject *v = k != NULL ? PyBytes_FromStringAndSize(value, value_len) : NULL;
    int rc = v != NULL ? PyDict_SetItem(s->logvars, k, v) : -1;
    Py_XDECREF(v);
    Py_XDECREF(k);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* GIL held. uwsgi.get_logvar(key): the bytes set_logvar gave key in this
 * request, or None. */
static PyObject *gw_uw_get_logvar(PyObject *self, PyObject *args)
{
    const char *key;
    Py_ssize_t key_len;
    if (!PyArg_ParseTuple(args, "s#:get_logvar", &key, &key_len))
        return NULL;
    gw_slot *s = gw_uwsgi_request_slot("get_logvar");
    if (s == NULL)
        return NULL;
    if (s->logvars == NULL)
        Py_RETURN_NONE;
    PyObject *k = PyBytes_FromStringAndSize(key, key_len);
    if (k == NULL)
        return NULL;
    PyObject *v = PyDict_GetItemWithError(s->logvars, k); /* borrowed */
    Py_DECREF(k);
    if (v == NULL && PyErr_Occurred())
        return NULL;
    if (v == NULL)
        Py_RETURN_NONE;
    Py_INCREF(v);
    return v;
}

/* GIL held. The request's log variables as a vars block in b, which the
 * end frame carries to the master's access log (%(key) in --log-format);
 * b stays empty when the app set none, so a request that sets none costs
 * nothing. Returns 0, or -1 with an exception set. */
int gw_uwsgi_logvars_block(gw_slot *s, gw_buf *b)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    if (s->logvars == NULL)
        return 0;
    while (PyDict_Next(s->logvars, &pos, &key, &value)) { /* borrowed: bytes, as set_logvar stores them */
        if (gw_buf_append_var(b, PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key)) < 0 ||
            gw_buf_append_var(b, PyBytes_AS_STRING(value), (size_t)PyBytes_GET_SIZE(value)) < 0)
            return -1;
    }
    return 0;
}

/* GIL held. uwsgi.setprocname(name): the title ps shows, with the
 * --procname-prefix and --procname-append around it, as uWSGI's. */
static PyObject *gw_uw_setprocname(PyObject *self, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s:setprocname", &name))
        return NULL;
    gw_proctitle_rename(name);
    Py_RETURN_NONE;
}

/* GIL: any. Sets the deadline the master kills this worker at if s has not
 * ended what it runs by then (uwsgi.set_user_harakiri); 0 clears it. */
void gw_uwsgi_user_harakiri(gw_slot *s, int64_t deadline_ns)
{
    __atomic_store_n((int64_t *)(s->record + GW_SLOT_USER_HARAKIRI_NS), deadline_ns, __ATOMIC_RELEASE);
}

/* GIL held. uwsgi.set_user_harakiri(seconds): the master kills this worker
 * (the request gets 504) unless what the calling thread's slot runs — its
 * request, or a signal handler — has ended seconds from now; 0 clears it,
 * and so does the end of the request or handler, as in uWSGI. */
static PyObject *gw_uw_set_user_harakiri(PyObject *self, PyObject *args)
{
    int sec;
    if (!PyArg_ParseTuple(args, "i:set_user_harakiri", &sec))
        return NULL;
    if (gw_info.masterpid <= 0) {
        PyErr_SetString(PyExc_RuntimeError, "uwsgi.set_user_harakiri() needs the master, which enforces it (not in CGI mode)");
        return NULL;
    }
    gw_slot *s = gw_this_slot;
    if (s == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "uwsgi.set_user_harakiri() works only in a request or a signal handler of a worker");
        return NULL;
    }
    int64_t deadline = 0;
    if (sec > 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        deadline = ((int64_t)now.tv_sec + sec) * 1000000000 + now.tv_nsec;
    }
    gw_uwsgi_user_harakiri(s, deadline);
    Py_RETURN_NONE;
}

/* GIL held. Sends sig to the master: True, or None when it cannot (no
 * master, as in CGI mode, or kill failed), as uWSGI answers. */
static PyObject *gw_signal_master(int sig)
{
    if (gw_info.masterpid <= 0 || kill((pid_t)gw_info.masterpid, sig) < 0)
        Py_RETURN_NONE;
    Py_RETURN_TRUE;
}

/* GIL held. uwsgi.reload(): a graceful reload, as SIGHUP to the master. */
static PyObject *gw_uw_reload(PyObject *self, PyObject *unused)
{
    return gw_signal_master(SIGHUP);
}

/* GIL held. uwsgi.stop(): stops the server, as SIGTERM to the master
 * (gowsgi's graceful stop; uWSGI's is SIGQUIT there, a brutal one here). */
static PyObject *gw_uw_stop(PyObject *self, PyObject *unused)
{
    return gw_signal_master(SIGTERM);
}

/* GIL held. _gowsgi_workers(): for each worker number up to numproc, a
 * tuple (pid, requests, running, last_spawn, spawns) from the shared
 * area's worker table; None without a master. */
static PyObject *gw_uw_workers_table(PyObject *self, PyObject *unused)
{
    if (gw_shared == NULL || gw_shared->nworkers == 0)
        Py_RETURN_NONE;
    int n = gw_info.numproc < (int)gw_shared->nworkers ? gw_info.numproc : (int)gw_shared->nworkers;
    PyObject *table = PyTuple_New(n);
    for (int i = 0; table != NULL && i < n; i++) {
        gw_shared_worker *w = gw_shared_worker_line(i + 1);
        PyObject *row = Py_BuildValue(
            "(LKKLK)", (long long)__atomic_load_n(&w->pid, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&w->requests, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&w->running, __ATOMIC_RELAXED),
            (long long)__atomic_load_n(&w->last_spawn, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&w->spawns, __ATOMIC_RELAXED));
        if (row == NULL)
            Py_CLEAR(table);
        else
            PyTuple_SET_ITEM(table, i, row); /* steals row */
    }
    return table;
}

/* GIL held. _gowsgi_listen_queue(): the requests waiting for a slot in
 * the master, as it last sampled them; 0 without a shared area. */
static PyObject *gw_uw_listen_queue(PyObject *self, PyObject *unused)
{
    return PyLong_FromLongLong(gw_shared != NULL ? __atomic_load_n(&gw_shared->listen_queue, __ATOMIC_RELAXED) : 0);
}

/* GIL held. The numbers the Python part needs, as a dict. */
static PyObject *gw_uw_config(PyObject *self, PyObject *unused)
{
    gw_slot *s = gw_this_slot;
    int busy = s != NULL && __atomic_load_n((uint32_t *)(s->record + GW_SLOT_CURRENT_ID), __ATOMIC_ACQUIRE) != 0;
    return Py_BuildValue("{s:y,s:s,s:i,s:i,s:i,s:l,s:O,s:l,s:O}", "version", GW_UWSGI_VERSION, "opt",
                         gw_info.opt_json != NULL ? gw_info.opt_json : "[]", "numproc", gw_info.numproc, "cores",
                         gw_info.cores, "buffer_size", gw_info.buffer_size, "started_on", gw_info.started_on,
                         "is_a_reload", gw_info.is_reload ? Py_True : Py_False, "worker_spawned", gw_worker_spawned,
                         "busy", busy ? Py_True : Py_False);
}

/* GIL held. Adds the keys uWSGI puts in every environ to the constant part
 * of it: uwsgi.version and uwsgi.node (the host name), both bytes. */
int gw_uwsgi_environ(PyObject *template_environ)
{
    char node[256];
    if (gethostname(node, sizeof node) < 0)
        node[0] = '\0';
    node[sizeof node - 1] = '\0';
    PyObject *version = PyBytes_FromString(GW_UWSGI_VERSION);
    PyObject *host = version != NULL ? PyBytes_FromString(node) : NULL;
    int rc = host != NULL && PyDict_SetItemString(template_environ, "uwsgi.version", version) == 0 &&
                     PyDict_SetItemString(template_environ, "uwsgi.node", host) == 0
                 ? 0
                 : -1;
    Py_XDECREF(host);
    Py_XDECREF(version);
    return rc;
}

static PyMethodDef gw_uwsgi_methods[] = {
    {"worker_id", gw_uw_worker_id, METH_NOARGS, "The worker's number, from 1; 0 outside a worker."},
    {"masterpid", gw_uw_masterpid, METH_NOARGS, "The master's pid; 0 without one."},
    {"request_id", gw_uw_request_id, METH_NOARGS, "Requests this thread served before this one."},
    {"total_requests", gw_uw_total_requests, METH_NOARGS, "Requests every worker has served."},
    {"set_logvar", gw_uw_set_logvar, METH_VARARGS, "Set a variable of this request's log line."},
    {"get_logvar", gw_uw_get_logvar, METH_VARARGS, "A variable set_logvar set in this request, or None."},
    {"setprocname", gw_uw_setprocname, METH_VARARGS, "Set the process name."},
    {"set_user_harakiri", gw_uw_set_user_harakiri, METH_VARARGS, "Kill this worker unless this ends in N seconds."},
    {"reload", gw_uw_reload, METH_NOARGS, "Reload the workers gracefully."},
    {"stop", gw_uw_stop, METH_NOARGS, "Stop the server."},
    {"websocket_handshake", gw_uw_websocket_handshake, METH_VARARGS,
     "Answer the request's WebSocket handshake: websocket_handshake([key, origin, proto])."},
    {"websocket_recv", gw_uw_websocket_recv, METH_NOARGS, "Wait for the next WebSocket message (bytes)."},
    {"websocket_recv_nb", gw_uw_websocket_recv_nb, METH_NOARGS, "The next WebSocket message, or b'' when none is whole."},
    {"websocket_send", gw_uw_websocket_send, METH_VARARGS, "Send a WebSocket text message."},
    {"websocket_send_binary", gw_uw_websocket_send_binary, METH_VARARGS, "Send a WebSocket binary message."},
    {"connection_fd", gw_uw_connection_fd, METH_NOARGS, "The descriptor of the client's connection."},
    {"_gowsgi_config", gw_uw_config, METH_NOARGS, NULL},
    {"_gowsgi_workers", gw_uw_workers_table, METH_NOARGS, NULL},
    {"_gowsgi_listen_queue", gw_uw_listen_queue, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef gw_uwsgi_def = {PyModuleDef_HEAD_INIT, "uwsgi", NULL, -1, gw_uwsgi_methods};
static struct PyModuleDef gw_decorators_def = {PyModuleDef_HEAD_INIT, "uwsgidecorators", NULL, -1, NULL};

/* GIL held. Runs source in module's namespace; returns module, or NULL
 * (and drops it) when the source raises. */
static PyObject *gw_run_in_module(PyObject *module, const char *source, const char *filename)
{
    PyObject *code = Py_CompileString(source, filename, Py_file_input);
    PyObject *dict = PyModule_GetDict(module); /* borrowed */
    /* Python 3.9 runs code whose globals lack __builtins__ with a bare
     * namespace of its own (no __import__); 3.10 and later look the
     * interpreter's up. */
    if (code != NULL && PyDict_GetItemString(dict, "__builtins__") == NULL &&
        PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins()) < 0)
        Py_CLEAR(code);
    PyObject *ran = code != NULL ? PyEval_EvalCode(code, dict, dict) : NULL;
    Py_XDECREF(code);
    if (ran == NULL) {
        Py_DECREF(module);
        return NULL;
    }
    Py_DECREF(ran);
    return module;
}

/* GIL held. Runs source in module's namespace, as the other parts of a
 * built-in module (gw_uwsgi_spooler.c, gw_uwsgi_mule.c) add theirs: 0, or -1 with the
 * exception set. */
int gw_uwsgi_run_source(PyObject *module, const char *source, const char *filename)
{
    Py_INCREF(module);
    if (gw_run_in_module(module, source, filename) == NULL)
        return -1;
    Py_DECREF(module);
    return 0;
}

/* GIL held. Builds "uwsgi" on its first import. */
static PyObject *gw_uwsgi_init(void)
{
    PyObject *module = PyModule_Create(&gw_uwsgi_def);
    if (module == NULL || PyModule_AddStringConstant(module, "__file__", "<gowsgi>") < 0 ||
        PyModule_AddFunctions(module, gw_signal_methods) < 0 || gw_uwsgi_cache_add(module) < 0 ||
        gw_uwsgi_metrics_add(module) < 0) {
        Py_XDECREF(module);
        return NULL;
    }
    if (gw_run_in_module(module, gw_uwsgi_source, "<gowsgi uwsgi>") == NULL)
        return NULL;
    if (gw_spooler_module_init(module) < 0 || gw_mule_module_init(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

/* GIL held. Builds "uwsgidecorators" on its first import. */
static PyObject *gw_decorators_init(void)
{
    PyObject *module = PyModule_Create(&gw_decorators_def);
    if (module == NULL)
        return NULL;
    if (gw_run_in_module(module, gw_decorators_source, "<gowsgi uwsgidecorators>") == NULL)
        return NULL;
    return gw_run_in_module(module, gw_aux_decorators_source, "<gowsgi uwsgidecorators spooler and mules>");
}

/* GIL not held; before Python starts. Makes both modules importable. */
int gw_register_uwsgi(void)
{
    if (PyImport_AppendInittab("uwsgi", gw_uwsgi_init) < 0 ||
        PyImport_AppendInittab("uwsgidecorators", gw_decorators_init) < 0)
        return -1;
    return 0;
}

/* GIL held. Calls the callable the app put in uwsgi's attribute name, if
 * it imported uwsgi and set one; an exception is printed, as uWSGI does. */
static void gw_call_hook(const char *name)
{
    PyObject *modules = PySys_GetObject("modules"); /* borrowed */
    PyObject *uwsgi = modules != NULL ? PyDict_GetItemString(modules, "uwsgi") : NULL; /* borrowed */
    if (uwsgi == NULL || !PyObject_HasAttrString(uwsgi, name))
        return;
    PyObject *hook = PyObject_GetAttrString(uwsgi, name);
    PyObject *r = hook != NULL ? PyObject_CallNoArgs(hook) : NULL;
    if (r == NULL)
        PyErr_Print();
    Py_XDECREF(r);
    Py_XDECREF(hook);
}

/* GIL held. In a worker just forked from the zygote: uwsgi.post_fork_hook,
 * which uwsgidecorators' @postfork functions hang on. */
void gw_uwsgi_post_fork(void)
{
    gw_call_hook("post_fork_hook");
}

/* GIL not held. As a worker ends cleanly: uwsgi.atexit, then the handlers
 * of Python's atexit module, which uWSGI runs by finalizing Python (a
 * worker here just exits, so as not to wait on the app's threads). */
void gw_uwsgi_atexit(void)
{
    PyGILState_STATE g = PyGILState_Ensure();
    gw_call_hook("atexit");
    PyObject *atexit = PyImport_ImportModule("atexit");
    PyObject *r = atexit != NULL ? PyObject_CallMethod(atexit, "_run_exitfuncs", NULL) : NULL;
    if (r == NULL)
        PyErr_Print();
    Py_XDECREF(r);
    Py_XDECREF(atexit);
    fflush(stdout);
    fflush(stderr);
    PyGILState_Release(g);
}
