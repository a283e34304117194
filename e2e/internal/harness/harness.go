// Package harness runs the gowsgi binary for the end-to-end tests: it builds
// the binary once, starts it on an ephemeral loopback port with the test apps
// of e2e/testdata and examples/, and gives tests the base URL, the captured
// stderr and a way to stop it.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// GowsgiBin is the binary under test: GOWSGI_BIN when set (so a build against
// another Python can be tested), else the one TestMain builds.
var GowsgiBin string

// Deadlines for the harness; generous because two cores start several
// Python interpreters at once when the tests run in parallel.
const (
	StartTimeout = 60 * time.Second
	StopTimeout  = 30 * time.Second
	PollInterval = 20 * time.Millisecond
)

// BannerURL finds the URL in the line the master prints once every worker is
// ready: "gowsgi 0.1.0 · Python 3.11.2 · mod:application · 2 workers · http://…",
// also where --log-json quotes that line in a JSON object.
var BannerURL = regexp.MustCompile(`http://[^\s"]+`)

// Run is the body of an end-to-end test package's TestMain: it finds or
// builds the binary, runs the tests and returns their exit code.
func Run(m *testing.M) int {
	if bin := os.Getenv("GOWSGI_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: GOWSGI_BIN:", err)
			return 2
		}
		GowsgiBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "gowsgi-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	GowsgiBin = filepath.Join(dir, "gowsgi")
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	build := exec.Command("go", "build", "-o", GowsgiBin, "./cmd/gowsgi")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building gowsgi:", err)
		return 2
	}
	return m.Run()
}

// repoRoot returns the repository's top directory, the nearest one above
// the test's working directory that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("harness: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: no go.mod above the working directory")
		}
		dir = parent
	}
}

// TestdataPath returns the absolute path of a file under the test
// package's testdata/.
func TestdataPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	require.NoError(t, err)
	require.FileExists(t, p)
	return p
}

// CopyAppHelpers copies testdata/apphelp.py, the module the test apps
// import their helpers from, into dir, so a copy of an app made there
// imports it as the original does.
func CopyAppHelpers(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(TestdataPath(t, "apphelp.py"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "apphelp.py"), b, 0o644))
}

// ExamplesDir returns the absolute path of the repository's examples/.
func ExamplesDir(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	require.NoError(t, err)
	p := filepath.Join(root, "examples")
	require.DirExists(t, p)
	return p
}

// LockedBuffer collects a process's stderr and can be read while the
// process still writes.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Instance is one running gowsgi master.
type Instance struct {
	URL  string // base URL from the banner, "http://127.0.0.1:PORT"
	Addr string // host:port of URL, for raw sockets
	Dir  string // the working directory; the test apps keep their records here

	// A test that starts the master its own way (another binary, a
	// socket on stdin) fills in Cmd, Output and Exited and sets Err.
	Cmd    *exec.Cmd
	Output *LockedBuffer // the master's and its workers' stdout and stderr
	Exited chan struct{} // closed once the process has been waited for
	Err    error         // the process's exit error, valid after Exited
}

// Start runs gowsgi with args on an ephemeral loopback port, in a fresh
// working directory, and waits for its banner. The instance is stopped when
// the test ends.
func Start(t *testing.T, args ...string) *Instance {
	t.Helper()
	return StartIn(t, t.TempDir(), args...)
}

// StartIn is Start with dir as the working directory.
func StartIn(t *testing.T, dir string, args ...string) *Instance {
	t.Helper()
	inst := Launch(t, dir, args...)
	inst.WaitBanner(t)
	return inst
}

// Launch starts gowsgi in dir without waiting for the banner.
func Launch(t *testing.T, dir string, args ...string) *Instance {
	t.Helper()
	return launchExactly(t, dir, nil, append([]string{"--http-socket", "127.0.0.1:0"}, args...))
}

// launchExactly starts gowsgi in dir with exactly args and env added to the
// test's environment, and stops it when the test ends.
func launchExactly(t *testing.T, dir string, env []string, args []string) *Instance {
	t.Helper()
	inst := &Instance{Dir: dir, Output: &LockedBuffer{}, Exited: make(chan struct{})}
	inst.Cmd = exec.Command(GowsgiBin, args...)
	inst.Cmd.Dir = dir
	if env != nil {
		inst.Cmd.Env = append(os.Environ(), env...)
	}
	// Its own process group, so a test can signal master and workers at
	// once as systemd does.
	inst.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inst.Cmd.Stdout = inst.Output
	inst.Cmd.Stderr = inst.Output
	require.NoError(t, inst.Cmd.Start(), "starting %s", GowsgiBin)
	go func() {
		inst.Err = inst.Cmd.Wait()
		close(inst.Exited)
	}()
	t.Cleanup(func() { inst.Stop(t) })
	return inst
}

// WaitBanner waits for the ready line and fills in URL and Addr.
func (inst *Instance) WaitBanner(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(StartTimeout)
	for time.Now().Before(deadline) {
		if url := BannerURL.FindString(inst.Output.String()); url != "" {
			inst.URL = strings.TrimRight(url, "/")
			inst.Addr = strings.TrimPrefix(inst.URL, "http://")
			return
		}
		select {
		case <-inst.Exited:
			require.FailNow(t, "gowsgi exited before its banner", "exit: %v\nstderr:\n%s", inst.Err, inst.Stderr())
		case <-time.After(PollInterval):
		}
	}
	require.FailNow(t, "no banner from gowsgi", "after %s; stderr:\n%s", StartTimeout, inst.Stderr())
}

