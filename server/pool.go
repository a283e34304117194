// The worker pool: one goroutine owns the table of workers and is the only
// one to start, retire or kill them; everything else talks to it over
// channels. It respawns crashed workers with backoff and a failure budget,
// and swaps in a fresh generation on reload without dropping a request
// (pool_reload.go).
package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The failure budget: more than maxFailures exits within failureWindow of
// workers that had served nothing and the pool stops respawning, so a
// broken app stops instead of looping. A worker that had served is
// replaced at once and not counted.
const (
	maxFailures   = 5
	failureWindow = 10 * time.Second
	firstBackoff  = 100 * time.Millisecond
	maxBackoff    = 5 * time.Second
)

type eventKind int

const (
	evReady    eventKind = iota // the worker wrote R<version>
	evFailed                    // the worker wrote E<summary>
	evExited                    // the worker process has been reaped
	evBroken                    // the worker broke the frame protocol
	evPrepared                  // a reload's generation can start (or not: text)
)

// event is something that happened to a worker, sent to the pool goroutine.
type event struct {
	kind   eventKind
	w      *worker
	gen    int                 // evPrepared: the generation
	text   string              // the Python version, the failure summary or the protocol error
	status *syscall.WaitStatus // how it exited; nil when unknown
}

// worker is one worker process; only the pool goroutine touches it.
type worker struct {
	num     int // from 1
	gen     int // the generation it was started in
	proc    process
	slots   []*slot
	board   *board
	retire  chan struct{} // closed to let its slots finish and close
	ready   bool
	active  bool // its slots take requests from the queue
	retired bool
	failed  bool // it reported a load failure

	started   time.Time // when it was started, for --max-worker-lifetime
	retiredAt time.Time // when it was retired, for --worker-reload-mercy
	killed    bool      // SIGKILLed by harakiri or past its mercy
	due       bool      // past its lifetime or memory: retire once replaced
	// successor is the worker started to replace this one (recycle.go),
	// and predecessor the one this one replaces, until it takes over.
	successor, predecessor *worker
}

// respawnRequest asks for worker num of generation gen to be started again.
type respawnRequest struct{ num, gen int }

// pool supervises the workers. Start it with start; stop it with stop, then
// kill if it takes too long, and wait for done.
type pool struct {
	processes, threads int
	launcher           launcher
	dispatch           *dispatcher // whose scheduler its slots take requests from
	// onCheck, when set, runs at each periodic check (checkInterval).
	onCheck func()
	log     *slog.Logger
	limits  WorkerLimits // set before start
	// reloadBegan and reloadEnded, when set (before start), are called by
	// the pool goroutine when a reload starts and when its generation
	// takes over or fails (with the reason): systemd hears of it
	// (notify.go). They must not block.
	reloadBegan func()
	reloadEnded func(failure string)
	// tookOver, when set (before start), is called by the pool goroutine
	// with each generation that starts serving: the first once all its
	// workers are ready, a reload's when it replaces the old one. It must
	// not block.
	tookOver func(gen int)

	events    chan event
	reloads   chan struct{}
	respawns  chan respawnRequest
	stops     chan struct{}
	kills     chan struct{}
	kicks     chan struct{}            // a worker nears --max-requests
	resizes   chan int                 // SIGTTIN (+1) and SIGTTOU (-1)
	snapshots chan chan<- poolSnapshot // pool_snapshot.go
	once      struct{ stop, kill, lost sync.Once }
	ready     chan error    // the first generation's outcome, once
	lost      chan struct{} // closed when no worker is left and none will be respawned
	done      chan struct{} // closed when the pool goroutine has returned

	// Owned by the pool goroutine.
	workers  map[*worker]bool
	version  string // from the first worker ready
	current  int    // the generation taking requests
	pending  int    // a generation being loaded by a reload, 0 when none
	nextGen  int
	starting bool // the first generation is not all ready yet
	stopping bool
	gaveUp   bool
	failures []time.Time
	counts   map[int]*workerCounts // by worker number
}

func newPool(processes, threads int, l launcher, d *dispatcher, log *slog.Logger) *pool {
	return &pool{
		processes: processes,
		threads:   threads,
		launcher:  l,
		dispatch:  d,
		log:       log,
		events:    make(chan event, 16),
		reloads:   make(chan struct{}, 1),
		respawns:  make(chan respawnRequest),
		stops:     make(chan struct{}),
		kills:     make(chan struct{}),
		kicks:     make(chan struct{}, 1),
		resizes:   make(chan int),
		snapshots: make(chan chan<- poolSnapshot),
		counts:    make(map[int]*workerCounts),
		ready:     make(chan error, 1),
		lost:      make(chan struct{}),
		done:      make(chan struct{}),
		workers:   make(map[*worker]bool),
		nextGen:   1,
	}
}

// start launches the first generation; its outcome arrives on p.ready, and
// once that is nil p.version holds the workers' Python version.
func (p *pool) start() { go p.run() }

