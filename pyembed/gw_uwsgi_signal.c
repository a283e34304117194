/*
 * uWSGI's signal framework in a process gowsgi's zygote started: the
 * functions of the "uwsgi" module that register handlers and ask the
 * master for signals, timers, crons and file monitors, and the delivery
 * of a signal to this process's handler.
 *
 * Every process of a generation shares one SOCK_SEQPACKET socket with the
 * master (the "hub", inherited from the zygote): a process sends its
 * requests on it as text messages (server/signals.go describes them), and
 * the master sends on it, as one byte, a signal for "any worker": the
 * kernel hands each message to one reader. A worker also has a socket of
 * its own, the master's way to reach that worker alone ("workers",
 * "workerN"). Another kind of process (a mule, the spooler) takes signals
 * by polling its own socket the same way (gw_signal_take).
 *
 * As in uWSGI, the handler table is the process's own: a handler
 * registered while the zygote imports the app is in every worker it forks
 * (and in a worker respawned later), one registered in a worker only in
 * that worker. The handler runs on a slot thread between two requests
 * (gw_worker_loop.c's wait), as uWSGI's idle cores run it, or inside signal_wait().
 */
#include "gw.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* uWSGI's limits: a target name fits in 63 bytes, a monitored file's name
 * in 254. */
#define GW_SIGNAL_TARGET_MAX 63
#define GW_SIGNAL_PATH_MAX 254

static int gw_hub_fd = -1; /* the generation's shared socket; -1 without a master */
static int gw_own_fd = -1; /* this worker's own socket; -1 outside a worker */
static PyObject *gw_handlers[256]; /* owned; read and written with the GIL held */
/* What signal_wait() last received on this thread, for signal_received(). */
static __thread int gw_signal_received;

/* GIL: any. The shared socket, from the zygote's environment; closed on
 * exec so the app's subprocesses do not hold it, kept across fork. */
void gw_signal_set_hub(int fd)
{
    if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0)
        gw_hub_fd = fd;
}

/* GIL: any. This worker's own socket. */
void gw_signal_set_own(int fd)
{
    gw_own_fd = fd;
}

/* GIL held. Sends one request to the master; -1 with OSError set, or with
 * ValueError when there is no master (CGI mode), as uWSGI refuses. */
