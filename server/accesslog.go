// The access log: one line per request, either uWSGI's own request line
// (logline.go), a JSON object with --log-json, or, with --log-format, a
// line built from uWSGI's request-log
// variables (%(addr), %(status), %(msecs), …) and the app's own
// (uwsgi.set_logvar, which the worker sends with the response's end
// frame only when the app set some). -L turns the lines off;
// --log-4xx, --log-5xx, --log-slow, --log-zero and --log-big keep them
// for the requests they name, as in uWSGI.
// --memory-report adds the worker's memory to each line, as uWSGI's
// default request line does. The log wraps the whole handler, as the
// metrics do, so what the master answers itself (a --static-map file, a
// 403, a 503) is logged like what the app answers, and each request once.
package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lestrrat-go/strftime"

	"github.com/gowsgi/gowsgi/wsgi"
)

// accessLog decides which requests are logged and writes their lines. A
// nil *accessLog logs nothing.
type accessLog struct {
	log *slog.Logger
	// all logs every request; otherwise only those log4xx, log5xx, slow,
	// zero and big ask for (uWSGI's conditional logging).
	all, log4xx, log5xx, zero bool
	slow                      time.Duration // 0: no
	big                       int64         // 0: no
	// format, when not nil, is --log-format parsed; lines go to out.
	format []logPart
	out    io.Writer
	outMu  sync.Mutex
	// pidOf, when not nil, returns a worker's pid, 0 when it has none.
	pidOf func(worker int) int
	// memoryReport adds the worker's memory to each line (--memory-report).
	memoryReport bool
	// forwardedFor shows X-Forwarded-For as %(addr) (--log-x-forwarded-for).
	forwardedFor bool
	// json: lines are slog's JSON objects (--log-json), with the request's
	// id, its client and its duration in milliseconds.
	json bool
	// counts numbers the requests for uWSGI's "req: N/M".
	counts requestCounts
	// micros writes the default line's time in microseconds (--log-micros).
	micros bool
	// ftime, when not nil, is %(ftime)'s format: --log-date's, with
	// --logformat-strftime; else %(ftime) is %(ltime), as in uWSGI.
	ftime *strftime.Strftime
}

// logPart is a literal piece of a --log-format line or one variable.
type logPart struct {
	literal  string
	variable string // empty for a literal
}

// newAccessLog returns the access log cfg asks for, or nil for none.
func newAccessLog(cfg Config, log *slog.Logger, out io.Writer) *accessLog {
	if !cfg.AccessLog && !cfg.Log4xx && !cfg.Log5xx && cfg.LogSlow == 0 && !cfg.LogZero && cfg.LogBig == 0 {
		return nil
	}
	a := &accessLog{log: log, all: cfg.AccessLog, log4xx: cfg.Log4xx, log5xx: cfg.Log5xx, zero: cfg.LogZero,
		slow: time.Duration(cfg.LogSlow) * time.Millisecond, big: cfg.LogBig,
		out: out, memoryReport: cfg.MemoryReport, forwardedFor: cfg.LogXForwardedFor, json: cfg.LogJSON,
		micros: cfg.LogMicros}
	if cfg.LogFormat != "" {
		a.format = parseLogFormat(cfg.LogFormat)
	}
	if cfg.LogFormatStrftime && cfg.LogDateFormat != "" {
		// newMaster has read the same format for --log-date already.
		a.ftime, _ = strftime.New(cfg.LogDateFormat)
	}
	return a
}

// parseLogFormat splits a format into literals and %(name) variables; a
// "%(" without its ")" stays literal.
func parseLogFormat(format string) []logPart {
	return splitVariables(format, "%(", ')')
}

// splitVariables splits template into literals and the variables between
// open and close, as uWSGI reads its log formats (%(name)) and encoder
// templates (${name}); an open without its close stays literal.
func splitVariables(template, open string, close byte) []logPart {
	var parts []logPart
	for template != "" {
		start := strings.Index(template, open)
		end := -1
		if start >= 0 {
			end = strings.IndexByte(template[start:], close)
		}
		if start < 0 || end < 0 {
			parts = append(parts, logPart{literal: template})
			break
		}
		if start > 0 {
			parts = append(parts, logPart{literal: template[:start]})
		}
		parts = append(parts, logPart{variable: template[start+len(open) : start+end]})
		template = template[start+end+1:]
	}
	return parts
}

