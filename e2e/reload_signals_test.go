// Reloads and signals in the real binary: reload on SIGHUP, --touch-reload
// and --py-autoreload (editing any module the app imported reloads the
// workers, and the new code is served), graceful stop on SIGTERM,
// SIGINT/SIGQUIT as a fast exit, and SIGTTIN/SIGTTOU adding and removing
// workers.
package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
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

const autoreloadApp = `"""Answers the version a helper module holds.

Routes:
  /      autoreload_helper.VERSION, imported with the app
  /lazy  autoreload_lazy.VERSION, imported by the first request for it
"""
import importlib

import autoreload_helper


def application(environ, start_response):
    if environ["PATH_INFO"] == "/lazy":
        body = importlib.import_module("autoreload_lazy").VERSION.encode()
    else:
        body = autoreload_helper.VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

func TestPyAutoreloadServesEditedModules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mount  bool   // only --mount apps
		route  string // which module the edit is to
		module string
	}{
		{"imported with the app", false, "/", "autoreload_helper"},
		{"imported while serving", false, "/lazy", "autoreload_lazy"},
		{"mount, imported with the app", true, "/", "autoreload_helper"},
		{"mount, imported while serving", true, "/lazy", "autoreload_lazy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			edited := filepath.Join(dir, tc.module+".py")
			require.NoError(t, os.WriteFile(filepath.Join(dir, "autoreload_app.py"), []byte(autoreloadApp), 0o644))
			for _, m := range []string{"autoreload_helper", "autoreload_lazy"} {
				require.NoError(t, os.WriteFile(filepath.Join(dir, m+".py"), []byte("VERSION = 'first'\n"), 0o644))
			}
			args := []string{"--pythonpath", dir, "--module", "autoreload_app"}
			if tc.mount {
				args = []string{"--pythonpath", dir, "--mount", "/=" + filepath.Join(dir, "autoreload_app.py")}
			}
			// One worker: a second one would import the lazy module afresh,
			// edited, and serve it with no reload.
			app := harness.Start(t, append(args, "--py-autoreload", "1", "-p", "1")...)

			served := func() string {
				resp, err := harness.Client(false).Get(app.URL + tc.route)
				if err != nil {
					return ""
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK {
					return ""
				}
				return string(body)
			}
			require.Equal(t, "first", served())

			// The master takes its baseline from the module list within a
			// poll; only then can an edit be seen as one.
			list := "gowsgi-modules-" + strconv.Itoa(app.Cmd.Process.Pid)
			harness.Eventually(t, 10*time.Second, func() bool {
				data, err := os.ReadFile(filepath.Join(os.TempDir(), list))
				return err == nil && strings.Contains(string(data), edited)
			}, "the module was never listed")
			harness.Eventually(t, 20*time.Second, func() bool {
				// Rewritten on every poll until seen, so a baseline taken
				// after the first write still sees a change.
				require.NoError(t, os.WriteFile(edited, []byte("VERSION = 'second'\n"), 0o644))
				now := time.Now()
				require.NoError(t, os.Chtimes(edited, now, now))
				return served() == "second"
			}, "the edited module was never served; stderr:\n%s", app.Stderr())
			app.AwaitLogged(t, "reload requested")
		})
	}
}

func TestTouchReload(t *testing.T) {
	for _, fromINI := range []bool{false, true} {
		t.Run(fmt.Sprintf("ini=%v", fromINI), func(t *testing.T) {
			dir := t.TempDir()
			touched := harness.WriteFile(t, dir, "reload.txt", "")
			args := append(processApp(t), "--touch-reload", filepath.Join(dir, "other.txt"), "--touch-reload", touched)
			if fromINI {
				args = []string{"--ini", harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+harness.TestdataPath(t, "process_app.py")+
					"\ntouch-reload = %dother.txt\ntouch-reload = %dreload.txt\n")}
			}
			inst := harness.StartIn(t, dir, args...)
			before := workerPid(t, inst.URL)
			later := time.Now().Add(time.Minute)
			require.NoError(t, os.Chtimes(touched, later, later))
			harness.Eventually(t, harness.StartTimeout, func() bool { return workerPid(t, inst.URL) != before },
				"touching the file did not reload; stderr:\n%s", inst.Stderr())
			inst.AwaitLogged(t, `msg="reload requested" touched=`)
		})
	}
}

// TestFastExitSignals: SIGINT and SIGQUIT kill the workers and exit 0 at
// once, without waiting for the request in flight (uWSGI's meaning).
func TestFastExitSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			inst := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "misbehave.py"), "--graceful-timeout", "60")
			pids, results := holdRequests(t, inst, "fast", 1)
			inst.Signal(t, sig)
			// The app would hold the request for 20 s and the drain would
			// wait for it: exiting within 10 s means it did not.
			assert.Equal(t, 0, inst.Wait(t, 10*time.Second))
			result := <-results
			assert.False(t, result.err == nil && result.status == 200, "the request in flight completed")
			harness.Eventually(t, 10*time.Second, func() bool { return !alive(pids[0]) }, "worker %d survived", pids[0])
		})
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	source, err := os.ReadFile(harness.TestdataPath(t, "misbehave.py"))
	require.NoError(t, err)
	dir := t.TempDir()
	harness.CopyAppHelpers(t, dir)
	appFile := filepath.Join(dir, "reloadable.py")
	require.NoError(t, os.WriteFile(appFile, source, 0o644))
	app := harness.Start(t, "--wsgi-file", appFile, "-p", "2")

	// Two clients request steadily through the reload, bounded in time and count.
	var (
		mu       sync.Mutex
		failures []string
		versions = map[string]int{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for c := 0; c < 2; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(20 * time.Second)
			for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				status, version, err := fetchVersion(app.URL)
				mu.Lock()
				if err != nil || status != http.StatusOK {
					failures = append(failures, fmt.Sprintf("status %d, error %v", status, err))
				} else {
					versions[version]++
				}
				mu.Unlock()
			}
		}()
	}
	seen := func(version string) bool {
		mu.Lock()
		defer mu.Unlock()
		return versions[version] > 0
	}
	harness.Eventually(t, 20*time.Second, func() bool { return seen("original") }, "no request served before the reload")

	edited := strings.Replace(string(source), `APP_VERSION = "original"`, `APP_VERSION = "reloaded"`, 1)
	require.NotEqual(t, string(source), edited, "misbehave.py lost its APP_VERSION line")
	require.NoError(t, os.WriteFile(appFile, []byte(edited), 0o644))
	app.Signal(t, syscall.SIGHUP)
	harness.Eventually(t, 20*time.Second, func() bool { return seen("reloaded") },
		"the edited app was never served after SIGHUP; stderr:\n%s", app.Stderr())
	close(stop)
	wg.Wait()

	assert.Empty(t, failures, "requests failed across the reload")
	t.Logf("served across the reload: %v", versions)
}

func fetchVersion(base string) (int, string, error) {
	resp, err := harness.Client(false).Get(base + "/version")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, err = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String(), err
}

func TestGracefulStopOnSIGTERM(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		signal func(*testing.T, *harness.Instance)
	}{
		{"to the master", func(t *testing.T, inst *harness.Instance) { inst.Signal(t, syscall.SIGTERM) }},
		// systemd stops a service by sending SIGTERM to every process in it:
		// the workers must leave the stop to the master.
		{"to the process group", func(t *testing.T, inst *harness.Instance) { inst.SignalGroup(t, syscall.SIGTERM) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "misbehave.py"), "-p", "1", "--graceful-timeout", "30")
			_, results := holdRequests(t, app, "g", 1)
			tc.signal(t, app)
			// The in-flight request is still running; the master must wait for it.
			harness.Eventually(t, 10*time.Second, func() bool { return strings.Contains(app.Stderr(), "msg=stopping") },
				"the master never began stopping; stderr:\n%s", app.Stderr())
			select {
			case <-app.Exited:
				require.FailNow(t, "gowsgi exited with a request in flight", "stderr:\n%s", app.Stderr())
			default:
			}
			app.Release(t, "g0")
			r := collect(t, results, 1)[0]
			require.NoError(t, r.err)
			assert.Equal(t, http.StatusOK, r.status)
			assert.True(t, r.reply.Released)
			assert.Equal(t, 0, app.Wait(t, 30*time.Second), "exit status after SIGTERM")
		})
	}
}

func TestResizeSignalsAddAndRemoveWorkers(t *testing.T) {
	t.Parallel()
	inst := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "recycle.py"), "-p", "2")
	zygote := harness.ZygoteOf(t, inst)
	workers := func() int { return len(harness.LiveChildren(t, zygote)) }
	require.Equal(t, 2, workers())

	inst.Signal(t, syscall.SIGTTIN)
	harness.Eventually(t, 30*time.Second, func() bool { return workers() == 3 }, "SIGTTIN added no worker; stderr:\n%s", inst.Stderr())
	pids := make(map[int]bool)
	harness.Eventually(t, 30*time.Second, func() bool {
		pids[mustPID(t, inst)] = true
		return len(pids) == 3
	}, "the third worker never served; stderr:\n%s", inst.Stderr())

	// One signal at a time: the kernel merges a signal sent while the same
	// one is still pending (signal(7)).
	for _, want := range []int{2, 1} {
		inst.Signal(t, syscall.SIGTTOU)
		harness.Eventually(t, 30*time.Second, func() bool { return workers() == want }, "SIGTTOU did not bring the workers down to %d", want)
	}
	inst.Signal(t, syscall.SIGTTOU)
	harness.Eventually(t, 10*time.Second, func() bool { return strings.Contains(inst.Stderr(), "worker count unchanged") },
		"SIGTTOU with one worker left was not refused; stderr:\n%s", inst.Stderr())
	assert.Equal(t, 1, workers())
	assert.Empty(t, concurrentPIDs(inst, 2, 10))
}
