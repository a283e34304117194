/*
 * uWSGI's metrics in the uwsgi module: metric_inc, metric_dec, metric_mul,
 * metric_div, metric_set, metric_set_max, metric_set_min and metric_get
 * over the --metric metrics of the shared area (gw_shared.h), which the
 * master reads for --stats and --metrics without running Python.
 *
 * The answers are uWSGI 2.0's: True, or None for a metric no --metric
 * declared and for a division by 0; metric_get of an unknown metric is 0.
 * Values change with atomic operations, so no lock is taken and the
 * master's reads never wait.
 */
#include "gw.h"
#include "gw_shared.h"

#include <string.h>

enum gw_metric_op { GW_METRIC_SET, GW_METRIC_INC, GW_METRIC_DEC, GW_METRIC_MUL, GW_METRIC_DIV, GW_METRIC_MAX, GW_METRIC_MIN };

/* The metric named name, or NULL. */
static gw_metric *gw_metric_named(const char *name)
{
    if (gw_shared == NULL)
        return NULL;
    gw_metric *metrics = gw_shared_at(gw_shared->metrics_off);
    for (uint32_t i = 0; i < gw_shared->nmetrics; i++)
        if (strcmp(metrics[i].name, name) == 0)
            return &metrics[i];
    return NULL;
}

/* The value op makes of old and v, wrapping as uWSGI's int64 arithmetic
 * does; set_min lowers only to a v above the metric's initial value, as
 * uWSGI's does. */
static int64_t gw_metric_apply(enum gw_metric_op op, int64_t old, int64_t v, int64_t initial)
{
    switch (op) {
    case GW_METRIC_SET:
        return v;
    case GW_METRIC_INC:
        return (int64_t)((uint64_t)old + (uint64_t)v);
    case GW_METRIC_DEC:
        return (int64_t)((uint64_t)old - (uint64_t)v);
    case GW_METRIC_MUL:
        return (int64_t)((uint64_t)old * (uint64_t)v);
    case GW_METRIC_DIV:
        return v == -1 && old == INT64_MIN ? old : old / v;
    case GW_METRIC_MAX:
        return v > old ? v : old;
    case GW_METRIC_MIN:
        return v > initial && v < old ? v : old;
    }
    return old;
}

/* GIL held. One metric_* call: parses (name, value=1) and applies op. */
static PyObject *gw_metric_call(PyObject *args, const char *format, enum gw_metric_op op)
{
    const char *name;
    long v = 1;
    if (!PyArg_ParseTuple(args, format, &name, &v))
        return NULL;
    gw_metric *m = gw_metric_named(name);
    if (m == NULL || (op == GW_METRIC_DIV && v == 0))
        Py_RETURN_NONE;
    int64_t old = __atomic_load_n(&m->value, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&m->value, &old, gw_metric_apply(op, old, (int64_t)v, m->initial), 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
    Py_RETURN_TRUE;
}

static PyObject *gw_uw_metric_set(PyObject *self, PyObject *args)
{
    return gw_metric_call(args, "s|l:metric_set", GW_METRIC_SET);
}

static PyObject *gw_uw_metric_inc(PyObject *self, PyObject *args)
{
    return gw_metric_call(args, "s|l:metric_inc", GW_METRIC_INC);
}

static PyObject *gw_uw_metric_dec(PyObject *self, PyObject *args)
{
    return gw_metric_call(args, "s|l:metric_dec", GW_METRIC_DEC);
}

static PyObject *gw_uw_metric_mul(PyObject *self, PyObject *args)
{
    return gw_metric_call(args, "s|l:metric_mul", GW_METRIC_MUL);
}

static PyObject *gw_uw_metric_div(PyObject *self, PyObject *args)
{
    return gw_metric_call(args, "s|l:metric_div", GW_METRIC_DIV);
}

static PyObject *gw_uw_metric_set_max(PyObject *self, PyObject *args)
{
    return gw_metric_call(args, "s|l:metric_set_max", GW_METRIC_MAX);
}

static PyObject *gw_uw_metric_set_min(PyObject *self, PyObject *args)
{
    return gw_metric_call(args, "s|l:metric_set_min", GW_METRIC_MIN);
}

/* GIL held. uwsgi.metric_get(name): its value, 0 for an unknown metric. */
static PyObject *gw_uw_metric_get(PyObject *self, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s:metric_get", &name))
        return NULL;
    gw_metric *m = gw_metric_named(name);
    return PyLong_FromLongLong(m != NULL ? __atomic_load_n(&m->value, __ATOMIC_RELAXED) : 0);
}

static PyMethodDef gw_metric_methods[] = {
    {"metric_set", gw_uw_metric_set, METH_VARARGS, "Set a metric: True, or None."},
    {"metric_inc", gw_uw_metric_inc, METH_VARARGS, "Add to a metric."},
    {"metric_dec", gw_uw_metric_dec, METH_VARARGS, "Subtract from a metric."},
    {"metric_mul", gw_uw_metric_mul, METH_VARARGS, "Multiply a metric."},
    {"metric_div", gw_uw_metric_div, METH_VARARGS, "Divide a metric; None for 0."},
    {"metric_set_max", gw_uw_metric_set_max, METH_VARARGS, "Raise a metric to a value."},
    {"metric_set_min", gw_uw_metric_set_min, METH_VARARGS, "Lower a metric to a value above 0."},
    {"metric_get", gw_uw_metric_get, METH_VARARGS, "A metric's value, 0 when unknown."},
    {NULL, NULL, 0, NULL},
};

/* GIL held. Adds the metric functions to the uwsgi module. */
int gw_uwsgi_metrics_add(PyObject *module)
{
    return PyModule_AddFunctions(module, gw_metric_methods);
}
