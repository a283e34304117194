// Faults under load with the real binary: workers killed with SIGKILL,
// harakiri, reloads (one of them of an app that no longer imports), a
// graceful stop, recycling and workers crashing in C. Each test keeps a
// steady, bounded stream of requests going while the fault happens and
// accounts for every one of them.
package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
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

func TestKill9UnderLoad(t *testing.T) {
	t.Parallel()
	const workers, threads, kills = 2, 2, 20
	inst := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "faults.py"),
		"-p", strconv.Itoa(workers), "--threads", strconv.Itoa(threads))
	zygote := harness.ZygoteOf(t, inst)
	l := harness.StartLoad(t, inst.URL+"/work?ms=20", 4)
	awaitAnswered(t, inst, l, 10)

	var killed []killWindow
	var slowest time.Duration
	for i := range kills {
		tick := time.Now()
		victims := harness.LiveChildren(t, zygote)
		require.Len(t, victims, workers)
		victim := victims[i%workers]
		before := time.Now()
		require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
		killed = append(killed, killWindow{before, time.Now()})
		slowest = max(slowest, harness.AwaitReplaced(t, inst, zygote, victim, workers, time.Second))
		time.Sleep(time.Until(tick.Add(time.Second))) // one kill a second
	}
	outcomes := l.Finish()

	// A 502 is right only for a request that was running when a worker was
	// killed, and a killed worker was running at most threads of them.
	var gateway int
	var unexplained []string
	for _, o := range outcomes {
		switch {
		case o.Err == nil && o.Status == http.StatusOK:
		case o.Err == nil && o.Status == http.StatusBadGateway && inFlightAtKill(o, killed):
			gateway++
		default:
			unexplained = append(unexplained, o.String())
		}
	}
	t.Logf("%d requests, %v; %d kills; slowest respawn %s", len(outcomes), harness.Tally(outcomes), kills, slowest)
	assert.Empty(t, unexplained, "failures not explained by a kill; stderr:\n%s", inst.Stderr())
	assert.LessOrEqual(t, gateway, threads*kills, "more 502s than requests the killed workers were running")
	assert.Positive(t, gateway, "no kill hit a running request: the test did not exercise the fault")
}

// killWindow brackets one kill: the time just before the signal was sent
// and just after kill(2) returned. The killed worker's clients may hear of
// its death before the second reading is taken.
type killWindow struct{ before, after time.Time }

// inFlightAtKill reports whether o was under way at some moment of a kill's
// window.
func inFlightAtKill(o harness.Outcome, killed []killWindow) bool {
	for _, k := range killed {
		if !o.Began.After(k.after) && !o.Ended.Before(k.before) {
			return true
		}
	}
	return false
}

func TestHarakiriUnderLoad(t *testing.T) {
	t.Parallel()
	// One thread a worker, so the slow request is the only one running on
	// the worker harakiri kills; requests queued behind it go elsewhere.
	inst := startFaults(t, true, setting{"-p", "processes", "2"}, setting{"--threads", "threads", "1"},
		setting{"-t", "harakiri", "2"})
	zygote := harness.ZygoteOf(t, inst)
	l := harness.StartLoad(t, inst.URL+"/work?ms=10", 3)
	awaitAnswered(t, inst, l, 10)

	began := time.Now()
	slow := harness.Fetch(harness.Client(false), inst.URL+"/sleep?s=20")
	took := time.Since(began)
	require.NoError(t, slow.Err)
	assert.Equal(t, http.StatusGatewayTimeout, slow.Status, "%s", slow.Body)
	assert.Less(t, took, 10*time.Second, "long before the request would end by itself")
	sleeper, ok := inst.Record("sleeping")
	require.True(t, ok, "the slow request never reached the app")
	pid, err := strconv.Atoi(sleeper)
	require.NoError(t, err)
	harness.AwaitReplaced(t, inst, zygote, pid, 2, 10*time.Second)
	awaitAnswered(t, inst, l, 50)
	outcomes := l.Finish()

	t.Logf("%d requests, %v; the slow one took %s", len(outcomes), harness.Tally(outcomes), took.Round(time.Millisecond))
	assert.Empty(t, harness.NotOK(outcomes), "stderr:\n%s", inst.Stderr())
	inst.AwaitLogged(t, "harakiri: request ran too long", "path=/sleep")
	logs := inst.Stderr()
	assert.Equal(t, 1, strings.Count(logs, "harakiri: request ran too long"), "logged once; stderr:\n%s", logs)
}

