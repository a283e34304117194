package e2e

// uWSGI's Python API in gowsgi's workers (issue 12, item 1): the same probe
// app (testdata/uwsgi_probe.py) runs under Debian's uWSGI 2.0.21 and under
// gowsgi with the same options, and what the uwsgi module answers is
// compared; sentry-sdk, which reads uwsgi.opt, warns about threads under
// both alike.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// probeAnswer is testdata/uwsgi_probe.py's /probe: the values, and the type
// names of every value.
type probeAnswer struct {
	Values map[string]any `json:"values"`
	Types  map[string]any `json:"types"`
}

// byNature are the probe's keys whose values differ between two servers by
// nature (pids, times, which worker answers) or by design (gowsgi's version
// tag; Python threads always run in gowsgi; only the calling worker's entry
// of workers() is live); their types must agree.
var byNature = []string{"masterpid", "pid", "started_on", "version", "version_info", "environ",
	"has_threads", "workers", "worker_id", "hooks"}

// uwsgiStopWait is how long uWSGI is given to stop on SIGINT.
const uwsgiStopWait = 10 * time.Second

// requireUWSGI skips the test when Debian's uWSGI is not installed.
func requireUWSGI(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("uwsgi")
	if err != nil {
		t.Skip("uwsgi is not installed: make test-deps installs Debian's uwsgi and uwsgi-plugin-python3")
	}
	return path
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// probeDir is a working directory holding the probe app and its helpers.
func probeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(harness.TestdataPath(t, "uwsgi_probe.py"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "uwsgi_probe.py"), b, 0o644))
	harness.CopyAppHelpers(t, dir)
	return dir
}

// getJSON GETs url and decodes its JSON answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, body := harness.Get(t, url)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	require.NoError(t, json.Unmarshal(body, v), "GET %s: %s", url, body)
}

// startUWSGIForTest runs Debian's uWSGI with args in dir, in its own
// process group, until the test ends: then SIGINT, and after
// uwsgiStopWait whatever is left of the group is killed (uWSGI's own stop
// is not under test). It returns the process and its output; the caller
// waits for it to answer.
func startUWSGIForTest(t *testing.T, bin, dir string, args ...string) (*exec.Cmd, *harness.LockedBuffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, stop := startInGroup(t, cmd)
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out)
		}
	})
	return cmd, out
}

// startInGroup starts cmd, its Dir and Stdin set by the caller, in a
// process group of its own, its output collected. A worker uWSGI leaves
// behind as its master exits (it may, on SIGINT) is ended with the group,
// and holds no output pipe open past WaitDelay. stop sends SIGINT, and
// after uWSGI's master has exited, or uwsgiStopWait, kills what is left
// of the group (the server's own stop is not under test: uWSGI's master at
// times waits on a worker that saw it go) and waits for the process.
func startInGroup(t *testing.T, cmd *exec.Cmd) (out *harness.LockedBuffer, stop func()) {
	t.Helper()
	out = &harness.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return out, func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(uwsgiStopWait):
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// runUWSGI runs Debian's uWSGI with args in dir until its first answer to
// GET path, which it returns, then stops it (SIGINT) and waits for it.
func runUWSGI(t *testing.T, bin, dir, addr, path string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, stop := startInGroup(t, cmd)
	defer stop()
	var body []byte
	harness.Eventually(t, harness.StartTimeout, func() bool {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "uwsgi answered %s: %s\noutput:\n%s", path, body, out)
		return true
	}, "uwsgi did not answer; output:\n%s", out)
	return body
}

// probeConfigs are the option sets both servers run the probe with: on the
// command line, and in an ini file; each has a repeated option
// (pythonpath) and bare flags.
var probeConfigs = []struct {
	name string
	ini  string // %s is the address
	args func(addr string) []string
}{
	{
		name: "command line",
		args: func(addr string) []string {
			return []string{"--plugin", "python3,http", "--http-socket", addr, "--wsgi-file", "uwsgi_probe.py",
				"--master", "-p", "2", "--pythonpath", "lib-a", "--pythonpath=lib-b", "--buffer-size", "8192", "--vacuum"}
		},
	},
	{
		name: "ini file",
		ini: "[uwsgi]\nhttp-socket = %s\nwsgi-file = uwsgi_probe.py\nmaster\nprocesses = 2\n" +
			"pythonpath = lib-a\npythonpath = lib-b\nbuffer-size = 8192\nvacuum = true\ncustom-key = custom\n",
		args: func(string) []string { return []string{"--plugin", "python3,http", "--ini", "probe.ini"} },
	},
}

func TestUWSGIModuleAnswersAsUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	for _, tc := range probeConfigs {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			var under [2]probeAnswer // uWSGI's, then gowsgi's
			var dirs [2]string
			for i := range dirs {
				dirs[i] = probeDir(t)
				if tc.ini != "" {
					harness.WriteFile(t, dirs[i], "probe.ini", fmt.Sprintf(tc.ini, addr))
				}
			}
			require.NoError(t, json.Unmarshal(runUWSGI(t, bin, dirs[0], addr, "/probe", tc.args(addr)...), &under[0]))
			inst := harness.LaunchConfigured(t, dirs[1], nil, tc.args(addr)...)
			getJSON(t, inst.URL+"/probe", &under[1])
			inst.Stop(t)

			uwsgi, gowsgi := under[0], under[1]
			for key, want := range uwsgi.Values {
				if !slices.Contains(byNature, key) {
					assert.Equal(t, want, gowsgi.Values[key], "uwsgi.%s", key)
				} else if key != "hooks" {
					assert.Equal(t, uwsgi.Types[key], gowsgi.Types[key], "type of uwsgi.%s", key)
				}
			}
			assert.Len(t, gowsgi.Values, len(uwsgi.Values), "the probe's keys")
			for i, answer := range under {
				server := []string{"uwsgi", "gowsgi"}[i]
				environ := answer.Values["environ"].(map[string]any)
				assert.Equal(t, answer.Values["version"], environ["uwsgi.version"], "%s: environ's uwsgi.version", server)
				assert.Equal(t, answer.Values["hostname"], environ["uwsgi.node"], "%s: environ's uwsgi.node", server)
				assert.Contains(t, []any{1.0, 2.0}, answer.Values["worker_id"], server)
				assert.Equal(t, 2, len(answer.Values["workers"].([]any)), "%s: workers()", server)
			}
			// uwsgi.atexit runs as the worker ends, which the stop waited
			// for. (uWSGI's SIGINT stop is brutal: whether its workers run
			// theirs races with the master's exit, so it is not compared.)
			_, err := os.Stat(filepath.Join(dirs[1], "atexit-"+pidOf(gowsgi)))
			assert.NoError(t, err, "uwsgi.atexit ran in gowsgi's worker")
			// Debian's uWSGI has no uwsgidecorators for Python 3, so only
			// gowsgi runs the @postfork function, chained after the hook.
			assert.Equal(t, []any{"post_fork"}, uwsgi.Values["hooks"])
			assert.Equal(t, []any{"post_fork", "postfork"}, gowsgi.Values["hooks"])
			assert.Equal(t, map[string]any{"bytes": "2.0.21-gowsgi"}, gowsgi.Values["version"])
			assert.Equal(t, 1.0, gowsgi.Values["has_threads"])
		})
	}
}

func pidOf(answer probeAnswer) string {
	return strconv.Itoa(int(answer.Values["pid"].(float64)))
}

// TestUWSGIModuleMissingFeaturesRaise: what gowsgi lacks of uWSGI's
// module and of uwsgidecorators raises NotImplementedError naming the
// feature, never doing nothing.
func TestUWSGIModuleMissingFeaturesRaise(t *testing.T) {
	inst := harness.StartIn(t, probeDir(t), "--wsgi-file", "uwsgi_probe.py")
	var raised map[string][]string
	getJSON(t, inst.URL+"/missing", &raised)
	features := map[string]string{
		"register_rpc": "RPC", "alarm": "alarms", "decorators.rpc": "RPC",
	}
	require.Len(t, raised, len(features))
	for name, feature := range features {
		require.Len(t, raised[name], 2, "%s raised nothing", name)
		assert.Equal(t, "NotImplementedError", raised[name][0], name)
		assert.Contains(t, raised[name][1], feature, name)
		assert.Contains(t, raised[name][1], "gowsgi does not implement", name)
	}
}

// TestUWSGIModuleLogvars: get_logvar answers what set_logvar set in the
// same request, as bytes.
func TestUWSGIModuleLogvars(t *testing.T) {
	inst := harness.StartIn(t, probeDir(t), "--wsgi-file", "uwsgi_probe.py")
	status, body := harness.GetText(t, inst.URL+"/logvar?v=value42")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "value42", body)
}

// TestUWSGIModuleReloadAndStop: uwsgi.reload() reloads the workers, whose
// generation then sees is_a_reload, and uwsgi.stop() stops the server.
func TestUWSGIModuleReloadAndStop(t *testing.T) {
	inst := harness.StartIn(t, probeDir(t), "--wsgi-file", "uwsgi_probe.py")
	var before probeAnswer
	getJSON(t, inst.URL+"/probe", &before)
	require.Equal(t, false, before.Values["is_a_reload"])
	status, body := harness.GetText(t, inst.URL+"/reload")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "True", body)
	harness.Eventually(t, harness.StartTimeout, func() bool {
		var after probeAnswer
		getJSON(t, inst.URL+"/probe", &after)
		return after.Values["is_a_reload"] == true && pidOf(after) != pidOf(before)
	}, "no reloaded worker answered; stderr:\n%s", inst.Stderr())
	status, body = harness.GetText(t, inst.URL+"/stop")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "True", body)
	assert.Equal(t, 0, inst.Wait(t, harness.StopTimeout), "stderr:\n%s", inst.Stderr())
}

// TestUWSGIModuleSentryThreadWarning: sentry_sdk.init() warns that threads
// are off exactly when it does under uWSGI: without --enable-threads or
// --threads.
func TestUWSGIModuleSentryThreadWarning(t *testing.T) {
	bin := requireUWSGI(t)
	for _, extra := range [][]string{nil, {"--enable-threads"}, {"--threads", "2"}} {
		t.Run(strings.Join(append([]string{"options"}, extra...), " "), func(t *testing.T) {
			addr := freeAddr(t)
			args := append([]string{"--plugin", "python3,http", "--http-socket", addr, "--wsgi-file", "uwsgi_probe.py", "--master"}, extra...)
			var underUWSGI, underGowsgi []string
			require.NoError(t, json.Unmarshal(runUWSGI(t, bin, probeDir(t), addr, "/sentry", args...), &underUWSGI))
			if underUWSGI == nil {
				t.Skip("sentry_sdk is not installed: make test-deps installs Debian's python3-sentry-sdk")
			}
			inst := harness.LaunchConfigured(t, probeDir(t), nil, args...)
			getJSON(t, inst.URL+"/sentry", &underGowsgi)
			assert.Equal(t, underUWSGI, underGowsgi)
			assert.Equal(t, extra == nil, len(underGowsgi) == 1, "a warning exactly without threads: %q", underGowsgi)
		})
	}
}