// wants reports whether e's request is logged.
func (a *accessLog) wants(e *entry) bool {
	switch {
	case a == nil:
		return false
	case a.all:
		return true
	case a.zero && e.bodyBytes == 0:
		return true
	case a.slow > 0 && e.took >= a.slow:
		return true
	case a.big > 0 && e.bodyBytes >= a.big:
		return true
	case e.status >= 400 && e.status < 500:
		return a.log4xx
	case e.status >= 500:
		return a.log5xx
	}
	return false
}

// entry is what one request's line can say.
type entry struct {
	req        *wsgi.Request
	status     int
	bodyBytes  int64
	headBytes  int64
	headFields int // the header fields in the head
	worker     int // 0 when no worker took it
	pid        int // the worker's process; 0 when no worker took it
	// workerRequests and allRequests are uWSGI's "req: N/M": this worker
	// process's requests and every worker's, this one included.
	workerRequests, allRequests uint64
	start                       time.Time
	took                        time.Duration
	logvars                     []byte // uwsgi.set_logvar's, a vars block
}

// wrap returns next with the responses it gives logged, or next itself
// when nothing is logged.
func (a *accessLog) wrap(next wsgi.Handler) wsgi.Handler {
	if a == nil {
		return next
	}
	return &loggedHandler{access: a, next: next}
}

// loggedHandler writes the access line of every request next serves.
type loggedHandler struct {
	access *accessLog
	next   wsgi.Handler
}

func (h *loggedHandler) ServeWSGI(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	start := time.Now()
	lw := loggedWriter{ResponseWriter: w}
	err := h.next.ServeWSGI(ctx, &lw, req)
	e := &entry{req: req, status: lw.status, bodyBytes: lw.bodyBytes, headBytes: lw.headBytes, headFields: lw.headFields,
		worker: lw.worker, pid: lw.pid, start: start, took: time.Since(start), logvars: lw.logvars}
	// Every request counts, logged or not, as uWSGI's counters do.
	e.workerRequests, e.allRequests = h.access.counts.add(e.worker, e.pid)
	if h.access.wants(e) {
		h.access.write(e)
	}
	return err
}

// workerNoter is a ResponseWriter that is told which worker, and which
// of its processes, served the response; the dispatcher tells the access
// log's, for %(wid), %(pid), --memory-report and the request line.
type workerNoter interface {
	servedBy(worker, pid int)
}

// loggedWriter notes what a response sent, as the client gets it: status,
// the head's size and the body's.
type loggedWriter struct {
	wsgi.ResponseWriter
	status               int
	headBytes, bodyBytes int64
	headFields           int
	worker               int    // 0 when no worker served it
	pid                  int    // the worker's process, 0 when none
	logvars              []byte // the app's log variables, a vars block; nil when none
}

func (lw *loggedWriter) WriteHead(status string, headers []byte) error {
	lw.status, _ = strconv.Atoi(status[:min(3, len(status))])
	lw.headBytes = headSize(status, headers)
	lw.headFields = headerFields(headers)
	return lw.ResponseWriter.WriteHead(status, headers)
}

func (lw *loggedWriter) WriteBody(p []byte) error {
	lw.bodyBytes += int64(len(p))
	return lw.ResponseWriter.WriteBody(p)
}

func (lw *loggedWriter) SendFile(f *os.File, offset, count int64) error {
	lw.bodyBytes += fileBytes(f, offset, count)
	return lw.ResponseWriter.SendFile(f, offset, count)
}

func (lw *loggedWriter) servedBy(worker, pid int) { lw.worker, lw.pid = worker, pid }

// logvarNoter is a ResponseWriter that is given the log variables the app
// set (uwsgi.set_logvar), a vars block, when it set any; the relay tells
// the access log's, for their %(name) in --log-format.
type logvarNoter interface {
	noteLogvars(block []byte)
}

func (lw *loggedWriter) noteLogvars(block []byte) { lw.logvars = bytes.Clone(block) }

// write writes e's line.
func (a *accessLog) write(e *entry) {
	switch {
	case a.format != nil:
		a.writeFormatted(e)
	case a.json:
		a.writeJSON(e)
	default:
		a.writeLine(appendRequestLine(nil, a.requestLine(e)))
	}
}

