// uWSGI's loggers: where each log line goes once the master has it (the
// master's own lines, what the app and the workers print, the request
// lines). --logger adds a logger, "[NAME ]KIND[:ARGS]": file:PATH,
// stdio, syslog[:IDENT[,FACILITY]] (RFC 3164 to /dev/log, as glibc's
// syslog(3) writes for uWSGI's syslog plugin), rsyslog:ADDR[:PORT][,PREFIX
// [,PRIORITY]] (RFC 3164 over UDP, or to a Unix datagram socket when ADDR
// is a path) and socket:ADDR[,PREFIX] (the raw line in a datagram). A line
// goes to every unnamed logger, or to stderr when there is none; a named
// logger only gets what --log-route sends it (a line matching the route's
// regexp goes to the route's loggers instead). --req-logger and
// --log-req-route do the same for the request lines alone, and with
// either of them, or --log-req-encoder, request lines take that path
// instead of the general one, as in uWSGI. Each line goes through the
// encoders (logencoder.go) on its way to each logger. Without any of
// these options no sink exists and lines go to stderr as they always did.
package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LogRouting is the loggers, encoders and routes a config asks for, each
// value as uWSGI's option takes it.
type LogRouting struct {
	Loggers, ReqLoggers   []string // "[NAME ]KIND[:ARGS]"
	Encoders, ReqEncoders []string // "KIND[:LOGGER][ ARGS]"
	Routes, ReqRoutes     []string // "NAME REGEXP"
}

// loggerKinds are the loggers gowsgi has.
var loggerKinds = map[string]bool{"file": true, "stdio": true, "syslog": true, "rsyslog": true, "socket": true}

// CheckLogRouting reports the first logger, encoder or route gowsgi
// cannot run, so the start stops with one line naming it. It opens
// nothing.
func CheckLogRouting(r LogRouting) error {
	for option, values := range map[string][]string{"--log-encoder": r.Encoders, "--log-req-encoder": r.ReqEncoders} {
		if _, err := parseEncoderChain(option, values); err != nil {
			return err
		}
	}
	names := make(map[string]bool)
	for option, values := range map[string][]string{"--logger": r.Loggers, "--req-logger": r.ReqLoggers} {
		for _, value := range values {
			name, kind, _ := splitLogger(value)
			if !loggerKinds[kind] {
				return fmt.Errorf("%s %s: gowsgi has no %q logger, only file, stdio, syslog, rsyslog and socket; use one of these", option, value, kind)
			}
			names[name] = name != ""
		}
	}
	for option, values := range map[string][]string{"--log-route": r.Routes, "--log-req-route": r.ReqRoutes} {
		if _, err := parseRoutes(option, values, names); err != nil {
			return err
		}
	}
	return nil
}

// splitLogger reads "[NAME ]KIND[:ARGS]". uWSGI takes the first word as a
// name when it is alphanumeric.
func splitLogger(value string) (name, kind, args string) {
	spec := value
	if first, rest, ok := strings.Cut(value, " "); ok && isAlnum(first) {
		name, spec = first, rest
	}
	kind, args, _ = strings.Cut(spec, ":")
	return name, kind, args
}

// logger is one destination; write gets one encoded line.
type logger struct {
	name  string // "" for an unnamed logger
	write func(line []byte)
	close func()
}

// logRoute sends the lines that match pattern to the named loggers.
type logRoute struct {
	name    string
	pattern *regexp.Regexp
}

// logPath is the general path or the request lines' one.
type logPath struct {
	encoders encoderChain
	loggers  []*logger // the unnamed ones
	routes   []logRoute
}

// logSink writes lines through the two paths.
type logSink struct {
	mu       sync.Mutex
	general  logPath
	requests *logPath // nil: request lines take the general path
	named    map[string]*logger
	all      []*logger
	fallback io.Writer // stderr, which --logto points at its file
}

