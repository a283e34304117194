"""uWSGI's shared state from the app (issue 12, item 2): the caches, the
user locks and the metrics, probed the same way under Debian's uWSGI and
under gowsgi (e2e/uwsgi_cache_test.go). The options both run it with
declare the caches "main" (items=10) and "small" (items=4, blocksize=64,
keysize=16), --locks 2 and the metrics m.counter, m.gauge, m.abs, m.bare;
every route also works with none of them declared.

Routes:
    GET /probe          JSON {step: [type name, value]}: every cache_*, lock
                        and metric_* call in a fixed order (a call that
                        raises shows "raised <type>" and its message)
    GET /expire_set     empties the cache, stores "x" for 1 second
    GET /expired        JSON of cache_get, cache_exists and cache_keys after
    GET /inc?n=N        cache_inc("hits") N times; answers the worker's pid
    GET /locked_add?n=N N times, under @lock: reads "sum", writes it plus 1
    GET /get?key=K      cache_get(K), empty when None
    GET /set?key=K&value=V  cache_update(K, V); answers the worker's pid
    GET /lock?n=N       takes and releases user lock N: "locked"
    GET /lock_and_die?n=N  takes user lock N and is SIGKILLed holding it
    GET /metric_set?v=N metric_set("m.gauge", N)
    GET /remote         cache_get from a NAME@SERVER cache
    GET /workers        JSON {"pid", "total": total_requests(), "workers": workers()}
    GET /block?tag=T    records T-started, then waits (10 s at most) for the file T-go
    GET /queue          records queue-started; the most listen_queue() answers
                        within 5 s, until it is above 0
"""
import json
import os
import signal
import time

import uwsgi

try:
    from uwsgidecorators import lock
except ImportError:  # Debian's uWSGI ships no uwsgidecorators for Python 3
    lock = None

from apphelp import number, query, record, routed, tag, text, wait_for_file

