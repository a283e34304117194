// The uWSGI options gowsgi accepts for compatibility only: those that
// describe what gowsgi always does (or uWSGI internals), the plugins
// gowsgi has built in, and those gowsgi handles its own way, which the
// master warns about with one line per kind.
package main

import (
	"fmt"
	"slices"
	"strings"
)

// noEffectOptions are uWSGI options that describe what gowsgi always does,
// or uWSGI internals; they are accepted without a word.
func noEffectOptions() []option {
	flag := func(help string, names ...string) option {
		return option{names: names, kind: kindBool, help: "accepted; " + help}
	}
	value := func(arg, help string, names ...string) option {
		return option{names: names, kind: kindString, arg: arg, help: "accepted; " + help}
	}
	return []option{
		flag("gowsgi always runs a master", "--master", "-M"),
		flag("Python threads always work in gowsgi", "--enable-threads", "-T"),
		flag("each worker has one interpreter", "--single-interpreter"),
		flag("the master alone accepts connections", "--thunder-lock"),
		flag("the master writes the log", "--log-master"),
		// uWSGI sets TCP_DEFER_ACCEPT on its TCP sockets unless told not to;
		// gowsgi never does, so the master sees a connection as soon as it
		// is open (a graceful stop answers its first request).
		flag("gowsgi never defers accepting a connection until its first bytes arrive", "--no-defer-accept"),
		flag("a client that goes away is not an error", "--ignore-sigpipe"),
		flag("a client that goes away is not an error", "--ignore-write-errors"),
		flag("a client that goes away is not an error", "--disable-write-exception"),
		flag("gowsgi always needs the app", "--need-app"),
		flag("SIGTERM always drains and exits", "--die-on-term"),
		flag("workers always die with the master", "--no-orphans"),
		flag("a harakiri kill is always logged with the request's path", "--harakiri-verbose"),
		flag("the HTTP socket always carries WebSockets", "--http-websockets"),
		flag("an HTTP/1.1 response without Content-Length is always sent chunked", "--http-auto-chunked"),
		value("BYTES", "the master always reads the whole body first", "--post-buffering"),
		value("N", "the master always writes the responses", "--offload-threads"),
	}
}

// builtinPlugins are uWSGI plugins whose features gowsgi has built in:
// the HTTP server, the routing actions it runs (routing.go in package
// server) and the loggers (server/logsink.go).
var builtinPlugins = map[string]bool{
	"http": true, "router_redirect": true, "router_rewrite": true, "logfile": true, "syslog": true, "rsyslog": true,
}

// checkPlugins accepts uWSGI's plugins that gowsgi has built in: a
// comma-separated list of python (python3, python311, …) and
// builtinPlugins.
func checkPlugins(name, value string) error {
	for _, plugin := range strings.Split(value, ",") {
		plugin = strings.TrimSpace(plugin)
		version, python := strings.CutPrefix(plugin, "python")
		if plugin == "" || builtinPlugins[plugin] || python && strings.Trim(version, "0123456789") == "" {
			continue
		}
		return fmt.Errorf("%s: gowsgi runs Python WSGI applications only; there is no %q plugin", name, plugin)
	}
	return nil
}

// notice is one warning line about uWSGI options gowsgi accepts but
// handles its own way.
type notice struct {
	kind  string   // what the line is about; one line per kind
	names []string // the options given, as spelled
	text  string   // what gowsgi does instead
}

// warn records that the option name was given; options of one kind share
// a line. name may carry its ini file and line ("app.ini:3: cheaper").
func (o *options) warn(kind, name, text string) {
	if i := strings.LastIndex(name, ": "); i >= 0 {
		name = name[i+2:]
	}
	for i := range o.Notices {
		if o.Notices[i].kind == kind {
			if !slices.Contains(o.Notices[i].names, name) {
				o.Notices[i].names = append(o.Notices[i].names, name)
			}
			return
		}
	}
	o.Notices = append(o.Notices, notice{kind: kind, names: []string{name}, text: text})
}

// warnings are the lines the master prints about o.Notices.
func (o *options) warnings() []string {
	var lines []string
	for _, n := range o.Notices {
		lines = append(lines, fmt.Sprintf("gowsgi: warning: %s: %s", strings.Join(n.names, ", "), n.text))
	}
	return lines
}

// The texts of the warnings.
const (
	cheaperWarning = "gowsgi's cheaper takes --cheaper, --cheaper-initial, --cheaper-step, --cheaper-overload, " +
		"--cheaper-algo spare or busyness and --cheaper-busyness-max/-min; the other knobs keep their defaults"
	cheaperAlgoWarning = "gowsgi runs the cheaper algorithms spare and busyness; it runs spare instead"
	// uWSGI loads --module first; the --wsgi-file app wants the same mount
	// point, so uWSGI skips it ("mountpoint already configured") unread.
	bothAppsWarning = "--module and --wsgi-file are both given; as uWSGI does, gowsgi serves the module and does not load the file"
	memoryWarning   = "gowsgi reports each worker's RSS and address space; USS and PSS (memory-report = 2) are not reported"
)

// warnedOptions are uWSGI options gowsgi accepts with a warning: the
// cheaper subsystem's finer knobs.
func warnedOptions(o *options) []option {
	warnCheaper := func(name, _ string) error { o.warn("cheaper", name, cheaperWarning); return nil }
	return []option{
		{names: []string{"--cheaper-idle", "--cheaper-rss-limit-soft", "--cheaper-rss-limit-hard",
			"--cheaper-busyness-multiplier", "--cheaper-busyness-penalty", "--cheaper-busyness-backlog-alert",
			"--cheaper-busyness-backlog-multiplier", "--cheaper-busyness-backlog-step"},
			kind: kindString, arg: "VALUE", check: warnCheaper,
			help: "accepted with a warning: gowsgi's cheaper takes --cheaper, --cheaper-initial, --cheaper-step, --cheaper-overload and --cheaper-busyness-max/-min"},
		{names: []string{"--cheaper-busyness-verbose", "--cheaper-busyness-backlog-nonzero"}, kind: kindBool, check: warnCheaper,
			help: "accepted with a warning, as --cheaper"},
	}
}

// memoryReport reads --memory-report: a bare flag or a boolean, or
// uWSGI's level 2, which also reports USS and PSS.
func (o *options) memoryReport(name, value string) error {
	o.MemoryReport = uwsgiBool(value)
	if strings.TrimSpace(value) == "2" {
		o.warn("memory-report", name, memoryWarning)
	}
	return nil
}
