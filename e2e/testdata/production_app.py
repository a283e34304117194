"""The application the production tests (health, drain, systemd, containers)
run.

Routes:
    GET /hello              text: "hello"
    GET /hold?tag=T         records started-T, waits (up to 60 s) for the
                            file release-T, then answers "released T"
    GET /env?name=N         text: os.environ[N], or "unset"
    GET /orphan?tag=T       starts a shell that starts a subshell and exits
                            at once, so the subshell is left an orphan; the
                            subshell exits once release-T exists. Answers
                            the orphan's pid.
"""

import os
import subprocess

from apphelp import query, record, routed, tag, text, wait_for_file


def hello(environ, start_response):
    return text(start_response, b"hello")


def hold(environ, start_response):
    name = tag(environ)
    record("started-" + name)
    released = wait_for_file("release-" + name, 60)
    return text(start_response, ("released %s" % name if released else "timed out").encode())


def env(environ, start_response):
    return text(start_response, os.environ.get(query(environ, "name"), "unset").encode())


def orphan(environ, start_response):
    name = tag(environ)
    script = "(while [ ! -e release-%s ]; do sleep 0.02; done) >/dev/null 2>&1 & echo $!" % name
    pid = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.strip()
    return text(start_response, pid)


ROUTES = {"/hello": hello, "/hold": hold, "/env": env, "/orphan": orphan}


application = routed(ROUTES)