// importModes are the two ways workers get the app: forked from the
// zygote's import, or each importing it (--lazy-apps).
var importModes = []struct {
	name string
	args []string
}{
	{"zygote", nil},
	{"lazy-apps", []string{"--lazy-apps"}},
}

// inEachImportMode runs test once per import mode, as parallel subtests,
// with the mode's arguments.
func inEachImportMode(t *testing.T, test func(t *testing.T, extra []string)) {
	for _, mode := range importModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			test(t, mode.args)
		})
	}
}

func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	inEachImportMode(t, reloadUnderLoad)
}

func reloadUnderLoad(t *testing.T, extra []string) {
	app, source := faultsApp(t)
	inst := harness.Start(t, append([]string{"--wsgi-file", app, "-p", "2", "--threads", "2"}, extra...)...)
	l := harness.StartLoad(t, inst.URL+"/version", 4)
	awaitServed(t, inst, l, "original", 50)

	editApp(t, app, source, `APP_VERSION = "reloaded"`)
	inst.Signal(t, syscall.SIGHUP)
	awaitOnly(t, inst, "reloaded")
	awaitServed(t, inst, l, "reloaded", 50)
	outcomes := l.Finish()

	t.Logf("%d requests, %v; original %d, reloaded %d", len(outcomes), harness.Tally(outcomes),
		l.Served("original"), l.Served("reloaded"))
	assert.Empty(t, harness.NotOK(outcomes), "requests failed across the reload; stderr:\n%s", inst.Stderr())
}

// editApp rewrites the app file with its APP_VERSION line and, when
// raising, its RAISE_ON_IMPORT line changed.
func editApp(t *testing.T, app, source, versionLine string, raising ...bool) {
	t.Helper()
	edited := strings.Replace(source, `APP_VERSION = "original"`, versionLine, 1)
	if len(raising) > 0 && raising[0] {
		edited = strings.Replace(edited, "RAISE_ON_IMPORT = False", "RAISE_ON_IMPORT = True", 1)
	}
	require.NotEqual(t, source, edited, "faults.py lost its APP_VERSION line")
	require.NoError(t, os.WriteFile(app, []byte(edited), 0o644))
}

// awaitOnly waits until ten fresh requests in a row answer version, which
// holds once every old worker has retired.
func awaitOnly(t *testing.T, inst *harness.Instance, version string) {
	t.Helper()
	c := harness.Client(false)
	harness.Eventually(t, 30*time.Second, func() bool {
		for range 10 {
			if o := harness.Fetch(c, inst.URL+"/version"); o.Err != nil || o.Body != version {
				return false
			}
		}
		return true
	}, "the workers never all served %q; stderr:\n%s", version, inst.Stderr())
}

// TestSupervisionGoesOnWhileAReloadImports kills a worker while a reload's
// new zygote is still importing a slow app: the running generation's worker
// is replaced at once, not once the import is done.
func TestSupervisionGoesOnWhileAReloadImports(t *testing.T) {
	t.Parallel()
	app, source := faultsApp(t)
	inst := harness.Start(t, "--wsgi-file", app, "-p", "2")
	zygote := harness.ZygoteOf(t, inst)
	workers := harness.LiveChildren(t, zygote)
	require.Len(t, workers, 2)

	const importTime = 8 * time.Second
	slow := strings.Replace(source, "IMPORT_SECONDS = 0", fmt.Sprintf("IMPORT_SECONDS = %d", int(importTime.Seconds())), 1)
	require.NotEqual(t, source, slow, "faults.py lost its IMPORT_SECONDS line")
	require.NoError(t, os.WriteFile(app, []byte(strings.Replace(slow, `APP_VERSION = "original"`, `APP_VERSION = "slow"`, 1)), 0o644))
	reloaded := time.Now()
	inst.Signal(t, syscall.SIGHUP)
	harness.Eventually(t, 10*time.Second, func() bool { return strings.Contains(inst.Stderr(), `msg=reloading`) },
		"the reload did not begin; stderr:\n%s", inst.Stderr())

	require.NoError(t, syscall.Kill(workers[0], syscall.SIGKILL))
	took := harness.AwaitReplaced(t, inst, zygote, workers[0], 2, 3*time.Second)
	require.Less(t, time.Since(reloaded), importTime, "too slow to tell: the import may have ended")
	assert.NotContains(t, inst.Stderr(), "msg=reloaded", "replaced after the import, not during it")
	t.Logf("worker replaced in %s while the reload imported", took)

	awaitOnly(t, inst, "slow")
}

