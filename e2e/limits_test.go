// Overload, slow clients and request limits through the real binary:
// --limit-post over HTTP, uwsgi and FastCGI, spool files removed on every path a
// request can end by, thousands of idle and slowloris connections beside a
// wrk run and closed after --http-timeout / --socket-timeout, and the
// --listen queue bound answering 503 with the master's memory flat.
package e2e

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// limitsApp is the application these tests run, written to the working
// directory as limits_app.py.
const limitsApp = `import os, time

def application(environ, start_response):
    path = environ["PATH_INFO"]
    size = len(environ["wsgi.input"].read())
    if path == "/raise":
        raise RuntimeError("limits: raised with the body read")
    if path == "/hang":
        with open("hang-pid", "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    if path == "/slow":
        time.sleep(0.2)
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"x" * 65536 for _ in range(2000))
    body = str(size).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// startLimitsApp starts limits_app.py with args plus an HTTP socket, with
// env added to gowsgi's environment.
func startLimitsApp(t *testing.T, env []string, args ...string) *harness.Instance {
	t.Helper()
	dir := t.TempDir()
	harness.WriteFile(t, dir, "limits_app.py", limitsApp)
	full := append([]string{"--http-socket", "127.0.0.1:0", "--module", "limits_app"}, args...)
	return harness.LaunchConfigured(t, dir, env, full...)
}

// rawExchange sends raw on a new connection and reads one response.
func rawExchange(t *testing.T, addr, raw string) (*net.TCPConn, *bufio.Reader, *harness.RawResponse) {
	t.Helper()
	conn := harness.Dial(t, addr)
	_, err := conn.Write([]byte(raw))
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	return conn, r, harness.ReadResponses(t, r, 1, http.MethodPost)[0]
}

func TestLimitPostHTTP(t *testing.T) {
	inst := startLimitsApp(t, nil, "--limit-post", "1000")
	head := "POST / HTTP/1.1\r\nHost: x\r\n"
	chunk := fmt.Sprintf("258\r\n%s\r\n", strings.Repeat("a", 600))

	t.Run("declared length over the limit: 413 with no body sent", func(t *testing.T) {
		conn, r, resp := rawExchange(t, inst.Addr, head+"Content-Length: 1001\r\n\r\n")
		assert.Equal(t, 413, resp.StatusCode)
		closed, rest := harness.WaitEOF(conn, r, 10*time.Second)
		assert.True(t, closed, "the connection stays open after the 413; got %q", rest)
	})
	t.Run("chunked body passing the limit: 413 without its end", func(t *testing.T) {
		conn, r, resp := rawExchange(t, inst.Addr, head+"Transfer-Encoding: chunked\r\n\r\n"+chunk+chunk)
		assert.Equal(t, 413, resp.StatusCode)
		closed, rest := harness.WaitEOF(conn, r, 10*time.Second)
		assert.True(t, closed, "the connection stays open after the 413; got %q", rest)
	})
	t.Run("bodies at the limit are served", func(t *testing.T) {
		_, _, resp := rawExchange(t, inst.Addr, head+"Content-Length: 1000\r\n\r\n"+strings.Repeat("b", 1000))
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "1000", string(resp.Body))
		_, _, resp = rawExchange(t, inst.Addr, head+"Transfer-Encoding: chunked\r\n\r\n"+chunk+"0\r\n\r\n")
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "600", string(resp.Body))
	})
}

func TestLimitPostSocketsFromINI(t *testing.T) {
	dir := t.TempDir()
	harness.WriteFile(t, dir, "limits_app.py", limitsApp)
	ini := harness.WriteFile(t, dir, "limits.ini", "[uwsgi]\nmodule = limits_app\nuwsgi-socket = 127.0.0.1:0\nfastcgi-socket = 127.0.0.1:0\nlimit-post = 1000\n")
	inst := harness.LaunchConfigured(t, dir, nil, "--http-socket", "127.0.0.1:0", "--ini", ini)
	addr := bannerSockets(t, inst.Stderr())["uwsgi"]
	require.NotEmpty(t, addr, "no uwsgi socket in the banner:\n%s", inst.Stderr())
	vars := func(length int) []string {
		return []string{"REQUEST_METHOD", "POST", "PATH_INFO", "/", "SERVER_PROTOCOL", "HTTP/1.1",
			"SERVER_NAME", "x", "SERVER_PORT", "80", "CONTENT_LENGTH", strconv.Itoa(length)}
	}

	// No body follows the packet: the answer must come without it.
	resp, _ := uwsgiRoundTrip(t, addr, vars(5000), "")
	assert.Equal(t, 413, resp.StatusCode)
	harness.Eventually(t, 10*time.Second, func() bool { return strings.Contains(inst.Stderr(), "request body too large") },
		"no log line for the refused body:\n%s", inst.Stderr())

	resp, body := uwsgiRoundTrip(t, addr, vars(1000), strings.Repeat("c", 1000))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "1000", string(body))

	fcgi := bannerSockets(t, inst.Stderr())["fastcgi"]
	require.NotEmpty(t, fcgi, "no FastCGI socket in the banner:\n%s", inst.Stderr())
	resp, _ = fastcgiRoundTrip(t, fcgi, vars(5000), strings.Repeat("c", 5000))
	assert.Equal(t, 413, resp.StatusCode, "declared over the limit")
	// No CONTENT_LENGTH: the STDIN stream's end marks the body's.
	unsized := vars(0)[:len(vars(0))-2]
	resp, _ = fastcgiRoundTrip(t, fcgi, unsized, strings.Repeat("c", 5000))
	assert.Equal(t, 413, resp.StatusCode, "a stream passing the limit")
	resp, body = fastcgiRoundTrip(t, fcgi, unsized, strings.Repeat("c", 1000))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "1000", string(body))
}

func TestSpoolFilesRemovedOnEveryPath(t *testing.T) {
	tmp := t.TempDir()
	inst := startLimitsApp(t, []string{"TMPDIR=" + tmp}, "--spool-threshold", "1024")
	body := strings.Repeat("s", 100<<10)
	post := func(path string) (*http.Response, error) {
		return harness.Client(false).Post(inst.URL+path, "application/octet-stream", strings.NewReader(body))
	}
	// Spool files have no name: the ones the master holds open count.
	spooled := func() []string {
		names, err := filepath.Glob(filepath.Join(tmp, "*"))
		require.NoError(t, err)
		for name := range heldFiles(inst.Cmd.Process.Pid, tmp) {
			names = append(names, name)
		}
		return names
	}
	assertEmpty := func(path string) {
		t.Helper()
		harness.Eventually(t, 10*time.Second, func() bool { return len(spooled()) == 0 },
			"spool files left after %s: %v", path, spooled())
	}

	resp, err := post("/echo")
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(len(body)), string(got), "the app read the spooled body whole")
	assertEmpty("a normal request")

	resp, err = post("/raise")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 500, resp.StatusCode)
	assertEmpty("an app exception")

	// The client reads the head of a long response and leaves.
	resp, err = post("/stream")
	require.NoError(t, err)
	_, err = io.ReadFull(resp.Body, make([]byte, 1000))
	require.NoError(t, err)
	require.NotEmpty(t, spooled(), "the body was not spooled to TMPDIR: the test would prove nothing")
	resp.Body.Close()
	assertEmpty("the client leaving mid-response")

	// The worker dies while it holds the request.
	hung := make(chan int, 1)
	go func() {
		resp, err := post("/hang")
		if err != nil {
			hung <- 0
			return
		}
		resp.Body.Close()
		hung <- resp.StatusCode
	}()
	var pid int
	harness.Eventually(t, 20*time.Second, func() bool {
		text, ok := inst.Record("hang-pid")
		pid, _ = strconv.Atoi(text)
		return ok && pid > 0
	}, "the /hang request did not start")
	require.NotEmpty(t, spooled(), "no spool file while the request runs")
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	select {
	case code := <-hung:
		assert.Equal(t, 502, code)
	case <-time.After(30 * time.Second):
		require.FailNow(t, "no answer after the worker was killed")
	}
	assertEmpty("a worker killed mid-request")
}

// raiseFileLimit lifts the open-file limit to its hard maximum, so the test
// and the gowsgi it starts afterwards (which inherits it) can hold thousands
// of connections.
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur < need {
		lim.Cur = min(lim.Max, need)
		require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	}
	if lim.Cur < need {
		t.Skipf("the open-file limit is %d, below the %d this test needs", lim.Cur, need)
	}
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// wrkMedian runs wrk -t1 -c32 -d5s against url three times and returns the
// median rate and every rate.
func wrkMedian(t *testing.T, wrk, url string) (float64, []float64) {
	t.Helper()
	var rates []float64
	for range 3 {
		out, err := exec.Command(wrk, "-t1", "-c32", "-d5s", url).CombinedOutput()
		require.NoError(t, err, "wrk: %s", out)
		m := wrkRate.FindSubmatch(out)
		require.NotNil(t, m, "no rate in wrk's output:\n%s", out)
		assert.NotContains(t, string(out), "Non-2xx", "wrk saw failures:\n%s", out)
		rate, err := strconv.ParseFloat(string(m[1]), 64)
		require.NoError(t, err)
		rates = append(rates, rate)
	}
	sorted := slices.Sorted(slices.Values(rates))
	return sorted[1], rates
}

// idleKeepAlive opens n connections to addr that each make one request and
// then stay idle between requests.
func idleKeepAlive(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", addr, 20*time.Second)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = conn
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				errs <- err
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	t.Cleanup(func() { closeAll(conns) })
	for err := range errs {
		require.NoError(t, err, "opening the idle keep-alive connections")
	}
	return conns
}

// slowloris opens n connections to addr that send first and then one byte
// of a request head that never ends every second, until stop is closed.
func slowloris(t *testing.T, addr string, n int, first []byte, stop <-chan struct{}) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() { closeAll(conns) })
	for range n {
		conn, err := net.DialTimeout("tcp", addr, 20*time.Second)
		require.NoError(t, err)
		conns = append(conns, conn)
		_, err = conn.Write(first)
		require.NoError(t, err)
	}
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for range 600 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, conn := range conns {
				conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				conn.Write([]byte("a")) // fails once the server has closed it
			}
		}
	}()
	return conns
}

func closeAll(conns []net.Conn) {
	for _, conn := range conns {
		if conn != nil {
			conn.Close()
		}
	}
}

// openFiles counts the file descriptors process pid holds.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	return len(fds)
}

func TestSlowClientsDoNotSlowOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test of about 40 s")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed (make deps installs it)")
	}
	raiseFileLimit(t, 8192)
	inst := harness.Start(t, "--chdir", harness.ExamplesDir(t), "--module", "hello_world_app", "-p", "2", "--http-timeout", "120", "-L")
	url := inst.URL + "/"

	base, baseRates := wrkMedian(t, wrk, url)
	stop := make(chan struct{})
	defer close(stop)
	idleKeepAlive(t, inst.Addr, 2000)
	slowloris(t, inst.Addr, 500, []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "), stop)
	loaded, loadedRates := wrkMedian(t, wrk, url)
	held := openFiles(t, inst.Cmd.Process.Pid)

	t.Logf("wrk -t1 -c32 -d5s, requests/s: alone %v (median %.0f); beside 2000 idle and 500 slowloris connections %v (median %.0f): %+.1f%%",
		baseRates, base, loadedRates, loaded, 100*(loaded-base)/base)
	assert.GreaterOrEqual(t, held, 2500, "the master no longer held the slow connections during the loaded runs")
	assert.GreaterOrEqual(t, loaded, 0.8*base, "the slow connections slowed wrk by more than 20%%")
}

// uwsgiSlowHead is the start of a uwsgi packet announcing a 60,000-byte vars
// block, which a slowloris then sends one byte a second.
var uwsgiSlowHead = binary.LittleEndian.AppendUint16([]byte{0}, 60000)

func TestSlowConnectionsClosedAfterTimeouts(t *testing.T) {
	raiseFileLimit(t, 4096)
	inst := harness.Start(t, "--chdir", harness.ExamplesDir(t), "--module", "hello_world_app", "-L",
		"--uwsgi-socket", "127.0.0.1:0", "--http-timeout", "2", "--socket-timeout", "2")
	uwsgiAddr := bannerSockets(t, inst.Stderr())["uwsgi"]
	require.NotEmpty(t, uwsgiAddr, "no uwsgi socket in the banner:\n%s", inst.Stderr())
	stop := make(chan struct{})
	defer close(stop)

	groups := map[string][]net.Conn{
		"idle keep-alive": idleKeepAlive(t, inst.Addr, 200),
		"HTTP slowloris":  slowloris(t, inst.Addr, 100, []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "), stop),
		"uwsgi slowloris": slowloris(t, uwsgiAddr, 100, uwsgiSlowHead, stop),
	}
	// The defaults are 30 s and more: closing within 15 s is the options'
	// doing.
	deadline := time.Now().Add(15 * time.Second)
	for name, conns := range groups {
		open := 0
		for _, conn := range conns {
			if !closedBy(conn, deadline) {
				open++
			}
		}
		assert.Zero(t, open, "%s: %d of %d connections still open 15 s after the 2 s timeouts", name, open, len(conns))
	}
}

// closedBy reports whether the peer closes conn (FIN or reset) by deadline;
// whatever it sends before that (a 408, say) is read and dropped.
func closedBy(conn net.Conn, deadline time.Time) bool {
	conn.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, conn)
	var netErr net.Error
	return !(errors.As(err, &netErr) && netErr.Timeout())
}

// rssKiB reads a process's resident memory from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			require.NoError(t, err)
			return kib
		}
	}
	require.FailNow(t, "no VmRSS", "in %s", status)
	return 0
}

// burst sends total GET requests to url from clients goroutines, each
// taking the next request as soon as it has its answer, and counts the
// answers by status; a request that fails counts under 0.
func burst(url string, clients, total int) map[int]int {
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	counts := make(map[int]int)
	var issued atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for issued.Add(1) <= int64(total) {
				code := 0
				if resp, err := c.Get(url); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				counts[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

func TestListenQueueAnswers503(t *testing.T) {
	inst := startLimitsApp(t, nil, "-p", "1", "--listen", "16", "-L")
	pid := inst.Cmd.Process.Pid
	url := inst.URL + "/slow"

	// Warm the master up with as many clients first, so what follows
	// measures growth, not the connections' buffers.
	warm := burst(url, 200, 1000)
	before := rssKiB(t, pid)
	counts := burst(url, 200, 5000)
	after := rssKiB(t, pid)
	t.Logf("--listen 16, -p 1, a 0.2 s app: warm-up %v; burst of 5000 from 200 clients %v; master RSS %d KiB before, %d KiB after",
		warm, counts, before, after)

	// With no bound every request would wait its turn behind 0.2 s ones
	// and most would pass the client's 20 s timeout (counted under 0).
	assert.Zero(t, counts[0], "requests failed instead of being answered")
	assert.Equal(t, 5000, counts[200]+counts[503], "every answer is 200 or 503: %v", counts)
	assert.Greater(t, counts[503], 4000, "past the queue depth the answer is 503: %v", counts)
	assert.Positive(t, counts[200], "requests within the queue depth are served: %v", counts)
	assert.Less(t, after-before, 16<<10, "the master's memory grew by more than 16 MiB in the burst")
}

// listenBacklog reads a listening TCP socket's backlog, which ss shows as
// Send-Q.
func listenBacklog(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	out, err := exec.Command("ss", "-Hltn", "sport = :"+port).Output()
	require.NoError(t, err)
	fields := strings.Fields(string(out))
	require.GreaterOrEqual(t, len(fields), 3, "ss output %q", out)
	n, err := strconv.Atoi(fields[2])
	require.NoError(t, err)
	return n
}

// TestListenBoundsTheQueue: with the one slot busy and --listen 1, of four
// more requests at most two are kept (one the busy slot takes as its next,
// one waiting), the others get 503 at once; the kept ones complete.
func TestListenBoundsTheQueue(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("needs ss(8)")
	}
	for _, fromINI := range []bool{false, true} {
		t.Run(fmt.Sprintf("ini=%v", fromINI), func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--wsgi-file", harness.TestdataPath(t, "misbehave.py"), "-l", "1"}
			if fromINI {
				args = []string{"--ini", harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+harness.TestdataPath(t, "misbehave.py")+"\nlisten = 1\n")}
			}
			inst := harness.StartIn(t, dir, args...)
			assert.Equal(t, 1, listenBacklog(t, inst.Addr))
			_, held := holdRequests(t, inst, "run", 1)
			const extra = 4
			results := make(chan waitResult, extra)
			for i := range extra {
				go func() { results <- fetchWait(fmt.Sprintf("%s/wait?tag=q%d", inst.URL, i)) }()
			}
			// The busy slot may take one as its next and one may wait: the
			// others get 503 while the held request still runs.
			statuses := map[int]int{}
			deadline := time.After(20 * time.Second)
			for statuses[503] < extra-2 {
				select {
				case r := <-results:
					require.NoError(t, r.err)
					require.Equal(t, 503, r.status, "a request past the bound was served")
					statuses[r.status]++
				case <-deadline:
					require.FailNow(t, "no 503 past the queue bound", "stderr:\n%s", inst.Stderr())
				}
			}
			releaseAll(t, inst, "run", 1)
			releaseAll(t, inst, "q", extra)
			r := <-held
			require.NoError(t, r.err)
			assert.Equal(t, 200, r.status)
			for range 2 {
				r := <-results
				require.NoError(t, r.err)
				statuses[r.status]++
			}
			assert.GreaterOrEqual(t, statuses[200], 1, "statuses %v", statuses)
			assert.Equal(t, extra, statuses[200]+statuses[503], "statuses %v", statuses)
		})
	}
}

// TestConnectionTimeouts: a connection that sends a partial request head
// is closed after --http-timeout (HTTP) or --socket-timeout (uwsgi).
func TestConnectionTimeouts(t *testing.T) {
	uwsgiURL := regexp.MustCompile(`uwsgi://(\S+)`)
	fastcgiURL := regexp.MustCompile(`fastcgi://(\S+)`)
	cases := []struct {
		name    string
		args    func(dir string) []string
		addr    func(inst *harness.Instance) string
		partial string
	}{
		{"http", func(string) []string { return []string{"--http-timeout", "1"} },
			func(inst *harness.Instance) string { return inst.Addr }, "GET / HTTP/1.1\r\nHost: x\r\n"},
		{"http-ini", func(dir string) []string {
			return []string{"--ini", harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nhttp-timeout = 1\n")}
		}, func(inst *harness.Instance) string { return inst.Addr }, "GET / HTTP/1.1\r\n"},
		{"uwsgi", func(string) []string { return []string{"--socket", "127.0.0.1:0", "--socket-timeout", "1"} },
			func(inst *harness.Instance) string { return uwsgiURL.FindStringSubmatch(inst.Stderr())[1] }, "\x00\x10"},
		{"fastcgi", func(string) []string { return []string{"--fastcgi-socket", "127.0.0.1:0", "--socket-timeout", "1"} },
			func(inst *harness.Instance) string { return fastcgiURL.FindStringSubmatch(inst.Stderr())[1] }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			inst := harness.StartIn(t, dir, append(processApp(t), tc.args(dir)...)...)
			conn := harness.Dial(t, tc.addr(inst))
			_, err := io.WriteString(conn, tc.partial)
			require.NoError(t, err)
			closed, rest := harness.WaitEOF(conn, bufio.NewReader(conn), 10*time.Second)
			// net/http may answer 408 before closing; either way the
			// connection ends well before the 30 s default.
			assert.True(t, closed || strings.Contains(string(rest), "408"), "connection not closed; got %q", rest)
		})
	}
}