// reload asks for a fresh generation of workers.
func (p *pool) reload() {
	select {
	case p.reloads <- struct{}{}:
	default:
	}
}

// stop retires every worker once its request in flight is done.
func (p *pool) stop() { p.once.stop.Do(func() { close(p.stops) }) }

// kill SIGKILLs every worker.
func (p *pool) kill() { p.once.kill.Do(func() { close(p.kills) }) }

// run is the pool goroutine.
func (p *pool) run() {
	// Never unlocked: see the Pdeathsig comment in zygote_linux.go.
	runtime.LockOSThread()
	defer close(p.done)
	p.starting = true
	p.current = p.newGeneration()
	p.spawnGeneration(p.current)
	stops, kills := p.stops, p.kills
	ticker := time.NewTicker(checkInterval)
	defer ticker.Stop()
	for !p.stopping || len(p.workers) > 0 {
		select {
		case now := <-ticker.C:
			p.checkWorkers(now)
			if p.onCheck != nil {
				p.onCheck()
			}
		case <-p.kicks:
			p.checkCounts()
		case delta := <-p.resizes:
			p.resize(delta)
		case reply := <-p.snapshots:
			reply <- p.takeSnapshot()
		case ev := <-p.events:
			p.handle(ev)
		case <-p.reloads:
			p.beginReload()
		case req := <-p.respawns:
			p.respawn(req)
		case <-stops:
			stops = nil
			p.beginStop()
		case <-kills:
			stops, kills = nil, nil
			p.stopping = true
			for w := range p.workers {
				w.proc.kill()
			}
		}
	}
	p.launcher.release(p.current)
	if p.pending != 0 {
		p.launcher.release(p.pending)
	}
}

// newGeneration numbers a new generation of workers.
func (p *pool) newGeneration() int {
	gen := p.nextGen
	p.nextGen++
	return gen
}

// spawnGeneration starts the workers of generation gen.
func (p *pool) spawnGeneration(gen int) {
	for num := 1; num <= p.processes; num++ {
		if _, err := p.spawn(num, gen); err != nil {
			p.loadFailed(gen, err.Error())
			return
		}
	}
}

// spawn starts worker num in generation gen.
func (p *pool) spawn(num, gen int) (*worker, error) {
	l, err := p.launcher.launch(num, gen, p.threads)
	if err != nil {
		return nil, err
	}
	p.countsOf(num).spawns++
	if limit := p.limits.MaxRequests; limit > 0 {
		l.board.recycleAt, l.board.kick = uint64(max(limit-spareLead(limit), 1)), p.kicks
	}
	w := &worker{num: num, gen: gen, proc: l.proc, board: l.board, retire: make(chan struct{}), started: time.Now()}
	for i, conn := range l.conns {
		s := newSlot(num, i, l.proc.pid(), conn, l.board, l.queue)
		p.dispatch.adopt(s)
		w.slots = append(w.slots, s)
		go s.read(func(err error) { p.send(event{kind: evBroken, w: w, text: err.Error()}) })
	}
	p.workers[w] = true
	go p.watch(w, l.control)
	return w, nil
}

// send delivers an event unless the pool is gone.
func (p *pool) send(ev event) {
	select {
	case p.events <- ev:
	case <-p.done:
	}
}

// watch reads the worker's one control line, then reaps it.
func (p *pool) watch(w *worker, control *os.File) {
	line, _ := bufio.NewReader(io.LimitReader(control, 4096)).ReadString('\n')
	control.Close()
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "R"):
		p.send(event{kind: evReady, w: w, text: line[1:]})
	case strings.HasPrefix(line, "E"):
		p.send(event{kind: evFailed, w: w, text: line[1:]})
	}
	status, err := w.proc.wait()
	if err != nil {
		p.log.Error("worker wait failed", "worker", w.num, "pid", w.proc.pid(), "error", err)
	}
	p.send(event{kind: evExited, w: w, status: status})
}

func (p *pool) handle(ev event) {
	w := ev.w
	switch ev.kind {
	case evReady:
		p.workerReady(w, ev.text)
	case evFailed:
		w.failed = true
		p.log.Error("worker failed to load the app", "worker", w.num, "pid", w.proc.pid(), "error", ev.text)
		p.loadFailed(w.gen, ev.text)
	case evExited:
		p.workerExited(w, ev.status)
	case evBroken:
		p.log.Error("worker broke the frame protocol", "worker", w.num, "pid", w.proc.pid(), "error", ev.text)
		w.proc.kill()
	case evPrepared:
		p.generationPrepared(ev.gen, ev.text)
	}
}

