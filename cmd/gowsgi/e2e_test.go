// The end-to-end harness: builds the gowsgi binary once, starts it on an
// ephemeral loopback port with the test apps of testdata/ and examples/, and
// gives tests the base URL, the captured stderr and a way to stop it.
package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gowsgiBin is the binary under test: GOWSGI_BIN when set (so a build against
// another Python can be tested), else the one TestMain builds.
var gowsgiBin string

// Deadlines for the harness; generous because two cores start several
// Python interpreters at once when the tests run in parallel.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
	pollInterval = 20 * time.Millisecond
)

// bannerURL finds the URL in the line the master prints once every worker is
// ready: "gowsgi 0.1.0 · Python 3.11.2 · mod:application · 2 workers · http://…".
var bannerURL = regexp.MustCompile(`http://\S+`)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if bin := os.Getenv("GOWSGI_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: GOWSGI_BIN:", err)
			return 2
		}
		gowsgiBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "gowsgi-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	gowsgiBin = filepath.Join(dir, "gowsgi")
	build := exec.Command("go", "build", "-o", gowsgiBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building gowsgi:", err)
		return 2
	}
	return m.Run()
}

// testdataPath returns the absolute path of a file under testdata/.
func testdataPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	require.NoError(t, err)
	require.FileExists(t, p)
	return p
}

// examplesDir returns the absolute path of the repository's examples/.
func examplesDir(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	require.NoError(t, err)
	require.DirExists(t, p)
	return p
}

// lockedBuffer collects a process's stderr and can be read while the
// process still writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// instance is one running gowsgi master.
type instance struct {
	URL  string // base URL from the banner, "http://127.0.0.1:PORT"
	Addr string // host:port of URL, for raw sockets
	Dir  string // the working directory; the test apps keep their records here

	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{} // closed once the process has been waited for
	err    error         // the process's exit error, valid after exited
}

// start runs gowsgi with args on an ephemeral loopback port, in a fresh
// working directory, and waits for its banner. The instance is stopped when
// the test ends.
func start(t *testing.T, args ...string) *instance {
	t.Helper()
	return startIn(t, t.TempDir(), args...)
}

// startIn is start with dir as the working directory.
func startIn(t *testing.T, dir string, args ...string) *instance {
	t.Helper()
	inst := launch(t, dir, args...)
	inst.waitBanner(t)
	return inst
}

// launch starts gowsgi in dir without waiting for the banner.
func launch(t *testing.T, dir string, args ...string) *instance {
	t.Helper()
	inst := &instance{Dir: dir, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	full := append([]string{"--http-socket", "127.0.0.1:0"}, args...)
	inst.cmd = exec.Command(gowsgiBin, full...)
	inst.cmd.Dir = dir
	// Its own process group, so a test can signal master and workers at
	// once as systemd does.
	inst.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inst.cmd.Stdout = inst.stderr
	inst.cmd.Stderr = inst.stderr
	require.NoError(t, inst.cmd.Start(), "starting %s", gowsgiBin)
	go func() {
		inst.err = inst.cmd.Wait()
		close(inst.exited)
	}()
	t.Cleanup(func() { inst.stop(t) })
	return inst
}

// waitBanner waits for the ready line and fills in URL and Addr.
func (inst *instance) waitBanner(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if url := bannerURL.FindString(inst.stderr.String()); url != "" {
			inst.URL = strings.TrimRight(url, "/")
			inst.Addr = strings.TrimPrefix(inst.URL, "http://")
			return
		}
		select {
		case <-inst.exited:
			require.FailNow(t, "gowsgi exited before its banner", "exit: %v\nstderr:\n%s", inst.err, inst.Stderr())
		case <-time.After(pollInterval):
		}
	}
	require.FailNow(t, "no banner from gowsgi", "after %s; stderr:\n%s", startTimeout, inst.Stderr())
}

// Stderr returns everything the master and its workers wrote so far.
func (inst *instance) Stderr() string { return inst.stderr.String() }

// logWait bounds awaitLogged.
const logWait = 10 * time.Second

// awaitLogged waits until the log holds every one of want. The log reaches
// Stderr through a pipe that a goroutine copies, so a line written just
// before something the test saw happen (a new worker, an answer) may still
// be on its way.
func (inst *instance) awaitLogged(t *testing.T, want ...string) {
	t.Helper()
	missing := func() []string {
		logs := inst.Stderr()
		var out []string
		for _, w := range want {
			if !strings.Contains(logs, w) {
				out = append(out, w)
			}
		}
		return out
	}
	deadline := time.Now().Add(logWait)
	for len(missing()) > 0 {
		if time.Now().After(deadline) {
			require.FailNow(t, "not logged", "after %s, none of %q; stderr:\n%s", logWait, missing(), inst.Stderr())
		}
		time.Sleep(pollInterval)
	}
}

