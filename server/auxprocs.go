// The spoolers and mules: processes the zygote forks beside the workers
// (pyembed/gw_uwsgi_spooler.c, gw_uwsgi_mule.c) that serve no requests. One goroutine
// owns their table, as the pool's owns the workers': it forks them from the
// generation that serves, respawns one that exits (at once when it had run
// a while, else after a doubling backoff, since uWSGI never gives up on a
// spooler or a mule either), forks them again from a reload's generation
// once it takes over, and kills them when the master stops. The master
// passes them nothing: the queues and folders they read are the zygote's
// (gw_uwsgi_aux.h).
package server

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gowsgi/gowsgi/pyembed"
)

// spoolerDirs makes the spooler folders that are missing, as uWSGI does,
// and returns their real paths, which is how uwsgi.spool(spooler=...)
// names them.
func spoolerDirs(dirs []string) ([]string, error) {
	out := make([]string, len(dirs))
	for i, dir := range dirs {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("--spooler %s: %w", dir, err)
		}
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return nil, fmt.Errorf("--spooler %s: %w", dir, err)
		}
		out[i] = real
	}
	return out, nil
}

// auxKind is what the zygote's fork command calls a kind of process.
type auxKind byte

const (
	auxSpooler auxKind = 'S'
	auxMule    auxKind = 'M'
)

func (k auxKind) String() string {
	if k == auxSpooler {
		return "spooler"
	}
	return "mule"
}

// auxSteadyAfter is how long a process must have run for its exit not to
// count as a failure to start, which backs off.
const auxSteadyAfter = time.Second

// auxStopWait bounds how long a stop waits for the killed processes.
const auxStopWait = 5 * time.Second

// auxLauncher forks a spooler or a mule from generation gen's zygote.
type auxLauncher interface {
	launchAux(kind auxKind, num, gen int) (process, error)
}

// auxProc is one spooler or mule; only the auxPool goroutine touches it.
type auxProc struct {
	kind     auxKind
	num      int    // from 1, per kind
	label    string // the spooler's folder, the mule's program ("" waits for messages)
	proc     process
	started  time.Time
	respawns int           // starts after the first
	backoff  time.Duration // before the next start after a failure
	retiring bool          // killed to be forked from the generation that serves now
}

// auxExit is a process that has exited.
type auxExit struct {
	p      *auxProc
	proc   process
	status *syscall.WaitStatus
}

// auxSnapshot is one process as the stats show it.
type auxSnapshot struct {
	Kind     auxKind
	Num      int
	Label    string
	PID      int // 0 while it is being respawned
	Respawns int
	Started  time.Time
}

// auxPool supervises the spoolers and mules. Tell it each generation that
// takes over with serveGeneration; stop it with stop.
type auxPool struct {
	launcher auxLauncher
	log      *slog.Logger
	procs    []*auxProc

	generations chan int // the latest generation to take over; buffered, 1
	exits       chan auxExit
	due         chan *auxProc // a respawn's backoff has passed
	snapshots   chan chan []auxSnapshot
	stops       chan struct{}
	done        chan struct{}
}

// newAuxPool returns the supervisor of spec's spoolers and mules, or nil
// when it has none.
func newAuxPool(spec pyembed.AppSpec, l auxLauncher, log *slog.Logger) *auxPool {
	var procs []*auxProc
	per := max(spec.Spooler.Processes, 1)
	for i := range spec.Spooler.Count() {
		procs = append(procs, &auxProc{kind: auxSpooler, num: i + 1, label: spec.Spooler.Dirs[i/per]})
	}
	for i, program := range spec.Mules.Programs {
		procs = append(procs, &auxProc{kind: auxMule, num: i + 1, label: program})
	}
	if len(procs) == 0 {
		return nil
	}
	a := &auxPool{
		launcher: l, log: log, procs: procs,
		generations: make(chan int, 1),
		exits:       make(chan auxExit),
		due:         make(chan *auxProc),
		snapshots:   make(chan chan []auxSnapshot),
		stops:       make(chan struct{}),
		done:        make(chan struct{}),
	}
	go a.run()
	return a
}

// serveGeneration says generation gen serves now: the processes are forked
// from it, those of an older one killed and forked again. It never blocks.
func (a *auxPool) serveGeneration(gen int) {
	if a == nil {
		return
	}
	for {
		select {
		case a.generations <- gen:
			return
		case <-a.generations: // a newer one replaces it
		}
	}
}

