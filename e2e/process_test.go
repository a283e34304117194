// Process management in the real binary: worker processes and threads, a
// worker killed mid-request, start-up failures, and workers forked from a
// zygote that imported the app, so they share it copy-on-write (they are
// the zygote's children, and most of what each one maps is shared with the
// others) unless --lazy-apps has each import it.
package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
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

// waitReply is what misbehave.py's /wait and /pid answer.
type waitReply struct {
	PID      int    `json:"pid"`
	Released bool   `json:"released"`
	Version  string `json:"version"`
}

// holdRequests starts n /wait requests in the background and waits until the
// app has entered every one of them. It returns the pids serving them and a
// channel that yields each finished request's status and reply.
func holdRequests(t *testing.T, inst *harness.Instance, prefix string, n int) ([]int, <-chan waitResult) {
	t.Helper()
	results := make(chan waitResult, n)
	for i := 0; i < n; i++ {
		tag := fmt.Sprintf("%s%d", prefix, i)
		go func() {
			results <- fetchWait(inst.URL + "/wait?tag=" + tag)
		}()
	}
	pids := make([]int, n)
	harness.Eventually(t, 30*time.Second, func() bool {
		for i := range pids {
			content, ok := inst.Record(fmt.Sprintf("started-%s%d", prefix, i))
			if !ok || content == "" {
				return false
			}
			pids[i], _ = strconv.Atoi(content)
		}
		return true
	}, "not all %d requests reached the app at once; stderr:\n%s", n, inst.Stderr())
	return pids, results
}

type waitResult struct {
	status int
	reply  waitReply
	err    error
}

func fetchWait(url string) waitResult {
	resp, err := harness.Client(false).Get(url)
	if err != nil {
		return waitResult{err: err}
	}
	defer resp.Body.Close()
	var reply waitReply
	_ = json.NewDecoder(resp.Body).Decode(&reply)
	return waitResult{status: resp.StatusCode, reply: reply}
}

func releaseAll(t *testing.T, inst *harness.Instance, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		inst.Release(t, fmt.Sprintf("%s%d", prefix, i))
	}
}

func collect(t *testing.T, results <-chan waitResult, n int) []waitResult {
	t.Helper()
	var out []waitResult
	for i := 0; i < n; i++ {
		select {
		case r := <-results:
			out = append(out, r)
		case <-time.After(30 * time.Second):
			require.FailNow(t, "a held request never finished")
		}
	}
	return out
}

func distinct(pids []int) map[int]bool {
	set := map[int]bool{}
	for _, pid := range pids {
		set[pid] = true
	}
	return set
}

func TestWorkersAndThreads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantPIDs int // distinct processes serving the 4 concurrent requests
	}{
		{name: "-p 4 serves from 4 processes", args: []string{"-p", "4"}, wantPIDs: 4},
		{name: "--threads 4 serves 4 at once in one process", args: []string{"-p", "1", "--threads", "4"}, wantPIDs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := harness.Start(t, append([]string{"--wsgi-file", harness.TestdataPath(t, "misbehave.py")}, tt.args...)...)
			pids, results := holdRequests(t, app, "h", 4)
			assert.Len(t, distinct(pids), tt.wantPIDs, "pids %v", pids)
			releaseAll(t, app, "h", 4)
			for _, r := range collect(t, results, 4) {
				require.NoError(t, r.err)
				assert.Equal(t, http.StatusOK, r.status)
				assert.True(t, r.reply.Released)
			}
		})
	}
}

func TestKilledWorker(t *testing.T) {
	t.Parallel()
	app := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "misbehave.py"), "-p", "1")
	pids, results := holdRequests(t, app, "k", 1)
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
	r := collect(t, results, 1)[0]
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusBadGateway, r.status, "the client of a killed worker gets 502")

	// The only worker died, so the next answer comes from its replacement.
	resp, body := harness.Get(t, app.URL+"/pid")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var reply waitReply
	require.NoError(t, json.Unmarshal(body, &reply))
	assert.NotEqual(t, pids[0], reply.PID, "served by the killed pid")
}

func TestStartupFailure(t *testing.T) {
	t.Parallel()
	testdata := filepath.Dir(harness.TestdataPath(t, "misbehave.py"))
	tests := []struct {
		name      string
		args      []string
		wantName  string // the one-line message must name it
		wantTrace string // and the traceback above it says this
	}{
		{name: "missing module", args: []string{"--module", "no_such_module_e2e"},
			wantName: "no_such_module_e2e", wantTrace: "ModuleNotFoundError"},
		{name: "missing callable", args: []string{"--pythonpath", testdata, "--module", "misbehave:no_such_callable"},
			wantName: "no_such_callable"},
		{name: "not callable", args: []string{"--pythonpath", testdata, "--module", "misbehave:NOT_CALLABLE"},
			wantName: "NOT_CALLABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out := harness.RunToExit(t, tt.args...)
			assert.Equal(t, 2, code, "exit status; output:\n%s", out)
			last := lastLine(out)
			assert.True(t, strings.HasPrefix(last, "gowsgi: "), "last line %q", last)
			assert.Contains(t, last, tt.wantName)
			assert.Contains(t, out, tt.wantTrace)
		})
	}
}

