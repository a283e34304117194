/*
 * Starting the embedded interpreter and importing the app, once per worker
 * process, or once in the zygote (gw_zygote.c) whose forked workers inherit
 * it. The import itself is done by the loader (gw_python_loader.h), because
 * composing a helpful one-line error summary is plain Python work; the
 * mount table it fills is gw_wsgi_mount.c's.
 */
#include "gw.h"
#include "gw_python_loader.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>


/* GIL: any. The running interpreter's version, e.g. "3.11.2 (main, ...)". */
const char *gw_version(void)
{
    return Py_GetVersion();
}

/* GIL not held. Points config at home (uWSGI's --home). A virtualenv made
 * by "python3 -m venv" has no standard library of its own: Python finds it,
 * and then the venv's site-packages and sys.prefix, when the program is the
 * venv's bin/python, whose pyvenv.cfg names the base installation (PEP 405)
 * — so that is the program name, as uWSGI makes it. Any other directory is
 * taken to be an installation prefix, PYTHONHOME. The master has checked
 * the version (pyembed.HomeVersion). */
static PyStatus gw_config_home(PyConfig *config, const char *home)
{
    char path[4096];
    if (home == NULL || home[0] == '\0')
        return PyStatus_Ok();
    snprintf(path, sizeof path, "%s/pyvenv.cfg", home);
    if (access(path, R_OK) == 0) {
        snprintf(path, sizeof path, "%s/bin/python", home);
        return PyConfig_SetBytesString(config, &config->program_name, path);
    }
    return PyConfig_SetBytesString(config, &config->home, home);
}

/* Python that points sys.executable at the interpreter gowsgi embeds: left
 * alone, it is the gowsgi binary (argv[0]), so subprocess.run([sys.executable,
 * "-c", ...]) or multiprocessing's spawn would start gowsgi, which wants an
 * app. The interpreter is python3.X of the installation whose standard
 * library is in use (sys.base_prefix, else the one libpython was built for);
 * under --home with a virtualenv, sys.executable is the virtualenv's python,
 * as when it runs, and sys._base_executable the installation's. An
 * interpreter that cannot be found is "", as Python documents. */
static const char gw_executable_source[] =
    "import os, sys, sysconfig\n"
    "def interpreter():\n"
    "    name = 'python%d.%d' % sys.version_info[:2]\n"
    "    for folder in (os.path.join(sys.base_prefix, 'bin'), sysconfig.get_config_var('BINDIR')):\n"
    "        path = os.path.join(folder or '', name)\n"
    "        if folder and os.access(path, os.X_OK):\n"
    "            return path\n"
    "    return ''\n"
    "base = interpreter()\n"
    "venv = os.path.join(sys.prefix, 'bin', 'python')\n"
    "in_venv = sys.prefix != sys.base_prefix and os.access(venv, os.X_OK)\n"
    "sys.executable = venv if in_venv else base\n"
    "sys._base_executable = base\n";

/* GIL held. Runs gw_executable_source; a failure is printed and leaves
 * sys.executable as it was, which costs only the subprocesses. */
static void gw_point_executable(void)
{
    PyObject *globals = PyDict_New(), *ran = NULL;
    if (globals != NULL && PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) == 0)
        ran = PyRun_String(gw_executable_source, Py_file_input, globals, globals);
    if (ran == NULL)
        PyErr_Print();
    Py_XDECREF(ran);
    Py_XDECREF(globals);
}

/* GIL not held on entry; held on success. The Go runtime owns the
 * process's signals (the zygote's are set by gw_zygote.c), so Python must
 * not install handlers of its own. The uwsgi modules are registered first
 * (gw_uwsgi.c). */
int gw_start(const char *argv0, const char *home, char *summary, size_t cap)
{
    PyConfig config;
    char *argv[1] = {(char *)argv0};
    if (gw_register_uwsgi() < 0) {
        snprintf(summary, cap, "cannot start Python: registering the uwsgi module failed");
        return -1;
    }
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    PyStatus st = PyConfig_SetBytesArgv(&config, 1, argv);
    if (!PyStatus_Exception(st))
        st = gw_config_home(&config, home);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        snprintf(summary, cap, "cannot start Python: %s", st.err_msg ? st.err_msg : "unknown error");
        return -1;
    }
    gw_point_executable();
    return 0;
}

