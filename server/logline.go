// uWSGI's own request line, gowsgi's default access line, so the log
// parsers written for uWSGI keep working:
//
//	[pid: 4242|app: 0|req: 3/7] 127.0.0.1 () {24 vars in 267 bytes} [Thu Dec  3 11:53:20 2026] GET /a?x=1 => generated 5 bytes in 0 msecs (HTTP/1.1 200) 1 headers in 45 bytes (1 switches on core 0)
//
// Each field holds what gowsgi knows of the request, under uWSGI's
// meaning: the worker's pid, its own and all workers' request counts, the
// client, the request's variables (as many and as large as the ones the
// worker gets), the start, the body and head sizes as the client got
// them. Two fields have no counterpart: gowsgi has no async cores, so a
// request is always one switch on core 0, as uWSGI's default mode logs
// it; and " via sendfile() " is never written, because the worker sends
// a file_wrapper file itself and the master does not learn how.
package server

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// requestLine is what uWSGI's request line says.
type requestLine struct {
	pid                         int
	app                         int // -1 when no app answered (the master did)
	workerRequests, allRequests uint64
	addr, user                  string
	vars, varBytes              int
	start                       time.Time
	method, uri, proto          string
	bodyBytes, headBytes        int64
	took                        time.Duration
	micros                      bool // --log-micros: the time in microseconds
	status, headFields          int
	memory                      string // --memory-report's prefix, or ""
}

// appendRequestLine appends l to b in uWSGI's words, newline included.
func appendRequestLine(b []byte, l requestLine) []byte {
	took, unit := l.took.Milliseconds(), "msecs"
	if l.micros {
		took, unit = l.took.Microseconds(), "micros"
	}
	b = append(b, l.memory...)
	return fmt.Appendf(b, "[pid: %d|app: %d|req: %d/%d] %s (%s) {%d vars in %d bytes} [%s] %s %s => "+
		"generated %d bytes in %d %s (%s %d) %d headers in %d bytes (1 switches on core 0)\n",
		l.pid, l.app, l.workerRequests, l.allRequests, l.addr, l.user, l.vars, l.varBytes,
		l.start.Format(ctimeLayout), l.method, l.uri, l.bodyBytes, took, unit, l.proto, l.status,
		l.headFields, l.headBytes)
}

// requestLine gathers e's line.
func (a *accessLog) requestLine(e *entry) requestLine {
	get := func(key string) string {
		value, _ := e.req.Vars.Get(key)
		return value
	}
	l := requestLine{pid: e.pid, workerRequests: e.workerRequests, allRequests: e.allRequests,
		addr: a.variable(e, "addr"), user: get("REMOTE_USER"), start: e.start,
		method: get("REQUEST_METHOD"), uri: get("REQUEST_URI"), proto: get("SERVER_PROTOCOL"),
		bodyBytes: e.bodyBytes, headBytes: e.headBytes, took: e.took, micros: a.micros,
		status: e.status, headFields: e.headFields}
	if l.pid == 0 {
		l.pid, l.app = os.Getpid(), -1
	}
	// uWSGI counts a key and its value as two vars, and the bytes of the
	// uwsgi packet that carries them (a 2-byte size before each).
	l.varBytes = len(e.req.Vars.Block())
	l.vars = 2 * countVars(e.req.Vars.Block())
	if a.memoryReport {
		if _, rss, vsz, ok := a.workerMemory(e.worker); ok {
			l.memory = "{address space usage: " + strconv.FormatInt(vsz, 10) + " bytes/" + strconv.FormatInt(vsz>>20, 10) +
				"MB} {rss usage: " + strconv.FormatInt(rss, 10) + " bytes/" + strconv.FormatInt(rss>>20, 10) + "MB} "
		}
	}
	return l
}

// requestCounts counts requests per worker process and in all, as uWSGI's
// "req: N/M" does: N starts again in a worker that replaced another.
type requestCounts struct {
	mu       sync.Mutex
	all      uint64
	byWorker map[int]workerCount
}

// workerCount is one worker's count, for the process with pid.
type workerCount struct {
	pid int
	n   uint64
}

// add counts one request served by worker (0: the master) whose process
// is pid, and returns that process's count and the count of all.
func (c *requestCounts) add(worker, pid int) (uint64, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byWorker == nil {
		c.byWorker = make(map[int]workerCount)
	}
	wc := c.byWorker[worker]
	if wc.pid != pid {
		wc = workerCount{pid: pid}
	}
	wc.n++
	c.byWorker[worker] = wc
	c.all++
	return wc.n, c.all
}
