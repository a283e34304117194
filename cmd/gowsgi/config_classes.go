// What gowsgi does with each uWSGI option it does not implement, in one
// table: a pure tuning knob (how fast, how big, what a process is called,
// what the log looks like) is accepted with a warning, since the server
// serves and runs the same without it; an option whose absence would change
// what is served or run (routing, headers, hooks, daemons, spooler, mules,
// cache, alarms, other listeners, jails…) stops the start with one line
// naming it and what to do, until gowsgi implements it. A test checks that
// every option uWSGI 2.0.21 knows (uwsgi_options.txt) is either in the
// option table or classified here.
package main

import "strings"

// optionClass is what gowsgi does with a uWSGI option it does not implement.
type optionClass int

const (
	classUnclassified optionClass = iota
	classTuning                   // accepted with the "does not implement" warning
	classRefused                  // the start stops with the rule's text
)

// classRule classifies the uWSGI options it names: exact names, or a
// prefix when a name ends in "*".
type classRule struct {
	class optionClass
	names []string
	// text is, for a refused option, why and what to do instead.
	text string
}

// The texts of the refusals, each saying what to do instead.
const (
	refuseRouting   = "gowsgi implements route and route-if (see gowsgi --help); other uWSGI routing rules are not implemented: route in the web server in front (nginx location, HAProxy acl) or in the app"
	refuseHeaders   = "gowsgi does not implement it; set the header in the app or in the web server in front"
	refuseHooks     = "gowsgi runs the hooks of the phases asap, as-root, as-user, pre-app, post-app and master-start (hook-PHASE = exec:COMMAND, exec-PHASE = COMMAND); run anything else from the service manager (systemd ExecStartPre=) or the app"
	refuseDaemon    = "gowsgi runs attach-daemon, attach-daemon2 (cmd= only) and smart-attach-daemon; run other side processes under the service manager (a systemd unit, a supervisord program)"
	refuseSpooler   = "gowsgi's spooler does not implement it (gowsgi --help lists the spooler options it takes); drop it, or run the tasks with a task queue (Celery, RQ) started by attach-daemon"
	refuseMules     = "gowsgi's mules do not implement it (gowsgi --help lists the mule options it takes); drop it, or run the code as its own process with attach-daemon"
	refuseCache     = "gowsgi implements --cache2, --cache and --cache-blocksize only; for the rest use a cache server (memcached, Redis) from the app"
	refuseCron      = "gowsgi has no Legion; use cron, unique-cron or cron2, or register the job from the app with uwsgi.add_cron or @cron"
	refuseSignals   = "register the signal from the app (uwsgi.register_signal, add_timer, add_rb_timer, add_file_monitor)"
	refuseFifo      = "gowsgi has no master FIFO: send the master signals instead (SIGHUP reloads, SIGTERM stops, SIGUSR1 reopens the log)"
	refuseAlarm     = "gowsgi has no alarms: watch the log or the --metrics endpoint with your monitoring"
	refuseEmperor   = "gowsgi has no Emperor; run one gowsgi per application (systemd, supervisord, a container each)"
	refuseAsync     = "gowsgi does not run uWSGI's async loops; use --threads N to serve requests concurrently"
	refuseListener  = "gowsgi does not serve this kind of socket; use --http-socket, --https-socket, --socket (with --protocol), --uwsgi-socket, --scgi-socket or --fastcgi-socket"
	refuseRouter    = "gowsgi's master serves HTTP itself and has no separate HTTP router; put nginx or HAProxy in front for this"
	refuseJail      = "gowsgi does not set up jails, namespaces, cgroups or capabilities; let the service manager or the container runtime do it"
	refuseConfig    = "gowsgi reads ini files, the command line and UWSGI_* variables; write the options there (ini = FILE includes another ini file)"
	refuseStatic    = "gowsgi implements static-map, check-static, static-gzip-all, static-gzip-dir and static-expires*; serve the rest from the web server in front"
	refusePython    = "gowsgi does not implement it; import or run the code from the app's own module"
	refuseApp       = "gowsgi serves the --module, --wsgi-file or --mount apps only; mount each app with --mount MOUNTPOINT=APP"
	refuseLanguage  = "gowsgi runs Python WSGI applications only"
	refuseProcess   = "gowsgi does not implement it; it would change which processes run or as whom"
	refuseException = "gowsgi answers 500 and logs the traceback; show errors in the browser with the framework's debug mode instead"
	refuseTLS       = "gowsgi's --https-socket takes ADDR,CERT,KEY only; terminate TLS with other settings in the web server in front"
	refuseSubscribe = "gowsgi has no subscription system; register the server with your load balancer instead"
)

