// uWSGI's loggers, log encoders, log routes and conditional request lines
// (server/logsink.go, logencoder.go, accesslog.go): the options and the
// check that stops a start on a logger or encoder gowsgi does not have.
package main

import (
	"errors"
	"strings"

	"github.com/gowsgi/gowsgi/server"
)

// loggingOptions are uWSGI's logger, encoder and conditional-logging
// options.
func loggingOptions(o *options) []option {
	r := &o.LogRouting
	return []option{
		{names: []string{"--logger"}, kind: kindList, arg: "[NAME ]KIND[:ARGS]", check: o.logger,
			help: "add a logger: file:PATH (the first as --logto PATH), stdio, syslog[:IDENT[,FACILITY]], rsyslog:ADDR[:PORT][,PREFIX[,PRIORITY]] (UDP, or a Unix datagram socket when ADDR is a path), socket:ADDR[,PREFIX]; every line goes to each unnamed logger; a NAME gets only what --log-route sends it (repeatable)"},
		{names: []string{"--req-logger", "--logger-req"}, kind: kindList, arg: "[NAME ]KIND[:ARGS]", target: &r.ReqLoggers,
			help: "add a logger for the request lines alone, which then go to the request loggers only (repeatable)"},
		{names: []string{"--log-syslog"}, kind: kindMode, arg: "[IDENT[,FACILITY]]", check: o.logSyslog,
			help: "as --logger syslog[:IDENT[,FACILITY]]"},
		{names: []string{"--log-socket"}, kind: kindString, arg: "ADDR", check: o.logSocket,
			help: "as --logger socket:ADDR"},
		{names: []string{"--log-encoder"}, kind: kindList, arg: "KIND[:LOGGER] [ARGS]", target: &r.Encoders,
			help: "encode every log line, in order of the options: prefix TEXT, suffix TEXT, nl, format TEMPLATE, json TEMPLATE (templates with ${msg} ${msgnl} ${unix} ${micros} ${millis} ${strftime:FORMAT}; json escapes what it places); KIND:LOGGER for that named logger only (repeatable)"},
		{names: []string{"--log-req-encoder"}, kind: kindList, arg: "KIND[:LOGGER] [ARGS]", target: &r.ReqEncoders,
			help: "as --log-encoder, for the request lines alone (repeatable)"},
		{names: []string{"--log-route"}, kind: kindList, arg: "NAME REGEXP", target: &r.Routes,
			help: "send the lines REGEXP matches to the logger NAME instead of the unnamed ones (repeatable)"},
		{names: []string{"--log-req-route"}, kind: kindList, arg: "NAME REGEXP", target: &r.ReqRoutes,
			help: "as --log-route, for the request lines (repeatable)"},
		{names: []string{"--log-slow"}, kind: kindInt, arg: "MSECS", min: 0, max: 1 << 31, target: &o.LogSlow,
			help: "log the requests that took at least MSECS even with --disable-logging"},
		{names: []string{"--log-zero"}, kind: kindBool, target: &o.LogZero,
			help: "log the responses without a body even with --disable-logging"},
		{names: []string{"--log-big"}, kind: kindInt, arg: "BYTES", min: 0, max: 1 << 50, target: &o.LogBig,
			help: "log the responses with a body of at least BYTES even with --disable-logging"},
		{names: []string{"--log-micros"}, kind: kindBool, target: &o.LogMicros,
			help: "write the request line's time in microseconds (N micros) instead of milliseconds"},
		{names: []string{"--logformat-strftime", "--log-format-strftime"}, kind: kindBool, target: &o.LogFormatStrftime,
			help: "write --log-format's %(ftime) in --log-date's strftime format (else it is %(ltime))"},
	}
}

// logger reads --logger. The first unnamed file: logger is also the
// --logto file when there is none, so SIGUSR1, --log-maxsize and
// --log-reopen apply to it.
func (o *options) logger(_, value string) error {
	if path, ok := logFile(value); ok && o.LogTo == "" {
		o.LogTo = path
	}
	o.LogRouting.Loggers = append(o.LogRouting.Loggers, value)
	return nil
}

// logFile returns PATH of uWSGI's "file:PATH" logger.
func logFile(value string) (string, bool) {
	path, ok := strings.CutPrefix(value, "file:")
	return path, ok && path != "" && !strings.Contains(path, "=")
}

// logSyslog reads --log-syslog[=IDENT[,FACILITY]].
func (o *options) logSyslog(_, value string) error {
	if value == "" || value == "true" {
		return o.logger("", "syslog")
	}
	return o.logger("", "syslog:"+value)
}

// logSocket reads --log-socket ADDR.
func (o *options) logSocket(_, value string) error { return o.logger("", "socket:"+value) }

// checkLogging stops a start whose loggers, encoders or routes gowsgi
// cannot run, or that mixes them with --log-json.
func (o *options) checkLogging() error {
	r := o.LogRouting
	if o.LogJSON && r.NeedsSink(o.LogTo) {
		return errors.New("--log-json writes every line as JSON itself; drop --log-json, or the loggers and log encoders")
	}
	return server.CheckLogRouting(r)
}
