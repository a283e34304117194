// Where a request goes: on the current generation's shared queue, where
// whichever slot is idle first takes it (requests_linux.go), so the master
// keeps no per-slot load and needs no completion to dispatch the next
// request. A frame too big for one queue message goes on the socket of one
// slot of that generation, an idle one if the scoreboard shows one; a
// dispatcher whose slots have no queue (CGI mode) sends every request so.
//
// Every request is posted in the request table first, so a request runs at
// most once: a worker claims it before running it, and when a worker dies
// the master withdraws what no worker claimed and sends it again under a
// new id (lostWorker).
package server

import (
	"errors"
	"sync"

	"github.com/gowsgi/gowsgi/wsgi"
)

var errStopped = errors.New("server: no worker will take requests")

// scheduler holds the slots taking requests and the current generation's
// queue.
type scheduler struct {
	mu      sync.Mutex
	byPID   map[int][]*slot // every slot alive, by its worker's pid
	slots   []*slot         // taking requests: registered, not retiring, not dead
	queue   *genQueue
	next    int           // round robin over slots for frames sent to one slot
	ready   chan struct{} // closed once a slot is registered
	isReady bool
}

// adopt makes s's frames d's, from its worker's start: a worker takes
// requests from its generation's queue as soon as it runs.
func (d *dispatcher) adopt(s *slot) {
	s.mu.Lock()
	s.d = d
	s.mu.Unlock()
	q := &d.sched
	q.mu.Lock()
	if q.byPID == nil {
		q.byPID = make(map[int][]*slot)
	}
	q.byPID[s.pid] = append(q.byPID[s.pid], s)
	q.mu.Unlock()
}

// forget drops s, whose reader has stopped, and reports whether it was
// its worker's last: the worker is gone then, since a worker's slots end
// together when it dies, or one by one between requests as it retires.
func (d *dispatcher) forget(s *slot) (last bool) {
	q := &d.sched
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.byPID[s.pid]
	for i, t := range list {
		if t == s {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(q.byPID, s.pid)
		return true
	}
	q.byPID[s.pid] = list
	return false
}

// anySlotOf returns a slot of worker pid, or nil: enough to name the
// worker, or reach its scoreboard.
func (q *scheduler) anySlotOf(pid int) *slot {
	q.mu.Lock()
	defer q.mu.Unlock()
	if list := q.byPID[pid]; len(list) > 0 {
		return list[0]
	}
	return nil
}

// slotOf returns the slot of worker pid running request id, else any slot
// of that worker, or nil.
func (q *scheduler) slotOf(pid int, id uint32) *slot {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.byPID[pid]
	for _, s := range list {
		if s.board.currentID(s.index) == id {
			return s
		}
	}
	if len(list) > 0 {
		return list[0]
	}
	return nil
}

// register lets s take requests. The first slot of a newer generation
// makes its queue the current one: what waits in older queues is sent
// again to it (their workers are being retired and may never read it).
func (d *dispatcher) register(s *slot) {
	q := &d.sched
	q.mu.Lock()
	q.slots = append(q.slots, s)
	old := q.queue
	newer := s.queue != nil && (old == nil || s.queue.gen > old.gen)
	if newer {
		q.queue = s.queue
		s.queue.served.Store(true)
	}
	if !q.isReady {
		q.isReady = true
		close(q.ready)
	}
	q.mu.Unlock()
	if newer && old != nil {
		// Closed first: a request still being sent to it fails and is
		// sent again, to the new one.
		old.close()
		d.requeue(func(j *job) bool { return j.queue == old })
	}
}

// route returns where to send j: the current queue, or, for a frame too big
// for it or without one, a slot. Both nil: no slot is registered yet.
func (d *dispatcher) route(frameLen int) (*genQueue, *slot) {
	q := &d.sched
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queue != nil && frameLen <= wsgi.QueueFrameCap {
		return q.queue, nil
	}
	var chosen *slot
	for range q.slots {
		q.next = (q.next + 1) % len(q.slots)
		s := q.slots[q.next]
		if q.queue != nil && s.queue != q.queue {
			continue // an older generation's
		}
		if chosen == nil || s.idle() {
			chosen = s
		}
		if s.idle() {
			break
		}
	}
	return nil, chosen
}

// notBegun counts the requests no worker has begun. Readiness reads it.
func (d *dispatcher) notBegun() int64 { return d.requests.queued() }

// retire stops s taking requests and shuts its socket: its worker ends
// what it runs and takes nothing more.
func (d *dispatcher) retire(s *slot) {
	d.unlist(s)
	s.retiring.Store(true)
	s.conn.CloseWrite()
}

// unlist takes s off the scheduler's list.
func (d *dispatcher) unlist(s *slot) {
	q := &d.sched
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, t := range q.slots {
		if t == s {
			q.slots = append(q.slots[:i], q.slots[i+1:]...)
			break
		}
	}
}

// requeue withdraws the requests match selects that no worker has
// claimed, which their relays then send again under new ids.
func (d *dispatcher) requeue(match func(j *job) bool) {
	d.requests.each(func(j *job) {
		if match(j) && d.requests.withdraw(j) {
			j.lost(false)
		}
	})
}
