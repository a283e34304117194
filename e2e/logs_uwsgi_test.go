// uWSGI's logging through the real binary and, where it can run the same
// ini file, Debian's uWSGI beside it: the default request line field by
// field, the log encoders, the loggers (files, syslog, rsyslog, named
// ones, request loggers, routes) and the conditional request lines.
// The ini files and their app are testdata/ini/logs_*.
package e2e

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// logsServer is gowsgi or uWSGI started on one of the logs_*.ini files.
type logsServer struct {
	name  string
	start func(t *testing.T, ini string, env ...string) runningServer
}

// logsServers are Debian's uWSGI and gowsgi; each gets ADDR and env.
var logsServers = []logsServer{
	{"uwsgi", func(t *testing.T, ini string, env ...string) runningServer {
		bin := requireUWSGI(t)
		addr := freeAddr(t)
		for _, kv := range append([]string{"ADDR=" + addr}, env...) {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		return startUWSGIServer(t, bin, t.TempDir(), addr, "--plugin", "python3,http", "--ini", ini)
	}},
	{"gowsgi", func(t *testing.T, ini string, env ...string) runningServer {
		inst := harness.LaunchConfigured(t, t.TempDir(), append([]string{"ADDR=" + freeAddr(t)}, env...), ini)
		return runningServer{url: inst.URL, signal: func(sig syscall.Signal) { inst.Signal(t, sig) }, output: inst.Output}
	}},
}

// logsINI is the path of a testdata/ini/logs_*.ini file.
func logsINI(t *testing.T, name string) string {
	return harness.TestdataPath(t, filepath.Join("ini", name))
}

// awaitOutput waits until s's output has a line containing marker and
// returns that line.
func awaitOutput(t *testing.T, s runningServer, marker string) string {
	t.Helper()
	var found string
	harness.Eventually(t, 10*time.Second, func() bool {
		for _, line := range strings.Split(s.output.String(), "\n") {
			if strings.Contains(line, marker) {
				found = line
				return true
			}
		}
		return false
	}, "no line with %q in:\n%s", marker, s.output)
	return found
}

// TestRequestLineAsUnderUWSGI: with no log option, each request's line is
// uWSGI's, field by field; the header fields and vars are gowsgi's own
// (it sends Server, Date and Content-Length, which uWSGI's HTTP socket
// does not, and gives the app a few more variables).
func TestRequestLineAsUnderUWSGI(t *testing.T) {
	for _, s := range logsServers {
		t.Run(s.name, func(t *testing.T) {
			srv := s.start(t, logsINI(t, "logs_line.ini"))
			before := time.Now().Truncate(time.Second)
			var bodies []string
			targets := []string{"/a/b?x=1&y=%22q%22", "/second"}
			for _, target := range targets {
				req := harness.MustRequest(t, http.MethodGet, srv.url+target, nil)
				req.SetBasicAuth("ignored", "by-both")
				resp, body := harness.Do(t, http.DefaultClient, req)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				bodies = append(bodies, string(body))
			}
			after := time.Now()
			awaitOutput(t, srv, "] GET /second => generated")
			var lines []harness.RequestLine
			for _, target := range targets {
				found := harness.RequestLinesFor(srv.output.String(), "GET", target)
				require.Len(t, found, 1, "%s", srv.output)
				lines = append(lines, found[0])
			}
			// One worker: its count is everyone's, one more for the second
			// (uWSGI's start was checked with a request already).
			assert.Equal(t, lines[0].WorkerRequests+1, lines[1].WorkerRequests)
			for i, l := range lines {
				assert.Equal(t, "pid="+strconv.Itoa(l.PID), bodies[i], "the worker's pid: %s", l.Line)
				assert.Equal(t, 0, l.App, l.Line)
				assert.Equal(t, l.WorkerRequests, l.AllRequests, "req: N/M: %s", l.Line)
				assert.Equal(t, "127.0.0.1", l.Addr, l.Line)
				assert.Equal(t, "", l.User, "REMOTE_USER is the front server's to set: %s", l.Line)
				assert.Equal(t, 0, l.Vars%2, "a key and its value count as two: %s", l.Line)
				assert.Greater(t, l.VarBytes, 200, l.Line)
				date, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", l.Date, time.Local)
				if assert.NoError(t, err, l.Line) {
					assert.False(t, date.Before(before) || date.After(after), "%s not in [%s, %s]", date, before, after)
				}
				assert.Equal(t, "GET", l.Method, l.Line)
				assert.Equal(t, len(bodies[i]), l.Bytes, l.Line)
				assert.Equal(t, "msecs", l.Unit, l.Line)
				assert.Equal(t, "HTTP/1.1", l.Proto, l.Line)
				assert.Equal(t, 200, l.Status, l.Line)
				assert.GreaterOrEqual(t, l.Headers, 1, "Content-Type at least: %s", l.Line)
				assert.Greater(t, l.HeadBytes, len("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")-1, l.Line)
				assert.Equal(t, [2]int{1, 0}, [2]int{l.Switches, l.Core}, l.Line)
			}
		})
	}
}
