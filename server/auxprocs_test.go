package server

import (
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/pyembed"
)

// auxTestWait bounds every wait for the auxPool goroutine.
const auxTestWait = 5 * time.Second

// fakeAuxProc is a spooler or mule that exists only in the test.
type fakeAuxProc struct {
	id     int
	once   sync.Once
	exited chan struct{}
}

func (f *fakeAuxProc) pid() int { return f.id }
func (f *fakeAuxProc) kill()    { f.once.Do(func() { close(f.exited) }) }
func (f *fakeAuxProc) wait() (*syscall.WaitStatus, error) {
	<-f.exited
	status := syscall.WaitStatus(syscall.SIGKILL)
	return &status, nil
}

// auxLaunch is one fork the auxPool asked for.
type auxLaunch struct {
	kind    auxKind
	num     int
	gen     int
	process *fakeAuxProc
}

// fakeAuxLauncher forks fake processes, or fails while failing is set.
type fakeAuxLauncher struct {
	mu       sync.Mutex
	nextPID  int
	failing  bool
	launches chan auxLaunch
}

func (l *fakeAuxLauncher) launchAux(kind auxKind, num, gen int) (process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing {
		l.failing = false
		return nil, errors.New("no zygote")
	}
	l.nextPID++
	p := &fakeAuxProc{id: l.nextPID, exited: make(chan struct{})}
	l.launches <- auxLaunch{kind, num, gen, p}
	return p, nil
}

// nextLaunch waits for the auxPool's next fork.
func (l *fakeAuxLauncher) nextLaunch(t *testing.T) auxLaunch {
	t.Helper()
	select {
	case got := <-l.launches:
		return got
	case <-time.After(auxTestWait):
		require.FailNow(t, "no fork")
		return auxLaunch{}
	}
}

func newAuxRig(t *testing.T, spec pyembed.AppSpec) (*auxPool, *fakeAuxLauncher, *syncBuffer) {
	logs := &syncBuffer{}
	l := &fakeAuxLauncher{launches: make(chan auxLaunch, 16)}
	a := newAuxPool(spec, l, slog.New(slog.NewTextHandler(logs, nil)))
	require.NotNil(t, a)
	t.Cleanup(a.stop)
	return a, l, logs
}

var auxRigSpec = pyembed.AppSpec{
	Spooler: pyembed.Spooler{Dirs: []string{"/a", "/b"}, Processes: 2},
	Mules:   pyembed.Mules{Programs: []string{"", "m.py"}},
}

func TestAuxPoolForksEachProcessFromTheServingGeneration(t *testing.T) {
	a, l, _ := newAuxRig(t, auxRigSpec)
	a.serveGeneration(1)
	var got []auxLaunch
	for range 6 {
		got = append(got, l.nextLaunch(t))
	}
	want := []struct {
		kind auxKind
		num  int
	}{{auxSpooler, 1}, {auxSpooler, 2}, {auxSpooler, 3}, {auxSpooler, 4}, {auxMule, 1}, {auxMule, 2}}
	for i, w := range want {
		assert.Equal(t, w.kind, got[i].kind, "fork %d", i)
		assert.Equal(t, w.num, got[i].num, "fork %d", i)
		assert.Equal(t, 1, got[i].gen, "fork %d", i)
	}
	snap := a.snapshot()
	require.Len(t, snap, 6)
	assert.Equal(t, "/a", snap[1].Label, "spooler 2 serves the first folder")
	assert.Equal(t, "/b", snap[2].Label, "spooler 3 serves the second")
	assert.Equal(t, "m.py", snap[5].Label)
}

func TestAuxPoolRespawnsAKilledProcess(t *testing.T) {
	a, l, logs := newAuxRig(t, pyembed.AppSpec{Mules: pyembed.Mules{Programs: []string{""}}})
	a.serveGeneration(1)
	first := l.nextLaunch(t)
	first.process.kill()
	again := l.nextLaunch(t)
	assert.Equal(t, auxLaunch{auxMule, 1, 1, again.process}, again)
	assert.NotEqual(t, first.process.pid(), again.process.pid())
	assert.Contains(t, logs.String(), "mule exited, respawning")
	snap := a.snapshot()
	assert.Equal(t, again.process.pid(), snap[0].PID)
	assert.Equal(t, 1, snap[0].Respawns)
}

func TestAuxPoolForksAgainFromAReloadsGeneration(t *testing.T) {
	a, l, logs := newAuxRig(t, pyembed.AppSpec{Spooler: pyembed.Spooler{Dirs: []string{"/a"}}})
	a.serveGeneration(1)
	first := l.nextLaunch(t)
	a.serveGeneration(2)
	again := l.nextLaunch(t)
	assert.Equal(t, 2, again.gen)
	select {
	case <-first.process.exited:
	default:
		t.Error("the old generation's spooler was not killed")
	}
	assert.NotContains(t, logs.String(), "exited, respawning", "a reload's restart is no crash")
}

func TestAuxPoolRetriesAFailedFork(t *testing.T) {
	a, l, logs := newAuxRig(t, pyembed.AppSpec{Mules: pyembed.Mules{Programs: []string{""}}})
	l.mu.Lock()
	l.failing = true // the first fork fails; the one after the backoff forks
	l.mu.Unlock()
	a.serveGeneration(1)
	got := l.nextLaunch(t)
	assert.Equal(t, auxLaunch{auxMule, 1, 1, got.process}, got)
	assert.Contains(t, logs.String(), "cannot start a mule")
}

func TestAuxPoolStopKillsEveryProcess(t *testing.T) {
	logs := &syncBuffer{}
	l := &fakeAuxLauncher{launches: make(chan auxLaunch, 16)}
	a := newAuxPool(pyembed.AppSpec{Mules: pyembed.Mules{Programs: []string{"", ""}}}, l, slog.New(slog.NewTextHandler(logs, nil)))
	a.serveGeneration(1)
	launched := []auxLaunch{l.nextLaunch(t), l.nextLaunch(t)}
	a.stop()
	for _, got := range launched {
		select {
		case <-got.process.exited:
		default:
			t.Errorf("mule %d was not killed", got.num)
		}
	}
	assert.Nil(t, a.snapshot(), "no answer once stopped")
}

func TestNewAuxPoolWithoutProcessesIsNil(t *testing.T) {
	assert.Nil(t, newAuxPool(pyembed.AppSpec{}, &fakeAuxLauncher{}, slog.Default()))
}
