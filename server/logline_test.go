package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestAppendRequestLine(t *testing.T) {
	start := time.Date(2026, 12, 3, 11, 53, 20, 0, time.Local)
	line := requestLine{pid: 30284, workerRequests: 1, allRequests: 7, addr: "127.0.0.1", vars: 24, varBytes: 267,
		start: start, method: "GET", uri: "/a/b?x=1&y=2", proto: "HTTP/1.1", bodyBytes: 5, headBytes: 45,
		took: 1500 * time.Microsecond, status: 200, headFields: 1}
	for _, tc := range []struct {
		name string
		edit func(l *requestLine)
		want string
	}{
		// Debian's uWSGI 2.0.21 wrote this line for the same request.
		{"uWSGI's", func(*requestLine) {},
			"[pid: 30284|app: 0|req: 1/7] 127.0.0.1 () {24 vars in 267 bytes} [Thu Dec  3 11:53:20 2026] GET /a/b?x=1&y=2 => generated 5 bytes in 1 msecs (HTTP/1.1 200) 1 headers in 45 bytes (1 switches on core 0)\n"},
		{"log-micros", func(l *requestLine) { l.micros = true },
			"[pid: 30284|app: 0|req: 1/7] 127.0.0.1 () {24 vars in 267 bytes} [Thu Dec  3 11:53:20 2026] GET /a/b?x=1&y=2 => generated 5 bytes in 1500 micros (HTTP/1.1 200) 1 headers in 45 bytes (1 switches on core 0)\n"},
		{"the master's answer, a user", func(l *requestLine) { l.app, l.user, l.status = -1, "alice", 503 },
			"[pid: 30284|app: -1|req: 1/7] 127.0.0.1 (alice) {24 vars in 267 bytes} [Thu Dec  3 11:53:20 2026] GET /a/b?x=1&y=2 => generated 5 bytes in 1 msecs (HTTP/1.1 503) 1 headers in 45 bytes (1 switches on core 0)\n"},
		{"memory report first", func(l *requestLine) { l.memory = "{address space usage: 1 bytes/0MB} {rss usage: 2 bytes/0MB} " },
			"{address space usage: 1 bytes/0MB} {rss usage: 2 bytes/0MB} [pid: 30284|app: 0|req: 1/7] 127.0.0.1 () {24 vars in 267 bytes} [Thu Dec  3 11:53:20 2026] GET /a/b?x=1&y=2 => generated 5 bytes in 1 msecs (HTTP/1.1 200) 1 headers in 45 bytes (1 switches on core 0)\n"},
	} {
		l := line
		tc.edit(&l)
		assert.Equal(t, tc.want, string(appendRequestLine(nil, l)), tc.name)
	}
}

func TestRequestCounts(t *testing.T) {
	var c requestCounts
	steps := []struct {
		worker, pid         int
		wantWorker, wantAll uint64
	}{
		{1, 100, 1, 1},
		{1, 100, 2, 2},
		{2, 200, 1, 3},
		{1, 101, 1, 4}, // worker 1 replaced: its count starts again
		{0, 50, 1, 5},  // the master
	}
	for _, s := range steps {
		n, all := c.add(s.worker, s.pid)
		assert.Equal(t, [2]uint64{s.wantWorker, s.wantAll}, [2]uint64{n, all}, "%+v", s)
	}
}