// writeJSON writes e as slog's JSON object (--log-json).
func (a *accessLog) writeJSON(e *entry) {
	method, _ := e.req.Vars.Get("REQUEST_METHOD")
	path, _ := e.req.Vars.Get("PATH_INFO")
	id, _ := e.req.Vars.Get(RequestIDVar)
	remote, _ := e.req.Vars.Get("REMOTE_ADDR")
	// slog writes a Duration as nanoseconds; milliseconds read better.
	attrs := []any{"method", method, "path", path, "status", e.status, "bytes", e.bodyBytes,
		"duration_ms", float64(e.took.Microseconds()) / 1000, "request_id", id, "remote", remote, "worker", e.worker}
	if a.memoryReport {
		if pid, rss, vsz, ok := a.workerMemory(e.worker); ok {
			attrs = append(attrs, "pid", pid, "rss", rss, "vsz", vsz)
		}
	}
	a.log.Info("request", attrs...)
}

// writeLine writes one whole request line in one write, so lines never
// interleave.
func (a *accessLog) writeLine(line []byte) {
	a.outMu.Lock()
	defer a.outMu.Unlock()
	a.out.Write(line)
}

// workerMemory returns a worker's pid and, with --memory-report, its
// memory; ok is false when there is nothing to report.
func (a *accessLog) workerMemory(worker int) (pid int, rss, vsz int64, ok bool) {
	if a.pidOf == nil || worker == 0 {
		return 0, 0, 0, false
	}
	if pid = a.pidOf(worker); pid == 0 {
		return 0, 0, 0, false
	}
	if a.memoryReport {
		rss, vsz = processMemory(pid)
	}
	return pid, rss, vsz, true
}

// writeFormatted writes the --log-format line for e.
func (a *accessLog) writeFormatted(e *entry) {
	var b bytes.Buffer
	for _, part := range a.format {
		if part.variable == "" {
			b.WriteString(part.literal)
			continue
		}
		// uWSGI writes "-" for a variable whose value is empty (an
		// absent header, a log variable the app did not set).
		value := a.variable(e, part.variable)
		if value == "" {
			value = "-"
		}
		b.WriteString(value)
	}
	if a.memoryReport && !a.usesMemoryVars() {
		a.appendMemoryReport(&b, e.worker)
	}
	b.WriteByte('\n')
	a.writeLine(b.Bytes())
}

// appendMemoryReport adds the worker's memory in uWSGI's --memory-report
// wording, for tools that parse it (pyuwsgimemhog, for one).
func (a *accessLog) appendMemoryReport(b *bytes.Buffer, worker int) {
	if pid, rss, vsz, ok := a.workerMemory(worker); ok {
		fmt.Fprintf(b, " {address space usage: %d bytes/%dMB} {rss usage: %d bytes/%dMB} [pid: %d]", vsz, vsz>>20, rss, rss>>20, pid)
	}
}

// usesMemoryVars reports whether the format places the memory itself.
func (a *accessLog) usesMemoryVars() bool {
	for _, part := range a.format {
		switch part.variable {
		case "rss", "vsz", "rssM", "vszM":
			return true
		}
	}
	return false
}

// requestVars maps uWSGI's request-log variables to the CGI variable each
// one shows.
var requestVars = map[string]string{
	"addr":    "REMOTE_ADDR",
	"method":  "REQUEST_METHOD",
	"uri":     "REQUEST_URI",
	"proto":   "SERVER_PROTOCOL",
	"host":    "HTTP_HOST",
	"uagent":  "HTTP_USER_AGENT",
	"referer": "HTTP_REFERER",
	"user":    "REMOTE_USER",
	"cl":      "CONTENT_LENGTH",
}

// ltimeLayout is Apache's request time, which uWSGI's %(ltime) shows.
const ltimeLayout = "02/Jan/2006:15:04:05 -0700"

