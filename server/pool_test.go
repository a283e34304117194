package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// poolWait bounds every wait on worker processes, which import Python.
const poolWait = 15 * time.Second

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type poolRig struct {
	p        *pool
	d        *dispatcher
	logs     *syncBuffer
	launcher *zygoteLauncher
}

// startPool starts a pool whose workers are forked by a zygote that
// imported module from testdata: this test binary, whose cgo constructor is
// the zygote (pyembed/gw_zygote.c).
func startPool(t *testing.T, processes, threads int, module string) *poolRig {
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	d, err := newDispatcher(log)
	require.NoError(t, err)
	l := newZygoteLauncher(os.Args[0], []string{"-test.run=^$"}, zygoteSpec(t, module), log)
	l.requests = d.requests
	p := newPool(processes, threads, l, d, log)
	p.start()
	t.Cleanup(func() {
		p.kill()
		select {
		case <-p.done:
		case <-time.After(poolWait):
			t.Error("the pool did not end after kill")
		}
	})
	return &poolRig{p: p, d: d, logs: logs, launcher: l}
}

// ready waits for the first generation's outcome.
func (rig *poolRig) ready(t *testing.T) error {
	t.Helper()
	select {
	case err := <-rig.p.ready:
		return err
	case <-time.After(poolWait):
		require.FailNow(t, "no outcome from the first generation", rig.logs.String())
		return nil
	}
}

// get serves a GET of path and returns the status line and body.
func (rig *poolRig) get(t *testing.T, path string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), poolWait)
	defer cancel()
	req := &wsgi.Request{}
	req.Vars.Add("REQUEST_METHOD", "GET")
	req.Vars.Add("PATH_INFO", path)
	rec := &recorder{}
	require.NoError(t, rig.d.ServeWSGI(ctx, rec, req), rig.logs.String())
	status, body := "", ""
	for _, call := range rec.log() {
		switch {
		case strings.HasPrefix(call, "head "):
			status = strings.TrimPrefix(call, "head ")
		case strings.HasPrefix(call, "body "):
			body += strings.TrimPrefix(call, "body ")
		}
	}
	return status, body
}

func (rig *poolRig) pid(t *testing.T) string {
	t.Helper()
	status, body := rig.get(t, "/pid")
	require.Equal(t, "200 OK", status)
	return body
}

func TestPoolServesAndRespawnsACrashedWorker(t *testing.T) {
	rig := startPool(t, 1, 2, "pool_app")
	require.NoError(t, rig.ready(t))
	assert.Regexp(t, `^3\.\d+`, rig.p.version)
	first := rig.pid(t)

	status, body := rig.get(t, "/crash")
	assert.Equal(t, "502 Bad Gateway", status)
	assert.Equal(t, "502 Bad Gateway\n", body)
	// The next request waits in the queue for the respawned worker.
	assert.NotEqual(t, first, rig.pid(t))
	assert.Contains(t, rig.logs.String(), fmt.Sprintf(`msg="worker exited" worker=1 pid=%s status=3`, first))
}

func TestPoolFirstGenerationFailure(t *testing.T) {
	rig := startPool(t, 2, 1, "no_such_module")
	err := rig.ready(t)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no_such_module")
}

func TestPoolReloadSwapsWorkers(t *testing.T) {
	rig := startPool(t, 2, 1, "pool_app")
	require.NoError(t, rig.ready(t))
	old := map[string]bool{rig.pid(t): true, rig.pid(t): true}

	rig.p.reload()
	require.Eventually(t, func() bool {
		return strings.Count(rig.logs.String(), `msg="worker exited"`) == 2
	}, poolWait, 10*time.Millisecond, "both old workers retire: %s", rig.logs.String())
	assert.Equal(t, 2, strings.Count(rig.logs.String(), "status=0"), rig.logs.String())
	for range 4 {
		assert.False(t, old[rig.pid(t)], "a request went to a retired worker")
	}
}

func TestPoolReloadFailureKeepsTheOldWorkers(t *testing.T) {
	rig := startPool(t, 1, 1, "pool_app")
	require.NoError(t, rig.ready(t))
	before := rig.pid(t)

	// The reload's zygote gets this environment: the last value wins.
	rig.launcher.env = append(rig.launcher.env, "GOWSGI_APP_MODULE=no_such_module")
	rig.p.reload()
	require.Eventually(t, func() bool {
		return strings.Contains(rig.logs.String(), "reload failed, keeping the running workers")
	}, poolWait, 10*time.Millisecond, rig.logs.String())
	assert.Equal(t, before, rig.pid(t))
}

func TestPoolStopRetiresWorkersCleanly(t *testing.T) {
	rig := startPool(t, 2, 2, "pool_app")
	require.NoError(t, rig.ready(t))
	rig.get(t, "/")
	rig.p.stop()
	select {
	case <-rig.p.done:
	case <-time.After(poolWait):
		require.FailNow(t, "the pool did not stop", rig.logs.String())
	}
	assert.Equal(t, 2, strings.Count(rig.logs.String(), "status=0"), rig.logs.String())
}

func TestPoolStopsRespawningWhenWorkersKeepFailing(t *testing.T) {
	rig := startPool(t, 1, 1, "pool_app")
	require.NoError(t, rig.ready(t))
	for range maxFailures + 1 {
		status, _ := rig.get(t, "/crash")
		require.Equal(t, "502 Bad Gateway", status)
	}
	select {
	case <-rig.p.lost:
	case <-time.After(poolWait):
		require.FailNow(t, "the pool kept respawning", rig.logs.String())
	}
	assert.Contains(t, rig.logs.String(), "workers keep failing, not respawning")
}