// optionClasses classifies every uWSGI option gowsgi's option table does
// not have. An exact name wins over a pattern, and a longer pattern over a
// shorter one ("log-alarm" is refused although "log-*" is tuning).
var optionClasses = []classRule{
	// Tuning: the same requests get the same answers without them.
	{class: classTuning, names: []string{
		"emperor-procname", "shutdown-sockets", "skip-zero",
		"so-*", "socket-rcvbuf", "socket-sndbuf", "socket-send-timeout", "socket-write-timeout",
		"tcp-nodelay", "tcp-fast-open*", "tcp-fastopen*", "freebind", "reuse-port",
		"thread-stack*", "threads-stack*", "no-threads-wait", "cpu-affinity", "prio", "never-swap", "ksm",
		"pcre-jit", "clock", "lock-engine", "persistent-ipcsem", "forkbomb-delay", "check-interval",
		"max-vars", "max-apps", "body-read-warning", "post-buffering-bufsize", "chunked-input-*",
		"response-headers-limit", "start_response-nodelay", "write-errors-*", "use-abort",
		"disable-sendfile", "wsgi-accept-buffer*", "offload-thread", "static-cache-paths*", "honour-range",
		"reload-on-as", "evil-reload-on-*", "reload-on-fd", "brutal-reload-on-fd", "reload-on-exception*",
		"min-worker-lifetime", "max-worker-lifetime-delta", "harakiri-no-arh", "no-harakiri-*",
		"limit-as", "limit-nproc", "reload-mercy", "mem-collector-freq", "cheap", "idle", "reaper",
		"cheaper-*", "py-call-osafterfork", "py-call-uwsgi-fork-hooks", "py-auto-reload-ignore",
		"py-program-name", "py-programname", "py-executable", "py-sys-executable", "optimize", "py-tracebacker",
		"profiler", "python-version", "skip-atexit", "skip-atexit-teardown",
		"wait-for-*", "wait-iface*", "wait-interface*", "mountpoint-check", "mount-check", "check-mount*",
		"log-*", "logfile-*", "logger-*", "threaded-logger",
		"paste-logger", "ini-paste-logged",
		"stats-min*", "stats-no-*", "stats-pusher*", "stats-pushers*", "enable-metrics", "metric*", "metrics-*",
		"print", "iprint", "dump-options", "show-config", "reload-os-env",
		"plugin-dir", "plugins-dir", "need-plugin", "need-plugins", "allowed-modifiers", "backtrace-depth", "close-on-exec*",
		"safe-fd", "fd-safe", "no-fd-passing", "signal-bufsize", "signals-bufsize", "rpc-max", "mode",
		"ssl-verbose", "http-processes", "http-workers", "http-buffer-size", "http-headers-timeout",
		"http-connect-timeout", "http-harakiri", "http-gracetime", "http-quiet", "http-events", "http-uid",
		"http-gid", "http-chunked-input", "http-manage-expect",
		"http-raw-body", "websocket-*", "websockets-*", "weight", "auto-weight", "no-initgroups",
		"spooler-max-tasks", "mule-msg-size", "mule-reload-mercy",
		"re-fork*", "refork*", "touch-logrotate", "wsgi-env-behavior", "wsgi-env-behaviour",
	}},

	{class: classRefused, text: refuseRouting, names: []string{
		"route*", "final-route*", "error-route*", "response-route*",
	}},
	{class: classRefused, text: refuseHeaders, names: []string{
		"del-header", "rem-header", "pull-header", "collect-header", "response-header-collect",
		"error-page-*", "http-var", "http-server-name-as-http-host",
	}},
	{class: classRefused, text: refuseHooks, names: []string{
		"hook-*", "exec-*", "call-*", "mount-*", "umount-*", "after-request-*", "touch-exec", "worker-exec*",
		"binary-append-data", "file-write", "flock*", "ftok",
	}},
	{class: classRefused, text: refuseDaemon, names: []string{"attach-*", "smart-attach-*", "legion-*attach-daemon*"}},
	{class: classRefused, text: refuseSpooler, names: []string{"spooler*", "touch-spoolers-reload"}},
	{class: classRefused, text: refuseMules, names: []string{"mule*", "touch-mules-reload"}},
	{class: classRefused, text: refuseCache, names: []string{
		"cache*", "add-cache-item", "load-file-in-cache*", "check-cache", "http-use-cache", "queue*",
		"sharedarea", "py-sharedarea",
	}},
	{class: classRefused, text: refuseCron, names: []string{"cron-legion", "unique-cron-legion", "legion-cron", "unique-legion-cron"}},
	{class: classRefused, text: refuseSignals, names: []string{
		"signal", "signal-timer", "signal-rbtimer", "timer", "rbtimer", "touch-signal", "fs-signal",
	}},
	{class: classRefused, text: refuseFifo, names: []string{"master-fifo"}},
	{class: classRefused, text: refuseAlarm, names: []string{
		"alarm*", "log-alarm", "not-alarm-log", "not-log-alarm", "backlog-alarm", "lq-alarm",
		"listen-queue-alarm", "segfault-alarm", "metric-alarm",
	}},
	{class: classRefused, text: refuseEmperor, names: []string{
		"emperor*", "early-emperor", "vassal*", "imperial-*", "heartbeat", "blacklist", "whitelist",
		"end-blacklist", "end-whitelist",
	}},
	{class: classRefused, text: refuseAsync, names: []string{"async", "loop", "ugreen"}},
	{class: classRefused, text: refuseListener, names: []string{
		"abstract-socket", "ssl-socket", "raw-socket", "puwsgi-socket", "suwsgi-socket", "fastcgi-nph-socket",
		"scgi-nph-socket", "shared-socket", "undeferred-shared-socket", "map-socket", "zerg*", "udp",
		"https", "https2", "notify-socket", "snmp*", "stats-push",
	}},
	{class: classRefused, text: refuseRouter, names: []string{
		"http-to", "http-to-https", "http-fallback", "http-use-*", "http-stud-prefix", "http-subscription-*",
		"http-resubscribe", "http-modifier*", "http-socket-modifier*", "http-manage-*", "http-stats*", "http-ss",
		"http-auto-gzip", "http-zerg", "http-cheap", "httprouter", "https-socket-modifier*", "https-export-cert",
		"https-session-context", "force-gateway", "no-server",
	}},
	{class: classRefused, text: refuseJail, names: []string{
		"chroot", "jailed", "namespace*", "ns", "ns-net", "setns*", "unshare*", "pivot-root", "pivot_root", "cap",
		"cgroup*", "add-gid", "immediate-uid", "immediate-gid", "drop-after-*",
		"privileged-binary-patch*", "unprivileged-binary-patch*", "vassal-cap", "vassals-cap",
	}},
	{class: classRefused, text: refuseConfig, names: []string{
		"config", "config-py", "fallback-config", "json", "js", "yaml", "yml", "xml", "xmlconfig", "inject-*",
		"declare-option*", "resolve", "connect-and-read", "envdir",
		"early-envdir", "unenv", "if-plugin", "if-not-plugin", "ifplugin", "if-hostname-match",
		"if-not-hostname-match", "if-directory", "for-*", "extract", "dot-h", "cflags", "build-plugin",
		"print-sym", "print-symbol", "binary-path", "binsh", "test", "exit", "command-mode", "pause", "suspend",
		"resume", "eval",
		// uWSGI prints these and exits: gowsgi would serve instead.
		"get", "usage", "*-list", "cheaper-list", "cheaper-algo-list", "cheaper-algos-list", "logger-list",
	}},
	{class: classRefused, text: refuseStatic, names: []string{
		"static-*", "mime-file", "mimefile", "file-serve-mode", "fileserve-mode", "check-static-docroot",
	}},
	{class: classRefused, text: refusePython, names: []string{
		"import", "py-import", "pyimport", "python-import", "shared-import", "shared-py-import", "shared-pyimport",
		"shared-python-import", "pymodule-alias", "post-pymodule-alias", "pyrun", "pyshell", "pyshell-oneshot", "py", "python",
		"pyargv", "python-raw", "python-worker-override", "no-site", "exception-handler", "autoload", "dlopen",
		"wsgi-strict", "wsgi-lite", "web3", "pecan", "ini-paste",
		"upload-progress",
	}},
	{class: classRefused, text: refuseApp, names: []string{
		"vhost", "vhost-host", "no-default-app", "worker-mount", "ignore-script-name", "chdir2", "force-cwd",
		"cgi-mode",
	}},
	{class: classRefused, text: refuseLanguage, names: []string{"*-modifier1", "*-modifier2", "remap-modifier"}},
	{class: classRefused, text: refuseProcess, names: []string{
		"exit-on-reload", "die-on-idle", "fs-brutal-reload", "propagate-touch", "touch-*",
	}},
	{class: classRefused, text: refuseException, names: []string{"catch-exceptions"}},
	{class: classRefused, text: refuseTLS, names: []string{"ssl-*", "sni*"}},
	{class: classRefused, text: refuseSubscribe, names: []string{
		"subscribe*", "subscription*", "subscriptions-*", "unsubscribe-on-graceful-reload", "start-unsubscribed",
		"st", "multicast*", "legion*", "pump",
	}},
}

// classify returns the rule for the uWSGI option key (no dashes), or the
// zero rule when no rule names it.
func classify(key string) classRule {
	key = strings.ToLower(key)
	best, bestLen := classRule{}, -1
	for _, rule := range optionClasses {
		for _, name := range rule.names {
			if name == key {
				return rule
			}
			if pattern := strings.Trim(name, "*"); len(pattern) > bestLen && matchesPattern(name, key) {
				best, bestLen = rule, len(pattern)
			}
		}
	}
	return best
}

// matchesPattern says whether a rule's pattern covers key: "*" at its
// start or end stands for any text.
func matchesPattern(name, key string) bool {
	switch {
	case strings.HasSuffix(name, "*"):
		return strings.HasPrefix(key, strings.TrimSuffix(name, "*"))
	case strings.HasPrefix(name, "*"):
		return strings.HasSuffix(key, strings.TrimPrefix(name, "*"))
	}
	return false
}