func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// maxPrivateShare bounds a worker's private dirty memory as a share of its
// RSS. A forked Flask worker measured about 0.13 on the development machine
// and one that imports Flask itself (--lazy-apps), 0.64; 0.30 leaves margin
// both ways.
const maxPrivateShare = 0.30

func TestWorkersShareTheAppCopyOnWrite(t *testing.T) {
	t.Parallel()
	app := harness.StartIn(t, harness.ExamplesDir(t), "--wsgi-file", "flask_app.py", "-p", "4")
	for range 40 {
		resp, body := harness.Get(t, app.URL+"/")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	}

	workers := harness.LiveChildren(t, harness.ZygoteOf(t, app))
	require.Len(t, workers, 4, "the workers are the zygote's children")
	for _, pid := range workers {
		rollup := smapsRollup(t, pid)
		share := float64(rollup["Private_Dirty"]) / float64(rollup["Rss"])
		assert.Less(t, share, maxPrivateShare, "worker %d: Private_Dirty %d kB of Rss %d kB", pid, rollup["Private_Dirty"], rollup["Rss"])
	}
}

// smapsRollup reads pid's memory totals in kB (proc(5), smaps_rollup).
func smapsRollup(t *testing.T, pid int) map[string]int {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	require.NoError(t, err)
	defer f.Close()
	totals := make(map[string]int)
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 3 && fields[2] == "kB" {
			totals[strings.TrimSuffix(fields[0], ":")], _ = strconv.Atoi(fields[1])
		}
	}
	require.NoError(t, lines.Err())
	require.Positive(t, totals["Rss"], "no Rss for %d", pid)
	return totals
}

// A file the app opens while it is imported belongs to the app in every
// forked worker: the worker's own descriptors must not take its place.
func TestFilesOpenedAtImportSurviveTheFork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := harness.StartIn(t, dir, "--wsgi-file", harness.TestdataPath(t, "opens_at_import.py"), "-p", "2", "--threads", "4")
	var want []string
	for i := range 20 {
		line := fmt.Sprintf("line-%d", i)
		resp, body := harness.Get(t, app.URL+"/write?line="+line)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s\nstderr:\n%s", body, app.Stderr())
		want = append(want, line)
	}
	written, err := os.ReadFile(filepath.Join(dir, "import-time.log"))
	require.NoError(t, err)
	assert.ElementsMatch(t, want, strings.Fields(string(written)), "every line reached the file the app opened")
}

// With --lazy-apps (or lazy-apps = true in an ini file) each worker imports
// the app itself, as uWSGI's workers then do: what the import opens or
// starts is the worker's own. Without it the zygote's one import is shared.
func TestLazyAppsImportInEachWorker(t *testing.T) {
	t.Parallel()
	app := harness.TestdataPath(t, "process_app.py")
	for _, tc := range []struct {
		name string
		args func(dir string) []string
		lazy bool
	}{
		{"default", func(string) []string { return []string{"--wsgi-file", app} }, false},
		{"--lazy-apps", func(string) []string { return []string{"--wsgi-file", app, "--lazy-apps"} }, true},
		{"--lazy", func(string) []string { return []string{"--wsgi-file", app, "--lazy"} }, true},
		{"ini", func(dir string) []string {
			return []string{"--ini", harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+app+"\nlazy-apps = true\n")}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			inst := harness.StartIn(t, dir, append(tc.args(dir), "-p", "2")...)
			zygote := harness.ZygoteOf(t, inst)
			importers := map[string]string{} // serving worker -> importing process
			harness.Eventually(t, 10*time.Second, func() bool {
				status, body := harness.GetText(t, inst.URL+"/import-pid")
				require.Equal(t, http.StatusOK, status, body)
				imported, serving, ok := strings.Cut(body, " ")
				require.True(t, ok, body)
				importers[serving] = imported
				return len(importers) == 2
			}, "two workers never answered; stderr:\n%s", inst.Stderr())
			for serving, imported := range importers {
				if tc.lazy {
					assert.Equal(t, serving, imported, "worker %s serves another process's import", serving)
				} else {
					assert.Equal(t, strconv.Itoa(zygote), imported, "worker %s did not inherit the zygote's import", serving)
				}
			}
		})
	}
}