// newLogSink builds what r asks for, nil when it asks for nothing beyond
// "file:LOGTO" (which --logto already does). logTo is the --logto file.
func newLogSink(r LogRouting, logTo string) (*logSink, error) {
	if !r.NeedsSink(logTo) {
		return nil, nil
	}
	if err := CheckLogRouting(r); err != nil {
		return nil, err
	}
	s := &logSink{named: make(map[string]*logger), fallback: os.Stderr}
	var err error
	if s.general, err = s.newPath("--logger", r.Loggers, "--log-encoder", r.Encoders, logTo); err != nil {
		s.close()
		return nil, err
	}
	if len(r.ReqLoggers) > 0 || len(r.ReqEncoders) > 0 || len(r.ReqRoutes) > 0 {
		requests, err := s.newPath("--req-logger", r.ReqLoggers, "--log-req-encoder", r.ReqEncoders, logTo)
		if err != nil {
			s.close()
			return nil, err
		}
		s.requests = &requests
	}
	// Routes name loggers, which either list may have named.
	if s.general.routes, err = parseRoutes("--log-route", r.Routes, s.names()); err != nil {
		s.close()
		return nil, err
	}
	if s.requests != nil {
		if s.requests.routes, err = parseRoutes("--log-req-route", r.ReqRoutes, s.names()); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// NeedsSink reports whether r asks for more than --logto already does:
// anything but an unnamed "file:" logger for the --logto file.
func (r LogRouting) NeedsSink(logTo string) bool {
	if len(r.ReqLoggers)+len(r.Encoders)+len(r.ReqEncoders)+len(r.Routes)+len(r.ReqRoutes) > 0 {
		return true
	}
	for _, l := range r.Loggers {
		if l != "file:"+logTo {
			return true
		}
	}
	return false
}

// newPath opens a path's loggers and reads its encoders.
func (s *logSink) newPath(loggerOption string, loggers []string, encoderOption string, encoders []string, logTo string) (logPath, error) {
	var p logPath
	var err error
	if p.encoders, err = parseEncoderChain(encoderOption, encoders); err != nil {
		return p, err
	}
	for _, value := range loggers {
		l, err := openLogger(loggerOption, value, logTo)
		if err != nil {
			return p, err
		}
		s.all = append(s.all, l)
		if l.name == "" {
			p.loggers = append(p.loggers, l)
		} else {
			s.named[l.name] = l
		}
	}
	return p, nil
}

// parseRoutes reads option's "NAME REGEXP" routes to the loggers named
// in named.
func parseRoutes(option string, values []string, named map[string]bool) ([]logRoute, error) {
	var routes []logRoute
	for _, value := range values {
		name, expr, _ := strings.Cut(strings.TrimSpace(value), " ")
		if !named[name] {
			return nil, fmt.Errorf("%s %s: no logger is named %q; name one with --logger \"%s KIND:ARGS\"", option, value, name, name)
		}
		pattern, err := regexp.Compile(strings.TrimSpace(expr))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", option, value, err)
		}
		routes = append(routes, logRoute{name: name, pattern: pattern})
	}
	return routes, nil
}

// names are the named loggers' names.
func (s *logSink) names() map[string]bool {
	names := make(map[string]bool)
	for name := range s.named {
		names[name] = true
	}
	return names
}

// writeLine sends one line, newline included, where it goes.
func (s *logSink) writeLine(line []byte, request bool) {
	path := &s.general
	if request && s.requests != nil {
		path = s.requests
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	routed := false
	for _, r := range path.routes {
		if r.pattern.Match(line) {
			l := s.named[r.name]
			l.write(path.encoders.encode(line, l.name))
			routed = true
		}
	}
	if routed {
		return
	}
	for _, l := range path.loggers {
		l.write(path.encoders.encode(line, ""))
	}
	if len(path.loggers) == 0 {
		s.fallback.Write(path.encoders.encode(line, ""))
	}
}

// close closes the loggers' files and sockets.
func (s *logSink) close() {
	for _, l := range s.all {
		if l.close != nil {
			l.close()
		}
	}
}

// lineWriter cuts what it is given into lines for the sink; a line
// without its newline waits for the rest.
type lineWriter struct {
	sink    *logSink
	request bool
	mu      sync.Mutex
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rest := p
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			w.partial = append(w.partial, rest...)
			return len(p), nil
		}
		line := append(w.partial, rest[:i+1]...)
		w.partial = nil
		w.sink.writeLine(line, w.request)
		rest = rest[i+1:]
	}
}

// writer returns the sink's writer for the general lines or, with
// request, the request lines.
func (s *logSink) writer(request bool) io.Writer {
	return &lineWriter{sink: s, request: request}
}