/* GIL held. Runs the loader's source and returns a new reference to its
 * globals. */
static PyObject *gw_loader_globals(void)
{
    PyObject *code = Py_CompileString(gw_loader_source, "<gowsgi loader>", Py_file_input);
    PyObject *globals = PyDict_New(), *builtins = PyImport_ImportModule("builtins"), *ran = NULL;
    if (code == NULL || globals == NULL || builtins == NULL ||
        PyDict_SetItemString(globals, "__builtins__", builtins) < 0 ||
        (ran = PyEval_EvalCode(code, globals, globals)) == NULL)
        Py_CLEAR(globals);
    Py_XDECREF(ran);
    Py_XDECREF(builtins);
    Py_XDECREF(code);
    return globals;
}

/* GIL held. A new list of the --pythonpath entries. */
static PyObject *gw_path_list(char **paths, int npaths)
{
    PyObject *list = PyList_New(npaths);
    for (int i = 0; list != NULL && i < npaths; i++) {
        PyObject *p = PyUnicode_DecodeFSDefault(paths[i]);
        if (p == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, p);
    }
    return list;
}

/* GIL held. Sets up the types and the environ template, then runs the
 * loader's load() for the default app and every mount; on failure the
 * summary says what went wrong. */
int gw_load(const gw_spec *spec, char *summary, size_t cap)
{
    PyObject *globals = NULL, *path_list = NULL, *mounts = NULL, *result = NULL;
    int rc = -1;
    if (PyType_Ready(&gw_responder_type) < 0 || PyType_Ready(&gw_writer_type) < 0 ||
        PyType_Ready(&gw_file_wrapper_type) < 0 ||
        gw_environ_setup(spec->multithread, spec->multiprocess, spec->run_once,
                         spec->no_file_wrapper ? NULL : (PyObject *)&gw_file_wrapper_type) < 0 ||
        (globals = gw_loader_globals()) == NULL || (path_list = gw_path_list(spec->paths, spec->npaths)) == NULL ||
        (mounts = gw_mounts_parse(spec->mounts, spec->manage_script_name)) == NULL)
        goto internal;
    PyObject *load = PyDict_GetItemString(globals, "load"); /* borrowed */
    if (load == NULL)
        goto internal;
    gw_modules_watch(spec->module_list);
    result = PyObject_CallFunction(load, "OsssOs", path_list, spec->module, spec->wsgi_file, spec->callable, mounts,
                                   spec->paste);
    if (result == NULL || !PyTuple_Check(result) || PyTuple_GET_SIZE(result) != 2)
        goto internal;
    if (PyTuple_GET_ITEM(result, 0) != Py_None) {
        if (gw_mounts_bind(PyTuple_GET_ITEM(result, 0)) < 0)
            goto internal;
        gw_modules_list();
        rc = 0;
    } else {
        const char *msg = PyUnicode_AsUTF8(PyTuple_GET_ITEM(result, 1));
        if (msg == NULL)
            goto internal;
        snprintf(summary, cap, "%s", msg);
    }
    goto done;
internal:
    if (PyErr_Occurred())
        PyErr_Print();
    snprintf(summary, cap, "cannot load the app: the loader failed (traceback above)");
done:
    Py_XDECREF(result);
    Py_XDECREF(mounts);
    Py_XDECREF(path_list);
    Py_XDECREF(globals);
    return rc;
}

/* GIL not held on entry or exit: starts the interpreter, imports the apps
 * and releases the GIL for the slots' threads. Returns 0, or -1 with a
 * one-line summary in summary (any traceback went to stderr). */
int gw_init(const char *argv0, const gw_spec *spec, char *summary, size_t cap)
{
    if (gw_start(argv0, spec->home, summary, cap) < 0)
        return -1;
    int rc = gw_load(spec, summary, cap);
    PyEval_SaveThread();
    return rc;
}
