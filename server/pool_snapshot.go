// A read-only view of the worker pool for the stats and metrics endpoints:
// the pool goroutine alone owns the worker table, so it answers a snapshot
// request over a channel instead of sharing the table under a lock.
package server

import (
	"cmp"
	"slices"
	"time"
)

// Worker states in a snapshot.
const (
	workerStarting = "starting" // forked, not serving yet (also a ready spare awaiting its predecessor)
	workerIdle     = "idle"     // serving, no request running
	workerBusy     = "busy"     // serving, a request running on at least one slot
	workerRetiring = "retiring" // takes no new request; finishing, then exits
)

// workerSnapshot is one worker process as the pool sees it.
type workerSnapshot struct {
	ID         int       // the worker number, from 1 (uWSGI's worker id)
	PID        int       // its process id
	Generation int       // its generation; a reload starts a new one
	Status     string    // workerStarting, workerIdle, workerBusy or workerRetiring
	Requests   uint64    // requests this process has served (the scoreboard's count)
	Respawns   int       // how often worker ID has been started again, for any reason
	Harakiris  int       // how often worker ID has been killed by --harakiri
	Started    time.Time // when this process was started
	Slots      int       // its request slots (--threads)
	BusySlots  int       // of those, the ones running a request
}

// poolSnapshot is the pool at one moment.
type poolSnapshot struct {
	Processes int              // the worker count the pool keeps (SIGTTIN/SIGTTOU change it)
	Workers   []workerSnapshot // every worker process alive, by ID, then oldest first
	Harakiris int              // harakiri kills since the start
	Respawns  int              // workers started again since the start
}

// snapshot returns the pool's state, answered by the pool goroutine; once
// the pool has stopped it returns an empty snapshot.
func (p *pool) snapshot() poolSnapshot {
	reply := make(chan poolSnapshot, 1)
	select {
	case p.snapshots <- reply:
	case <-p.done:
		return poolSnapshot{}
	}
	select {
	case s := <-reply:
		return s
	case <-p.done:
		return poolSnapshot{}
	}
}

// snapshotWithin is snapshot bounded by timeout: ok is false when the
// pool goroutine did not answer in time or has stopped, which is how
// /livez (health.go) tells that the master's loop is stuck.
func (p *pool) snapshotWithin(timeout time.Duration) (snap poolSnapshot, ok bool) {
	reply := make(chan poolSnapshot, 1)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case p.snapshots <- reply:
	case <-p.done:
		return poolSnapshot{}, false
	case <-timer.C:
		return poolSnapshot{}, false
	}
	select {
	case s := <-reply:
		return s, true
	case <-p.done:
		return poolSnapshot{}, false
	case <-timer.C:
		return poolSnapshot{}, false
	}
}

// takeSnapshot builds the snapshot; only the pool goroutine calls it.
func (p *pool) takeSnapshot() poolSnapshot {
	snap := poolSnapshot{Processes: p.processes}
	for w := range p.workers {
		c := p.countsOf(w.num)
		snap.Workers = append(snap.Workers, workerSnapshot{
			ID:         w.num,
			PID:        w.proc.pid(),
			Generation: w.gen,
			Status:     workerStatus(w),
			Requests:   w.board.servedTotal(),
			Respawns:   max(c.spawns-1, 0),
			Harakiris:  c.harakiris,
			Started:    w.started,
			Slots:      len(w.slots),
			BusySlots:  busySlots(w),
		})
	}
	for _, c := range p.counts {
		snap.Respawns += max(c.spawns-1, 0)
		snap.Harakiris += c.harakiris
	}
	slices.SortFunc(snap.Workers, func(a, b workerSnapshot) int {
		if a.ID != b.ID {
			return cmp.Compare(a.ID, b.ID)
		}
		return a.Started.Compare(b.Started)
	})
	return snap
}

// workerStatus says what w is doing.
func workerStatus(w *worker) string {
	switch {
	case w.retired:
		return workerRetiring
	case !w.active:
		return workerStarting
	}
	for i := range w.slots {
		if id, _ := w.board.running(i); id != 0 {
			return workerBusy
		}
	}
	return workerIdle
}

// busySlots counts w's slots running a request.
func busySlots(w *worker) int {
	n := 0
	for i := range w.slots {
		if id, _ := w.board.running(i); id != 0 {
			n++
		}
	}
	return n
}

// workerCounts are the lifetime counters of one worker number.
type workerCounts struct {
	spawns, harakiris int
}

// countsOf returns worker number num's counters.
func (p *pool) countsOf(num int) *workerCounts {
	c := p.counts[num]
	if c == nil {
		c = &workerCounts{}
		p.counts[num] = c
	}
	return c
}