// Stderr returns everything the master and its workers wrote so far.
func (inst *Instance) Stderr() string { return inst.Output.String() }

// logWait bounds AwaitLogged.
const logWait = 10 * time.Second

// AwaitLogged waits until the log holds every one of want. The log reaches
// Stderr through a pipe that a goroutine copies, so a line written just
// before something the test saw happen (a new worker, an answer) may still
// be on its way.
func (inst *Instance) AwaitLogged(t *testing.T, want ...string) {
	t.Helper()
	missing := func() []string {
		logs := inst.Stderr()
		workers := withoutMasterLines(logs)
		var out []string
		for _, w := range want {
			if !strings.Contains(logs, w) && !strings.Contains(workers, w) {
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
		time.Sleep(PollInterval)
	}
}

// masterLine matches one whole line of the master's log: slog's text form,
// or a request line (uWSGI's, which starts with the worker's pid).
var masterLine = regexp.MustCompile(`(?:time=\d{4}-\d\d-\d\dT|\[pid: \d+\|app: )[^\n]*\n`)

// withoutMasterLines returns logs without the master's own lines. Workers
// share the master's stderr, and a worker's text written in pieces (Python's
// faulthandler writes a traceback line in several writes) can have a master
// line land inside it; without the master's lines the pieces join again.
func withoutMasterLines(logs string) string {
	return masterLine.ReplaceAllString(logs, "")
}

// Signal sends sig to the master.
func (inst *Instance) Signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, inst.Cmd.Process.Signal(sig))
}

// SignalGroup sends sig to the master and its workers together, as systemd
// (KillMode=control-group) or `kill -- -PGID` does.
func (inst *Instance) SignalGroup(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, syscall.Kill(-inst.Cmd.Process.Pid, sig))
}

// Wait waits up to timeout for the master to exit and returns its exit code.
func (inst *Instance) Wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-inst.Exited:
	case <-time.After(timeout):
		require.FailNow(t, "gowsgi did not exit", "after %s; stderr:\n%s", timeout, inst.Stderr())
	}
	var exit *exec.ExitError
	if errors.As(inst.Err, &exit) {
		return exit.ExitCode()
	}
	require.NoError(t, inst.Err)
	return 0
}

// Stop ends the master: SIGTERM, then SIGKILL if it has not exited in time.
func (inst *Instance) Stop(t *testing.T) {
	select {
	case <-inst.Exited:
		return
	default:
	}
	_ = inst.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-inst.Exited:
	case <-time.After(StopTimeout):
		_ = inst.Cmd.Process.Kill()
		<-inst.Exited
		t.Errorf("gowsgi ignored SIGTERM for %s and was killed; stderr:\n%s", StopTimeout, inst.Stderr())
	}
}

// Record returns the content of a record file an app wrote in the working
// directory, and whether it exists yet.
func (inst *Instance) Record(name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(inst.Dir, name))
	return string(b), err == nil
}

// Release creates the file release-<tag> an app is waiting for.
func (inst *Instance) Release(t *testing.T, tag string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(inst.Dir, "release-"+tag), nil, 0o644))
}

// Eventually polls cond until it holds or timeout passes, then fails with msg.
func Eventually(t *testing.T, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNowf(t, "condition not met", "after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(PollInterval)
	}
}

// RunToExit runs gowsgi with args to its exit and returns the exit code and
// its output; for start-up failures.
func RunToExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, GowsgiBin, append([]string{"--http-socket", "127.0.0.1:0"}, args...)...)
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

// LaunchConfigured starts gowsgi in dir with exactly args (no socket added,
// so one may come from an ini file) and extra environment variables, and
// waits for its banner.
func LaunchConfigured(t *testing.T, dir string, env []string, args ...string) *Instance {
	t.Helper()
	inst := launchExactly(t, dir, env, args)
	inst.WaitBanner(t)
	return inst
}

// WriteFile writes content to dir/name, creating dir.
func WriteFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// RunGowsgi runs gowsgi with args (no socket added) to its exit and returns
// the exit code and output.
func RunGowsgi(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(GowsgiBin, args...)
	cmd.Dir = dir
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(StartTimeout):
		cmd.Process.Kill()
		<-done
		require.FailNow(t, "gowsgi did not exit", "args %v; output:\n%s", args, out)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

// WaitLine waits for a line of inst's stderr that contains marker.
func WaitLine(t *testing.T, inst *Instance, marker string) string {
	t.Helper()
	var found string
	Eventually(t, 10*time.Second, func() bool {
		for _, line := range strings.Split(inst.Stderr(), "\n") {
			if strings.Contains(line, marker) {
				found = line
				return true
			}
		}
		return false
	}, "no line with %q in stderr:\n%s", marker, inst.Stderr())
	return found
}

// CopyExample copies examples/name into dir unchanged.
func CopyExample(t *testing.T, dir, name string) string {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(ExamplesDir(t), name))
	require.NoError(t, err)
	return WriteFile(t, dir, name, string(content))
}
