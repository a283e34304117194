package e2e

// uWSGI's shared state from Python (issue 12, item 2): the caches
// (--cache2, --cache), the user locks (--locks) and the metrics (--metric)
// in the shared area the master creates for each generation of workers.
// The probe app (testdata/uwsgi_cache.py) runs under Debian's uWSGI 2.0.21
// and under gowsgi with the same options and their answers are compared;
// the rest drives gowsgi the way an app leans on the shared state: many
// workers and threads at once, a worker killed, a reload, Django's cache
// framework, the stats and the Prometheus endpoint.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

// cacheOptions are the shared-state options the probe runs with, under
// both servers.
var cacheOptions = []string{
	"--cache2", "name=main,items=10", "--cache2", "name=small,items=4,blocksize=64,keysize=16", "--locks", "2",
	"--metric", "name=m.counter", "--metric", "name=m.gauge,type=gauge,initial_value=7",
	"--metric", "name=m.abs,type=absolute", "--metric", "m.bare",
}

// cacheDir is a working directory holding app and the apps' helpers.
func cacheDir(t *testing.T, app string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(harness.TestdataPath(t, app))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, app), b, 0o644))
	harness.CopyAppHelpers(t, dir)
	return dir
}

// runningServer is one server under test: its base URL, and how to
// signal its master.
type runningServer struct {
	url    string
	signal func(sig syscall.Signal)
	output fmt.Stringer
}

// startUWSGIServer runs Debian's uWSGI with args in dir until the test
// ends, once it answers HTTP on addr.
func startUWSGIServer(t *testing.T, bin, dir, addr string, args ...string) runningServer {
	t.Helper()
	cmd, out := startUWSGIForTest(t, bin, dir, args...)
	url := "http://" + addr
	harness.Eventually(t, harness.StartTimeout, func() bool {
		resp, err := http.Get(url + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, "uwsgi did not answer; output:\n%s", out)
	return runningServer{url: url, signal: func(sig syscall.Signal) { _ = cmd.Process.Signal(sig) }, output: out}
}

// startGowsgiServer runs gowsgi with args in dir until the test ends.
func startGowsgiServer(t *testing.T, dir string, args ...string) runningServer {
	t.Helper()
	inst := harness.LaunchConfigured(t, dir, nil, args...)
	return runningServer{url: inst.URL, signal: func(sig syscall.Signal) { inst.Signal(t, sig) }, output: inst.Output}
}

// probeSteps is /probe's answer: each step's type name and value.
type probeSteps map[string][2]any

func TestUWSGICacheAnswersAsUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	for _, tc := range []struct {
		name    string
		options []string
	}{
		{"caches, locks and metrics", cacheOptions},
		{"none declared", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var probes, expired [2]probeSteps // uWSGI's, then gowsgi's
			for i, start := range []func(dir, addr string, args []string) runningServer{
				func(dir, addr string, args []string) runningServer {
					return startUWSGIServer(t, bin, dir, addr, args...)
				},
				func(dir, _ string, args []string) runningServer { return startGowsgiServer(t, dir, args...) },
			} {
				addr := freeAddr(t)
				args := append([]string{"--plugin", "python3,http", "--http-socket", addr, "--wsgi-file", "uwsgi_cache.py",
					"--master", "-p", "2"}, tc.options...)
				s := start(cacheDir(t, "uwsgi_cache.py"), addr, args)
				getJSON(t, s.url+"/probe", &probes[i])
				expired[i] = awaitExpiry(t, s)
			}
			assert.Equal(t, probes[0], probes[1], "/probe: uWSGI's answers, then gowsgi's")
			assert.Equal(t, expired[0], expired[1], "after the expiry")
		})
	}
}

// awaitExpiry stores an item for a second and waits for it to be gone;
// uWSGI's master sweeps every 3 seconds, gowsgi's expiry is at once.
func awaitExpiry(t *testing.T, s runningServer) probeSteps {
	t.Helper()
	_, body := harness.GetText(t, s.url+"/expire_set")
	var steps probeSteps
	if body == "None" { // no cache declared: nothing to wait for
		getJSON(t, s.url+"/expired", &steps)
		return steps
	}
	require.Equal(t, "True", body)
	harness.Eventually(t, 15*time.Second, func() bool {
		getJSON(t, s.url+"/expired", &steps)
		return steps["get"][1] == nil
	}, "the item did not expire: %v", steps)
	return steps
}

