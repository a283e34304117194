/*
 * --py-autoreload's list of module source files, which the master polls
 * (server/process_watch.go). The process that imports the app writes the
 * list whole; a worker then appends each module it imports later, while
 * serving, as uWSGI's reloader scans sys.modules in its workers: a Django
 * project imports its views only on the first request, and editing them
 * must reload too.
 *
 * Each line is "MTIME_NS<TAB>PATH": the file's modification time when the
 * import read it, so the master compares the file with the code the worker
 * runs. Were it to take the time itself, when the module first shows up in
 * the list, an edit made in between would become its baseline and never
 * reload, leaving that worker on the old code for good.
 *
 * A failure to write the list only costs the reloads: it is printed once
 * and the worker stops listing.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char gw_modules_source[] =
    "import importlib.machinery, os, sys\n"
    "listed = set()\n"
    "imported = {}  # source file -> st_mtime_ns as its import read it\n"
    "def watch_imports():\n"
    "    # Every import of a source file asks its loader's path_stats first,\n"
    "    # before reading the source or checking the cached bytecode. The time\n"
    "    # is taken before the loader's own look: an edit racing the import\n"
    "    # then shows as newer than what is listed, never as the same.\n"
    "    loader = importlib.machinery.SourceFileLoader\n"
    "    path_stats = loader.path_stats\n"
    "    def noted_path_stats(self, path):\n"
    "        try:\n"
    "            imported[path] = os.stat(path).st_mtime_ns\n"
    "        except OSError:\n"
    "            pass\n"
    "        return path_stats(self, path)\n"
    "    loader.path_stats = noted_path_stats\n"
    "def sources():\n"
    "    return {f for m in list(sys.modules.values())\n"
    "            for f in [getattr(m, '__file__', None)]\n"
    "            if isinstance(f, str) and f.endswith('.py')}\n"
    "def mtime(f):\n"
    "    # A module imported before the watch began (Python's own, at start)\n"
    "    # has the time its file has now; 0 when it cannot be read.\n"
    "    if f in imported:\n"
    "        return imported[f]\n"
    "    try:\n"
    "        return os.stat(f).st_mtime_ns\n"
    "    except OSError:\n"
    "        return 0\n"
    "def encode(files):\n"
    "    lines = ''.join('%d\\t%s\\n' % (mtime(f), f) for f in sorted(files))\n"
    "    return lines.encode('utf-8', 'surrogateescape')\n"
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
static PyObject *gw_modules_write;  /* write_all */
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
    Py_CLEAR(gw_modules_write);
}

static Py_ssize_t gw_modules_count(void)
{
    PyObject *modules = PySys_GetObject("modules"); /* borrowed */
    return modules != NULL && PyDict_Check(modules) ? PyDict_GET_SIZE(modules) : 0;
}

/* GIL held. Notes the modification time of every source file imported from
 * now on, and keeps path for gw_modules_list and gw_modules_note_new; an
 * empty path asks for nothing. Called before the app is imported. */
void gw_modules_watch(const char *path)
{
    if (*path == '\0')
        return;
    PyObject *globals = NULL, *ran = NULL, *watching = NULL;
    if ((gw_modules_path = strdup(path)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if ((globals = PyDict_New()) == NULL || PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        (ran = PyRun_String(gw_modules_source, Py_file_input, globals, globals)) == NULL)
        goto done;
    gw_modules_append = PyDict_GetItemString(globals, "append_new"); /* borrowed */
    Py_XINCREF(gw_modules_append);
    gw_modules_write = PyDict_GetItemString(globals, "write_all"); /* borrowed */
    Py_XINCREF(gw_modules_write);
    PyObject *watch_imports = PyDict_GetItemString(globals, "watch_imports"); /* borrowed */
    if (gw_modules_append == NULL || gw_modules_write == NULL || watch_imports == NULL)
        goto done;
    watching = PyObject_CallNoArgs(watch_imports);
done:
    if (watching == NULL)
        gw_modules_fail();
    Py_XDECREF(watching);
    Py_XDECREF(ran);
    Py_XDECREF(globals);
}

/* GIL held, once the app is imported. Writes every imported module's source
 * file to the list. */
void gw_modules_list(void)
{
    if (gw_modules_path == NULL)
        return;
    gw_modules_seen = gw_modules_count();
    PyObject *written = PyObject_CallFunction(gw_modules_write, "s", gw_modules_path);
    if (written == NULL)
        gw_modules_fail();
    Py_XDECREF(written);
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
