/*
 * The processes the zygote forks beside the workers: spoolers
 * (gw_uwsgi_spooler.c) and mules (gw_uwsgi_mule.c). Each kind reads its part of the
 * GOWSGI_APP_* environment in the zygote, makes there what its processes
 * and the workers share (the mules' message queues, the spoolers' wake-up
 * sockets and pid table: every fork inherits them), adds its functions to
 * the "uwsgi" module and runs in the process forked for it.
 *
 * The master asks the zygote for one with "S<num>" (spooler num, from 1)
 * or "M<num>" (mule num, from 1); no descriptors go with the command.
 */
#ifndef GW_UWSGI_AUX_H
#define GW_UWSGI_AUX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* gw_uwsgi_spooler.c */
void gw_spooler_read_env(void);                 /* GIL: any; in the zygote, before its env is hidden */
int gw_spooler_setup(void);                     /* GIL: any; in the zygote, before any fork; -1 with errno */
int gw_spooler_module_init(PyObject *uwsgi);    /* GIL held: adds the spooler's part of "uwsgi" */
int gw_spooler_run(int num, int post_fork);     /* GIL held; in the forked spooler; returns its exit status */

/* gw_uwsgi_mule.c */
void gw_mule_read_env(void);                    /* GIL: any; in the zygote, before its env is hidden */
int gw_mule_setup(void);                        /* GIL: any; in the zygote, before any fork; -1 with errno */
int gw_mule_module_init(PyObject *uwsgi);       /* GIL held: adds the mules' part of "uwsgi" */
int gw_mule_run(int num, int post_fork);        /* GIL held; in the forked mule; returns its exit status */

/* gw_uwsgi.c */
int gw_uwsgi_run_source(PyObject *module, const char *source, const char *filename); /* GIL held: 0 or -1 */

#endif
