// Harakiri and worker recycling with the real binary: --harakiri,
// --max-requests, --max-worker-lifetime, --reload-on-rss and
// --worker-reload-mercy, each observed from outside through worker pids,
// status codes and the log.
package e2e

import (
	"fmt"
	"net/http"
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

// setting is one option as the command line spells it and as an ini file
// does.
type setting struct{ flag, key, value string }

// optionSources are the two ways every recycling test passes its options.
var optionSources = []struct {
	name    string
	fromINI bool
}{{"command line", false}, {"ini file", true}}

// forEachSource runs test as a parallel subtest once with its options on the
// command line and once from an ini file.
func forEachSource(t *testing.T, test func(t *testing.T, fromINI bool)) {
	for _, src := range optionSources {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			test(t, src.fromINI)
		})
	}
}

// startRecycleApp starts testdata/recycle.py with settings, on the command
// line or from an ini file.
func startRecycleApp(t *testing.T, fromINI bool, settings ...setting) *harness.Instance {
	t.Helper()
	return startWithSettings(t, "recycle.py", fromINI, settings...)
}

// startWithSettings starts the testdata app named app with settings, given
// on the command line or, with fromINI, as the keys of an ini file, so a
// test checks both ways a user sets an option.
func startWithSettings(t *testing.T, app string, fromINI bool, settings ...setting) *harness.Instance {
	t.Helper()
	path := harness.TestdataPath(t, app)
	if !fromINI {
		args := []string{"--wsgi-file", path}
		for _, s := range settings {
			args = append(args, s.flag, s.value)
		}
		return harness.Start(t, args...)
	}
	lines := []string{"[uwsgi]", "wsgi-file = " + path}
	for _, s := range settings {
		lines = append(lines, s.key+" = "+s.value)
	}
	dir := t.TempDir()
	return harness.StartIn(t, dir, "--ini", harness.WriteFile(t, dir, "app.ini", strings.Join(lines, "\n")+"\n"))
}

// fetchPID asks the app for the pid of the worker that serves the request.
func fetchPID(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url + "/pid")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var pid int
	if _, err := fmt.Fscan(resp.Body, &pid); err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /pid: status %d, %v", resp.StatusCode, err)
	}
	return pid, nil
}

// mustPID is fetchPID for the test goroutine.
func mustPID(t *testing.T, inst *harness.Instance) int {
	t.Helper()
	pid, err := fetchPID(harness.Client(false), inst.URL)
	require.NoError(t, err, "stderr:\n%s", inst.Stderr())
	return pid
}

// awaitNewPID polls /pid until another worker than old answers, failing
// the test on any failed request.
func awaitNewPID(t *testing.T, inst *harness.Instance, old int, timeout time.Duration) int {
	t.Helper()
	pid := old
	harness.Eventually(t, timeout, func() bool {
		pid = mustPID(t, inst)
		return pid != old
	}, "worker %d was not replaced; stderr:\n%s", old, inst.Stderr())
	return pid
}

func TestHarakiriKillsTheWorkerAndAnswers504(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, fromINI bool) {
		inst := startRecycleApp(t, fromINI, setting{"-t", "harakiri", "1"})
		before := mustPID(t, inst)

		began := time.Now()
		resp, body := harness.Get(t, inst.URL+"/sleep?s=20")
		took := time.Since(began)
		assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, "%s", body)
		assert.GreaterOrEqual(t, took, time.Second, "not before the harakiri time")
		assert.Less(t, took, 10*time.Second, "long before the request would end by itself")

		after := awaitNewPID(t, inst, before, 30*time.Second)
		assert.NotEqual(t, before, after)
		inst.AwaitLogged(t, "harakiri: request ran too long", "path=/sleep", "pid="+strconv.Itoa(before))
		logs := inst.Stderr()
		assert.Equal(t, 1, strings.Count(logs, "harakiri: request ran too long"), "logged once; stderr:\n%s", logs)
	})
}

func TestMaxRequestsRecyclesWithoutFailures(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, fromINI bool) {
		inst := startRecycleApp(t, fromINI, setting{"-R", "max-requests", "5"})
		// A worker past its limit serves on until its replacement has
		// loaded, so on a busy machine one may serve a few more than 5:
		// ask until three workers have answered, then check that none was
		// recycled early.
		var order []int
		served := make(map[int]int)
		harness.Eventually(t, 30*time.Second, func() bool {
			pid := mustPID(t, inst)
			if served[pid] == 0 {
				order = append(order, pid)
			}
			served[pid]++
			return len(order) >= 3
		}, "no third worker at 5 requests per worker; served %v", served)
		for _, pid := range order[:len(order)-1] {
			assert.GreaterOrEqual(t, served[pid], 5, "worker %d recycled before --max-requests; served %v", pid, served)
		}

		failures := concurrentPIDs(inst, 4, 25)
		assert.Empty(t, failures, "stderr:\n%s", inst.Stderr())
		inst.AwaitLogged(t, "reason=max-requests")
	})
}

// concurrentPIDs sends clients×each /pid requests from clients goroutines
// and returns the failures.
func concurrentPIDs(inst *harness.Instance, clients, each int) []error {
	var (
		mu       sync.Mutex
		failures []error
		wg       sync.WaitGroup
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := harness.Client(false)
			for range each {
				if _, err := fetchPID(c, inst.URL); err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return failures
}

func TestMaxWorkerLifetimeRecycles(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, fromINI bool) {
		inst := startRecycleApp(t, fromINI, setting{"--max-worker-lifetime", "max-worker-lifetime", "2"})
		first := mustPID(t, inst)
		second := awaitNewPID(t, inst, first, 30*time.Second)
		awaitNewPID(t, inst, second, 30*time.Second)
		inst.AwaitLogged(t, "reason=max-worker-lifetime")
	})
}

func TestReloadOnRSSRecycles(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, fromINI bool) {
		inst := startRecycleApp(t, fromINI, setting{"--reload-on-rss", "reload-on-rss", "150"})
		resp, body := harness.Get(t, inst.URL+"/grow?mb=200")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		grown, err := strconv.Atoi(string(body))
		require.NoError(t, err)
		awaitNewPID(t, inst, grown, 30*time.Second)
		inst.AwaitLogged(t, "reason=reload-on-rss")
	})
}

func TestWorkerReloadMercyKillsABusyRetiringWorker(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, fromINI bool) {
		inst := startRecycleApp(t, fromINI, setting{"--worker-reload-mercy", "worker-reload-mercy", "1"})
		before := mustPID(t, inst)
		statuses := make(chan int, 1)
		go func() {
			resp, err := harness.Client(false).Get(inst.URL + "/sleep?s=20")
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
		harness.Eventually(t, 10*time.Second, func() bool {
			pid, ok := inst.Record("sleeping")
			return ok && pid == strconv.Itoa(before)
		}, "the sleep never reached worker %d", before)
		inst.Signal(t, syscall.SIGHUP)
		select {
		case status := <-statuses:
			assert.Equal(t, http.StatusBadGateway, status, "the retiring worker was killed mid-request")
		case <-time.After(15 * time.Second):
			require.FailNow(t, "the retiring worker outlived its mercy", "stderr:\n%s", inst.Stderr())
		}
		inst.AwaitLogged(t, "worker did not finish in time")
		assert.NotEqual(t, before, mustPID(t, inst))
	})
}