// hammer sends clients concurrent clients, each sending each GETs of url,
// and returns the worker pids that answered.
func hammer(t *testing.T, url string, clients, each int) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	pids := make(map[string]bool)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				resp, err := client.Get(url)
				if !assert.NoError(t, err) {
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
				mu.Lock()
				pids[string(body)] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return pids
}

// TestUWSGICacheIncIsExactAcrossWorkersAndThreads: 4 workers of 2 threads
// each add to one key at once; no increment is lost, and a read-modify-
// write under @lock loses none either.
func TestUWSGICacheIncIsExactAcrossWorkersAndThreads(t *testing.T) {
	inst := harness.StartIn(t, cacheDir(t, "uwsgi_cache.py"), "--wsgi-file", "uwsgi_cache.py", "-p", "4",
		"--threads", "2", "--cache2", "name=c,items=16")
	const clients, each, n = 8, 25, 40
	pids := hammer(t, inst.URL+"/inc?n="+strconv.Itoa(n), clients, each)
	assert.Greater(t, len(pids), 1, "more than one worker took part")
	resp, body := harness.Get(t, inst.URL+"/get?key=hits")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, body, 8, "cache_inc keeps an int64 in 8 bytes")
	assert.Equal(t, uint64(clients*each*n), binary.LittleEndian.Uint64(body))

	const adds = 10
	pids = hammer(t, inst.URL+"/locked_add?n="+strconv.Itoa(adds), clients, each)
	assert.Greater(t, len(pids), 1, "more than one worker took part")
	_, sum := harness.GetText(t, inst.URL+"/get?key=sum")
	assert.Equal(t, strconv.Itoa(clients*each*adds), sum)
}

// TestUWSGICacheOutlivesAKilledWorker: a value a worker stored is there
// for the worker that replaces it after a SIGKILL.
func TestUWSGICacheOutlivesAKilledWorker(t *testing.T) {
	inst := harness.StartIn(t, cacheDir(t, "uwsgi_cache.py"), "--wsgi-file", "uwsgi_cache.py",
		"--cache2", "name=c,items=16")
	_, pidText := harness.GetText(t, inst.URL+"/set?key=k&value=kept")
	pid, err := strconv.Atoi(pidText)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	harness.Eventually(t, harness.StartTimeout, func() bool {
		status, body := harness.GetText(t, inst.URL+"/inc?n=0")
		return status == http.StatusOK && body != pidText
	}, "no new worker answered; stderr:\n%s", inst.Stderr())
	_, value := harness.GetText(t, inst.URL+"/get?key=k")
	assert.Equal(t, "kept", value)
}

// TestUWSGILockOutlivesAKilledHolder: a worker killed while it holds a
// user lock does not leave the lock held for ever (a robust mutex).
func TestUWSGILockOutlivesAKilledHolder(t *testing.T) {
	inst := harness.StartIn(t, cacheDir(t, "uwsgi_cache.py"), "--wsgi-file", "uwsgi_cache.py", "-p", "2", "--locks", "1")
	status, _ := harness.GetText(t, inst.URL+"/lock_and_die?n=1")
	require.Equal(t, http.StatusBadGateway, status, "the worker died holding lock 1")
	client := &http.Client{Timeout: 20 * time.Second}
	for range 4 { // whichever worker answers, the new one or the other
		resp, err := client.Get(inst.URL + "/lock?n=1")
		require.NoError(t, err, "taking lock 1 after its holder died; stderr:\n%s", inst.Stderr())
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, "locked", string(body))
	}
}

