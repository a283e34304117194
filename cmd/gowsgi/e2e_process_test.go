// Process behaviour of the real binary: worker processes and threads, a
// worker killed mid-request, reload on SIGHUP, graceful stop on SIGTERM,
// start-up failures and the access log switch.
package main_test

import (
	"encoding/json"
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
func holdRequests(t *testing.T, inst *instance, prefix string, n int) ([]int, <-chan waitResult) {
	t.Helper()
	results := make(chan waitResult, n)
	for i := 0; i < n; i++ {
		tag := fmt.Sprintf("%s%d", prefix, i)
		go func() {
			results <- fetchWait(inst.URL + "/wait?tag=" + tag)
		}()
	}
	pids := make([]int, n)
	eventually(t, 30*time.Second, func() bool {
		for i := range pids {
			content, ok := inst.record(fmt.Sprintf("started-%s%d", prefix, i))
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
	resp, err := client(false).Get(url)
	if err != nil {
		return waitResult{err: err}
	}
	defer resp.Body.Close()
	var reply waitReply
	_ = json.NewDecoder(resp.Body).Decode(&reply)
	return waitResult{status: resp.StatusCode, reply: reply}
}

func releaseAll(t *testing.T, inst *instance, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		inst.release(t, fmt.Sprintf("%s%d", prefix, i))
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
			app := start(t, append([]string{"--wsgi-file", testdataPath(t, "misbehave.py")}, tt.args...)...)
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
	app := start(t, "--wsgi-file", testdataPath(t, "misbehave.py"), "-p", "1")
	pids, results := holdRequests(t, app, "k", 1)
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
	r := collect(t, results, 1)[0]
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusBadGateway, r.status, "the client of a killed worker gets 502")

	// The only worker died, so the next answer comes from its replacement.
	resp, body := get(t, app.URL+"/pid")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var reply waitReply
	require.NoError(t, json.Unmarshal(body, &reply))
	assert.NotEqual(t, pids[0], reply.PID, "served by the killed pid")
}

func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	source, err := os.ReadFile(testdataPath(t, "misbehave.py"))
	require.NoError(t, err)
	appFile := filepath.Join(t.TempDir(), "reloadable.py")
	require.NoError(t, os.WriteFile(appFile, source, 0o644))
	app := start(t, "--wsgi-file", appFile, "-p", "2")

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
	eventually(t, 20*time.Second, func() bool { return seen("original") }, "no request served before the reload")

	edited := strings.Replace(string(source), `APP_VERSION = "original"`, `APP_VERSION = "reloaded"`, 1)
	require.NotEqual(t, string(source), edited, "misbehave.py lost its APP_VERSION line")
	require.NoError(t, os.WriteFile(appFile, []byte(edited), 0o644))
	app.Signal(t, syscall.SIGHUP)
	eventually(t, 20*time.Second, func() bool { return seen("reloaded") },
		"the edited app was never served after SIGHUP; stderr:\n%s", app.Stderr())
	close(stop)
	wg.Wait()

	assert.Empty(t, failures, "requests failed across the reload")
	t.Logf("served across the reload: %v", versions)
}

func fetchVersion(base string) (int, string, error) {
	resp, err := client(false).Get(base + "/version")
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
		signal func(*testing.T, *instance)
	}{
		{"to the master", func(t *testing.T, inst *instance) { inst.Signal(t, syscall.SIGTERM) }},
		// systemd stops a service by sending SIGTERM to every process in it:
		// the workers must leave the stop to the master.
		{"to the process group", func(t *testing.T, inst *instance) { inst.SignalGroup(t, syscall.SIGTERM) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := start(t, "--wsgi-file", testdataPath(t, "misbehave.py"), "-p", "1", "--graceful-timeout", "30")
			_, results := holdRequests(t, app, "g", 1)
			tc.signal(t, app)
			// The in-flight request is still running; the master must wait for it.
			eventually(t, 10*time.Second, func() bool { return strings.Contains(app.Stderr(), "msg=stopping") },
				"the master never began stopping; stderr:\n%s", app.Stderr())
			select {
			case <-app.exited:
				require.FailNow(t, "gowsgi exited with a request in flight", "stderr:\n%s", app.Stderr())
			default:
			}
			app.release(t, "g0")
			r := collect(t, results, 1)[0]
			require.NoError(t, r.err)
			assert.Equal(t, http.StatusOK, r.status)
			assert.True(t, r.reply.Released)
			assert.Equal(t, 0, app.Wait(t, 30*time.Second), "exit status after SIGTERM")
		})
	}
}

func TestStartupFailure(t *testing.T) {
	t.Parallel()
	testdata := filepath.Dir(testdataPath(t, "misbehave.py"))
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
			code, out := runToExit(t, tt.args...)
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

func TestAccessLog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantAccess bool
	}{
		{name: "on by default", wantAccess: true},
		{name: "-L silences it", args: []string{"-L"}, wantAccess: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := start(t, append([]string{"--wsgi-file", testdataPath(t, "misbehave.py")}, tt.args...)...)
			resp, _ := get(t, app.URL+"/version")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			// Stopping flushes everything the master would ever log.
			app.Signal(t, syscall.SIGTERM)
			require.Equal(t, 0, app.Wait(t, 30*time.Second))
			logged := strings.Contains(app.Stderr(), "msg=request") && strings.Contains(app.Stderr(), "path=/version")
			assert.Equal(t, tt.wantAccess, logged, "stderr:\n%s", app.Stderr())
		})
	}
}