func (p *pool) workerReady(w *worker, version string) {
	w.ready = true
	p.log.Debug("worker ready", "worker", w.num, "pid", w.proc.pid())
	switch {
	case w.retired:
	case w.predecessor != nil:
		p.successorReady(w)
	case w.gen == p.current:
		p.activate(w)
		if p.starting && p.readyCount(p.current) == p.processes {
			p.starting = false
			p.version = version
			p.ready <- nil
			if p.tookOver != nil {
				p.tookOver(p.current)
			}
		}
	case w.gen == p.pending:
		if p.readyCount(p.pending) == p.processes {
			p.finishReload()
		}
	}
}

// loadFailed handles a generation whose worker could not load the app.
func (p *pool) loadFailed(gen int, summary string) {
	switch {
	case p.starting && gen == p.current:
		p.starting = false
		p.ready <- errors.New(summary)
	case gen == p.pending:
		p.abandonReload(summary)
	}
}

func (p *pool) workerExited(w *worker, status *syscall.WaitStatus) {
	delete(p.workers, w)
	for _, s := range w.slots {
		s.conn.Close() // its reader then fails the request in flight
	}
	// The readers consult the board about their requests in flight.
	go func() {
		for _, s := range w.slots {
			<-s.dead
		}
		w.board.release()
	}()
	replaced := !p.stopping && p.successionEnded(w)
	expected := w.retired || p.stopping
	level := slog.LevelError
	if expected {
		level = slog.LevelInfo
	}
	p.log.Log(context.Background(), level, "worker exited", append([]any{"worker", w.num, "pid", w.proc.pid()}, exitAttrs(status)...)...)
	switch {
	case expected, replaced:
	case p.starting && w.gen == p.current && !w.ready:
		if !w.failed {
			p.loadFailed(w.gen, fmt.Sprintf("worker %d exited before loading the app (%s)", w.num, describeExit(status)))
		}
	case w.gen == p.pending:
		p.abandonReload(fmt.Sprintf("worker %d exited (%s)", w.num, describeExit(status)))
	case w.gen == p.current && w.ready && w.board.servedTotal() > 0:
		// A worker that had served and died — killed by an operator or the
		// OOM killer, or crashed in one request — is replaced at once: this
		// is no crash loop, and a fork from the zygote is cheap. The budget
		// and backoff are for workers that die before serving anything.
		p.respawn(respawnRequest{num: w.num, gen: p.current})
	case w.gen == p.current:
		p.scheduleRespawn(w.num)
	}
	p.checkLost()
}

// readyCount counts generation gen's workers that are ready.
func (p *pool) readyCount(gen int) int {
	n := 0
	for w := range p.workers {
		if w.gen == gen && w.ready && !w.retired {
			n++
		}
	}
	return n
}

// activate lets w's slots take requests.
func (p *pool) activate(w *worker) {
	w.active = true
	for _, s := range w.slots {
		// Registered now, not in the goroutine: the first slot of a new
		// generation makes its queue the current one before the old
		// generation is retired and its queue closed.
		p.dispatch.register(s)
		go s.serve(p.dispatch, w.retire)
	}
}

// retireWorker lets w finish its requests in flight and exit; a worker whose
// slots never took requests is simply killed.
func (p *pool) retireWorker(w *worker) {
	if w.retired {
		return
	}
	w.retired = true
	w.retiredAt = time.Now()
	if w.active {
		close(w.retire)
		return
	}
	w.proc.kill()
}

// scheduleRespawn starts worker num again after a backoff, within budget.
func (p *pool) scheduleRespawn(num int) {
	if !p.noteFailure() {
		return
	}
	delay := min(firstBackoff<<(len(p.failures)-1), maxBackoff)
	req := respawnRequest{num: num, gen: p.current}
	time.AfterFunc(delay, func() {
		select {
		case p.respawns <- req:
		case <-p.done:
		}
	})
}

// noteFailure counts an unexpected worker exit against the failure budget
// and reports whether the budget still allows a respawn.
func (p *pool) noteFailure() bool {
	now := time.Now()
	recent := p.failures[:0]
	for _, t := range p.failures {
		if now.Sub(t) < failureWindow {
			recent = append(recent, t)
		}
	}
	p.failures = append(recent, now)
	if len(p.failures) > maxFailures {
		if !p.gaveUp {
			p.log.Error("workers keep failing, not respawning", "failures", len(p.failures), "window", failureWindow)
		}
		p.gaveUp = true
		return false
	}
	return true
}

func (p *pool) respawn(req respawnRequest) {
	if p.stopping || req.gen != p.current || req.num > p.processes {
		return
	}
	if _, err := p.spawn(req.num, req.gen); err != nil {
		p.log.Error("worker spawn failed", "worker", req.num, "error", err)
		p.scheduleRespawn(req.num)
	}
}

// checkLost closes p.lost once no worker is left to serve and none will be.
func (p *pool) checkLost() {
	if !p.gaveUp || p.stopping {
		return
	}
	for w := range p.workers {
		if !w.retired {
			return
		}
	}
	p.once.lost.Do(func() { close(p.lost) })
}

func (p *pool) beginStop() {
	p.stopping = true
	for w := range p.workers {
		p.retireWorker(w)
	}
}
