// uWSGI's own option names (uwsgi_options.txt, made by `make
// uwsgi-options`), to tell a uWSGI option gowsgi does not implement from a
// key neither of them knows. uWSGI's --strict refuses only the latter (a
// typo, most often), so a config written with strict = true starts under
// gowsgi as it does under uWSGI, with a warning naming the tuning knobs
// gowsgi ignores (config_classes.go refuses the options it cannot ignore).
package main

import (
	_ "embed"
	"strings"
	"sync"
)

//go:embed uwsgi_options.txt
var uwsgiOptionList string

// uwsgiOptions is the set of uWSGI's option names, without dashes.
var uwsgiOptions = sync.OnceValue(func() map[string]bool {
	names := make(map[string]bool)
	for _, line := range strings.Split(uwsgiOptionList, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			names[line] = true
		}
	}
	return names
})

// uwsgiShortOptions maps each of uWSGI's one-letter options to the long
// option uWSGI exports it as (uwsgi.opt names "-p 2" "processes"): the
// first long option with that letter in `uwsgi --plugin python3,http
// --help` of uWSGI 2.0.21.
var uwsgiShortOptions = map[string]string{
	"s": "socket", "p": "processes", "t": "harakiri", "x": "xmlconfig", "S": "set", "d": "daemonize",
	"l": "listen", "v": "max-vars", "b": "buffer-size", "m": "memory-report", "c": "cgi-mode",
	"a": "abstract-socket", "C": "chmod-socket", "T": "enable-threads", "i": "single-interpreter",
	"M": "master", "h": "help", "r": "reaper", "R": "max-requests", "z": "socket-timeout",
	"A": "sharedarea", "Q": "spooler", "L": "disable-logging", "y": "yaml", "j": "json", "w": "module",
	"J": "test", "H": "home", "O": "optimize",
}

// isUWSGIOption reports whether uWSGI knows the option key (no dashes).
func isUWSGIOption(key string) bool { return uwsgiOptions()[strings.ToLower(key)] }
