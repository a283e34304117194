// uWSGI's logging through the real binary and, where it can run the same
// ini file, Debian's uWSGI beside it: the default request line field by
// field, the log encoders, the loggers (files, syslog, rsyslog, named
// ones, request loggers, routes) and the conditional request lines.
// The ini files and their app are testdata/ini/logs_*.
package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
		return startGowsgiAnswering(t, ini, append([]string{"ADDR=" + freeAddr(t)}, env...))
	}},
}

// startGowsgiAnswering runs gowsgi on ini with env added until the test
// ends, once it answers HTTP on $ADDR, as startUWSGIServer does for uWSGI:
// with its log sent to loggers, there may be no banner on stderr to wait
// for.
func startGowsgiAnswering(t *testing.T, ini string, env []string) runningServer {
	t.Helper()
	out := &harness.LockedBuffer{}
	cmd := exec.Command(harness.GowsgiBin, ini)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = t.TempDir(), append(os.Environ(), env...), out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(harness.StopTimeout):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("gowsgi output:\n%s", out)
		}
	})
	var url string
	for _, kv := range env {
		if addr, ok := strings.CutPrefix(kv, "ADDR="); ok {
			url = "http://" + addr
		}
	}
	harness.Eventually(t, harness.StartTimeout, func() bool {
		resp, err := http.Get(url + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, "gowsgi did not answer on %s; output:\n%s", url, out)
	return runningServer{url: url, signal: func(sig syscall.Signal) { _ = cmd.Process.Signal(sig) }, output: out}
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

// TestLogEncoderJSONAsUnderUWSGI: log-encoder json makes each line one
// JSON object, the request line of a client whose User-Agent holds a
// quote and a backslash included.
func TestLogEncoderJSONAsUnderUWSGI(t *testing.T) {
	const evil = `evil"agent\`
	for _, s := range logsServers {
		t.Run(s.name, func(t *testing.T) {
			srv := s.start(t, logsINI(t, "logs_encoder.ini"))
			req := harness.MustRequest(t, http.MethodGet, srv.url+"/a?b=1", nil)
			req.Header.Set("User-Agent", evil)
			resp, _ := harness.Do(t, http.DefaultClient, req)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			harness.Get(t, srv.url+"/say?text=from%20the%20app")
			line := awaitOutput(t, srv, `"msg":"from the app"`)
			var said struct{ Msg string }
			require.NoError(t, json.Unmarshal([]byte(line), &said), "the app's own line: %s", line)
			line = awaitOutput(t, srv, "ua=evil")
			var got struct {
				Unix int64
				Msg  string
			}
			require.NoError(t, json.Unmarshal([]byte(line), &got), "%s", line)
			assert.Equal(t, `127.0.0.1 "GET /a?b=1" ua=`+evil, got.Msg)
			assert.InDelta(t, time.Now().Unix(), got.Unix, 60)
			if s.name == "gowsgi" {
				// Every line, the master's own included (uWSGI's first
				// lines come before its encoders are set up).
				for _, line := range strings.Split(strings.TrimSpace(srv.output.String()), "\n") {
					assert.True(t, json.Valid([]byte(line)), "not JSON: %q", line)
				}
			}
		})
	}
}

// TestLogLineShapesAsUnderUWSGI: one request's log line, as each ini file
// shapes it, is the line uWSGI writes: encoders run in the order given
// (logs_chain.ini), and %(ftime) takes log-date's strftime format
// (logs_strftime.ini).
func TestLogLineShapesAsUnderUWSGI(t *testing.T) {
	for _, tc := range []struct {
		name, ini, path string
		marker          string // what finds the line in the output
		want            func() string
	}{
		{"encoders chained", "logs_chain.ini", "/chained", "CHAIN GET /chained",
			func() string { return ">>[" + time.Now().Format("2006") + "] CHAIN GET /chained" }},
		{"ftime in log-date's format", "logs_strftime.ini", "/ft", " /ft",
			func() string { return "FT " + time.Now().Format("2006-01-02") + " /ft" }},
	} {
		for _, s := range logsServers {
			t.Run(tc.name+"/"+s.name, func(t *testing.T) {
				srv := s.start(t, logsINI(t, tc.ini))
				harness.Get(t, srv.url+tc.path)
				line := awaitOutput(t, srv, tc.marker)
				assert.Equal(t, tc.want(), line)
			})
		}
	}
}

func TestLogEncoderOrLoggerGowsgiLacksStopsTheStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-encoder", "gzip"}, `gowsgi: --log-encoder gzip: gowsgi has no "gzip" encoder`},
		{[]string{"--log-req-encoder", "msgpack {}"}, `gowsgi: --log-req-encoder msgpack {}: gowsgi has no "msgpack" encoder`},
		{[]string{"--logger", "redislog:127.0.0.1:6379"}, `gowsgi: --logger redislog:127.0.0.1:6379: gowsgi has no "redislog" logger`},
		{[]string{"--log-route", "nobody ^x"}, `gowsgi: --log-route nobody ^x: no logger is named "nobody"`},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			t.Parallel()
			code, out := harness.RunToExit(t, append([]string{"--wsgi-file", harness.TestdataPath(t, "echo.py")}, tc.args...)...)
			assert.Equal(t, 2, code, out)
			assert.Equal(t, 1, strings.Count(out, "\n"), "one line: %s", out)
			assert.True(t, strings.HasPrefix(out, tc.want), "%s", out)
		})
	}
}

// datagrams collects what a test-owned datagram socket receives.
type datagrams struct {
	mu   sync.Mutex
	got  []string
	addr string
}

// listenLogDatagrams listens on network ("udp" on 127.0.0.1, or
// "unixgram" in the test's folder) until the test ends.
func listenLogDatagrams(t *testing.T, network string) *datagrams {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unixgram" {
		addr = filepath.Join(t.TempDir(), "log.sock")
	}
	conn, err := net.ListenPacket(network, addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	d := &datagrams{addr: conn.LocalAddr().String()}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			d.mu.Lock()
			d.got = append(d.got, string(buf[:n]))
			d.mu.Unlock()
		}
	}()
	return d
}

// await waits for a datagram containing marker and returns it.
func (d *datagrams) await(t *testing.T, marker string) string {
	t.Helper()
	var found string
	harness.Eventually(t, 10*time.Second, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, g := range d.got {
			if strings.Contains(g, marker) {
				found = g
				return true
			}
		}
		return false
	}, "no datagram with %q on %s: %q", marker, d.addr, d.all())
	return found
}

func (d *datagrams) all() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.got...)
}

// TestLoggersAsUnderUWSGI: rsyslog over UDP for every line, a named file
// logger for the lines a log-route matches, a request logger on a Unix
// datagram socket, and another named file logger for the request lines a
// log-req-route matches (testdata/ini/logs_loggers.ini).
func TestLoggersAsUnderUWSGI(t *testing.T) {
	rfc3164 := `^<29>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d `
	for _, s := range logsServers {
		t.Run(s.name, func(t *testing.T) {
			udp, unixgram := listenLogDatagrams(t, "udp"), listenLogDatagrams(t, "unixgram")
			routed, slowReqs := filepath.Join(t.TempDir(), "routed.log"), filepath.Join(t.TempDir(), "slowreqs.log")
			srv := s.start(t, logsINI(t, "logs_loggers.ini"), "UDP="+udp.addr, "SOCK="+unixgram.addr, "ROUTED="+routed,
				"SLOWREQS="+slowReqs)
			harness.Get(t, srv.url+"/say?text=app%20says%20routed")
			harness.Get(t, srv.url+"/say?text=a%20plain%20line")
			harness.Get(t, srv.url+"/requested-slowly")
			harness.Get(t, srv.url+"/requested")

			assert.Regexp(t, rfc3164+`myapp: a plain line$`, udp.await(t, "a plain line"))
			assert.Regexp(t, rfc3164+`req: \[pid: \d+\|app: 0\|req: \d+/\d+\] 127\.0\.0\.1 .* GET /requested => generated `,
				unixgram.await(t, "GET /requested"))
			harness.Eventually(t, 10*time.Second, func() bool { return fileContains(routed, "app says routed\n") },
				"the routed line is not in %s", routed)
			harness.Eventually(t, 10*time.Second, func() bool { return fileContains(slowReqs, "GET /requested-slowly => generated") },
				"the routed request line is not in %s", slowReqs)
			for _, d := range unixgram.all() {
				assert.NotContains(t, d, "/requested-slowly", "a routed request line goes to its logger alone")
			}
			for _, d := range udp.all() {
				assert.NotContains(t, d, "app says routed", "a routed line goes to its logger alone")
				assert.NotContains(t, d, "=> generated", "request lines go to the request logger alone")
			}
			assert.NotContains(t, srv.output.String(), "GET /requested")
		})
	}
}

// TestLogSlowAndMicrosAsUnderUWSGI: with disable-logging, log-slow logs
// the slow requests alone, and log-micros writes their time in micros.
func TestLogSlowAndMicrosAsUnderUWSGI(t *testing.T) {
	for _, s := range logsServers {
		t.Run(s.name, func(t *testing.T) {
			srv := s.start(t, logsINI(t, "logs_slow.ini"))
			harness.Get(t, srv.url+"/slow?ms=0")
			harness.Get(t, srv.url+"/slow?ms=450")
			awaitOutput(t, srv, "GET /slow?ms=450 => generated")
			lines := harness.RequestLinesFor(srv.output.String(), "GET", "/slow?ms=450")
			require.Len(t, lines, 1)
			assert.Equal(t, "micros", lines[0].Unit, lines[0].Line)
			assert.GreaterOrEqual(t, lines[0].Time, 450_000, lines[0].Line)
			assert.Empty(t, harness.RequestLinesFor(srv.output.String(), "GET", "/slow?ms=0"), "a fast request is not logged")
		})
	}
}

// TestRequestLineForwardedForAsUnderUWSGI: with log-x-forwarded-for the
// request line's client is the X-Forwarded-For header, as the proxy sent
// it.
func TestRequestLineForwardedForAsUnderUWSGI(t *testing.T) {
	for _, s := range logsServers {
		t.Run(s.name, func(t *testing.T) {
			srv := s.start(t, logsINI(t, "logs_xff.ini"))
			req := harness.MustRequest(t, http.MethodGet, srv.url+"/proxied", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.7, 198.51.100.2")
			harness.Do(t, http.DefaultClient, req)
			awaitOutput(t, srv, "GET /proxied => generated")
			lines := harness.RequestLinesFor(srv.output.String(), "GET", "/proxied")
			require.Len(t, lines, 1)
			assert.Equal(t, "203.0.113.7, 198.51.100.2", lines[0].Addr, lines[0].Line)
		})
	}
}
