// The process options of the real binary, each observed from outside:
// --pidfile, --uid/--gid, --env, --daemonize with --reload/--stop PIDFILE,
// and --max-fd.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// processApp runs testdata/process_app.py.
func processApp(t *testing.T) []string {
	return []string{"--wsgi-file", harness.TestdataPath(t, "process_app.py")}
}

// workerPid asks the app for the pid of the worker serving it.
func workerPid(t *testing.T, url string) string {
	t.Helper()
	status, body := harness.GetText(t, url+"/pid")
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

// launchBinary starts the gowsgi binary at exe in dir with exactly args.
func launchBinary(t *testing.T, exe, dir string, args ...string) *harness.Instance {
	t.Helper()
	inst := &harness.Instance{Dir: dir, Output: &harness.LockedBuffer{}, Exited: make(chan struct{})}
	inst.Cmd = exec.Command(exe, args...)
	inst.Cmd.Dir = dir
	inst.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inst.Cmd.Stdout, inst.Cmd.Stderr = inst.Output, inst.Output
	require.NoError(t, inst.Cmd.Start(), "starting %s", exe)
	go func() {
		inst.Err = inst.Cmd.Wait()
		close(inst.Exited)
	}()
	t.Cleanup(func() { inst.Stop(t) })
	return inst
}

func TestPidFileWrittenAndRemoved(t *testing.T) {
	for _, fromINI := range []bool{false, true} {
		t.Run(fmt.Sprintf("ini=%v", fromINI), func(t *testing.T) {
			dir := t.TempDir()
			pidfile := filepath.Join(dir, "gowsgi.pid")
			args := append(processApp(t), "--pidfile", pidfile)
			if fromINI {
				args = []string{"--ini", harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+harness.TestdataPath(t, "process_app.py")+"\npidfile = %dgowsgi.pid\n")}
			}
			inst := harness.StartIn(t, dir, args...)
			assert.Equal(t, inst.Cmd.Process.Pid, readPid(t, pidfile))
			inst.Signal(t, syscall.SIGTERM)
			assert.Equal(t, 0, inst.Wait(t, harness.StopTimeout))
			assert.NoFileExists(t, pidfile)
		})
	}
}

// nobodyReadableApp copies the binary, process_app.py and its helpers into
// a folder the user nobody can read, for the tests whose workers run as
// nobody, and returns the folder and the binary's path.
func nobodyReadableApp(t *testing.T) (dir, exe string) {
	t.Helper()
	// Everything the workers read must be open to nobody: the binary, the
	// app and the working directory.
	dir = t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	bin, err := os.ReadFile(harness.GowsgiBin)
	require.NoError(t, err)
	exe = filepath.Join(dir, "gowsgi")
	require.NoError(t, os.WriteFile(exe, bin, 0o755))
	app, err := os.ReadFile(harness.TestdataPath(t, "process_app.py"))
	require.NoError(t, err)
	harness.WriteFile(t, dir, "process_app.py", string(app))
	harness.CopyAppHelpers(t, dir)
	return dir, exe
}

