"""The spooler and mules through uwsgidecorators, for e2e/spooler_mules_test.go.
Records are files in the app's folder (the spooler runs its jobs in its own
folder, so they are written by absolute path).

Routes:
    GET /spool?tag=T&n=N     queues @spool job_args(T, n=N) (arguments pickled);
                             answers the job file's path
    GET /block?tag=T         queues @spool job_block(T): it records block-T-PID,
                             then waits for the file release-T (30 s at most)
    GET /retry?tag=T&n=N     queues @spoolraw job_retry: it records attempt-T-K at
                             each run K and returns SPOOL_RETRY until run N
    GET /ordered?tag=T       queues @spoolraw job_order three times, all due in 3 s:
                             "low" (priority 2), "high" (priority 1), "plain"; each
                             run appends its name and working folder to the
                             record order-T
    GET /jobs                the job files waiting (uwsgi.spooler_jobs()), one a line
    GET /spooler-pid         uwsgi.spooler_pid()
    GET /mulefunc?tag=T      calls @mulefunc mule_record(T) (runs in a mule)
    GET /msg?to=M&msg=X      uwsgi.mule_msg(X, M) (M a number or a farm name; none:
                             any mule); answers its result

Records: job-T (pid, n, i_am_the_spooler()), mulefunc-T (pid mule_id).
"""

import os
import time

import uwsgi
from uwsgidecorators import mulefunc, spool, spoolraw

from apphelp import number, query, routed, tag, text, wait_for_file

HERE = os.getcwd()


def record(name, content):
    """Writes the record whole: a test that sees it sees its content."""
    path = os.path.join(HERE, name)
    with open(path + ".tmp", "w") as f:
        f.write(content)
    os.rename(path + ".tmp", path)


@spool(pass_arguments=True)
def job_args(tag, n=0):
    record("job-" + tag, "%d %d %s" % (os.getpid(), n, uwsgi.i_am_the_spooler()))


@spool(pass_arguments=True)
def job_block(tag):
    record("block-%s-%d" % (tag, os.getpid()), "")
    wait_for_file(os.path.join(HERE, "release-" + tag), 30)


@spoolraw
def job_retry(args):
    tag, last = args["tag"], int(args["n"])
    runs = 1 + sum(1 for name in os.listdir(HERE) if name.startswith("attempt-%s-" % tag))
    record("attempt-%s-%d" % (tag, runs), str(os.getpid()))
    return uwsgi.SPOOL_OK if runs >= last else uwsgi.SPOOL_RETRY


@spoolraw
def job_order(args):
    with open(os.path.join(HERE, "order-" + args["tag"]), "a") as f:
        f.write("%s %s\n" % (args["name"], os.getcwd()))
    return uwsgi.SPOOL_OK


@mulefunc
def mule_record(tag):
    record("mulefunc-" + tag, "%d %d" % (os.getpid(), uwsgi.mule_id()))


def spool_route(environ, start_response):
    path = job_args(tag(environ), n=number(environ, "n", 1000))
    return text(start_response, path)


def block_route(environ, start_response):
    return text(start_response, job_block(tag(environ)))


def retry_route(environ, start_response):
    return text(start_response, job_retry({"tag": tag(environ), "n": query(environ, "n")}))


def ordered_route(environ, start_response):
    due = str(int(time.time()) + 3)
    for name, priority in (("low", "2"), ("high", "1"), ("plain", None)):
        job = {"tag": tag(environ), "name": name, "at": due}
        if priority:
            job["priority"] = priority
        job_order(job)
    return text(start_response, b"queued\n")


def jobs_route(environ, start_response):
    return text(start_response, b"".join(path + b"\n" for path in uwsgi.spooler_jobs()))


def spooler_pid_route(environ, start_response):
    return text(start_response, str(uwsgi.spooler_pid()).encode())


def mulefunc_route(environ, start_response):
    mule_record(tag(environ))
    return text(start_response, b"called\n")


def msg_route(environ, start_response):
    to = query(environ, "to")
    target = None if to == "" else int(to) if to.isdigit() else to.encode()
    sent = uwsgi.mule_msg(query(environ, "msg").encode(), target) if target is not None else \
        uwsgi.mule_msg(query(environ, "msg").encode())
    return text(start_response, repr(sent).encode())


application = routed({
    "/spool": spool_route,
    "/block": block_route,
    "/retry": retry_route,
    "/ordered": ordered_route,
    "/jobs": jobs_route,
    "/spooler-pid": spooler_pid_route,
    "/mulefunc": mulefunc_route,
    "/msg": msg_route,
})