// TestUWSGICacheReloadStartsEmpty: a reload (SIGHUP) starts with empty
// caches under gowsgi as under uWSGI, whose reload re-executes its master.
func TestUWSGICacheReloadStartsEmpty(t *testing.T) {
	bin := requireUWSGI(t)
	for name, start := range map[string]func(dir, addr string, args []string) runningServer{
		"uwsgi": func(dir, addr string, args []string) runningServer {
			return startUWSGIServer(t, bin, dir, addr, args...)
		},
		"gowsgi": func(dir, _ string, args []string) runningServer { return startGowsgiServer(t, dir, args...) },
	} {
		t.Run(name, func(t *testing.T) {
			addr := freeAddr(t)
			s := start(cacheDir(t, "uwsgi_cache.py"), addr, []string{"--plugin", "python3,http", "--http-socket", addr,
				"--wsgi-file", "uwsgi_cache.py", "--master", "--cache2", "name=c,items=16"})
			_, before := harness.GetText(t, s.url+"/set?key=k&value=v")
			_, value := harness.GetText(t, s.url+"/get?key=k")
			require.Equal(t, "v", value)
			s.signal(syscall.SIGHUP)
			harness.Eventually(t, harness.StartTimeout, func() bool {
				resp, err := http.Get(s.url + "/inc?n=0")
				if err != nil {
					return false
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK && string(body) != before
			}, "no reloaded worker answered; output:\n%s", s.output)
			_, value = harness.GetText(t, s.url+"/get?key=k")
			assert.Equal(t, "", value)
		})
	}
}

// TestUWSGIMetricsInStatsAndPrometheus: a --metric the app sets shows in
// the stats JSON as uWSGI shows it, and on the --metrics endpoint.
func TestUWSGIMetricsInStatsAndPrometheus(t *testing.T) {
	bin := requireUWSGI(t)
	var entries [2]any
	for i, name := range []string{"uwsgi", "gowsgi"} {
		addr, stats, metrics := freeAddr(t), freeAddr(t), freeAddr(t)
		args := []string{"--plugin", "python3,http", "--http-socket", addr, "--wsgi-file", "uwsgi_cache.py", "--master",
			"--metric", "name=m.gauge,type=gauge", "--metric", "m.counter", "--stats", stats}
		dir := cacheDir(t, "uwsgi_cache.py")
		var s runningServer
		if name == "uwsgi" {
			s = startUWSGIServer(t, bin, dir, addr, args...)
		} else {
			s = startGowsgiServer(t, dir, append(args, "--metrics", metrics)...)
		}
		_, body := harness.GetText(t, s.url+"/metric_set?v=42")
		require.Equal(t, "True", body, name)
		var doc struct {
			Metrics map[string]any `json:"metrics"`
		}
		require.NoError(t, json.Unmarshal(readStatsJSON(t, stats), &doc), name)
		entries[i] = doc.Metrics["m.gauge"]
		if name == "gowsgi" {
			_, text := harness.GetText(t, "http://"+metrics+"/metrics")
			assert.Contains(t, text, "gowsgi_app_metric{metric=\"m.gauge\"} 42\n")
			assert.Contains(t, text, "gowsgi_app_metric_total{metric=\"m.counter\"} 0\n")
		}
	}
	assert.Equal(t, map[string]any{"type": 1.0, "oid": "", "value": 42.0}, entries[0], "uWSGI's")
	assert.Equal(t, entries[0], entries[1], "gowsgi's as uWSGI's")
}

// readStatsJSON reads the stats JSON a stats server writes to a connection.
func readStatsJSON(t *testing.T, addr string) []byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	b, err := io.ReadAll(conn)
	require.NoError(t, err)
	return b
}

// TestUWSGICacheRemoteNamesRaise: a NAME@SERVER cache, which uWSGI reaches
// over the network, raises naming what gowsgi lacks.
func TestUWSGICacheRemoteNamesRaise(t *testing.T) {
	inst := harness.StartIn(t, cacheDir(t, "uwsgi_cache.py"), "--wsgi-file", "uwsgi_cache.py", "--cache2", "name=main,items=4")
	var steps probeSteps
	getJSON(t, inst.URL+"/remote", &steps)
	assert.Equal(t, [2]any{"raised NotImplementedError", "uwsgi.cache_get: gowsgi does not implement remote caches (NAME@SERVER) yet"}, steps["get"])
}