// TestUIDGIDDropPrivileges runs as root: the master binds, then it and the
// workers become nobody:nogroup.
func TestUIDGIDDropPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dropping privileges needs root")
	}
	dir, exe := nobodyReadableApp(t)
	secret := harness.WriteFile(t, dir, "root-only", "")
	require.NoError(t, os.Chmod(secret, 0o600))
	harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = %dprocess_app.py\ngid = nogroup\n")

	inst := launchBinary(t, exe, dir, "--http-socket", "127.0.0.1:0", "app.ini", "--uid", "nobody")
	inst.WaitBanner(t)

	status, ids := harness.GetText(t, inst.URL+"/ids")
	require.Equal(t, 200, status, ids)
	assert.Equal(t, "65534 65534 65534", ids)
	pid, err := strconv.Atoi(workerPid(t, inst.URL))
	require.NoError(t, err)
	for _, p := range []int{pid, inst.Cmd.Process.Pid} {
		proc, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^Uid:\t65534\t65534\t65534\t65534$`, string(proc), "pid %d", p)
		assert.Regexp(t, `(?m)^Gid:\t65534\t65534\t65534\t65534$`, string(proc), "pid %d", p)
	}
	_, written := harness.GetText(t, inst.URL+"/write?path="+secret)
	assert.Equal(t, "denied", written)
}

func TestEnvReachesTheApp(t *testing.T) {
	app := harness.TestdataPath(t, "process_app.py")
	for _, tc := range []struct {
		name string
		args func(dir string) []string
	}{
		{"command line", func(string) []string {
			return append(processApp(t), "--env", "GOWSGI_TEST_A=one", "--env", "GOWSGI_TEST_B=x=y")
		}},
		{"ini", func(dir string) []string {
			return []string{"--ini", harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+app+
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
			inst := harness.StartIn(t, dir, tc.args(dir)...)
			for name, want := range map[string]string{"GOWSGI_TEST_A": "one", "GOWSGI_TEST_B": "x=y"} {
				status, body := harness.GetText(t, inst.URL+"/env?name="+name)
				assert.Equal(t, 200, status, name)
				assert.Equal(t, want, body, name)
			}
			// What gowsgi tells its zygote or workers is not the app's business.
			for _, name := range []string{"GOWSGI_ZYGOTE", "GOWSGI_APP_WSGI_FILE", "GOWSGI_APP_MODULE",
				"GOWSGI_APP_MOUNTS", "GOWSGI_APP_MODULE_LIST"} {
				status, _ := harness.GetText(t, inst.URL+"/env?name="+name)
				assert.Equal(t, 404, status, name)
			}
		})
	}
	code, out := harness.RunToExit(t, append(processApp(t), "--env", "NOVALUE")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, `--env: "NOVALUE" is not KEY=VALUE`)
}

// waitLogBanner waits for the banner in the log file at path, as --logto
// and --daemonize send it there, and fills in inst's URL.
func waitLogBanner(t *testing.T, inst *harness.Instance, path string) {
	t.Helper()
	var url string
	harness.Eventually(t, harness.StartTimeout, func() bool {
		content, _ := os.ReadFile(path)
		url = harness.BannerURL.FindString(string(content))
		return url != ""
	}, "no banner in %s; stderr:\n%s", path, inst.Stderr())
	inst.URL = strings.TrimRight(url, "/")
	inst.Addr = strings.TrimPrefix(inst.URL, "http://")
}

// TestDaemonizeAndControlByPidFile starts gowsgi detached, then reloads and
// stops it with gowsgi --reload and --stop.
func TestDaemonizeAndControlByPidFile(t *testing.T) {
	dir := t.TempDir()
	logPath, pidfile := filepath.Join(dir, "daemon.log"), filepath.Join(dir, "daemon.pid")
	harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+harness.TestdataPath(t, "process_app.py")+
		"\nhttp-socket = 127.0.0.1:0\npidfile = %ddaemon.pid\n")
	code, out := harness.RunGowsgi(t, dir, "app.ini", "-d", logPath)
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

	inst := &harness.Instance{Dir: dir, Output: &harness.LockedBuffer{}}
	waitLogBanner(t, inst, logPath)
	before := workerPid(t, inst.URL)

	code, out = harness.RunGowsgi(t, dir, "--reload", pidfile)
	require.Equal(t, 0, code, out)
	harness.Eventually(t, harness.StartTimeout, func() bool { return workerPid(t, inst.URL) != before },
		"--reload did not replace the worker; log:\n%s", readFile(logPath))

	code, out = harness.RunGowsgi(t, dir, "--stop", pidfile)
	require.Equal(t, 0, code, out)
	harness.Eventually(t, harness.StopTimeout, func() bool { return !alive(pid) }, "--stop did not stop the daemon")
	assert.NoFileExists(t, pidfile)

	code, out = harness.RunGowsgi(t, dir, "--stop", pidfile)
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
	harness.WriteFile(t, dir, "broken.py", "raise RuntimeError('broken on purpose')\n")
	code, out := harness.RunGowsgi(t, dir, "--wsgi-file", "broken.py", "--http-socket", "127.0.0.1:0", "--daemonize", logPath)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "the daemon stopped before serving")
	assert.Contains(t, readFile(logPath), "broken on purpose")
}

// --max-fd sets the open-file limit of the master, its zygote and the
// workers; one the kernel cannot grant stops the start, naming the option.
func TestMaxFD(t *testing.T) {
	t.Parallel()
	inst := harness.Start(t, append(processApp(t), "--max-fd", "4321")...)
	worker, err := strconv.Atoi(workerPid(t, inst.URL))
	require.NoError(t, err)
	for _, pid := range []int{inst.Cmd.Process.Pid, harness.ZygoteOf(t, inst), worker} {
		limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^Max open files +4321 +4321 +files`, string(limits), "pid %d", pid)
	}

	// Above fs.nr_open (1048576 unless raised) not even root may go.
	code, out := harness.RunToExit(t, append(processApp(t), "--max-fd", "1073741824")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "gowsgi: --max-fd 1073741824: cannot set the open-file limit")
}
