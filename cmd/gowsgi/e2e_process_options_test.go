// The process options of the real binary, each observed from outside:
// --pidfile, --uid/--gid, --env, --logto (and SIGUSR1), --daemonize,
// --reload/--stop PIDFILE, --touch-reload, --listen, --http-timeout,
// --socket-timeout, and SIGINT/SIGQUIT as a fast exit.
package main_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// processApp runs testdata/process_app.py.
func processApp(t *testing.T) []string {
	return []string{"--wsgi-file", testdataPath(t, "process_app.py")}
}

// getText fetches url and returns the status and the body as text.
func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, body := get(t, url)
	return resp.StatusCode, string(body)
}

// workerPid asks the app for the pid of the worker serving it.
func workerPid(t *testing.T, url string) string {
	t.Helper()
	status, body := getText(t, url+"/pid")
	require.Equal(t, 200, status, body)
	return body
}

// alive reports whether a process with pid exists.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// readPid reads a pidfile.
func readPid(t *testing.T, path string) int {
	t.Helper()
	content, err := os.ReadFile(path)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(content)))
	require.NoError(t, err, "pidfile content %q", content)
	return pid
}

// runGowsgi runs gowsgi with args (no socket added) to its exit and returns
// the exit code and output.
func runGowsgi(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(gowsgiBin, args...)
	cmd.Dir = dir
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(startTimeout):
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

// launchBinary starts the gowsgi binary at exe in dir with exactly args.
func launchBinary(t *testing.T, exe, dir string, args ...string) *instance {
	t.Helper()
	inst := &instance{Dir: dir, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	inst.cmd = exec.Command(exe, args...)
	inst.cmd.Dir = dir
	inst.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inst.cmd.Stdout, inst.cmd.Stderr = inst.stderr, inst.stderr
	require.NoError(t, inst.cmd.Start(), "starting %s", exe)
	go func() {
		inst.err = inst.cmd.Wait()
		close(inst.exited)
	}()
	t.Cleanup(func() { inst.stop(t) })
	return inst
}

func TestPidFileWrittenAndRemoved(t *testing.T) {
	for _, fromINI := range []bool{false, true} {
		t.Run(fmt.Sprintf("ini=%v", fromINI), func(t *testing.T) {
			dir := t.TempDir()
			pidfile := filepath.Join(dir, "gowsgi.pid")
			args := append(processApp(t), "--pidfile", pidfile)
			if fromINI {
				args = []string{"--ini", writeFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+testdataPath(t, "process_app.py")+"\npidfile = %dgowsgi.pid\n")}
			}
			inst := startIn(t, dir, args...)
			assert.Equal(t, inst.cmd.Process.Pid, readPid(t, pidfile))
			inst.Signal(t, syscall.SIGTERM)
			assert.Equal(t, 0, inst.Wait(t, stopTimeout))
			assert.NoFileExists(t, pidfile)
		})
	}
}

// TestUIDGIDDropPrivileges runs as root: the master binds, then it and the
// workers become nobody:nogroup.
func TestUIDGIDDropPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dropping privileges needs root")
	}
	// Everything the workers read must be open to nobody: the binary, the
	// app and the working directory.
	dir := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	bin, err := os.ReadFile(gowsgiBin)
	require.NoError(t, err)
	exe := filepath.Join(dir, "gowsgi")
	require.NoError(t, os.WriteFile(exe, bin, 0o755))
	app, err := os.ReadFile(testdataPath(t, "process_app.py"))
	require.NoError(t, err)
	writeFile(t, dir, "process_app.py", string(app))
	secret := writeFile(t, dir, "root-only", "")
	require.NoError(t, os.Chmod(secret, 0o600))
	writeFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = %dprocess_app.py\ngid = nogroup\n")

	inst := launchBinary(t, exe, dir, "--http-socket", "127.0.0.1:0", "app.ini", "--uid", "nobody")
	inst.waitBanner(t)

	status, ids := getText(t, inst.URL+"/ids")
	require.Equal(t, 200, status, ids)
	assert.Equal(t, "65534 65534 65534", ids)
	pid, err := strconv.Atoi(workerPid(t, inst.URL))
	require.NoError(t, err)
	for _, p := range []int{pid, inst.cmd.Process.Pid} {
		proc, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^Uid:\t65534\t65534\t65534\t65534$`, string(proc), "pid %d", p)
		assert.Regexp(t, `(?m)^Gid:\t65534\t65534\t65534\t65534$`, string(proc), "pid %d", p)
	}
	_, written := getText(t, inst.URL+"/write?path="+secret)
	assert.Equal(t, "denied", written)
}

func TestEnvReachesTheApp(t *testing.T) {
	app := testdataPath(t, "process_app.py")
	for _, tc := range []struct {
		name string
		args func(dir string) []string
	}{
		{"command line", func(string) []string {
			return append(processApp(t), "--env", "GOWSGI_TEST_A=one", "--env", "GOWSGI_TEST_B=x=y")
		}},
		{"ini", func(dir string) []string {
			return []string{"--ini", writeFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+app+
				"\nenv = GOWSGI_TEST_A=one\nenv = GOWSGI_TEST_B=x=y\n")}
		}},
		// Only mounts, and with --py-autoreload's list.
		{"mount", func(string) []string {
			return []string{"--mount", "/=" + app, "--env", "GOWSGI_TEST_A=one", "--env", "GOWSGI_TEST_B=x=y",
				"--py-autoreload", "5"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			inst := startIn(t, dir, tc.args(dir)...)
			for name, want := range map[string]string{"GOWSGI_TEST_A": "one", "GOWSGI_TEST_B": "x=y"} {
				status, body := getText(t, inst.URL+"/env?name="+name)
				assert.Equal(t, 200, status, name)
				assert.Equal(t, want, body, name)
			}
			// What gowsgi tells its zygote or workers is not the app's business.
			for _, name := range []string{"GOWSGI_ZYGOTE", "GOWSGI_APP_WSGI_FILE", "GOWSGI_APP_MODULE",
				"GOWSGI_APP_MOUNTS", "GOWSGI_APP_MODULE_LIST"} {
				status, _ := getText(t, inst.URL+"/env?name="+name)
				assert.Equal(t, 404, status, name)
			}
		})
	}
	code, out := runToExit(t, append(processApp(t), "--env", "NOVALUE")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, `--env: "NOVALUE" is not KEY=VALUE`)
}

// waitLogBanner waits for the banner in the log file at path, as --logto
// and --daemonize send it there, and fills in inst's URL.
func waitLogBanner(t *testing.T, inst *instance, path string) {
	t.Helper()
	var url string
	eventually(t, startTimeout, func() bool {
		content, _ := os.ReadFile(path)
		url = bannerURL.FindString(string(content))
		return url != ""
	}, "no banner in %s; stderr:\n%s", path, inst.Stderr())
	inst.URL = strings.TrimRight(url, "/")
	inst.Addr = strings.TrimPrefix(inst.URL, "http://")
}

func fileContains(path, text string) bool {
	content, _ := os.ReadFile(path)
	return strings.Contains(string(content), text)
}

// TestLogToAndSIGUSR1 checks that the master's and the workers' lines go to
// the file, and that SIGUSR1 after logrotate moved it writes the stats line,
// and the running worker's lines, to a new file at the same path.
func TestLogToAndSIGUSR1(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "gowsgi.log")
	inst := launch(t, dir, "--wsgi-file", testdataPath(t, "misbehave.py"), "--logto", logPath)
	waitLogBanner(t, inst, logPath)
	status, _ := getText(t, inst.URL+"/log?line=from-the-worker")
	assert.Equal(t, 200, status)
	eventually(t, 10*time.Second, func() bool { return fileContains(logPath, "from-the-worker") },
		"the worker's line is not in the log")
	assert.NotContains(t, inst.Stderr(), "from-the-worker")

	rotated := logPath + ".1"
	require.NoError(t, os.Rename(logPath, rotated))
	inst.Signal(t, syscall.SIGUSR1)
	eventually(t, 10*time.Second, func() bool { return fileContains(logPath, "msg=stats") },
		"no stats line in the reopened log")
	// The worker that was already running writes to the new file too: its
	// output goes through the master.
	status, _ = getText(t, inst.URL+"/log?line=after-the-reopen")
	assert.Equal(t, 200, status)
	eventually(t, 10*time.Second, func() bool { return fileContains(logPath, "after-the-reopen") },
		"the running worker's line is not in the reopened log")
	assert.False(t, fileContains(rotated, "after-the-reopen"))
	inst.Signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, inst.Wait(t, stopTimeout))
	assert.True(t, fileContains(logPath, "msg=stopping"), "the master's last line is not in the reopened log")
	assert.False(t, fileContains(rotated, "msg=stats"))
}

// --touch-logreopen reopens the --logto file when its trigger is touched,
// as logrotate's postrotate "touch" does with uWSGI.
func TestTouchLogReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logPath, trigger := filepath.Join(dir, "gowsgi.log"), writeFile(t, dir, "reopen", "")
	inst := launch(t, dir, "--wsgi-file", testdataPath(t, "misbehave.py"), "--logto", logPath, "--touch-logreopen", trigger)
	waitLogBanner(t, inst, logPath)

	rotated := logPath + ".1"
	require.NoError(t, os.Rename(logPath, rotated))
	eventually(t, 20*time.Second, func() bool {
		// Touched on every poll until seen, so a touch within the file
		// system's time granularity of the baseline still counts.
		now := time.Now()
		require.NoError(t, os.Chtimes(trigger, now, now))
		return fileContains(logPath, `msg="log reopened"`)
	}, "the log was not reopened")
	status, _ := getText(t, inst.URL+"/log?line=after-the-reopen")
	assert.Equal(t, 200, status)
	eventually(t, 10*time.Second, func() bool { return fileContains(logPath, "after-the-reopen") },
		"the worker's line is not in the reopened log")
	assert.False(t, fileContains(rotated, "after-the-reopen"))
	assert.False(t, fileContains(logPath, "msg=stats"), "only SIGUSR1 writes the stats line")
}

// TestDaemonizeAndControlByPidFile starts gowsgi detached, then reloads and
// stops it with gowsgi --reload and --stop.
func TestDaemonizeAndControlByPidFile(t *testing.T) {
	dir := t.TempDir()
	logPath, pidfile := filepath.Join(dir, "daemon.log"), filepath.Join(dir, "daemon.pid")
	writeFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+testdataPath(t, "process_app.py")+
		"\nhttp-socket = 127.0.0.1:0\npidfile = %ddaemon.pid\n")
	code, out := runGowsgi(t, dir, "app.ini", "-d", logPath)
	require.Equal(t, 0, code, out)
	pid := readPid(t, pidfile)
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	sid, err := unixGetsid(pid)
	require.NoError(t, err)
	assert.Equal(t, pid, sid, "the daemon leads its own session")

	inst := &instance{Dir: dir, stderr: &lockedBuffer{}}
	waitLogBanner(t, inst, logPath)
	before := workerPid(t, inst.URL)

	code, out = runGowsgi(t, dir, "--reload", pidfile)
	require.Equal(t, 0, code, out)
	eventually(t, startTimeout, func() bool { return workerPid(t, inst.URL) != before },
		"--reload did not replace the worker; log:\n%s", readFile(logPath))

	code, out = runGowsgi(t, dir, "--stop", pidfile)
	require.Equal(t, 0, code, out)
	eventually(t, stopTimeout, func() bool { return !alive(pid) }, "--stop did not stop the daemon")
	assert.NoFileExists(t, pidfile)

	code, out = runGowsgi(t, dir, "--stop", pidfile)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "daemon.pid")
}

func readFile(path string) string {
	content, _ := os.ReadFile(path)
	return string(content)
}

// unixGetsid returns the session id of pid, from /proc/PID/stat.
func unixGetsid(pid int) (int, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses: state,
	// ppid, pgrp, session.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return strconv.Atoi(fields[3])
}

func TestDaemonizeReportsAFailedStart(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "daemon.log")
	writeFile(t, dir, "broken.py", "raise RuntimeError('broken on purpose')\n")
	code, out := runGowsgi(t, dir, "--wsgi-file", "broken.py", "--http-socket", "127.0.0.1:0", "--daemonize", logPath)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "the daemon stopped before serving")
	assert.Contains(t, readFile(logPath), "broken on purpose")
}

func TestTouchReload(t *testing.T) {
	for _, fromINI := range []bool{false, true} {
		t.Run(fmt.Sprintf("ini=%v", fromINI), func(t *testing.T) {
			dir := t.TempDir()
			touched := writeFile(t, dir, "reload.txt", "")
			args := append(processApp(t), "--touch-reload", filepath.Join(dir, "other.txt"), "--touch-reload", touched)
			if fromINI {
				args = []string{"--ini", writeFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+testdataPath(t, "process_app.py")+
					"\ntouch-reload = %dother.txt\ntouch-reload = %dreload.txt\n")}
			}
			inst := startIn(t, dir, args...)
			before := workerPid(t, inst.URL)
			later := time.Now().Add(time.Minute)
			require.NoError(t, os.Chtimes(touched, later, later))
			eventually(t, startTimeout, func() bool { return workerPid(t, inst.URL) != before },
				"touching the file did not reload; stderr:\n%s", inst.Stderr())
			inst.awaitLogged(t, `msg="reload requested" touched=`)
		})
	}
}

// TestFastExitSignals: SIGINT and SIGQUIT kill the workers and exit 0 at
// once, without waiting for the request in flight (uWSGI's meaning).
func TestFastExitSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			inst := start(t, "--wsgi-file", testdataPath(t, "misbehave.py"), "--graceful-timeout", "60")
			pids, results := holdRequests(t, inst, "fast", 1)
			inst.Signal(t, sig)
			// The app would hold the request for 20 s and the drain would
			// wait for it: exiting within 10 s means it did not.
			assert.Equal(t, 0, inst.Wait(t, 10*time.Second))
			result := <-results
			assert.False(t, result.err == nil && result.status == 200, "the request in flight completed")
			eventually(t, 10*time.Second, func() bool { return !alive(pids[0]) }, "worker %d survived", pids[0])
		})
	}
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
			args := []string{"--wsgi-file", testdataPath(t, "misbehave.py"), "-l", "1"}
			if fromINI {
				args = []string{"--ini", writeFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+testdataPath(t, "misbehave.py")+"\nlisten = 1\n")}
			}
			inst := startIn(t, dir, args...)
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
		addr    func(inst *instance) string
		partial string
	}{
		{"http", func(string) []string { return []string{"--http-timeout", "1"} },
			func(inst *instance) string { return inst.Addr }, "GET / HTTP/1.1\r\nHost: x\r\n"},
		{"http-ini", func(dir string) []string {
			return []string{"--ini", writeFile(t, dir, "app.ini", "[uwsgi]\nhttp-timeout = 1\n")}
		}, func(inst *instance) string { return inst.Addr }, "GET / HTTP/1.1\r\n"},
		{"uwsgi", func(string) []string { return []string{"--socket", "127.0.0.1:0", "--socket-timeout", "1"} },
			func(inst *instance) string { return uwsgiURL.FindStringSubmatch(inst.Stderr())[1] }, "\x00\x10"},
		{"fastcgi", func(string) []string { return []string{"--fastcgi-socket", "127.0.0.1:0", "--socket-timeout", "1"} },
			func(inst *instance) string { return fastcgiURL.FindStringSubmatch(inst.Stderr())[1] }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			inst := startIn(t, dir, append(processApp(t), tc.args(dir)...)...)
			conn := dial(t, tc.addr(inst))
			_, err := io.WriteString(conn, tc.partial)
			require.NoError(t, err)
			closed, rest := waitEOF(conn, bufio.NewReader(conn), 10*time.Second)
			// net/http may answer 408 before closing; either way the
			// connection ends well before the 30 s default.
			assert.True(t, closed || strings.Contains(string(rest), "408"), "connection not closed; got %q", rest)
		})
	}
}

// --max-fd sets the open-file limit of the master, its zygote and the
// workers; one the kernel cannot grant stops the start, naming the option.
func TestMaxFD(t *testing.T) {
	t.Parallel()
	inst := start(t, append(processApp(t), "--max-fd", "4321")...)
	worker, err := strconv.Atoi(workerPid(t, inst.URL))
	require.NoError(t, err)
	for _, pid := range []int{inst.cmd.Process.Pid, zygoteOf(t, inst), worker} {
		limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^Max open files +4321 +4321 +files`, string(limits), "pid %d", pid)
	}

	// Above fs.nr_open (1048576 unless raised) not even root may go.
	code, out := runToExit(t, append(processApp(t), "--max-fd", "1073741824")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "gowsgi: --max-fd 1073741824: cannot set the open-file limit")
}
