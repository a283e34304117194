/*
 * --py-autoreload's list of module source files, which the master polls
 * (server/process_watch.go). The process that imports the app writes the
 * list whole; a worker then appends each module it imports later, while
 * serving, as uWSGI's reloader scans sys.modules in its workers: a Django
 * project imports its views only on the first request, and editing them
 * must reload too.
 *
 * A failure to write the list only costs the reloads: it is printed once
 * and the worker stops listing.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char gw_modules_source[] =
    "import os, sys\n"
    "listed = set()\n"
    "def sources():\n"
    "    return {f for m in list(sys.modules.values())\n"
    "            for f in [getattr(m, '__file__', None)]\n"
    "            if isinstance(f, str) and f.endswith('.py')}\n"
    "def encode(files):\n"
    "    return ''.join(f + '\\n' for f in sorted(files)).encode('utf-8', 'surrogateescape')\n"
    "def write_all(path):\n"
    "    # Replaced whole (written aside, then renamed), so the master never\n"
    "    # reads half of it; lazy workers each write theirs at start.\n"
    "    files = sources()\n"
    "    listed.update(files)\n"
    "    aside = '%s.%d.tmp' % (path, os.getpid())\n"
    "    with open(aside, 'wb') as out:\n"
    "        out.write(encode(files))\n"
    "    os.replace(aside, path)\n"
    "def append_new(path):\n"
    "    new = sources() - listed\n"
    "    if not new:\n"
    "        return\n"
    "    listed.update(new)\n"
    "    # One O_APPEND write: lines from several workers never interleave.\n"
    "    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)\n"
    "    try:\n"
    "        os.write(fd, encode(new))\n"
    "    finally:\n"
    "        os.close(fd)\n";

static char *gw_modules_path;       /* NULL: no list asked for, or it failed */
static PyObject *gw_modules_append; /* append_new */
static Py_ssize_t gw_modules_seen;  /* len(sys.modules) when last listed */

/* GIL held. Prints the error and stops listing. */
static void gw_modules_fail(void)
{
    if (PyErr_Occurred())
        PyErr_Print();
    fprintf(stderr, "gowsgi: --py-autoreload cannot list the app's modules in %s; edits will not reload\n",
            gw_modules_path != NULL ? gw_modules_path : "its list");
    fflush(stderr);
    free(gw_modules_path);
    gw_modules_path = NULL;
    Py_CLEAR(gw_modules_append);
}

static Py_ssize_t gw_modules_count(void)
{
    PyObject *modules = PySys_GetObject("modules"); /* borrowed */
    return modules != NULL && PyDict_Check(modules) ? PyDict_GET_SIZE(modules) : 0;
}

/* GIL held. Writes every imported module's source file to path, and keeps
 * path for gw_modules_note_new; an empty path asks for nothing. */
void gw_modules_start(const char *path)
{
    if (*path == '\0')
        return;
    PyObject *globals = NULL, *ran = NULL, *written = NULL;
    if ((gw_modules_path = strdup(path)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if ((globals = PyDict_New()) == NULL || PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        (ran = PyRun_String(gw_modules_source, Py_file_input, globals, globals)) == NULL)
        goto done;
    gw_modules_append = PyDict_GetItemString(globals, "append_new"); /* borrowed */
    Py_XINCREF(gw_modules_append);
    PyObject *write_all = PyDict_GetItemString(globals, "write_all"); /* borrowed */
    if (gw_modules_append == NULL || write_all == NULL)
        goto done;
    gw_modules_seen = gw_modules_count();
    written = PyObject_CallFunction(write_all, "s", path);
done:
    if (written == NULL)
        gw_modules_fail();
    Py_XDECREF(written);
    Py_XDECREF(ran);
    Py_XDECREF(globals);
}

/* GIL held, called after each request. Appends to the list the modules
 * imported since the last call; costs a size check when there are none. */
void gw_modules_note_new(void)
{
    if (gw_modules_path == NULL)
        return;
    Py_ssize_t count = gw_modules_count();
    if (count == gw_modules_seen)
        return;
    gw_modules_seen = count;
    PyObject *appended = PyObject_CallFunction(gw_modules_append, "s", gw_modules_path);
    if (appended == NULL)
        gw_modules_fail();
    Py_XDECREF(appended);
}
