"""Answers, as JSON, what uWSGI's Python API (the uwsgi module) says in the
worker that serves the request, so a test can run it under uWSGI and under
gowsgi with the same options and compare.

Routes:
    GET /probe          JSON of every identity attribute and call result
    GET /logvar?v=V     set_logvar("probe", V); answers get_logvar("probe")
    GET /missing        JSON: for each feature gowsgi lacks, the exception's
                        type and message when it is called
    GET /sentry         JSON list of the warnings sentry_sdk.init() gives
                        (it reads uwsgi.opt to tell whether threads run);
                        null when sentry_sdk is not installed
    GET /reload         uwsgi.reload(); answers its result
    GET /stop           uwsgi.stop(); answers its result

At import, uwsgi.post_fork_hook and uwsgi.atexit are set, and a function is
registered with uwsgidecorators.postfork (when there is one: Debian's uWSGI
does not ship it for Python 3); each records the pid it ran in as a file in
the working directory (post_fork-PID, postfork-PID, atexit-PID).
"""

import json
import os
import warnings

import uwsgi

try:  # Debian's uWSGI does not ship it for Python 3
    import uwsgidecorators
except ImportError:
    uwsgidecorators = None

from apphelp import query, record, routed, text


_chained = getattr(uwsgi, "post_fork_hook", None)  # uwsgidecorators' chain


def _post_fork_hook():
    record("post_fork-%d" % os.getpid())
    if _chained is not None:
        _chained()


def _atexit():
    record("atexit-%d" % os.getpid())


uwsgi.post_fork_hook = _post_fork_hook
uwsgi.atexit = _atexit


def _postfork():
    record("postfork-%d" % os.getpid())


if uwsgidecorators is not None:
    uwsgidecorators.postfork(_postfork)


def plain(value):
    """value as JSON can hold it, with bytes marked so a str cannot pass for them."""
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def types(value):
    """The type names of value, recursively."""
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [types(v) for v in value]]
    if isinstance(value, dict):
        return {str(k): types(v) for k, v in value.items()}
    return type(value).__name__


def identity():
    return {
        "opt": uwsgi.opt,
        "worker_id": uwsgi.worker_id(),
        "numproc": uwsgi.numproc,
        "masterpid": uwsgi.masterpid(),
        "mule_id": uwsgi.mule_id(),
        "version": uwsgi.version,
        "version_info": uwsgi.version_info,
        "hostname": uwsgi.hostname,
        "started_on": uwsgi.started_on,
        "total_requests": uwsgi.total_requests(),
        "request_id": uwsgi.request_id(),
        "workers": uwsgi.workers(),
        "has_threads": uwsgi.has_threads,
        "cores": uwsgi.cores,
        "buffer_size": uwsgi.buffer_size,
        "is_a_reload": uwsgi.is_a_reload,
        "listen_queue": uwsgi.listen_queue(),
        "accepting": uwsgi.accepting(),
        "log": uwsgi.log("uwsgi_probe: logged through uwsgi.log"),
        "setprocname": uwsgi.setprocname("uwsgi_probe"),
        "set_logvar": uwsgi.set_logvar("probe", "set"),
        "get_logvar": uwsgi.get_logvar("probe"),
        "get_logvar_unset": uwsgi.get_logvar("never-set"),
    }


def probe(environ, start_response):
    found = identity()
    found["environ"] = {k: environ[k] for k in ("uwsgi.version", "uwsgi.node") if k in environ}
    found["pid"] = os.getpid()
    found["hooks"] = sorted(name.split("-")[0] for name in os.listdir(".")
                            if name.endswith("-%d" % os.getpid()))
    answer = {"values": plain(found), "types": types(found)}
    return text(start_response, json.dumps(answer, sort_keys=True).encode(), content_type="application/json")


def logvar(environ, start_response):
    uwsgi.set_logvar("probe", query(environ, "v"))
    return text(start_response, uwsgi.get_logvar("probe"))


def missing(environ, start_response):
    calls = {
        "cache_get": lambda: uwsgi.cache_get("key"),
        "lock": uwsgi.lock,
        "register_signal": lambda: uwsgi.register_signal(1, "workers", print),
        "register_rpc": lambda: uwsgi.register_rpc("f", print),
        "alarm": lambda: uwsgi.alarm("a", "message"),
        "websocket_handshake": uwsgi.websocket_handshake,
        "metric_inc": lambda: uwsgi.metric_inc("m"),
        "decorators.timer": lambda: uwsgidecorators.timer(5)(print),
        "decorators.rpc": lambda: uwsgidecorators.rpc("f")(print),
    }
    raised = {}
    for name, call in calls.items():
        try:
            call()
            raised[name] = None
        except Exception as exc:
            raised[name] = [type(exc).__name__, str(exc)]
    return text(start_response, json.dumps(raised).encode(), content_type="application/json")


def sentry(environ, start_response):
    try:
        import sentry_sdk
    except ImportError:  # the test says to install it
        return text(start_response, b"null", content_type="application/json")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # A DSN makes a transport, whose worker thread checks uwsgi.opt;
        # nothing is sent, as no event is captured.
        sentry_sdk.init("http://key@127.0.0.1:9/1", default_integrations=False)
    sentry_sdk.Hub.current.client.close(timeout=0)
    found = [str(w.message) for w in caught if "uwsgi" in str(w.message).lower()]
    return text(start_response, json.dumps(found).encode(), content_type="application/json")


def control(action):
    def route(environ, start_response):
        return text(start_response, repr(action()).encode())

    return route


application = routed({
    "/probe": probe,
    "/logvar": logvar,
    "/missing": missing,
    "/sentry": sentry,
    "/reload": control(uwsgi.reload),
    "/stop": control(uwsgi.stop),
})
