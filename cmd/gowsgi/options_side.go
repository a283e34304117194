// The options that run commands beside the app: uWSGI's hook-PHASE and
// exec-PHASE (server/hooks.go runs them) and its attached daemons
// (attach-daemon, attach-daemon2, smart-attach-daemon; server/daemons.go);
// and those that change requests and responses: the routing rules and
// add-header (server/routing.go). A phase, action or condition gowsgi
// does not run is refused, never ignored.
package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gowsgi/gowsgi/server"
)

// hookPhases are the phases gowsgi runs, with when --help says they run.
var hookPhases = []struct{ phase, when string }{
	{server.PhaseASAP, "first, before the sockets are bound"},
	{server.PhaseAsRoot, "before the sockets are bound, before --uid/--gid drop privileges"},
	{server.PhaseAsUser, "once --uid/--gid have dropped privileges"},
	{server.PhasePreApp, "after as-user, before the app is imported"},
	{server.PhasePostApp, "once the workers serve"},
	{server.PhaseMasterStart, "once the workers serve, after post-app"},
}

// gracefulTermHook is the master-start hook that makes SIGTERM stop
// gracefully, as gowsgi's SIGTERM always does.
const gracefulTermHook = "unix_signal:15 gracefully_kill_them_all"

// sideOptions are the hook, exec and daemon options.
func sideOptions(o *options) []option {
	var table []option
	for _, p := range hookPhases {
		table = append(table, option{names: []string{"--hook-" + p.phase}, kind: kindString, arg: "ACTION:ARG",
			check: o.hook(p.phase),
			help:  "at the start, " + p.when + ": exec:COMMAND (run with /bin/sh -c; failing stops the start), mkdir:DIR or print:TEXT; repeatable"})
		if p.phase != server.PhaseMasterStart {
			table = append(table, option{names: []string{"--exec-" + p.phase}, kind: kindString, arg: "COMMAND",
				check: o.execHook(p.phase), help: "as --hook-" + p.phase + " exec:COMMAND; repeatable"})
		}
	}
	return append(table,
		option{names: []string{"--attach-daemon"}, kind: kindString, arg: "COMMAND", check: o.attachDaemon,
			help: "run COMMAND (/bin/sh -c) beside the app once the workers serve, again whenever it exits, and stop it (SIGTERM to its process group) with the server; repeatable"},
		option{names: []string{"--attach-daemon2"}, kind: kindString, arg: "cmd=COMMAND[,stopsignal=N]", check: o.attachDaemon2,
			help: "as --attach-daemon, in uWSGI's key=value form; with pidfile=PATH,daemonize=1 as --smart-attach-daemon"},
		option{names: []string{"--cron"}, kind: kindString, arg: "MIN HOUR DAY MONTH WEEKDAY COMMAND", check: o.cron(false),
			help: "run COMMAND (/bin/sh -c) from the master when the clock matches the five fields (-1 any, -N every N), at most once a minute; repeatable"},
		option{names: []string{"--unique-cron"}, kind: kindString, arg: "MIN HOUR DAY MONTH WEEKDAY COMMAND", check: o.cron(true),
			help: "as --cron, skipped while the last run is still going"},
		option{names: []string{"--cron2"}, kind: kindString, arg: "minute=N,hour=N,day=N,month=N,week=N,unique=1,harakiri=S COMMAND", check: o.cron2,
			help: "as --cron in uWSGI's key=value form (a field left out is -1, any)"},
		option{names: []string{"--cron-harakiri"}, kind: kindInt, arg: "SECONDS", min: 0, max: 1 << 30, target: &o.CronHarakiri,
			help: "kill a cron command's process group once it has run longer than SECONDS"},
		option{names: []string{"--smart-attach-daemon"}, kind: kindString, arg: "PIDFILE COMMAND", check: o.smartAttachDaemon,
			help: "run COMMAND, which daemonizes and writes PIDFILE, whenever PIDFILE names no live process; stop that process with the server"},
	)
}

