// Command lines written for Gunicorn ("gowsgi app:app -w 4 -b :8000
// --timeout 30"): gowsgi takes uWSGI's options, where -w is the module and
// -b the buffer size, so such a line is refused with one line that says
// what it looks like and points at the README's "Coming from Gunicorn"
// table, instead of failing on whichever option comes first.
package main

import (
	"fmt"
	"strings"
)

// gunicornOptions are Gunicorn's options uWSGI does not have, with what
// gowsgi takes instead.
var gunicornOptions = map[string]string{
	"--bind": "--http-socket ADDR", "--timeout": "--harakiri SECONDS", "--access-logfile": "nothing: requests are logged to stderr, or --logto FILE",
	"--error-logfile": "--logto FILE", "--preload": "nothing: the app is imported once before the workers fork (--lazy-apps for each worker)",
	"--worker-class": "--threads N", "-k": "--threads N", "--log-level": "nothing", "--daemon": "--daemonize LOGFILE",
	"--user": "--uid USER", "--group": "--gid GROUP", "--keep-alive": "--http-keepalive=SECONDS",
	"--certfile": "--https-socket ADDR,CERT,KEY", "--keyfile": "--https-socket ADDR,CERT,KEY",
}

// gunicornHint is what the error line adds for a Gunicorn command line.
const gunicornHint = `this looks like a Gunicorn command line: see "Coming from Gunicorn" in gowsgi's README ` +
	`(-w N is -p N, -b/--bind ADDR is --http-socket ADDR, --timeout is --harakiri)`

// gunicornArg says why the option name with value is Gunicorn's, or "".
func gunicornArg(name, value string) string {
	if instead, ok := gunicornOptions[name]; ok {
		return fmt.Sprintf("%s is Gunicorn's option; gowsgi takes %s", name, instead)
	}
	switch {
	case name == "-w" && value != "" && strings.Trim(value, "0123456789") == "":
		return fmt.Sprintf("-w %s: -w is uWSGI's --module; for %s workers pass -p %s", value, value, value)
	case name == "-b" && strings.Contains(value, ":"):
		return fmt.Sprintf("-b %s: -b is uWSGI's --buffer-size; to listen on %s pass --http-socket %s", value, value, value)
	}
	return ""
}

// isGunicornApp says whether a bare argument is Gunicorn's "module:callable".
func isGunicornApp(arg string) bool {
	module, callable, ok := strings.Cut(arg, ":")
	return ok && module != "" && callable != "" && !strings.ContainsAny(arg, "/ =") && !strings.HasPrefix(arg, "-")
}
