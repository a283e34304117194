/*
 * The spooler (uWSGI's --spooler): processes forked from the zygote that
 * run the jobs apps queue as files in a folder. The C part is what must
 * exist before a fork or outside Python: the folders and options from the
 * GOWSGI_APP_SPOOLER* environment, a wake-up socket per folder (every
 * process inherits it, so uwsgi.spool() in a worker wakes that folder's
 * spoolers at once instead of at the next scan), and a shared page with
 * each spooler's pid and the frequency uwsgi.set_spooler_frequency() set,
 * which every process reads. Writing, scanning and running jobs is Python
 * (gw_uwsgi_spooler_source.h), as uWSGI's job files are a small byte format.
 *
 * Where a signal for the spooler would arrive: the spooler waits between
 * scans in _spooler_wait (gw_uwsgi_spooler_source.h), polling its folder's wake-up
 * socket; a signal socket belongs in that poll.
 */
#include "gw.h"
#include "gw_uwsgi_aux.h"
#include "gw_uwsgi_spooler_source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_SPOOLER_MAX_DIRS 64
#define GW_SPOOLER_MAX_PROCS 512

/* What every process shares, in one page the zygote maps before forking. */
typedef struct {
    int frequency;                    /* set_spooler_frequency(); 0: the option's */
    int pids[GW_SPOOLER_MAX_PROCS];   /* spooler num - 1 -> its pid; 0: none yet */
} gw_spooler_board;

static const char *gw_spooler_dirs_env; /* "DIR\nDIR..." */
static char *gw_spooler_dirs[GW_SPOOLER_MAX_DIRS];
static int gw_spooler_ndirs, gw_spooler_procs = 1, gw_spooler_frequency = 30, gw_spooler_ordered, gw_spooler_quiet;
static const char *gw_spooler_chdir = "";
static int gw_spooler_wake[GW_SPOOLER_MAX_DIRS][2]; /* [0] written by spool(), [1] polled by the spoolers */
static gw_spooler_board *gw_spooler_shared;
static int gw_spooler_num; /* this process's spooler number; 0 when not a spooler */

static long gw_env_long(const char *name, long fallback)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtol(v, NULL, 10) : fallback;
}

/* GIL: any. */
void gw_spooler_read_env(void)
{
    const char *dirs = getenv("GOWSGI_APP_SPOOLERS");
    gw_spooler_dirs_env = dirs != NULL ? strdup(dirs) : "";
    gw_spooler_procs = (int)gw_env_long("GOWSGI_APP_SPOOLER_PROCESSES", 1);
    gw_spooler_frequency = (int)gw_env_long("GOWSGI_APP_SPOOLER_FREQUENCY", 30);
    gw_spooler_ordered = gw_env_long("GOWSGI_APP_SPOOLER_ORDERED", 0) == 1;
    gw_spooler_quiet = gw_env_long("GOWSGI_APP_SPOOLER_QUIET", 0) == 1;
    const char *chdir_to = getenv("GOWSGI_APP_SPOOLER_CHDIR");
    gw_spooler_chdir = chdir_to != NULL ? strdup(chdir_to) : "";
    if (gw_spooler_procs < 1)
        gw_spooler_procs = 1;
}

/* GIL: any. Splits the folders and makes the wake-up sockets and the
 * shared page; nothing when no folder was given. */
