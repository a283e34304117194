// Worker recycling, uWSGI's --max-requests, --max-worker-lifetime and
// --reload-on-rss: a worker past its limit is replaced by a fresh fork of the
// zygote, started before the old one stops taking requests so capacity does
// not drop, and the old one finishes what it is serving (within
// --worker-reload-mercy) and exits. All of it runs in the pool goroutine;
// SIGTTIN/SIGTTOU, one worker more or fewer, are in pool_resize.go.
package server

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// WorkerLimits are the limits past which a worker is replaced.
type WorkerLimits struct {
	// Harakiri, when not 0, is how long a request may run before its worker
	// is killed and the client answered 504 (uWSGI's --harakiri).
	Harakiri time.Duration
	// MaxRequests, when not 0, is how many requests a worker serves before
	// it is recycled.
	MaxRequests int
	// MaxLifetime, when not 0, is how long a worker serves before it is
	// recycled.
	MaxLifetime time.Duration
	// ReloadOnRSS, when not 0, is the resident memory in bytes past which a
	// worker is recycled.
	ReloadOnRSS int64
	// ReloadMercy, when not 0, is how long a retiring worker (recycled or
	// reloaded) may take to finish its requests before it is killed.
	ReloadMercy time.Duration
}

// checkInterval is how often the pool looks at its workers' scoreboards,
// ages and memory: the precision of --harakiri and the others.
const checkInterval = 100 * time.Millisecond

// spareLead is how many requests before --max-requests the replacement is
// forked, so it is ready when the old worker stops: an eighth of the limit,
// at least one.
func spareLead(maxRequests int) int {
	return max(1, maxRequests/8)
}

// checkWorkers applies the limits; it runs every checkInterval.
func (p *pool) checkWorkers(now time.Time) {
	var list []*worker // the table grows as replacements start
	for w := range p.workers {
		list = append(list, w)
	}
	for _, w := range list {
		switch {
		case w.killed:
		case p.limits.Harakiri > 0 && p.harakiri(w, now):
		case p.userHarakiri(w, now):
		case w.retired:
			p.checkMercy(w, now)
		case p.recyclable(w):
			p.checkCount(w)
			if p.recyclable(w) { // not retired by its count just now
				p.checkAgeAndMemory(w, now)
			}
		}
	}
}

// checkCounts recycles the workers that have served enough requests; it
// runs when a relay reports a worker near its limit.
func (p *pool) checkCounts() {
	for w := range p.workers {
		if p.recyclable(w) {
			p.checkCount(w)
		}
	}
}

// recyclable reports whether w serves the current generation and may be
// recycled now.
func (p *pool) recyclable(w *worker) bool {
	return w.active && !w.retired && !w.killed && w.gen == p.current && !p.stopping
}

// checkCount forks w's replacement as w nears --max-requests and retires w
// once it has reached it. A worker whose replacement cannot be started
// serves on rather than leave its place empty.
func (p *pool) checkCount(w *worker) {
	limit := p.limits.MaxRequests
	if limit == 0 {
		return
	}
	n := w.board.ended.Load()
	if n >= uint64(limit-spareLead(limit)) {
		p.startSuccessor(w)
	}
	if n >= uint64(limit) && w.successor != nil {
		p.log.Info("recycling worker", "worker", w.num, "pid", w.proc.pid(), "reason", "max-requests", "requests", n)
		p.handOver(w)
	}
}

// checkAgeAndMemory replaces w once it is older than --max-worker-lifetime
// or bigger than --reload-on-rss; w serves until its replacement is ready.
func (p *pool) checkAgeAndMemory(w *worker, now time.Time) {
	if w.due {
		return
	}
	var attrs []any
	if limit := p.limits.MaxLifetime; limit > 0 && now.Sub(w.started) >= limit {
		attrs = []any{"reason", "max-worker-lifetime", "age", now.Sub(w.started).Round(time.Millisecond)}
	} else if limit := p.limits.ReloadOnRSS; limit > 0 {
		if rss, err := residentBytes(w.proc.pid()); err == nil && rss > limit {
			attrs = []any{"reason", "reload-on-rss", "rss", rss}
		}
	}
	if attrs == nil {
		return
	}
	p.startSuccessor(w)
	if w.successor == nil {
		return // tried again at the next check
	}
	w.due = true
	p.log.Info("recycling worker", append([]any{"worker", w.num, "pid", w.proc.pid()}, attrs...)...)
	if s := w.successor; s.ready {
		p.handOver(w)
	}
}

// startSuccessor forks w's replacement unless it has one; the replacement
// takes over in successorReady.
func (p *pool) startSuccessor(w *worker) {
	if w.successor != nil || p.gaveUp {
		return
	}
	s, err := p.spawn(w.num, w.gen)
	if err != nil {
		p.log.Error("worker spawn failed", "worker", w.num, "error", err)
		p.noteFailure()
		return
	}
	w.successor, s.predecessor = s, w
}

// handOver retires w and lets its replacement serve, if it is ready.
func (p *pool) handOver(w *worker) {
	p.retireWorker(w)
	if s := w.successor; s != nil && s.ready && !s.active && !s.retired {
		p.promote(s)
	}
}

// successorReady handles a replacement that has loaded: it serves at once
// when its predecessor has stopped or is due to, and otherwise waits ready
// for the predecessor to reach --max-requests.
func (p *pool) successorReady(s *worker) {
	w := s.predecessor
	switch {
	case w.retired:
		p.promote(s)
	case w.due:
		p.handOver(w)
	}
}

// promote lets a replacement serve in place of its predecessor.
func (p *pool) promote(s *worker) {
	if w := s.predecessor; w != nil {
		w.successor, s.predecessor = nil, nil
	}
	p.activate(s)
}

// successionEnded settles the links of a worker that has exited. It
// reports whether the exit is taken care of: a worker whose replacement is
// on its way needs no respawn.
func (p *pool) successionEnded(w *worker) bool {
	if s := w.successor; s != nil {
		w.successor, s.predecessor = nil, nil
		if s.ready && !s.active && !s.retired {
			p.activate(s)
		}
		return !s.retired
	}
	if w.predecessor == nil {
		return false
	}
	// A replacement that died before it loaded: the predecessor, still
	// serving, is tried again at the next check; one that stopped needs a
	// respawn.
	pred := w.predecessor
	pred.successor, w.predecessor, pred.due = nil, nil, false
	if pred.retired {
		return false
	}
	p.noteFailure()
	return true
}

// checkMercy kills a retiring worker that has outlived --worker-reload-mercy.
func (p *pool) checkMercy(w *worker, now time.Time) {
	mercy := p.limits.ReloadMercy
	if mercy == 0 || p.stopping || !w.active || now.Sub(w.retiredAt) < mercy {
		return
	}
	p.log.Warn("worker did not finish in time, killing it", "worker", w.num, "pid", w.proc.pid(), "mercy", mercy)
	w.killed = true
	w.proc.kill()
}

// residentBytes reads a process's resident set size from /proc/PID/statm
// (proc(5)): its second field, in pages.
func residentBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, fmt.Errorf("server: reading the worker's memory: %w", err)
	}
	fields := bytes.Fields(b)
	if len(fields) < 2 {
		return 0, fmt.Errorf("server: /proc/%d/statm has no resident field", pid)
	}
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("server: /proc/%d/statm: %w", pid, err)
	}
	return pages * int64(os.Getpagesize()), nil
}
