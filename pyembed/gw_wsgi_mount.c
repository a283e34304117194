/*
 * Several apps in one worker, each under its mount point, and the choice of
 * one per request, as uWSGI's --mount and --manage-script-name make it:
 *
 *   - with manage-script-name, the longest mount point that is PATH_INFO
 *     or a prefix of it ending at a '/' becomes SCRIPT_NAME, and PATH_INFO
 *     keeps the rest: /blog/post/1 under /blog is SCRIPT_NAME=/blog
 *     PATH_INFO=/post/1 (PEP 3333, "environ Variables");
 *   - then the app is the one whose mount point equals SCRIPT_NAME (trailing
 *     slashes aside), else the default app, else there is none and the
 *     request gets a 404.
 *
 * Without manage-script-name the web server's SCRIPT_NAME alone decides,
 * as in uWSGI (over HTTP it is empty, so the default app serves).
 *
 * The choice is made here, in the one cgo call that serves the request and
 * after the one pass over the vars block that builds environ, which noted
 * SCRIPT_NAME and PATH_INFO: routing in Go would walk the block a second
 * time and copy it to rewrite the two variables.
 */
#include "gw.h"

#include <stdlib.h>
#include <string.h>

PyObject *gw_app; /* the default app */

typedef struct {
    char *point; /* no trailing '/'; never empty (the root mount is gw_app) */
    size_t len;
    PyObject *app;
} gw_mount;

static gw_mount *gw_mounts;
static int gw_nmounts;
static int gw_manage_script_name;

/* GIL held. Splits the "POINT=APP" lines into the mount table (apps bound
 * later by gw_mounts_bind) and returns the loader's list of (point, app
 * spec) pairs, in the same order. */
PyObject *gw_mounts_parse(const char *lines, int manage_script_name)
{
    gw_manage_script_name = manage_script_name;
    PyObject *list = PyList_New(0);
    for (const char *p = lines; list != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n'), *end = nl != NULL ? nl : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq == NULL) {
            PyErr_Format(PyExc_ValueError, "mount %.200s is not POINT=APP", p);
            goto error;
        }
        gw_mount *grown = realloc(gw_mounts, (size_t)(gw_nmounts + 1) * sizeof *gw_mounts);
        char *point = strndup(p, (size_t)(eq - p));
        if (grown == NULL || point == NULL) {
            if (grown != NULL)
                gw_mounts = grown;
            free(point);
            PyErr_NoMemory();
            goto error;
        }
        gw_mounts = grown;
        gw_mounts[gw_nmounts++] = (gw_mount){.point = point, .len = (size_t)(eq - p), .app = NULL};
        PyObject *pair = Py_BuildValue("(s#s#)", p, (Py_ssize_t)(eq - p), eq + 1, (Py_ssize_t)(end - eq - 1));
        if (pair == NULL || PyList_Append(list, pair) < 0) {
            Py_XDECREF(pair);
            goto error;
        }
        Py_DECREF(pair);
        p = nl != NULL ? nl + 1 : end;
    }
    return list;
error:
    Py_XDECREF(list);
    return NULL;
}

/* GIL held. Takes the apps the loader returned: apps[0] is the default app
 * or None, then one per mount. A root mount ("/", stored as "") becomes the
 * default app and leaves the table. */
int gw_mounts_bind(PyObject *apps)
{
    if (!PyList_Check(apps) || PyList_GET_SIZE(apps) != 1 + gw_nmounts) {
        PyErr_SetString(PyExc_RuntimeError, "the loader returned the wrong number of apps");
        return -1;
    }
    PyObject *first = PyList_GET_ITEM(apps, 0);
    if (first != Py_None) {
        Py_INCREF(first);
        gw_app = first;
    }
    int kept = 0;
    for (int i = 0; i < gw_nmounts; i++) {
        PyObject *app = PyList_GET_ITEM(apps, 1 + i);
        Py_INCREF(app);
        if (gw_mounts[i].len == 0) {
            Py_XDECREF(gw_app);
            gw_app = app;
            free(gw_mounts[i].point);
            continue;
        }
        gw_mounts[kept] = gw_mounts[i];
        gw_mounts[kept++].app = app;
    }
    gw_nmounts = kept;
    return 0;
}

/* GIL: any. The mount whose point is the longest prefix of path that ends
 * at a '/' of it or at its end, as uWSGI matches (a mount at /a never takes
 * /ab). */
static const gw_mount *gw_longest_prefix(const char *path, size_t len)
{
    const gw_mount *best = NULL;
    for (int i = 0; i < gw_nmounts; i++) {
        const gw_mount *m = &gw_mounts[i];
        if (m->len <= len && (best == NULL || m->len > best->len) && memcmp(path, m->point, m->len) == 0 &&
            (m->len == len || path[m->len] == '/'))
            best = m;
    }
    return best;
}

/* GIL: any. The mount whose point is script_name, ignoring trailing '/'. */
static const gw_mount *gw_exact(const char *script_name, size_t len)
{
    while (len > 0 && script_name[len - 1] == '/')
        len--;
    for (int i = 0; i < gw_nmounts; i++) {
        if (gw_mounts[i].len == len && memcmp(script_name, gw_mounts[i].point, len) == 0)
            return &gw_mounts[i];
    }
    return NULL;
}

static int gw_set_latin1(PyObject *environ, const char *key, const char *p, size_t n)
{
    PyObject *v = PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
    int rc = v != NULL ? PyDict_SetItemString(environ, key, v) : -1;
    Py_XDECREF(v);
    return rc;
}

/* GIL held. Chooses the request's app into s->app, from the SCRIPT_NAME and
 * PATH_INFO that gw_environ_new noted, rewriting the two in environ when
 * manage-script-name moves a mount point. Returns 0, or -1 with an
 * exception set. */
int gw_route(gw_slot *s, PyObject *environ)
{
    s->app = gw_app;
    if (gw_nmounts == 0)
        return 0;
    const char *script_name = s->script_name;
    size_t script_name_len = s->script_name_len;
    const gw_mount *m = NULL;
    if (gw_manage_script_name && (m = gw_longest_prefix(s->path_info, s->path_info_len)) != NULL) {
        if (gw_set_latin1(environ, "SCRIPT_NAME", m->point, m->len) < 0 ||
            gw_set_latin1(environ, "PATH_INFO", s->path_info + m->len, s->path_info_len - m->len) < 0)
            return -1;
        script_name = m->point;
        script_name_len = m->len;
    }
    if ((m = gw_exact(script_name, script_name_len)) != NULL)
        s->app = m->app;
    return 0;
}
