// Tests of starting workers by fork from a zygote: this test binary, run
// again with GOWSGI_ZYGOTE set, is the zygote (pyembed's cgo constructor
// takes over before any test runs), and the workers it forks serve in C
// and never reach the tests either.
package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/pyembed"
)

// zygoteSpec is the app spec a test's zygote imports: module, from
// testdata/.
func zygoteSpec(t *testing.T, module string) pyembed.AppSpec {
	testdata, err := filepath.Abs("testdata")
	require.NoError(t, err)
	return pyembed.AppSpec{Module: module, PythonPath: []string{testdata}, Multiprocess: true}
}

// parentOf reads pid's parent from /proc/PID/stat (proc(5)).
func parentOf(t *testing.T, pid string) int {
	t.Helper()
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	require.NoError(t, err)
	// The command name in parentheses may hold spaces; fields after it are
	// state, then ppid.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	require.NoError(t, err)
	return ppid
}

// zygotePID returns the pid of the only zygote l runs.
func zygotePID(t *testing.T, rig *poolRig, l *zygoteLauncher) int {
	t.Helper()
	// The launcher belongs to the pool goroutine; ask it through a request
	// that has already been served, so the zygote is running.
	rig.pid(t)
	require.Len(t, l.zygotes, 1)
	for _, z := range l.zygotes {
		return z.proc.Pid
	}
	return 0
}

func TestZygoteForksWorkersAndRespawnsACrashedOne(t *testing.T) {
	rig := startPool(t, 1, 2, "pool_app")
	l := rig.launcher
	require.NoError(t, rig.ready(t))
	zygote := zygotePID(t, rig, l)
	require.NotEqual(t, os.Getpid(), zygote)
	first := rig.pid(t)
	assert.Equal(t, zygote, parentOf(t, first), "a worker is the zygote's child")

	status, _ := rig.get(t, "/crash")
	assert.Equal(t, "502 Bad Gateway", status)
	// The next request waits in the queue for the respawned worker.
	second := rig.pid(t)
	assert.NotEqual(t, first, second)
	assert.Equal(t, zygote, parentOf(t, second), "the respawned worker is forked by the same zygote")
	assert.Regexp(t, `msg="worker exited" worker=1 pid=`+first+` status=3`, rig.logs.String(), "the zygote reports the exit status")
	assert.Equal(t, 1, strings.Count(rig.logs.String(), "zygote loaded the app"), "a respawn is a fork, not an import")
}

func TestZygoteKillReportsTheSignal(t *testing.T) {
	z, err := startZygote(os.Args[0], []string{"-test.run=^$"}, append(os.Environ(), pyembed.ZygoteEnv(zygoteSpec(t, "pool_app"))...), nil, nil, nil, childOutput{}, nil, slog.Default())
	require.NoError(t, err)
	t.Cleanup(func() { z.proc.Kill() })
	var workers []*zygoteWorker
	for num := 1; num <= 2; num++ {
		files, err := newWorkerFiles(1)
		require.NoError(t, err)
		w, err := z.fork(num, 1, files.child)
		files.closeChild()
		require.NoError(t, err)
		t.Cleanup(files.closeMaster)
		workers = append(workers, w)
	}
	require.NotEqual(t, workers[0].pid(), workers[1].pid())
	workers[0].kill()
	status, err := waitWorker(t, workers[0])
	require.NoError(t, err)
	assert.True(t, status.Signaled())
	assert.Equal(t, syscall.SIGKILL, status.Signal())
	select {
	case <-workers[1].exited:
		t.Fatal("the other worker exited too")
	default:
	}
}

func waitWorker(t *testing.T, w *zygoteWorker) (*syscall.WaitStatus, error) {
	t.Helper()
	select {
	case <-w.exited:
		return w.wait()
	case <-time.After(poolWait):
		require.FailNow(t, "no exit reported")
		return nil, nil
	}
}

func TestZygoteLoadFailureIsTheSummary(t *testing.T) {
	rig := startPool(t, 2, 1, "no_such_module")
	err := rig.ready(t)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `cannot import module "no_such_module"`)
}

func TestZygoteReloadStartsANewZygoteAndEndsTheOld(t *testing.T) {
	rig := startPool(t, 2, 1, "pool_app")
	l := rig.launcher
	require.NoError(t, rig.ready(t))
	old := zygotePID(t, rig, l)

	rig.p.reload()
	require.Eventually(t, func() bool {
		return strings.Count(rig.logs.String(), `msg="worker exited"`) == 2
	}, poolWait, 10*time.Millisecond, "both old workers retire: %s", rig.logs.String())
	assert.Equal(t, 2, strings.Count(rig.logs.String(), "zygote loaded the app"))
	require.Eventually(t, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(old))
		return err != nil
	}, poolWait, 10*time.Millisecond, "the old zygote ends with its last worker")
	assert.NotEqual(t, old, parentOf(t, rig.pid(t)))
}

func TestZygoteDeathStartsANewOne(t *testing.T) {
	rig := startPool(t, 1, 1, "pool_app")
	l := rig.launcher
	require.NoError(t, rig.ready(t))
	old := zygotePID(t, rig, l)
	require.NoError(t, syscall.Kill(old, syscall.SIGKILL))

	require.Eventually(t, func() bool {
		return strings.Count(rig.logs.String(), "zygote loaded the app") == 2
	}, poolWait, 10*time.Millisecond, rig.logs.String())
	assert.NotEqual(t, old, parentOf(t, rig.pid(t)))
	assert.Contains(t, rig.logs.String(), `msg="zygote exited"`)
}