// stop kills every process and returns once they have exited (or
// auxStopWait has passed).
func (a *auxPool) stop() {
	if a == nil {
		return
	}
	close(a.stops)
	<-a.done
}

// snapshot describes the processes; nil when there are none.
func (a *auxPool) snapshot() []auxSnapshot {
	if a == nil {
		return nil
	}
	reply := make(chan []auxSnapshot, 1)
	select {
	case a.snapshots <- reply:
		return <-reply
	case <-a.done:
		return nil
	}
}

// run is the auxPool goroutine.
func (a *auxPool) run() {
	defer close(a.done)
	gen := 0
	for {
		select {
		case next := <-a.generations:
			first := gen == 0
			gen = next
			a.switchTo(gen, first)
		case ex := <-a.exits:
			a.exited(ex, gen)
		case p := <-a.due:
			if p.proc == nil {
				a.start(p, gen)
			}
		case reply := <-a.snapshots:
			reply <- a.describe()
		case <-a.stops:
			a.killAll()
			return
		}
	}
}

// switchTo forks every process from gen: at once the first time, else
// once the one from the older generation has exited.
func (a *auxPool) switchTo(gen int, first bool) {
	for _, p := range a.procs {
		switch {
		case first:
			a.start(p, gen)
		case p.proc != nil:
			p.retiring = true
			p.proc.kill()
		}
	}
}

// start forks p from gen, or schedules another try.
func (a *auxPool) start(p *auxProc, gen int) {
	proc, err := a.launcher.launchAux(p.kind, p.num, gen)
	if err != nil {
		a.log.Error("cannot start a "+p.kind.String(), "num", p.num, "error", err)
		a.retryLater(p)
		return
	}
	p.proc, p.started = proc, time.Now()
	a.log.Info(p.kind.String()+" started", "num", p.num, "pid", proc.pid(), p.labelKey(), p.label)
	go func() {
		status, _ := proc.wait()
		select {
		case a.exits <- auxExit{p: p, proc: proc, status: status}:
		case <-a.done:
		}
	}()
}

// labelKey names p's label in log lines.
func (p *auxProc) labelKey() string {
	if p.kind == auxSpooler {
		return "dir"
	}
	return "program"
}

// exited respawns p: at once when it ran long enough or was retired for a
// new generation, else after its backoff.
func (a *auxPool) exited(ex auxExit, gen int) {
	p := ex.p
	if p.proc != ex.proc {
		return
	}
	p.proc = nil
	p.respawns++
	if p.retiring {
		p.retiring = false
		a.start(p, gen)
		return
	}
	a.log.Warn(p.kind.String()+" exited, respawning", append([]any{"num", p.num, "pid", ex.proc.pid()}, exitAttrs(ex.status)...)...)
	if time.Since(p.started) >= auxSteadyAfter {
		p.backoff = 0
		a.start(p, gen)
		return
	}
	a.retryLater(p)
}

// retryLater starts p again after its backoff, which doubles each time.
func (a *auxPool) retryLater(p *auxProc) {
	p.backoff = min(max(p.backoff*2, firstBackoff), maxBackoff)
	time.AfterFunc(p.backoff, func() {
		select {
		case a.due <- p:
		case <-a.done:
		}
	})
}

// killAll kills every process and waits for their exits, bounded.
func (a *auxPool) killAll() {
	running := 0
	for _, p := range a.procs {
		if p.proc != nil {
			p.proc.kill()
			running++
		}
	}
	deadline := time.After(auxStopWait)
	for running > 0 {
		select {
		case ex := <-a.exits:
			if ex.p.proc == ex.proc {
				ex.p.proc = nil
				running--
			}
		case <-deadline:
			a.log.Error("spoolers or mules did not exit after SIGKILL", "left", running)
			return
		}
	}
}

func (a *auxPool) describe() []auxSnapshot {
	out := make([]auxSnapshot, 0, len(a.procs))
	for _, p := range a.procs {
		s := auxSnapshot{Kind: p.kind, Num: p.num, Label: p.label, Respawns: p.respawns, Started: p.started}
		if p.proc != nil {
			s.PID = p.proc.pid()
		}
		out = append(out, s)
	}
	return out
}