// variable returns one variable's value; an unknown one is empty.
func (a *accessLog) variable(e *entry, name string) string {
	if name == "addr" && a.forwardedFor {
		// uWSGI shows the header's whole value, as the proxy sent it.
		if value, ok := e.req.Vars.Get("HTTP_X_FORWARDED_FOR"); ok {
			return value
		}
	}
	if key, ok := requestVars[name]; ok {
		value, _ := e.req.Vars.Get(key)
		return value
	}
	switch name {
	case "status":
		return strconv.Itoa(e.status)
	case "size":
		return strconv.FormatInt(e.bodyBytes+e.headBytes, 10)
	case "rsize":
		return strconv.FormatInt(e.bodyBytes, 10)
	case "hsize":
		return strconv.FormatInt(e.headBytes, 10)
	case "msecs":
		return strconv.FormatInt(e.took.Milliseconds(), 10)
	case "micros":
		return strconv.FormatInt(e.took.Microseconds(), 10)
	case "secs":
		return strconv.FormatFloat(e.took.Seconds(), 'f', 4, 64)
	case "time":
		return strconv.FormatInt(e.start.Unix(), 10)
	case "epoch":
		return strconv.FormatInt(time.Now().Unix(), 10)
	case "ltime":
		return e.start.Format(ltimeLayout)
	case "ftime":
		if a.ftime != nil {
			return a.ftime.FormatString(e.start)
		}
		return e.start.Format(ltimeLayout)
	case "tmsecs":
		return strconv.FormatInt(e.start.UnixMilli(), 10)
	case "tmicros":
		return strconv.FormatInt(e.start.UnixMicro(), 10)
	case "ctime":
		return e.start.Format(time.ANSIC)
	case "wid":
		return strconv.Itoa(e.worker)
	}
	return a.memoryVariable(e, name)
}

// memoryVariable returns %(pid), %(rss), %(vsz), %(rssM) or %(vszM); the
// memory ones are 0 without --memory-report, as in uWSGI. Any other name
// is a log variable the app may have set (logvar).
func (a *accessLog) memoryVariable(e *entry, name string) string {
	pid, rss, vsz, _ := a.workerMemory(e.worker)
	switch name {
	case "pid":
		return strconv.Itoa(pid)
	case "rss":
		return strconv.FormatInt(rss, 10)
	case "vsz":
		return strconv.FormatInt(vsz, 10)
	case "rssM":
		return strconv.FormatInt(rss>>20, 10)
	case "vszM":
		return strconv.FormatInt(vsz>>20, 10)
	}
	return logvar(e.logvars, name)
}

// logvar returns the value the app gave name with uwsgi.set_logvar, or ""
// as uWSGI writes a variable it does not know.
func logvar(block []byte, name string) string {
	value := ""
	_ = wsgi.EachVar(block, func(k, v []byte) bool {
		if string(k) == name {
			value = string(v)
			return false
		}
		return true
	})
	return value
}

// countVars returns how many variables a vars block holds.
func countVars(block []byte) int {
	n := 0
	_ = wsgi.EachVar(block, func(_, _ []byte) bool { n++; return true })
	return n
}

// headerFields returns how many header fields a headers block holds.
func headerFields(headers []byte) int { return countVars(headers) }

// headSize is the size of the HTTP head a response's status and headers
// make, which uWSGI counts in %(size) and %(hsize).
func headSize(status string, headers []byte) int64 {
	n := int64(len("HTTP/1.1 ") + len(status) + len("\r\n\r\n"))
	_ = wsgi.EachVar(headers, func(name, value []byte) bool {
		n += int64(len(name) + len(": ") + len(value) + len("\r\n"))
		return true
	})
	return n
}

// Direct, WriteRaw, SendFileRaw and Completed pass a direct response
// through (wsgi.DirectResponder); its status and sizes come from the
// worker's completion record.
func (lw *loggedWriter) Direct() (syscall.RawConn, wsgi.Framing, wsgi.HTTPFlags, bool) {
	return directTo(lw.ResponseWriter)
}

func (lw *loggedWriter) WriteRaw(p []byte) error {
	return lw.ResponseWriter.(wsgi.DirectResponder).WriteRaw(p)
}

func (lw *loggedWriter) SendFileRaw(f *os.File, offset, count int64) error {
	return lw.ResponseWriter.(wsgi.DirectResponder).SendFileRaw(f, offset, count)
}

func (lw *loggedWriter) Completed(c wsgi.Completion) {
	lw.status, lw.headBytes, lw.bodyBytes, lw.headFields = c.Status, c.HeadBytes, c.BodyBytes, c.HeadFields
	lw.ResponseWriter.(wsgi.DirectResponder).Completed(c)
}
