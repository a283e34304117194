// The uWSGI options gowsgi accepts for compatibility only: those that
// describe what gowsgi always does (or uWSGI internals), and the plugins
// gowsgi has built in.
package main

import (
	"fmt"
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
		flag("each worker imports the app itself", "--lazy-apps"),
		flag("the master alone accepts connections", "--thunder-lock"),
		flag("the master writes the log", "--log-master"),
		flag("no effect in gowsgi", "--auto-procname"),
		flag("a client that goes away is not an error", "--ignore-sigpipe"),
		flag("a client that goes away is not an error", "--ignore-write-errors"),
		flag("a client that goes away is not an error", "--disable-write-exception"),
		flag("gowsgi always needs the app", "--need-app"),
		flag("SIGTERM always drains and exits", "--die-on-term"),
		value("BYTES", "the master always reads the whole body first", "--post-buffering"),
		value("N", "the master always writes the responses", "--offload-threads"),
		value("ACTION", "SIGTERM always drains and exits", "--hook-master-start"),
	}
}

// checkPlugins accepts uWSGI's plugins that gowsgi has built in: a
// comma-separated list of python (python3, python311, …) and http.
func checkPlugins(name, value string) error {
	for _, plugin := range strings.Split(value, ",") {
		plugin = strings.TrimSpace(plugin)
		version, python := strings.CutPrefix(plugin, "python")
		if plugin == "" || plugin == "http" || python && strings.Trim(version, "0123456789") == "" {
			continue
		}
		return fmt.Errorf("%s: gowsgi runs Python WSGI applications only; there is no %q plugin", name, plugin)
	}
	return nil
}
