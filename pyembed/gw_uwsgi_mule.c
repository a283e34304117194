/*
 * Mules (uWSGI's --mule, --mules, --farm): processes forked from the zygote
 * that run the app's code in the background, either a program
 * (--mule=FILE.py) or a loop that hands each message to
 * uwsgi.mule_msg_hook. The zygote makes the message queues before any
 * fork, as uWSGI's master does: one SOCK_SEQPACKET socketpair per mule,
 * one shared by every mule, one per farm; every worker and mule inherits
 * them, so uwsgi.mule_msg() in a worker writes straight into a mule's
 * queue and the master passes no message. A respawned mule inherits the
 * same queue, with what was waiting in it. Sending and receiving is Python
 * (gw_uwsgi_mule_source.h).
 *
 * A signal for a mule arrives on its own signal socket (the zygote's S/M
 * fork command carries it), which _mule_wait polls with its queues, as
 * uWSGI's mule_get_msg(signals=True) does, and runs the handler there.
 */
#include "gw.h"
#include "gw_uwsgi_aux.h"
#include "gw_uwsgi_mule_source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_MULE_MAX 256
#define GW_FARM_MAX 64
/* A message's room in a queue, as uWSGI's --mule-msg-size default. */
#define GW_MULE_MSG_SIZE 65536

static int gw_mule_count;
static const char *gw_mule_programs = ""; /* count lines: a .py file, or empty for a message loop */
static const char *gw_mule_farms = "";    /* "NAME:ID,ID\n..." */
static int gw_mule_nfarms;
/* [0] is written to, [1] read by the mules: queue 0 is the shared one,
 * 1..count the mules'; then one per farm. */
static int gw_mule_queues[1 + GW_MULE_MAX + GW_FARM_MAX][2];
static int gw_mule_id; /* this process's mule number; 0 when not a mule */

static const char *gw_env_copy(const char *name)
{
    const char *v = getenv(name);
    return v != NULL ? strdup(v) : "";
}

/* GIL: any. */
void gw_mule_read_env(void)
{
    const char *count = getenv("GOWSGI_APP_MULES");
    gw_mule_count = count != NULL ? (int)strtol(count, NULL, 10) : 0;
    gw_mule_programs = gw_env_copy("GOWSGI_APP_MULE_PROGRAMS");
    gw_mule_farms = gw_env_copy("GOWSGI_APP_FARMS");
    if (gw_mule_count < 0 || gw_mule_count > GW_MULE_MAX)
        gw_mule_count = 0;
}

/* GIL: any. One queue, sized as uWSGI sizes its mules' queues. */
static int gw_mule_queue(int fds[2])
{
    int size = GW_MULE_MSG_SIZE;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof size) < 0 ||
            setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof size) < 0)
            return -1;
    }
    return 0;
}

/* GIL: any. Makes the queues; nothing without mules. */
int gw_mule_setup(void)
{
    if (gw_mule_count == 0)
        return 0;
    for (const char *p = gw_mule_farms; *p != '\0'; p++)
        gw_mule_nfarms += *p == '\n';
    if (*gw_mule_farms != '\0' && gw_mule_farms[strlen(gw_mule_farms) - 1] != '\n')
        gw_mule_nfarms++;
    if (gw_mule_nfarms > GW_FARM_MAX) {
        errno = E2BIG;
        return -1;
    }
    for (int i = 0; i < 1 + gw_mule_count + gw_mule_nfarms; i++) {
        if (gw_mule_queue(gw_mule_queues[i]) < 0)
            return -1;
    }
    return 0;
}

/* GIL held. A tuple of (write end, read end) for the first n queues. */
static PyObject *gw_mule_queue_tuple(int n)
{
    PyObject *queues = PyTuple_New(n);
    for (int i = 0; queues != NULL && i < n; i++) {
        PyObject *pair = Py_BuildValue("(ii)", gw_mule_queues[i][0], gw_mule_queues[i][1]);
        if (pair == NULL) {
            Py_CLEAR(queues);
            break;
        }
        PyTuple_SET_ITEM(queues, i, pair); /* steals */
    }
    return queues;
}

/* GIL held. The mules' settings for the Python part, as a dict. */
static PyObject *gw_mu_config(PyObject *self, PyObject *unused)
{
    int queues_made = gw_mule_count > 0 ? 1 + gw_mule_count + gw_mule_nfarms : 0;
    PyObject *queues = gw_mule_queue_tuple(queues_made);
    if (queues == NULL)
        return NULL;
    PyObject *config = Py_BuildValue("{s:i,s:s,s:s,s:O}", "count", gw_mule_count, "programs", gw_mule_programs,
                                     "farms", gw_mule_farms, "queues", queues);
    Py_DECREF(queues);
    return config;
}

/* GIL held. uwsgi.mule_id(): this mule's number, from 1; 0 elsewhere. */
static PyObject *gw_mu_id(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(gw_mule_id);
}

static PyMethodDef gw_mule_methods[] = {
    {"_gowsgi_mule_config", gw_mu_config, METH_NOARGS, NULL},
    {"mule_id", gw_mu_id, METH_NOARGS, "This mule's number, from 1; 0 outside a mule."},
    {NULL, NULL, 0, NULL},
};

/* GIL held. Adds the C functions to module, then runs the Python part. */
int gw_mule_module_init(PyObject *uwsgi)
{
    if (PyModule_AddFunctions(uwsgi, gw_mule_methods) < 0)
        return -1;
    return gw_uwsgi_run_source(uwsgi, gw_mule_source, "<gowsgi uwsgi mules>");
}

/* GIL held. In mule num, just forked: runs the post-fork hook (where
 * uwsgidecorators' @mule and @farm functions start), then the mule's
 * program or its message loop. Returns the exit status. */
int gw_mule_run(int num, int post_fork)
{
    if (num < 1 || num > gw_mule_count) {
        fprintf(stderr, "gowsgi: no mule %d is configured\n", num);
        return 1;
    }
    gw_mule_id = num;
    if (post_fork)
        gw_uwsgi_post_fork();
    PyObject *uwsgi = PyImport_ImportModule("uwsgi");
    PyObject *r = uwsgi != NULL ? PyObject_CallMethod(uwsgi, "_mule_main", "(i)", num) : NULL;
    int status = 0;
    if (r == NULL) {
        PyErr_Print(); /* exits the process on SystemExit, with its status */
        status = 1;
    }
    Py_XDECREF(r);
    Py_XDECREF(uwsgi);
    fflush(stdout);
    fflush(stderr);
    return status;
}