int gw_spooler_setup(void)
{
    char *copy = strdup(gw_spooler_dirs_env);
    if (copy == NULL)
        return -1;
    for (char *save = NULL, *d = strtok_r(copy, "\n", &save); d != NULL && gw_spooler_ndirs < GW_SPOOLER_MAX_DIRS;
         d = strtok_r(NULL, "\n", &save))
        gw_spooler_dirs[gw_spooler_ndirs++] = d;
    if (gw_spooler_ndirs == 0)
        return 0;
    if (gw_spooler_ndirs * gw_spooler_procs > GW_SPOOLER_MAX_PROCS) {
        errno = E2BIG;
        return -1;
    }
    for (int i = 0; i < gw_spooler_ndirs; i++) {
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, gw_spooler_wake[i]) < 0)
            return -1;
    }
    void *page = mmap(NULL, sizeof(gw_spooler_board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return -1;
    gw_spooler_shared = page;
    return 0;
}

/* GIL held. The spooler's settings for the Python part, as a dict. */
static PyObject *gw_sp_config(PyObject *self, PyObject *unused)
{
    PyObject *dirs = PyTuple_New(gw_spooler_ndirs);
    PyObject *wake = dirs != NULL ? PyTuple_New(gw_spooler_ndirs) : NULL;
    PyObject *wait = wake != NULL ? PyTuple_New(gw_spooler_ndirs) : NULL;
    PyObject *config = NULL;
    if (wait == NULL)
        goto done;
    for (int i = 0; i < gw_spooler_ndirs; i++) {
        PyObject *dir = PyBytes_FromString(gw_spooler_dirs[i]);
        PyObject *w = dir != NULL ? PyLong_FromLong(gw_spooler_wake[i][0]) : NULL;
        PyObject *r = w != NULL ? PyLong_FromLong(gw_spooler_wake[i][1]) : NULL;
        if (r == NULL) {
            Py_XDECREF(w);
            Py_XDECREF(dir);
            goto done;
        }
        PyTuple_SET_ITEM(dirs, i, dir); /* steals */
        PyTuple_SET_ITEM(wake, i, w);
        PyTuple_SET_ITEM(wait, i, r);
    }
    config = Py_BuildValue("{s:O,s:O,s:O,s:i,s:i,s:O,s:O,s:y}", "dirs", dirs, "wake", wake, "wait", wait,
                           "processes", gw_spooler_procs, "frequency", gw_spooler_frequency, "ordered",
                           gw_spooler_ordered ? Py_True : Py_False, "quiet", gw_spooler_quiet ? Py_True : Py_False,
                           "chdir", gw_spooler_chdir);
done:
    Py_XDECREF(wait);
    Py_XDECREF(wake);
    Py_XDECREF(dirs);
    return config;
}

/* GIL held. The pid of every spooler process, in order; 0 for one not
 * forked yet. */
static PyObject *gw_sp_pids(PyObject *self, PyObject *unused)
{
    int n = gw_spooler_shared != NULL ? gw_spooler_ndirs * gw_spooler_procs : 0;
    PyObject *pids = PyList_New(n);
    for (int i = 0; pids != NULL && i < n; i++) {
        PyObject *pid = PyLong_FromLong(__atomic_load_n(&gw_spooler_shared->pids[i], __ATOMIC_ACQUIRE));
        if (pid == NULL) {
            Py_CLEAR(pids);
            break;
        }
        PyList_SET_ITEM(pids, i, pid);
    }
    return pids;
}

/* GIL held. The scan interval in seconds now: set_spooler_frequency()'s,
 * else the option's. */
static PyObject *gw_sp_frequency(PyObject *self, PyObject *unused)
{
    int set = gw_spooler_shared != NULL ? __atomic_load_n(&gw_spooler_shared->frequency, __ATOMIC_ACQUIRE) : 0;
    return PyLong_FromLong(set > 0 ? set : gw_spooler_frequency);
}

/* GIL held. uwsgi.set_spooler_frequency(seconds): for every spooler, from
 * its next wait; True, as uWSGI answers. */
static PyObject *gw_sp_set_frequency(PyObject *self, PyObject *args)
{
    int seconds;
    if (!PyArg_ParseTuple(args, "i:set_spooler_frequency", &seconds))
        return NULL;
    if (gw_spooler_shared != NULL)
        __atomic_store_n(&gw_spooler_shared->frequency, seconds, __ATOMIC_RELEASE);
    Py_RETURN_TRUE;
}

/* GIL held. This process's spooler number (from 1), 0 when not one. */
static PyObject *gw_sp_num(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(gw_spooler_num);
}

static PyMethodDef gw_spooler_methods[] = {
    {"_gowsgi_spooler_config", gw_sp_config, METH_NOARGS, NULL},
    {"_gowsgi_spooler_pids", gw_sp_pids, METH_NOARGS, NULL},
    {"_gowsgi_spooler_frequency", gw_sp_frequency, METH_NOARGS, NULL},
    {"_gowsgi_spooler_num", gw_sp_num, METH_NOARGS, NULL},
    {"set_spooler_frequency", gw_sp_set_frequency, METH_VARARGS, "Set how often the spoolers scan, in seconds."},
    {NULL, NULL, 0, NULL},
};

/* GIL held. Adds the C functions to module, then runs the Python part. */
int gw_spooler_module_init(PyObject *uwsgi)
{
    if (PyModule_AddFunctions(uwsgi, gw_spooler_methods) < 0)
        return -1;
    return gw_uwsgi_run_source(uwsgi, gw_spooler_source, "<gowsgi uwsgi spooler>");
}

/* GIL held. In spooler num, just forked: records its pid, runs the
 * post-fork hook (as uWSGI runs it in spoolers too) and the scan loop,
 * which returns only when it fails. */
int gw_spooler_run(int num, int post_fork)
{
    if (num < 1 || num > gw_spooler_ndirs * gw_spooler_procs || gw_spooler_shared == NULL) {
        fprintf(stderr, "gowsgi: no spooler %d is configured\n", num);
        return 1;
    }
    gw_spooler_num = num;
    __atomic_store_n(&gw_spooler_shared->pids[num - 1], (int)getpid(), __ATOMIC_RELEASE);
    if (post_fork)
        gw_uwsgi_post_fork();
    PyObject *uwsgi = PyImport_ImportModule("uwsgi");
    PyObject *r = uwsgi != NULL ? PyObject_CallMethod(uwsgi, "_spooler_main", "(i)", num) : NULL;
    if (r == NULL)
        PyErr_Print();
    Py_XDECREF(r);
    Py_XDECREF(uwsgi);
    fflush(stderr);
    return 1;
}
