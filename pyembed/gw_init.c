/*
 * Starting the embedded interpreter and importing the app, once per worker
 * process, or once in the zygote (gw_zygote.c) whose forked workers inherit
 * it. The import itself is done by the loader (gw_loader.h), because
 * composing a helpful one-line error summary is plain Python work.
 */
#include "gw.h"
#include "gw_loader.h"

#include <stdio.h>
#include <string.h>

PyObject *gw_app; /* the WSGI callable */
int gw_preloaded;  /* set in a worker forked by the zygote: gw_app is loaded */

/* GIL: any. The running interpreter's version, e.g. "3.11.2 (main, ...)". */
const char *gw_version(void)
{
    return Py_GetVersion();
}

/* GIL not held on entry; held on success. The Go runtime owns the
 * process's signals (the zygote's are set by gw_zygote.c), so Python must
 * not install handlers of its own. */
int gw_start(const char *argv0, char *summary, size_t cap)
{
    PyConfig config;
    char *argv[1] = {(char *)argv0};
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    PyStatus st = PyConfig_SetBytesArgv(&config, 1, argv);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        snprintf(summary, cap, "cannot start Python: %s", st.err_msg ? st.err_msg : "unknown error");
        return -1;
    }
    return 0;
}

/* GIL held. Sets up the types and the environ template, then runs the
 * loader's load(); on failure the summary says what went wrong. */
int gw_load(const char *module, const char *wsgi_file, const char *callable,
            char **paths, int npaths, int multithread, int multiprocess, int run_once, char *summary, size_t cap)
{
    PyObject *code = NULL, *globals = NULL, *builtins = NULL, *ran = NULL, *path_list = NULL, *result = NULL;
    int rc = -1;
    if (PyType_Ready(&gw_responder_type) < 0 || PyType_Ready(&gw_file_wrapper_type) < 0 ||
        gw_environ_setup(multithread, multiprocess, run_once, (PyObject *)&gw_file_wrapper_type) < 0)
        goto internal;
    code = Py_CompileString(gw_loader_source, "<gowsgi loader>", Py_file_input);
    globals = PyDict_New();
    builtins = PyImport_ImportModule("builtins");
    if (code == NULL || globals == NULL || builtins == NULL ||
        PyDict_SetItemString(globals, "__builtins__", builtins) < 0 ||
        (ran = PyEval_EvalCode(code, globals, globals)) == NULL || (path_list = PyList_New(npaths)) == NULL)
        goto internal;
    for (int i = 0; i < npaths; i++) {
        PyObject *p = PyUnicode_DecodeFSDefault(paths[i]);
        if (p == NULL)
            goto internal;
        PyList_SET_ITEM(path_list, i, p);
    }
    PyObject *load = PyDict_GetItemString(globals, "load"); /* borrowed */
    if (load == NULL)
        goto internal;
    result = PyObject_CallFunction(load, "Osss", path_list, module, wsgi_file, callable);
    if (result == NULL || !PyTuple_Check(result) || PyTuple_GET_SIZE(result) != 2)
        goto internal;
    if (PyTuple_GET_ITEM(result, 0) != Py_None) {
        gw_app = PyTuple_GET_ITEM(result, 0);
        Py_INCREF(gw_app);
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
    Py_XDECREF(path_list);
    Py_XDECREF(ran);
    Py_XDECREF(builtins);
    Py_XDECREF(globals);
    Py_XDECREF(code);
    return rc;
}

/* GIL not held on entry or exit: starts the interpreter, imports the app
 * and releases the GIL for the slots' threads. Returns 0, or -1 with a
 * one-line summary in summary (any traceback went to stderr). */
int gw_init(const char *argv0, const char *module, const char *wsgi_file, const char *callable,
            char **paths, int npaths, int multithread, int multiprocess, int run_once, char *summary, size_t cap)
{
    if (gw_start(argv0, summary, cap) < 0)
        return -1;
    int rc = gw_load(module, wsgi_file, callable, paths, npaths, multithread, multiprocess, run_once, summary, cap);
    PyEval_SaveThread();
    return rc;
}