// hook reads "ACTION:ARG" for --hook-PHASE.
func (o *options) hook(phase string) func(name, value string) error {
	return func(name, value string) error {
		value = strings.TrimSpace(value)
		if phase == server.PhaseMasterStart && strings.Join(strings.Fields(value), " ") == gracefulTermHook {
			return nil // what gowsgi's SIGTERM does
		}
		action, arg, ok := strings.Cut(value, ":")
		switch action {
		case server.HookExec, server.HookMkdir, server.HookPrint:
		case "log":
			action = server.HookPrint
		default:
			ok = false
		}
		if !ok || arg == "" {
			return fmt.Errorf("%s: gowsgi runs the hook actions exec:COMMAND, mkdir:DIR and print:TEXT (and, at master-start, %q), not %q; run anything else from the service manager (systemd ExecStartPre=) or the app",
				name, gracefulTermHook, value)
		}
		o.Hooks = append(o.Hooks, server.Hook{Option: optionName(name), Phase: phase, Action: action, Arg: arg})
		return nil
	}
}

// execHook reads --exec-PHASE COMMAND.
func (o *options) execHook(phase string) func(name, value string) error {
	return func(name, value string) error {
		if strings.TrimSpace(value) == "" {
			return fmt.Errorf("%s needs a command", name)
		}
		o.Hooks = append(o.Hooks, server.Hook{Option: optionName(name), Phase: phase, Action: server.HookExec, Arg: value})
		return nil
	}
}

// optionName is the option's name without its ini file and line or dashes.
func optionName(label string) string {
	if i := strings.LastIndex(label, ": "); i >= 0 {
		label = label[i+2:]
	}
	return strings.TrimLeft(label, "-")
}

func (o *options) attachDaemon(name, value string) error {
	if strings.TrimSpace(value) == "" {
		return fmt.Errorf("%s needs a command", name)
	}
	o.Daemons = append(o.Daemons, server.Daemon{Option: optionName(name), Command: value})
	return nil
}

// smartAttachDaemon reads "PIDFILE COMMAND".
func (o *options) smartAttachDaemon(name, value string) error {
	pidfile, command, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok || strings.TrimSpace(command) == "" {
		return fmt.Errorf("%s: %q is not PIDFILE COMMAND", name, value)
	}
	o.Daemons = append(o.Daemons, server.Daemon{Option: optionName(name), Command: strings.TrimSpace(command), PidFile: pidfile})
	return nil
}

// attachDaemon2 reads uWSGI's comma-separated key=value form. gowsgi takes
// cmd (or command, exec), stopsignal (or stop_signal) and, with
// daemonize=1, pidfile; another key changes how uWSGI runs the daemon, so
// it is refused.
func (o *options) attachDaemon2(name, value string) error {
	d := server.Daemon{Option: optionName(name)}
	daemonize := false
	for _, kv := range strings.Split(value, ",") {
		key, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch key {
		case "cmd", "command", "exec":
			d.Command = val
		case "stopsignal", "stop_signal":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 || n > 64 {
				return fmt.Errorf("%s: stopsignal=%s is not a signal number", name, val)
			}
			d.StopSignal = syscall.Signal(n)
		case "pidfile":
			d.PidFile = val
		case "daemonize", "daemon":
			daemonize = uwsgiBool(val)
		default:
			return fmt.Errorf("%s: gowsgi takes the keys cmd, stopsignal, pidfile and daemonize, not %q; run the daemon under the service manager for the rest", name, key)
		}
	}
	switch {
	case strings.TrimSpace(d.Command) == "":
		return fmt.Errorf("%s: no cmd= given", name)
	case d.PidFile != "" && !daemonize:
		return fmt.Errorf("%s: pidfile= without daemonize=1 is not supported; drop pidfile= or add daemonize=1", name)
	}
	o.Daemons = append(o.Daemons, d)
	return nil
}