// relayLines copies a child's output to w, one line (at most maxLogLine
// bytes) a write, until r ends.
func relayLines(r io.Reader, w io.Writer) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(bytes.Clone(line), '\n')
			}
			w.Write(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// openLogger opens one value of option (--logger or --req-logger).
func openLogger(option, value, logTo string) (*logger, error) {
	name, kind, args := splitLogger(value)
	l := &logger{name: name}
	var err error
	switch kind {
	case "file":
		err = l.openFile(args, name == "" && args == logTo)
	case "stdio":
		l.write = func(line []byte) { os.Stderr.Write(line) }
	case "syslog":
		l.openSyslog(args)
	case "rsyslog":
		err = l.openRsyslog(args)
	case "socket":
		err = l.openSocket(args)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", option, value, err)
	}
	return l, nil
}

func isAlnum(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// openFile appends to path; the --logto file itself is stderr, which
// SIGUSR1 and rotation reopen.
func (l *logger) openFile(path string, isLogTo bool) error {
	if path == "" {
		return errors.New("file: needs a path")
	}
	if isLogTo {
		l.write = func(line []byte) { os.Stderr.Write(line) }
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	l.write = func(line []byte) { f.Write(line) }
	l.close = func() { f.Close() }
	return nil
}

// syslogPath is the local syslog socket; a variable so that a test can
// use its own.
var syslogPath = "/dev/log"

// syslogFacilities are syslog(3)'s facility names and numbers.
var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "security": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// syslogInfo is the LOG_INFO severity uWSGI's syslog logger writes at.
const syslogInfo = 6

// openSyslog writes "<PRI>Mmm dd hh:mm:ss IDENT: LINE" datagrams to
// /dev/log, as syslog(3) does after openlog(IDENT, 0, FACILITY): IDENT
// "uwsgi" and facility daemon unless given; an unknown facility is
// daemon, as uWSGI's plugin takes it. A syslog that is not running loses
// the line, as syslog(3) does.
func (l *logger) openSyslog(args string) {
	ident, facilityName, _ := strings.Cut(args, ",")
	if ident == "" {
		ident = "uwsgi"
	}
	facility, ok := syslogFacilities[facilityName]
	if !ok {
		facility = syslogFacilities["daemon"]
	}
	out := &datagramOut{network: "unixgram", addr: syslogPath}
	prefix := "<" + strconv.Itoa(facility*8+syslogInfo) + ">"
	l.write = func(line []byte) {
		out.send(rfc3164(prefix, ident, line))
	}
	l.close = out.close
}

// rsyslogMaxMessage is the part of a line uWSGI's rsyslog logger sends:
// its 1024-byte packet (RFC 3164, 4.1) less room for the header.
const rsyslogMaxMessage = 1024 - 30

// openRsyslog sends "<PRI>Mmm dd hh:mm:ss PREFIX: LINE" to ADDR[:PORT]
// (UDP, port 514 by default) or to the Unix datagram socket at ADDR when
// it is a path; PREFIX is "HOSTNAME uwsgi" and PRI 29 unless given.
func (l *logger) openRsyslog(args string) error {
	addr, rest, hasPrefix := strings.Cut(args, ",")
	if addr == "" {
		return errors.New("rsyslog: needs ADDR[:PORT]")
	}
	prefix, priority := rest, "29"
	if p, pri, ok := strings.Cut(rest, ","); ok {
		prefix, priority = p, strconv.Itoa(atoiPrefix(pri))
	}
	if !hasPrefix {
		host, _ := os.Hostname()
		prefix = host + " uwsgi"
	}
	out := &datagramOut{network: "unixgram", addr: addr}
	if !strings.HasPrefix(addr, "/") {
		if !strings.Contains(addr, ":") {
			addr += ":514"
		}
		out = &datagramOut{network: "udp", addr: addr}
	}
	l.write = func(line []byte) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		out.send(rfc3164("<"+priority+">", prefix, line[:min(len(line), rsyslogMaxMessage)]))
	}
	l.close = out.close
	return nil
}

// openSocket sends each line, after PREFIX when given, as one datagram to
// HOST:PORT (UDP) or a Unix datagram socket, as uWSGI's socket logger.
func (l *logger) openSocket(args string) error {
	addr, prefix, _ := strings.Cut(args, ",")
	if addr == "" {
		return errors.New("socket: needs an address")
	}
	out := &datagramOut{network: "unixgram", addr: addr}
	if strings.Contains(addr, ":") {
		out.network = "udp"
	}
	l.write = func(line []byte) { out.send(append([]byte(prefix), line...)) }
	l.close = out.close
	return nil
}

// rfc3164 is a syslog packet: priority, the time as syslog's "Mmm dd
// hh:mm:ss", the tag, the line without its newline.
func rfc3164(priority, tag string, line []byte) []byte {
	b := append([]byte(priority), time.Now().Format(time.Stamp)...)
	b = append(b, ' ')
	b = append(b, tag...)
	b = append(b, ": "...)
	return append(b, bytes.TrimSuffix(line, []byte("\n"))...)
}

// atoiPrefix reads the leading number of s, 0 for none, as atoi(3).
func atoiPrefix(s string) int {
	n := 0
	for _, c := range strings.TrimSpace(s) {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// datagramOut sends datagrams to an address, dialing again after a
// failure; a lost datagram is not retried, as uWSGI's loggers do not.
type datagramOut struct {
	network, addr string
	conn          net.Conn
}

// datagramTimeout bounds a send, so a full socket cannot stall the log.
const datagramTimeout = 100 * time.Millisecond

func (d *datagramOut) send(p []byte) {
	if d.conn == nil {
		conn, err := net.DialTimeout(d.network, d.addr, datagramTimeout)
		if err != nil {
			return
		}
		d.conn = conn
	}
	d.conn.SetWriteDeadline(time.Now().Add(datagramTimeout))
	if _, err := d.conn.Write(p); err != nil {
		d.close()
	}
}

func (d *datagramOut) close() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}