static int gw_signal_request(const char *what, const char *msg, int len)
{
    if (gw_hub_fd < 0) {
        PyErr_Format(PyExc_ValueError, "unable to %s: gowsgi routes signals only with its master (not in CGI mode)",
                     what);
        return -1;
    }
    if (len < 0 || len >= 512) {
        PyErr_Format(PyExc_ValueError, "unable to %s: the request is too long", what);
        return -1;
    }
    ssize_t n;
    while ((n = send(gw_hub_fd, msg, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (n < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* GIL held. Runs the handler registered for sig with sig as its argument;
 * a missing handler or an exception is logged, as uWSGI logs "error
 * managing signal". */
static void gw_signal_run(int sig)
{
    PyObject *handler = gw_handlers[sig];
    if (handler == NULL) {
        fprintf(stderr, "gowsgi worker %d (pid %d): no handler for signal %d in this process\n", gw_uwsgi_worker_id(),
                (int)getpid(), sig);
        fflush(stderr);
        return;
    }
    Py_INCREF(handler); /* the handler may register another for sig */
    PyObject *r = PyObject_CallFunction(handler, "i", sig);
    if (r == NULL) {
        PyErr_Print();
        fprintf(stderr, "gowsgi worker %d (pid %d): the handler of signal %d raised\n", gw_uwsgi_worker_id(),
                (int)getpid(), sig);
        fflush(stderr);
    }
    Py_XDECREF(r);
    Py_DECREF(handler);
}

/* GIL not held. Reads one signal from fd without waiting: the signal, or
 * -1 when another thread or process took it first. */
static int gw_signal_read(int fd)
{
    uint8_t sig;
    ssize_t n;
    while ((n = recv(fd, &sig, 1, MSG_DONTWAIT)) < 0 && errno == EINTR)
        ;
    return n == 1 ? sig : -1;
}

/* GIL not held. Takes a signal waiting on fd, if another reader has not,
 * and runs its handler on s's thread (s: the calling thread's slot, NULL
 * on a thread with a thread state of its own, as a mule's). */
void gw_signal_take(gw_slot *s, int fd)
{
    int sig = gw_signal_read(fd);
    if (sig < 0)
        return;
    if (s != NULL) {
        PyEval_RestoreThread(s->tstate);
        gw_signal_run(sig);
        s->tstate = PyEval_SaveThread();
        gw_uwsgi_user_harakiri(s, 0); /* one the handler set is its own */
        return;
    }
    PyGILState_STATE g = PyGILState_Ensure();
    gw_signal_run(sig);
    PyGILState_Release(g);
}

/* GIL: any. The sockets a worker's idle slots watch for signals: its own
 * and the generation's shared one, -1 for one it has not. */
void gw_signal_fds(int *own, int *hub)
{
    *own = gw_own_fd;
    *hub = gw_hub_fd;
}

/* GIL held. Whether target names receivers gowsgi has; sets an exception
 * when not. uWSGI takes any name and logs at each signal that it cannot
 * route it. */
static int gw_signal_target_ok(const char *target)
{
    static const char *const missing[][2] = {
        {"farm", "mule farms (--farm)"}, {"subscribed", "the subscription system"}};
    size_t len = strlen(target);
    if (len > GW_SIGNAL_TARGET_MAX) {
        PyErr_Format(PyExc_ValueError, "unable to register signal: target longer than %d bytes",
                     GW_SIGNAL_TARGET_MAX);
        return 0;
    }
    if (len == 0 || strcmp(target, "workers") == 0 || strcmp(target, "active-workers") == 0)
        return 1;
    if (strncmp(target, "worker", 6) == 0 && strspn(target + 6, "0123456789") == len - 6)
        return 1; /* "worker", "worker0" (any worker), "workerN" */
    if (strcmp(target, "mules") == 0 || strcmp(target, "spooler") == 0 ||
        (strncmp(target, "mule", 4) == 0 && strspn(target + 4, "0123456789") == len - 4))
        return 1; /* "mule" (any mule), "muleN", "mules" (each), "spooler" */
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        if (strncmp(target, missing[i][0], strlen(missing[i][0])) == 0) {
            PyErr_Format(PyExc_NotImplementedError, "uwsgi.register_signal: gowsgi does not implement %s yet: "
                         "signal target '%s'", missing[i][1], target);
            return 0;
        }
    PyErr_Format(PyExc_ValueError, "unable to register signal: unknown target '%s' (use '', 'worker', 'workers', "
                 "'active-workers', 'workerN', 'mule', 'muleN', 'mules' or 'spooler')", target);
    return 0;
}

/* GIL held. uwsgi.register_signal(num, target, handler). */
static PyObject *gw_uw_register_signal(PyObject *self, PyObject *args)
{
    unsigned char sig;
    const char *target;
    PyObject *handler;
    if (!PyArg_ParseTuple(args, "BsO:register_signal", &sig, &target, &handler))
        return NULL;
    if (!gw_signal_target_ok(target))
        return NULL;
    /* uWSGI's master, where the app is imported before the fork, refuses
     * to register a number twice; a worker may replace its own. */
    if (gw_uwsgi_worker_id() == 0 && gw_handlers[sig] != NULL) {
        PyErr_Format(PyExc_ValueError, "unable to register signal: signal %d is already registered", sig);
        return NULL;
    }
    char msg[96];
    if (gw_signal_request("register signal", msg, snprintf(msg, sizeof msg, "r%d %s", sig, target)) < 0)
        return NULL;
    Py_INCREF(handler);
    Py_XSETREF(gw_handlers[sig], handler);
    Py_RETURN_NONE;
}

/* GIL held. uwsgi.signal(num[, node]): raises num through the master,
 * which runs it in the target its registration named. */
static PyObject *gw_uw_signal(PyObject *self, PyObject *args)
{
    unsigned char sig;
    const char *node = NULL;
    if (!PyArg_ParseTuple(args, "B|s:signal", &sig, &node))
        return NULL;
    if (node != NULL) {
        PyErr_SetString(PyExc_NotImplementedError,
                        "uwsgi.signal: gowsgi does not implement remote signals (to another node) yet");
        return NULL;
    }
    char msg[16];
    if (gw_signal_request("deliver signal", msg, snprintf(msg, sizeof msg, "s%d", sig)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* GIL held. uwsgi.signal_registered(num): True, or None, as uWSGI answers,
 * for this process's own table. */
static PyObject *gw_uw_signal_registered(PyObject *self, PyObject *args)
{
    unsigned char sig;
    if (!PyArg_ParseTuple(args, "B:signal_registered", &sig))
        return NULL;
    if (gw_handlers[sig] != NULL)
        Py_RETURN_TRUE;
    Py_RETURN_NONE;
}

/* GIL held. uwsgi.signal_wait([num]): waits for a signal sent to this
 * worker, runs its handler and returns b''; with num, runs the handlers of
 * the others meanwhile and returns once num has come. */
static PyObject *gw_uw_signal_wait(PyObject *self, PyObject *args)
{
    int wanted = -1;
    unsigned char sig;
    if (PyTuple_GET_SIZE(args) > 0) {
        if (!PyArg_ParseTuple(args, "|B:signal_wait", &sig))
            return NULL;
        wanted = sig;
    }
    gw_signal_received = -1;
    if (gw_own_fd < 0 && gw_hub_fd < 0) {
        PyErr_SetString(PyExc_SystemError, "error waiting for signal: no master to send one");
        return NULL;
    }
    for (;;) {
        struct pollfd p[2] = {{.fd = gw_own_fd, .events = POLLIN}, {.fd = gw_hub_fd, .events = POLLIN}};
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = poll(p, 2, -1);
        Py_END_ALLOW_THREADS
        if (rc < 0 && errno == EINTR) {
            if (PyErr_CheckSignals() < 0)
                return NULL;
            continue;
        }
        if (rc < 0 || ((p[0].revents | p[1].revents) & (POLLHUP | POLLERR)))
            return PyErr_Format(PyExc_SystemError, "error waiting for signal");
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int got;
            Py_BEGIN_ALLOW_THREADS
            got = gw_signal_read(p[i].fd);
            Py_END_ALLOW_THREADS
            if (got < 0)
                continue;
            gw_signal_run(got);
            if (wanted < 0 || got == wanted) {
                gw_signal_received = got;
                return PyBytes_FromString("");
            }
        }
    }
}

/* GIL held. uwsgi.signal_received(): the signal the last signal_wait() on
 * this thread returned for. */
static PyObject *gw_uw_signal_received(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(gw_signal_received);
}

/* GIL held. uwsgi.add_timer(num, seconds): the master raises num every
 * seconds. */
static PyObject *gw_uw_add_timer(PyObject *self, PyObject *args)
{
    unsigned char sig;
    int secs;
    if (!PyArg_ParseTuple(args, "Bi:add_timer", &sig, &secs))
        return NULL;
    if (secs <= 0)
        return PyErr_Format(PyExc_ValueError, "unable to add timer: %d seconds", secs);
    char msg[64];
    if (gw_signal_request("add timer", msg, snprintf(msg, sizeof msg, "t%d %lld", sig, (long long)secs * 1000)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* GIL held. uwsgi.add_ms_timer(num, milliseconds). */
static PyObject *gw_uw_add_ms_timer(PyObject *self, PyObject *args)
{
    unsigned char sig;
    long msecs;
    if (!PyArg_ParseTuple(args, "Bl:add_ms_timer", &sig, &msecs))
        return NULL;
    if (msecs <= 0)
        return PyErr_Format(PyExc_ValueError, "unable to add timer: %ld milliseconds", msecs);
    char msg[64];
    if (gw_signal_request("add timer", msg, snprintf(msg, sizeof msg, "t%d %ld", sig, msecs)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* GIL held. uwsgi.add_rb_timer(num, seconds[, iterations]): a timer that
 * stops after iterations signals (0: never). */
static PyObject *gw_uw_add_rb_timer(PyObject *self, PyObject *args)
{
    unsigned char sig;
    int secs, iterations = 0;
    if (!PyArg_ParseTuple(args, "Bi|i:add_rb_timer", &sig, &secs, &iterations))
        return NULL;
    if (secs <= 0 || iterations < 0)
        return PyErr_Format(PyExc_ValueError, "unable to add rb_timer: %d seconds, %d iterations", secs, iterations);
    char msg[64];
    if (gw_signal_request("add rb_timer", msg, snprintf(msg, sizeof msg, "b%d %d %d", sig, secs, iterations)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* GIL held. uwsgi.add_cron(num, minute, hour, day, month, weekday): -1
 * matches any value, -N every Nth, as uWSGI reads them. */
static PyObject *gw_uw_add_cron(PyObject *self, PyObject *args)
{
    unsigned char sig;
    int minute, hour, day, month, week;
    if (!PyArg_ParseTuple(args, "Biiiii:add_cron", &sig, &minute, &hour, &day, &month, &week))
        return NULL;
    char msg[96];
    if (gw_signal_request("add cron", msg,
                          snprintf(msg, sizeof msg, "c%d %d %d %d %d %d", sig, minute, hour, day, month, week)) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

/* GIL held. uwsgi.add_file_monitor(num, path): the master raises num when
 * path changes (inotify). */
static PyObject *gw_uw_add_file_monitor(PyObject *self, PyObject *args)
{
    unsigned char sig;
    const char *path;
    if (!PyArg_ParseTuple(args, "Bs:add_file_monitor", &sig, &path))
        return NULL;
    if (strlen(path) > GW_SIGNAL_PATH_MAX || strchr(path, '\n') != NULL)
        return PyErr_Format(PyExc_ValueError, "unable to add file monitor: invalid file name");
    char msg[300];
    if (gw_signal_request("add file monitor", msg, snprintf(msg, sizeof msg, "f%d %s", sig, path)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* GIL held. uwsgi._signal_fd(): this process's own signal socket, for a
 * mule's or a spooler's wait loop to poll (gw_uwsgi_mule_source.h,
 * gw_uwsgi_spooler_source.h); -1 when it has none. */
static PyObject *gw_uw_signal_fd(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(gw_own_fd);
}

/* GIL held. uwsgi._signal_take(): runs the handler of a signal waiting on
 * this process's own socket, if one is; the socket never blocks. */
static PyObject *gw_uw_signal_take(PyObject *self, PyObject *unused)
{
    int sig = gw_own_fd >= 0 ? gw_signal_read(gw_own_fd) : -1;
    if (sig >= 0)
        gw_signal_run(sig);
    Py_RETURN_NONE;
}

PyMethodDef gw_signal_methods[] = {
    {"register_signal", gw_uw_register_signal, METH_VARARGS, "Register a handler for a signal and its target."},
    {"signal", gw_uw_signal, METH_VARARGS, "Raise a signal through the master."},
    {"signal_registered", gw_uw_signal_registered, METH_VARARGS, "True when this process has a handler for it."},
    {"signal_wait", gw_uw_signal_wait, METH_VARARGS, "Wait for a signal and run its handler."},
    {"signal_received", gw_uw_signal_received, METH_NOARGS, "The signal signal_wait() returned for."},
    {"add_timer", gw_uw_add_timer, METH_VARARGS, "Raise a signal every N seconds."},
    {"add_ms_timer", gw_uw_add_ms_timer, METH_VARARGS, "Raise a signal every N milliseconds."},
    {"add_rb_timer", gw_uw_add_rb_timer, METH_VARARGS, "Raise a signal every N seconds, a number of times."},
    {"add_cron", gw_uw_add_cron, METH_VARARGS, "Raise a signal when the clock matches."},
    {"add_file_monitor", gw_uw_add_file_monitor, METH_VARARGS, "Raise a signal when a file changes."},
    {"_signal_fd", gw_uw_signal_fd, METH_NOARGS, "This process's own signal socket (mules, spoolers)."},
    {"_signal_take", gw_uw_signal_take, METH_NOARGS, "Run the handler of a signal waiting for this process."},
    {NULL, NULL, 0, NULL},
};