// routingOptions are uWSGI's routing options gowsgi runs and --add-header.
func routingOptions(o *options) []option {
	table := []option{
		{names: []string{"--add-header"}, kind: kindString, arg: "NAME: VALUE", check: o.addHeader,
			help: "add the header to every response, of every protocol; repeatable"},
	}
	for _, name := range server.RouteOptions {
		opt := option{names: []string{"--" + name}, kind: kindString, arg: "REGEXP ACTION:ARG", check: o.route(name)}
		switch name {
		case "route":
			opt.help = "when PATH_INFO matches REGEXP, run ACTION: break:CODE [REASON], return:CODE, continue, redirect:URL (302), redirect-permanent:URL (301), rewrite:PATH[?QUERY], rewrite-last:…, addheader:NAME: VALUE, delheader:NAME; $1… and ${VAR} are substituted; in order, repeatable"
		case "route-if":
			opt.arg = "COND:LEFT;RIGHT ACTION:ARG"
			opt.help = "as --route when the condition holds: equal, startswith, endswith, contains, regexp (LEFT;RIGHT), empty, exists, isfile, isdir (VALUE)"
		case "route-if-not":
			opt.arg = "COND:LEFT;RIGHT ACTION:ARG"
			opt.help = "as --route-if when the condition does not hold"
		case "route-run":
			opt.arg = "ACTION:ARG"
			opt.help = "run ACTION for every request, in order with the other rules"
		default:
			opt.help = "as --route, matching " + server.RouteSubject(name) + " instead"
		}
		table = append(table, opt)
	}
	return table
}

func (o *options) addHeader(name, value string) error {
	header, headerValue, err := server.ParseAddHeader(value)
	if err != nil {
		return err
	}
	o.AddHeaders = append(o.AddHeaders, [2]string{header, headerValue})
	return nil
}

func (o *options) route(option string) func(name, value string) error {
	return func(_, value string) error {
		r, err := server.ParseRoute(option, value)
		if err != nil {
			return err
		}
		o.Routes = append(o.Routes, r)
		return nil
	}
}

// cron reads "MIN HOUR DAY MONTH WEEKDAY COMMAND" for --cron and
// --unique-cron.
func (o *options) cron(unique bool) func(name, value string) error {
	return func(name, value string) error {
		fields := strings.Fields(value)
		if len(fields) < 6 {
			return fmt.Errorf("%s: %q: want MIN HOUR DAY MONTH WEEKDAY COMMAND (-1 for any, -N for every N)", name, value)
		}
		var spec [5]int
		for i := range spec {
			n, err := strconv.Atoi(fields[i])
			if err != nil {
				return fmt.Errorf("%s: %q: field %d, %q, is not a number (-1 for any, -N for every N)", name, value, i+1, fields[i])
			}
			spec[i] = n
		}
		command := strings.TrimSpace(value)
		for range 5 {
			command = strings.TrimSpace(command[strings.IndexAny(command, " \t"):])
		}
		o.Crons = append(o.Crons, server.CronJob{Minute: spec[0], Hour: spec[1], Day: spec[2], Month: spec[3],
			Weekday: spec[4], Command: command, Unique: unique})
		return nil
	}
}

// cron2 reads uWSGI's "key=value,... COMMAND" form of --cron.
func (o *options) cron2(name, value string) error {
	kv, command, ok := strings.Cut(strings.TrimSpace(value), " ")
	command = strings.TrimSpace(command)
	if !ok || command == "" {
		return fmt.Errorf("%s: %q: want minute=N,hour=N,day=N,month=N,week=N[,unique=1][,harakiri=S] COMMAND", name, value)
	}
	job := server.CronJob{Minute: -1, Hour: -1, Day: -1, Month: -1, Weekday: -1, Command: command}
	fields := map[string]*int{"minute": &job.Minute, "hour": &job.Hour, "day": &job.Day, "month": &job.Month, "week": &job.Weekday}
	for _, pair := range strings.Split(kv, ",") {
		key, val, _ := strings.Cut(pair, "=")
		n, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("%s: %s=%q is not a number", name, key, val)
		}
		switch {
		case fields[key] != nil:
			*fields[key] = n
		case key == "unique":
			job.Unique = n != 0
		case key == "harakiri":
			job.Harakiri = time.Duration(n) * time.Second
		default:
			return fmt.Errorf("%s: gowsgi takes the keys minute, hour, day, month, week, unique and harakiri, not %q", name, key)
		}
	}
	o.Crons = append(o.Crons, job)
	return nil
}