// Signal sends sig to the master.
func (inst *instance) Signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, inst.cmd.Process.Signal(sig))
}

// SignalGroup sends sig to the master and its workers together, as systemd
// (KillMode=control-group) or `kill -- -PGID` does.
func (inst *instance) SignalGroup(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, syscall.Kill(-inst.cmd.Process.Pid, sig))
}

// Wait waits up to timeout for the master to exit and returns its exit code.
func (inst *instance) Wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-inst.exited:
	case <-time.After(timeout):
		require.FailNow(t, "gowsgi did not exit", "after %s; stderr:\n%s", timeout, inst.Stderr())
	}
	var exit *exec.ExitError
	if errors.As(inst.err, &exit) {
		return exit.ExitCode()
	}
	require.NoError(t, inst.err)
	return 0
}

// stop ends the master: SIGTERM, then SIGKILL if it has not exited in time.
func (inst *instance) stop(t *testing.T) {
	select {
	case <-inst.exited:
		return
	default:
	}
	_ = inst.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-inst.exited:
	case <-time.After(stopTimeout):
		_ = inst.cmd.Process.Kill()
		<-inst.exited
		t.Errorf("gowsgi ignored SIGTERM for %s and was killed; stderr:\n%s", stopTimeout, inst.Stderr())
	}
}

// record returns the content of a record file an app wrote in the working
// directory, and whether it exists yet.
func (inst *instance) record(name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(inst.Dir, name))
	return string(b), err == nil
}

// release creates the file release-<tag> an app is waiting for.
func (inst *instance) release(t *testing.T, tag string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(inst.Dir, "release-"+tag), nil, 0o644))
}

// eventually polls cond until it holds or timeout passes, then fails with msg.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNowf(t, "condition not met", "after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(pollInterval)
	}
}

// client returns an HTTP client with a deadline for every request; it does
// not follow redirects when noRedirect is set.
func client(noRedirect bool) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	if noRedirect {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// get fetches url and returns the response and its whole body.
func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	return do(t, client(false), mustRequest(t, http.MethodGet, url, nil))
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	return req
}

// do sends req with c and reads the whole body.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err, "%s %s", req.Method, req.URL)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "reading the body of %s %s", req.Method, req.URL)
	return resp, body
}

// dial opens a raw TCP connection with an overall deadline.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	t.Cleanup(func() { conn.Close() })
	return conn.(*net.TCPConn)
}

// readResponses reads n responses from r, each with its whole body.
func readResponses(t *testing.T, r *bufio.Reader, n int, method string) []*rawResponse {
	t.Helper()
	var out []*rawResponse
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(r, &http.Request{Method: method})
		require.NoError(t, err, "response %d of %d", i+1, n)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, "body of response %d of %d", i+1, n)
		out = append(out, &rawResponse{Response: resp, Body: body})
	}
	return out
}

// rawResponse is a response read off a raw socket, with its body.
type rawResponse struct {
	*http.Response
	Body []byte
}

// waitEOF reports whether the peer closes conn (a FIN or a reset) within
// timeout without sending more bytes; it returns whatever did arrive.
func waitEOF(conn net.Conn, r *bufio.Reader, timeout time.Duration) (bool, []byte) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	rest, err := io.ReadAll(r)
	var netErr net.Error
	timedOut := errors.As(err, &netErr) && netErr.Timeout()
	return !timedOut && len(rest) == 0, rest
}

// runToExit runs gowsgi with args to its exit and returns the exit code and
// its output; for start-up failures.
func runToExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gowsgiBin, append([]string{"--http-socket", "127.0.0.1:0"}, args...)...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "gowsgi did not exit; output:\n%s", out)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

// backgroundReader drains a connection into memory as bytes arrive and
// hands them out through Read; a reset after the last byte reads as EOF.
type backgroundReader struct {
	mu   sync.Mutex
	more *sync.Cond
	buf  bytes.Buffer
	err  error
}

func newBackgroundReader(conn net.Conn) *backgroundReader {
	br := &backgroundReader{}
	br.more = sync.NewCond(&br.mu)
	go func() {
		chunk := make([]byte, 32<<10)
		for {
			n, err := conn.Read(chunk)
			br.mu.Lock()
			br.buf.Write(chunk[:n])
			if err != nil {
				if errors.Is(err, syscall.ECONNRESET) {
					err = io.EOF
				}
				br.err = err
			}
			br.more.Broadcast()
			br.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return br
}

func (br *backgroundReader) Read(p []byte) (int, error) {
	br.mu.Lock()
	defer br.mu.Unlock()
	for br.buf.Len() == 0 && br.err == nil {
		br.more.Wait()
	}
	if br.buf.Len() > 0 {
		return br.buf.Read(p)
	}
	return 0, br.err
}