// TestUWSGICacheUnderDjango: Django's cache framework over uwsgi.cache_*
// (the backend django-uwsgi-cache provides, in the test app) shares one
// cache between the workers, with add, incr, delete and timeouts.
func TestUWSGICacheUnderDjango(t *testing.T) {
	dir := cacheDir(t, "uwsgi_cache_django.py")
	inst := harness.StartIn(t, dir, "--wsgi-file", "uwsgi_cache_django.py", "-p", "2", "--threads", "2",
		"--cache2", "name=django,items=100")
	get := func(path string) string {
		t.Helper()
		status, body := harness.GetText(t, inst.URL+path)
		require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
		return body
	}
	get("/set?key=a&value=1")
	for range 8 { // either worker
		assert.Equal(t, "1", get("/get?key=a"))
	}
	assert.Equal(t, "True", get("/raw?key=a"), "Django's key is in uWSGI's cache")
	assert.Equal(t, "False", get("/add?key=a&value=2"), "add keeps a key that exists")
	assert.Equal(t, "True", get("/add?key=b&value=2"))
	assert.Equal(t, "2", get("/incr?key=a"))
	assert.Equal(t, "2", get("/get?key=a"))
	assert.Equal(t, "True", get("/delete?key=a"))
	assert.Equal(t, "<missing>", get("/get?key=a"))
	get("/set?key=t&value=x&timeout=3")
	assert.Equal(t, "x", get("/get?key=t"))
	harness.Eventually(t, 10*time.Second, func() bool { return get("/get?key=t") == "<missing>" },
		"the timeout did not expire the key")
}

// workersAnswer is /workers: uwsgi.total_requests() and uwsgi.workers().
type workersAnswer struct {
	PID     int `json:"pid"`
	Total   int `json:"total"`
	Workers []struct {
		ID           int    `json:"id"`
		PID          int    `json:"pid"`
		Requests     int    `json:"requests"`
		Status       string `json:"status"`
		LastSpawn    int64  `json:"last_spawn"`
		RespawnCount int    `json:"respawn_count"`
	} `json:"workers"`
}

// TestUWSGIWorkersAndTotalRequests: total_requests() counts every
// worker's requests, and workers() tells each worker's pid, requests,
// status and respawns, a killed worker's requests included, as uWSGI's
// master keeps them.
func TestUWSGIWorkersAndTotalRequests(t *testing.T) {
	inst := harness.StartIn(t, cacheDir(t, "uwsgi_cache.py"), "--wsgi-file", "uwsgi_cache.py", "-p", "2")
	const sent = 20
	pids := hammer(t, inst.URL+"/inc?n=0", 4, sent/4)
	var answer workersAnswer
	getJSON(t, inst.URL+"/workers", &answer)
	assert.Equal(t, sent, answer.Total, "the requests before this one")
	require.Len(t, answer.Workers, 2)
	sum := 0
	for i, w := range answer.Workers {
		assert.Equal(t, i+1, w.ID)
		sum += w.Requests
		assert.Equal(t, 0, w.RespawnCount)
		assert.NotZero(t, w.LastSpawn)
		if w.PID == answer.PID {
			assert.Equal(t, "busy", w.Status, "the worker answering")
		} else {
			assert.Equal(t, "idle", w.Status)
		}
	}
	assert.Equal(t, sent, sum)
	for pid := range pids {
		n := int(atoi(t, pid))
		assert.True(t, answer.Workers[0].PID == n || answer.Workers[1].PID == n, "pid %s is a worker's", pid)
	}

	require.NoError(t, syscall.Kill(answer.PID, syscall.SIGKILL))
	harness.Eventually(t, harness.StartTimeout, func() bool {
		getJSON(t, inst.URL+"/workers", &answer)
		return answer.Workers[0].RespawnCount+answer.Workers[1].RespawnCount == 1 &&
			answer.Workers[0].PID != 0 && answer.Workers[1].PID != 0
	}, "the killed worker was not respawned; stderr:\n%s", inst.Stderr())
	assert.GreaterOrEqual(t, answer.Total, sent+1, "the killed worker's requests still count")
}