func TestReloadOfAnAppThatRaisesOnImport(t *testing.T) {
	t.Parallel()
	inEachImportMode(t, reloadOfAnAppThatRaisesOnImport)
}

func reloadOfAnAppThatRaisesOnImport(t *testing.T, extra []string) {
	app, source := faultsApp(t)
	inst := harness.Start(t, append([]string{"--wsgi-file", app, "-p", "2", "--threads", "2"}, extra...)...)
	l := harness.StartLoad(t, inst.URL+"/version", 4)
	awaitServed(t, inst, l, "original", 50)

	editApp(t, app, source, `APP_VERSION = "broken"`, true)
	inst.Signal(t, syscall.SIGHUP)
	harness.Eventually(t, 30*time.Second, func() bool { return strings.Contains(inst.Stderr(), "reload failed") },
		"the failed reload was not logged; stderr:\n%s", inst.Stderr())
	inst.AwaitLogged(t, "faults: raised on import") // the traceback names the error
	awaitServed(t, inst, l, "original", 100)

	editApp(t, app, source, `APP_VERSION = "fixed"`)
	inst.Signal(t, syscall.SIGHUP)
	awaitOnly(t, inst, "fixed")
	outcomes := l.Finish()

	t.Logf("%d requests, %v; original %d, fixed %d", len(outcomes), harness.Tally(outcomes),
		l.Served("original"), l.Served("fixed"))
	assert.Empty(t, harness.NotOK(outcomes), "requests failed across the reloads; stderr:\n%s", inst.Stderr())
	assert.Zero(t, l.Served("broken"), "the app that raised on import served")
}

func TestGracefulStopUnderLoad(t *testing.T) {
	t.Parallel()
	inst := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "faults.py"), "-p", "2", "--threads", "2",
		"--graceful-timeout", "30")
	l := harness.StartLoad(t, inst.URL+"/work?ms=50", 3)
	held := make(chan harness.Outcome, 1)
	go func() { held <- harness.Fetch(harness.Client(false), inst.URL+"/wait?tag=g") }()
	harness.Eventually(t, 30*time.Second, func() bool { _, ok := inst.Record("started-g"); return ok },
		"the held request never reached the app; stderr:\n%s", inst.Stderr())
	awaitAnswered(t, inst, l, 50)

	signalled := time.Now()
	inst.Signal(t, syscall.SIGTERM)
	harness.Eventually(t, 10*time.Second, func() bool { return refused(inst.Addr) },
		"new connections were still accepted after SIGTERM; stderr:\n%s", inst.Stderr())
	select {
	case <-inst.Exited:
		require.FailNow(t, "gowsgi exited with a request in flight", "stderr:\n%s", inst.Stderr())
	default:
	}
	inst.Release(t, "g")
	h := <-held
	require.NoError(t, h.Err)
	assert.Equal(t, http.StatusOK, h.Status)
	assert.Equal(t, "released", h.Body)
	assert.Equal(t, 0, inst.Wait(t, 30*time.Second), "exit status after SIGTERM")
	outcomes := l.Finish()

	// Every request was answered 200 except those whose connection was
	// refused once the listener had closed. Such a request may have begun
	// just before the signal: a client whose idle keep-alive connection the
	// server closed while stopping redials, and that dial is refused.
	// Nothing accepted was lost; a refusal before the signal would be.
	var bad []string
	spanning := 0 // requests under way when the signal came
	for _, o := range outcomes {
		late := o.Err != nil && errors.Is(o.Err, syscall.ECONNREFUSED) && o.Ended.After(signalled)
		if !late && (o.Err != nil || o.Status != http.StatusOK) {
			bad = append(bad, o.String())
		}
		if inFlightAtKill(o, []killWindow{{signalled, signalled}}) {
			spanning++
		}
	}
	t.Logf("%d requests, %v; %d of them under way at SIGTERM", len(outcomes), harness.Tally(outcomes), spanning)
	assert.Empty(t, bad, "stderr:\n%s", inst.Stderr())
	assert.Positive(t, spanning, "no request of the load was under way at SIGTERM")
}