def _show(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return sorted(_show(v) for v in value)
    return value


def _call(results, name, fn, *args, **kwargs):
    try:
        value = fn(*args, **kwargs)
    except Exception as e:  # the error's type and words are part of the answer
        results[name] = ["raised " + type(e).__name__, str(e)]
        return
    results[name] = [type(value).__name__, _show(value)]


def probe(environ, start_response):
    r = {}
    c = _call
    c(r, "clear", uwsgi.cache_clear)
    c(r, "clear_named", uwsgi.cache_clear, "small")
    c(r, "get_missing", uwsgi.cache_get, "nope")
    c(r, "set", uwsgi.cache_set, "a", b"one")
    c(r, "set_again", uwsgi.cache_set, "a", b"two")
    c(r, "get_after_set_again", uwsgi.cache_get, "a")
    c(r, "update", uwsgi.cache_update, "a", b"three")
    c(r, "get_after_update", uwsgi.cache_get, "a")
    c(r, "update_new", uwsgi.cache_update, "b", "str value")
    c(r, "get_str", uwsgi.cache_get, "b")
    c(r, "set_empty", uwsgi.cache_set, "e", b"")
    c(r, "exists", uwsgi.cache_exists, "a")
    c(r, "exists_missing", uwsgi.cache_exists, "zz")
    c(r, "keys", uwsgi.cache_keys)
    c(r, "del", uwsgi.cache_del, "a")
    c(r, "del_missing", uwsgi.cache_del, "a")
    c(r, "get_deleted", uwsgi.cache_get, "a")
    c(r, "bytes_key", uwsgi.cache_set, b"k\xff", b"v")
    c(r, "get_bytes_key", uwsgi.cache_get, b"k\xff")
    c(r, "inc_new", uwsgi.cache_inc, "n")
    c(r, "num_after_inc", uwsgi.cache_num, "n")
    c(r, "get_num_raw", uwsgi.cache_get, "n")
    c(r, "inc_5", uwsgi.cache_inc, "n", 5)
    c(r, "dec", uwsgi.cache_dec, "n")
    c(r, "dec_10", uwsgi.cache_dec, "n", 10)
    c(r, "num_negative", uwsgi.cache_num, "n")
    c(r, "mul_default", uwsgi.cache_mul, "n")
    c(r, "mul_3", uwsgi.cache_mul, "n", 3)
    c(r, "div_default", uwsgi.cache_div, "n")
    c(r, "num_after_div", uwsgi.cache_num, "n")
    c(r, "div_zero", uwsgi.cache_div, "n", 0)
    c(r, "num_after_div_zero", uwsgi.cache_num, "n")
    c(r, "mul_new", uwsgi.cache_mul, "m", 7)
    c(r, "num_mul_new", uwsgi.cache_num, "m")
    c(r, "dec_new", uwsgi.cache_dec, "d", 4)
    c(r, "num_dec_new", uwsgi.cache_num, "d")
    c(r, "div_new", uwsgi.cache_div, "q", 4)
    c(r, "num_div_new", uwsgi.cache_num, "q")
    c(r, "inc_on_string", uwsgi.cache_inc, "b")
    c(r, "num_of_string", uwsgi.cache_num, "b")
    c(r, "num_missing", uwsgi.cache_num, "nothing")
    c(r, "inc_on_8_bytes", uwsgi.cache_inc, "eight")
    c(r, "set_8_bytes", uwsgi.cache_set, "eight", b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c(r, "inc_8_bytes_set", uwsgi.cache_inc, "eight")
    c(r, "num_8_bytes_set", uwsgi.cache_num, "eight")
    c(r, "inc_big", uwsgi.cache_inc, "big", 2**62)
    c(r, "inc_big_overflow", uwsgi.cache_inc, "big", 2**62)
    c(r, "num_big", uwsgi.cache_num, "big")
    c(r, "inc_too_big_arg", uwsgi.cache_inc, "big", 2**64)
    c(r, "set_too_big", uwsgi.cache_set, "huge", b"x" * 65)
    c(r, "set_too_big_named", uwsgi.cache_set, "huge", b"x" * 65, 0, "small")
    c(r, "set_block_named", uwsgi.cache_set, "fits", b"x" * 64, 0, "small")
    c(r, "key_too_long_named", uwsgi.cache_set, "k" * 17, b"v", 0, "small")
    c(r, "key_16_named", uwsgi.cache_set, "k" * 16, b"v", 0, "small")
    for i in range(5):
        c(r, "fill_%d" % i, uwsgi.cache_set, "f%d" % i, b"v", 0, "small")
    c(r, "keys_named", uwsgi.cache_keys, "small")
    c(r, "get_unknown_cache", uwsgi.cache_get, "a", "nosuch")
    c(r, "set_unknown_cache", uwsgi.cache_set, "a", b"v", 0, "nosuch")
    c(r, "keys_unknown_cache", uwsgi.cache_keys, "nosuch")
    c(r, "exists_unknown_cache", uwsgi.cache_exists, "a", "nosuch")
    c(r, "del_unknown_cache", uwsgi.cache_del, "a", "nosuch")
    c(r, "clear_unknown_cache", uwsgi.cache_clear, "nosuch")
    c(r, "num_unknown_cache", uwsgi.cache_num, "a", "nosuch")
    c(r, "inc_unknown_cache", uwsgi.cache_inc, "a", 1, 0, "nosuch")
    c(r, "set_expiring", uwsgi.cache_set, "x", b"soon", 1)
    c(r, "get_expiring", uwsgi.cache_get, "x")
    c(r, "set_int_value", uwsgi.cache_set, "iv", 5)
    c(r, "get_none_key", uwsgi.cache_get, None)
    c(r, "set_neg_expires", uwsgi.cache_set, "neg", b"v", -1)
    c(r, "clear_again", uwsgi.cache_clear)
    c(r, "keys_after_clear", uwsgi.cache_keys)
    # locks
    c(r, "lock", uwsgi.lock)
    c(r, "is_locked", uwsgi.is_locked)
    c(r, "unlock", uwsgi.unlock)
    c(r, "is_locked_after", uwsgi.is_locked)
    c(r, "lock_2", uwsgi.lock, 2)
    c(r, "is_locked_2", uwsgi.is_locked, 2)
    c(r, "unlock_2", uwsgi.unlock, 2)
    c(r, "lock_3", uwsgi.lock, 3)
    c(r, "lock_neg", uwsgi.lock, -1)
    c(r, "unlock_unlocked", uwsgi.unlock, 1)
    # metrics
    c(r, "metric_get_initial", uwsgi.metric_get, "m.counter")
    c(r, "metric_get_initial_gauge", uwsgi.metric_get, "m.gauge")
    c(r, "metric_inc", uwsgi.metric_inc, "m.counter")
    c(r, "metric_inc_5", uwsgi.metric_inc, "m.counter", 5)
    c(r, "metric_dec", uwsgi.metric_dec, "m.counter")
    c(r, "metric_mul", uwsgi.metric_mul, "m.counter")
    c(r, "metric_mul_3", uwsgi.metric_mul, "m.counter", 3)
    c(r, "metric_div", uwsgi.metric_div, "m.counter")
    c(r, "metric_div_2", uwsgi.metric_div, "m.counter", 2)
    c(r, "metric_div_0", uwsgi.metric_div, "m.counter", 0)
    c(r, "metric_get", uwsgi.metric_get, "m.counter")
    c(r, "metric_set", uwsgi.metric_set, "m.gauge", 40)
    c(r, "metric_set_default", uwsgi.metric_set, "m.abs")
    c(r, "metric_get_abs", uwsgi.metric_get, "m.abs")
    c(r, "metric_set_max_lower", uwsgi.metric_set_max, "m.gauge", 30)
    c(r, "metric_set_max_higher", uwsgi.metric_set_max, "m.gauge", 50)
    c(r, "metric_get_after_max", uwsgi.metric_get, "m.gauge")
    c(r, "metric_set_min_higher", uwsgi.metric_set_min, "m.gauge", 60)
    c(r, "metric_set_min_lower", uwsgi.metric_set_min, "m.gauge", 20)
    c(r, "metric_get_after_min", uwsgi.metric_get, "m.gauge")
    c(r, "metric_set_min_negative", uwsgi.metric_set_min, "m.gauge", -5)
    c(r, "metric_get_after_min_negative", uwsgi.metric_get, "m.gauge")
    c(r, "metric_set_min_zero", uwsgi.metric_set_min, "m.gauge", 0)
    c(r, "metric_set_min_under_initial", uwsgi.metric_set_min, "m.gauge", 5)
    c(r, "metric_get_after_min_under_initial", uwsgi.metric_get, "m.gauge")
    c(r, "metric_set_min_over_initial", uwsgi.metric_set_min, "m.gauge", 8)
    c(r, "metric_get_after_min_over_initial", uwsgi.metric_get, "m.gauge")
    c(r, "metric_get_bare", uwsgi.metric_get, "m.bare")
    c(r, "metric_inc_unknown", uwsgi.metric_inc, "nosuch")
    c(r, "metric_get_unknown", uwsgi.metric_get, "nosuch")
    c(r, "metric_inc_too_big", uwsgi.metric_inc, "m.counter", 2**64)
    c(r, "metric_inc_str", uwsgi.metric_inc, "m.counter", "1")
    c(r, "metric_set_back", uwsgi.metric_set, "m.counter", 0)
    c(r, "metric_set_back_gauge", uwsgi.metric_set, "m.gauge", 0)
    c(r, "metric_set_back_abs", uwsgi.metric_set, "m.abs", 0)
    return text(start_response, json.dumps(r, sort_keys=True).encode())


def expire_set(environ, start_response):
    uwsgi.cache_clear()
    return text(start_response, repr(uwsgi.cache_set("x", b"soon", 1)).encode())


def expired(environ, start_response):
    r = {}
    _call(r, "get", uwsgi.cache_get, "x")
    _call(r, "exists", uwsgi.cache_exists, "x")
    _call(r, "keys", uwsgi.cache_keys)
    return text(start_response, json.dumps(r, sort_keys=True).encode())


def inc(environ, start_response):
    for _ in range(number(environ, "n", 100000)):
        uwsgi.cache_inc("hits")
    return text(start_response, str(os.getpid()).encode())


def _add_one_unlocked():
    # A read and a write apart: only the lock keeps two workers from
    # writing the same sum.
    value = int(uwsgi.cache_get("sum") or b"0")
    uwsgi.cache_update("sum", str(value + 1).encode())


_add_one = lock(_add_one_unlocked) if lock is not None else None


def locked_add(environ, start_response):
    for _ in range(number(environ, "n", 100000)):
        _add_one()
    return text(start_response, str(os.getpid()).encode())


def get(environ, start_response):
    v = uwsgi.cache_get(query(environ, "key"))
    return text(start_response, v if v is not None else b"")


def set_(environ, start_response):
    uwsgi.cache_update(query(environ, "key"), query(environ, "value").encode())
    return text(start_response, str(os.getpid()).encode())


def lock_(environ, start_response):
    n = number(environ, "n", 100)
    uwsgi.lock(n)
    uwsgi.unlock(n)
    return text(start_response, b"locked")


def lock_and_die(environ, start_response):
    uwsgi.lock(number(environ, "n", 100))
    os.kill(os.getpid(), signal.SIGKILL)


def metric_set(environ, start_response):
    return text(start_response, repr(uwsgi.metric_set("m.gauge", number(environ, "v", 1 << 40))).encode())


def remote(environ, start_response):
    r = {}
    _call(r, "get", uwsgi.cache_get, "a", "main@127.0.0.1:1")
    return text(start_response, json.dumps(r).encode())


def workers(environ, start_response):
    answer = {"pid": os.getpid(), "total": uwsgi.total_requests(), "workers": uwsgi.workers()}
    return text(start_response, json.dumps(answer, default=lambda b: b.decode()).encode())


def block(environ, start_response):
    name = tag(environ)
    record(name + "-started")
    return text(start_response, repr(wait_for_file(name + "-go", 10)).encode())


def queue(environ, start_response):
    record("queue-started")
    most, deadline = 0, time.monotonic() + 5
    while most == 0 and time.monotonic() < deadline:
        most = max(most, uwsgi.listen_queue())
        time.sleep(0.01)
    return text(start_response, str(most).encode())


application = routed({
    "/probe": probe, "/expire_set": expire_set, "/expired": expired, "/inc": inc, "/locked_add": locked_add,
    "/get": get, "/set": set_, "/lock": lock_, "/lock_and_die": lock_and_die, "/metric_set": metric_set,
    "/remote": remote, "/workers": workers, "/block": block, "/queue": queue,
})
