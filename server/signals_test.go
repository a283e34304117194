package server

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestParseSignalRequest(t *testing.T) {
	tests := []struct {
		msg  string
		want signalRequest
		err  string
	}{
		{msg: "s17", want: signalRequest{op: 's', sig: 17}},
		{msg: "r3 workers", want: signalRequest{op: 'r', sig: 3, target: "workers"}},
		{msg: "r0 ", want: signalRequest{op: 'r', sig: 0, target: ""}},
		{msg: "t20 1500", want: signalRequest{op: 't', sig: 20, every: 1500 * time.Millisecond}},
		{msg: "b21 2 5", want: signalRequest{op: 'b', sig: 21, every: 2 * time.Second, times: 5}},
		{msg: "c22 -5 3 -1 12 7", want: signalRequest{op: 'c', sig: 22,
			cron: cronSpec{minute: -5, hour: 3, day: -1, month: 12, weekday: 7}}},
		{msg: "f23 /tmp/a file", want: signalRequest{op: 'f', sig: 23, path: "/tmp/a file"}},
		{msg: "s256", err: "bad signal number"},
		{msg: "s", err: "empty request"},
		{msg: "t1 0", err: "timer interval 0 ms"},
		{msg: "t1 x", err: "invalid syntax"},
		{msg: "b1 1", err: "wants 2 numbers"},
		{msg: "c1 1 2 3 4", err: "wants 5 numbers"},
		{msg: "f1", err: "without a path"},
		{msg: "x1", err: "unknown request"},
	}
	for _, tc := range tests {
		t.Run(tc.msg, func(t *testing.T) {
			got, err := parseSignalRequest([]byte(tc.msg))
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseSignalTarget(t *testing.T) {
	tests := []struct {
		target string
		want   signalTarget
		err    bool
	}{
		{target: "", want: signalTarget{kind: kindWorker}},
		{target: "worker", want: signalTarget{kind: kindWorker}},
		{target: "worker0", want: signalTarget{kind: kindWorker}},
		{target: "workers", want: signalTarget{kind: kindWorker, all: true}},
		{target: "active-workers", want: signalTarget{kind: kindWorker, all: true}},
		{target: "worker12", want: signalTarget{kind: kindWorker, num: 12}},
		{target: "mule", want: signalTarget{kind: kindMule}},
		{target: "mules", want: signalTarget{kind: kindMule, all: true}},
		{target: "mule2", want: signalTarget{kind: kindMule, num: 2}},
		{target: "spooler", want: signalTarget{kind: kindSpooler}},
		{target: "workerx", err: true},
		{target: "worker-1", err: true},
		{target: "farm_a", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			got, err := parseSignalTarget(tc.target)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestCronSpecMatches: the fields as uWSGI's
// uwsgi_cron_task_needs_execution reads them.
func TestCronSpecMatches(t *testing.T) {
	// A Wednesday.
	at := time.Date(2026, time.December, 2, 14, 30, 15, 0, time.Local)
	tests := []struct {
		name string
		spec cronSpec
		want bool
	}{
		{"any", cronSpec{-1, -1, -1, -1, -1}, true},
		{"this minute", cronSpec{30, -1, -1, -1, -1}, true},
		{"another minute", cronSpec{31, -1, -1, -1, -1}, false},
		{"every 15 minutes", cronSpec{-15, -1, -1, -1, -1}, true},
		{"every 7 minutes", cronSpec{-7, -1, -1, -1, -1}, false},
		{"this hour and minute", cronSpec{30, 14, -1, -1, -1}, true},
		{"every 2 hours", cronSpec{-1, -2, -1, -1, -1}, true},
		{"every 4 hours", cronSpec{-1, -4, -1, -1, -1}, false},
		{"December, months from 1", cronSpec{-1, -1, -1, 12, -1}, true},
		{"November", cronSpec{-1, -1, -1, 11, -1}, false},
		{"the 2nd", cronSpec{-1, -1, 2, -1, -1}, true},
		{"Wednesday", cronSpec{-1, -1, -1, -1, 3}, true},
		{"Sunday as 7", cronSpec{-1, -1, -1, -1, 7}, false},
		{"day or weekday: the weekday matches", cronSpec{-1, -1, 9, -1, 3}, true},
		{"day or weekday: the day matches", cronSpec{-1, -1, 2, -1, 5}, true},
		{"day or weekday: neither", cronSpec{-1, -1, 9, -1, 5}, false},
		{"every other day and the weekday must both match", cronSpec{-1, -1, -2, -1, 5}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.spec.matches(at))
		})
	}
	sunday := time.Date(2026, time.December, 6, 0, 0, 0, 0, time.Local)
	assert.True(t, cronSpec{-1, -1, -1, -1, 7}.matches(sunday), "7 is Sunday, as in crontab")
}

// TestSignalHubRoutes: a signal goes to the sockets its target names;
// an unregistered one to the shared socket, any worker's.
func TestSignalHubRoutes(t *testing.T) {
	hub, err := newSignalHub(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer hub.close()
	shared, err := net.FileConn(hub.shared)
	require.NoError(t, err)
	hub.shared.Close()
	workers := map[int]net.Conn{}
	for num := 1; num <= 2; num++ {
		mine, theirs, err := unixSocketpair(unix.SOCK_SEQPACKET, "signal")
		require.NoError(t, err)
		c, err := net.FileConn(theirs)
		require.NoError(t, err)
		theirs.Close()
		workers[num] = c
		hub.attach(kindWorker, num, mine)
	}
	hub.register(1, "workers")
	hub.register(2, "worker2")
	hub.register(2, "worker1") // the first registration stands
	received := func(c net.Conn) []byte {
		var got []byte
		buf := make([]byte, 8)
		for {
			require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
			n, err := c.Read(buf)
			if err != nil {
				return got
			}
			got = append(got, buf[:n]...)
		}
	}
	hub.route(1)
	hub.route(2)
	hub.route(9)
	assert.Equal(t, []byte{1}, received(workers[1]))
	assert.Equal(t, []byte{1, 2}, received(workers[2]))
	assert.Equal(t, []byte{9}, received(shared))
}

// TestSignalHubFileMonitors: a monitored file raises its signal when it
// changes, and a monitored directory when a file in it does, however the
// path was written.
func TestSignalHubFileMonitors(t *testing.T) {
	tests := []struct {
		name    string
		monitor func(dir string) string // what to monitor, once dir/file exists
		change  func(t *testing.T, dir string)
	}{
		{
			name:    "a touched file",
			monitor: func(dir string) string { return dir + "/./file" },
			change: func(t *testing.T, dir string) {
				now := time.Now()
				require.NoError(t, os.Chtimes(filepath.Join(dir, "file"), now, now))
			},
		},
		{
			name:    "a new file in a directory",
			monitor: func(dir string) string { return dir + "/" },
			change: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "new"), nil, 0o644))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hub, err := newSignalHub(slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			defer hub.close()
			shared, err := net.FileConn(hub.shared)
			require.NoError(t, err)
			defer shared.Close()
			hub.shared.Close()
			mine, theirs, err := unixSocketpair(unix.SOCK_SEQPACKET, "signal")
			require.NoError(t, err)
			theirs.Close()
			hub.attach(kindWorker, 1, mine) // starts the hub
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o644))
			hub.addFileMonitor(7, tc.monitor(dir))
			tc.change(t, dir)
			require.NoError(t, shared.SetReadDeadline(time.Now().Add(5*time.Second)))
			buf := make([]byte, 1)
			_, err = shared.Read(buf)
			require.NoError(t, err, "no signal")
			assert.Equal(t, byte(7), buf[0])
		})
	}
}