// refused reports whether a new connection to addr is refused.
func refused(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func TestMaxRequestsUnderLoad(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, fromINI bool) {
		inst := startFaults(t, fromINI, setting{"-p", "processes", "2"},
			setting{"--threads", "threads", "2"}, setting{"-R", "max-requests", "10"})
		outcomes := harness.StartLoadN(t, inst.URL+"/work?ms=5", 4, 60).Wait()
		pids := make(map[string]bool)
		for _, o := range outcomes {
			pids[o.Body] = true
		}
		t.Logf("%d requests, %v, from %d workers", len(outcomes), harness.Tally(outcomes), len(pids))
		assert.Empty(t, harness.NotOK(outcomes), "stderr:\n%s", inst.Stderr())
		assert.GreaterOrEqual(t, len(pids), 6, "240 requests at 10 per worker")
		inst.AwaitLogged(t, "reason=max-requests")
	})
}

func TestReloadOnRSSUnderLoad(t *testing.T) {
	t.Parallel()
	inst := startFaults(t, false, setting{"-p", "processes", "2"}, setting{"--threads", "threads", "2"},
		setting{"--reload-on-rss", "reload-on-rss", "150"})
	zygote := harness.ZygoteOf(t, inst)
	l := harness.StartLoad(t, inst.URL+"/work?ms=5", 3)
	awaitAnswered(t, inst, l, 10)

	grow := harness.Fetch(harness.Client(false), inst.URL+"/grow?mb=200")
	require.NoError(t, grow.Err)
	require.Equal(t, http.StatusOK, grow.Status, "%s", grow.Body)
	grown, err := strconv.Atoi(grow.Body)
	require.NoError(t, err)
	harness.AwaitReplaced(t, inst, zygote, grown, 2, 30*time.Second)
	awaitAnswered(t, inst, l, 50)
	outcomes := l.Finish()

	t.Logf("%d requests, %v", len(outcomes), harness.Tally(outcomes))
	assert.Empty(t, harness.NotOK(outcomes), "stderr:\n%s", inst.Stderr())
	inst.AwaitLogged(t, "reason=reload-on-rss")
}

func TestCrashInCUnderLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		// logged is what the log must show of each crash beyond the exit:
		// faulthandler, which the zygote (or with --lazy-apps each
		// worker) enabled, writes the Python traceback, and the worker dies
		// by the signal. faulthandler writes its first line in pieces, and
		// the master's log shares the pipe, so a line of the log may come
		// between "Fatal Python error: " and the signal's name.
		logged []string
	}{
		{"/abort", []string{`signal=aborted`, "Fatal Python error: ", "Aborted\n", `faults.py", line`}},
		{"/segv", []string{`signal="segmentation fault"`, "Fatal Python error: ", "Segmentation fault\n", `faults.py", line`}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			t.Parallel()
			inEachImportMode(t, func(t *testing.T, extra []string) { crashInCUnderLoad(t, tt.path, tt.logged, extra) })
		})
	}
}