// TestUWSGIListenQueue: listen_queue() tells the requests waiting for a
// slot in the master: with both slots busy, one blocked and one asking,
// the requests sent then wait.
func TestUWSGIListenQueue(t *testing.T) {
	dir := cacheDir(t, "uwsgi_cache.py")
	inst := harness.StartIn(t, dir, "--wsgi-file", "uwsgi_cache.py", "--threads", "2")
	started := func(name string) func() bool {
		return func() bool {
			_, err := os.Stat(filepath.Join(dir, name))
			return err == nil
		}
	}
	blocked := make(chan string, 1)
	go func() { _, body := harness.GetText(t, inst.URL+"/block?tag=q"); blocked <- body }()
	harness.Eventually(t, 10*time.Second, started("q-started"), "the blocking request did not start")
	asked := make(chan string, 1)
	go func() { _, body := harness.GetText(t, inst.URL+"/queue"); asked <- body }()
	harness.Eventually(t, 10*time.Second, started("queue-started"), "/queue did not start")
	const waiting = 4
	done := make(chan struct{}, waiting)
	for range waiting {
		go func() { harness.GetText(t, inst.URL+"/inc?n=0"); done <- struct{}{} }()
	}
	most := <-asked
	harness.WriteFile(t, dir, "q-go", "")
	assert.Equal(t, "True", <-blocked)
	for range waiting {
		<-done
	}
	n, err := strconv.Atoi(most)
	require.NoError(t, err)
	assert.Positive(t, n, "listen_queue() saw the waiting requests")
	assert.LessOrEqual(t, n, waiting)
}

// TestUWSGICacheInCGIMode: without a master, the process gets a shared
// area of its own, so what the options declare works within the request
// (uWSGI has no CGI mode to compare with).
func TestUWSGICacheInCGIMode(t *testing.T) {
	got := gowsgiCGI(t, t.TempDir(), harness.TestdataPath(t, "uwsgi_cache.py"), cgiRequest{method: "GET", pathInfo: "/probe",
		extraEnv: []string{"UWSGI_CACHE2=name=main,items=10", "UWSGI_LOCKS=2", "UWSGI_METRIC=name=m.gauge,type=gauge,initial_value=7"}})
	require.Zero(t, got.code, "stderr:\n%s", got.stderr)
	var steps probeSteps
	require.NoError(t, json.Unmarshal(got.body, &steps), "%s", got.body)
	assert.Equal(t, [2]any{"bytes", "three"}, steps["get_after_update"])
	assert.Equal(t, [2]any{"NoneType", nil}, steps["set_again"])
	assert.Equal(t, [2]any{"bool", true}, steps["is_locked_2"])
	assert.Equal(t, [2]any{"raised ValueError", "Invalid lock number"}, steps["lock_3"])
	assert.Equal(t, [2]any{"int", 7.0}, steps["metric_get_initial_gauge"])
}

// TestUWSGILogvarsInLogFormat: what the app gives uwsgi.set_logvar shows
// as %(name) in --log-format lines as under uWSGI, and a name no one set
// is "-", as any empty variable is.
func TestUWSGILogvarsInLogFormat(t *testing.T) {
	bin := requireUWSGI(t)
	want := []string{"LINE GET /logvar?v=abc [abc] [-] 200\n", "LINE GET /nowhere [-] [-] 404\n"}
	for _, name := range []string{"uwsgi", "gowsgi"} {
		t.Run(name, func(t *testing.T) {
			addr := freeAddr(t)
			args := []string{"--plugin", "python3,http", "--http-socket", addr, "--wsgi-file", "uwsgi_probe.py", "--master",
				"--log-format", "LINE %(method) %(uri) [%(probe)] [%(unset)] %(status)"}
			var s runningServer
			if name == "uwsgi" {
				s = startUWSGIServer(t, bin, probeDir(t), addr, args...)
			} else {
				s = startGowsgiServer(t, probeDir(t), args...)
			}
			harness.GetText(t, s.url+"/logvar?v=abc")
			harness.GetText(t, s.url+"/nowhere")
			harness.Eventually(t, 10*time.Second, func() bool {
				out := s.output.String()
				return strings.Contains(out, want[0]) && strings.Contains(out, want[1])
			}, "the lines %q are not in the log:\n%s", want, s.output)
		})
	}
}