func crashInCUnderLoad(t *testing.T, path string, logged, extra []string) {
	// One thread a worker: the crashing request is the only one running on
	// its worker, as in TestHarakiriUnderLoad.
	inst := harness.Start(t, append([]string{"--wsgi-file", harness.TestdataPath(t, "faults.py"), "-p", "2", "--threads", "1"}, extra...)...)
	zygote := harness.ZygoteOf(t, inst)
	l := harness.StartLoad(t, inst.URL+"/work?ms=10", 3)
	awaitAnswered(t, inst, l, 10)

	var slowest time.Duration
	for i := range 3 {
		crash := harness.Fetch(harness.Client(false), inst.URL+path)
		require.NoError(t, crash.Err)
		assert.Equal(t, http.StatusBadGateway, crash.Status, "crash %d: %s", i+1, crash.Body)
		record, ok := inst.Record("crashing")
		require.True(t, ok, "the crashing request never reached the app")
		pid, err := strconv.Atoi(record)
		require.NoError(t, err)
		slowest = max(slowest, harness.AwaitReplaced(t, inst, zygote, pid, 2, time.Second))
		inst.AwaitLogged(t, append([]string{killedLine(pid)}, logged...)...)
		require.NoError(t, os.Remove(filepath.Join(inst.Dir, "crashing")))
	}
	awaitAnswered(t, inst, l, 50)
	outcomes := l.Finish()

	t.Logf("%d requests, %v; 3 crashes, slowest respawn %s", len(outcomes), harness.Tally(outcomes), slowest)
	assert.Empty(t, harness.NotOK(outcomes), "stderr:\n%s", inst.Stderr())
}

func TestBrokenPipeIsAnErrorNotASignal(t *testing.T) {
	t.Parallel()
	app := harness.TestdataPath(t, "faults.py")
	tests := []struct {
		name string
		args []string
	}{
		{"worker forked by the zygote", []string{"--wsgi-file", app}},
		{"mounts only", []string{"--mount", "/=" + app, "--manage-script-name"}},
		{"lazy-apps", []string{"--wsgi-file", app, "--lazy-apps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inst := harness.Start(t, tt.args...)
			workerPID := func() string {
				resp, body := harness.Get(t, inst.URL+"/work?ms=0")
				require.Equal(t, http.StatusOK, resp.StatusCode, "stderr:\n%s", inst.Stderr())
				return string(body)
			}
			before := workerPID()
			resp, body := harness.Get(t, inst.URL+"/brokenpipe")
			assert.Equal(t, http.StatusOK, resp.StatusCode, "stderr:\n%s", inst.Stderr())
			assert.Equal(t, "BrokenPipeError", string(body))
			assert.Equal(t, before, workerPID(), "the worker survived")
		})
	}
}

// killedLine is how the master logs that worker pid died by a signal.
func killedLine(pid int) string { return fmt.Sprintf("pid=%d signal=", pid) }

// faultsApp returns a private copy of testdata/faults.py, which a reload
// test may edit.
func faultsApp(t *testing.T) (path string, source string) {
	t.Helper()
	b, err := os.ReadFile(harness.TestdataPath(t, "faults.py"))
	require.NoError(t, err)
	dir := t.TempDir()
	harness.CopyAppHelpers(t, dir)
	return harness.WriteFile(t, dir, "faults_app.py", string(b)), string(b)
}

// startFaults starts testdata/faults.py with settings, on the command line
// or from an ini file.
func startFaults(t *testing.T, fromINI bool, settings ...setting) *harness.Instance {
	t.Helper()
	return startWithSettings(t, "faults.py", fromINI, settings...)
}

// awaitServed waits until the load has had n more answers of body than now.
func awaitServed(t *testing.T, inst *harness.Instance, l *harness.Load, body string, n int) {
	t.Helper()
	count := func() int { return l.Served(body) }
	awaitMore(t, inst, count, n, "fewer than %d more %q answers", n, body)
}

// awaitAnswered waits until the load has had n more 200s than now.
func awaitAnswered(t *testing.T, inst *harness.Instance, l *harness.Load, n int) {
	t.Helper()
	awaitMore(t, inst, l.Answered, n, "fewer than %d more answers", n)
}

func awaitMore(t *testing.T, inst *harness.Instance, count func() int, n int, msg string, args ...any) {
	t.Helper()
	want := count() + n
	harness.Eventually(t, 30*time.Second, func() bool { return count() >= want },
		msg+"; stderr:\n%s", append(args, inst.Stderr())...)
}
