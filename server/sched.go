// Which slot a request goes to, decided under one lock and with no
// goroutine of its own, so a request costs the master as few wake-ups as
// it can: a request that finds an idle slot writes its frame from its own
// goroutine; one that finds none waits on the list, and the reader of the
// next slot to end a request, awake anyway for that request's FrameEnd,
// writes the waiting request's frame itself. The waiting request's
// goroutine sleeps until its response's frames arrive.
//
// A busy slot takes one more request, up to slotDepth in flight, but only
// one that found no slot idle, so no request waits behind a busy slot while
// another is idle, yet the worker starts its next request without a round
// trip to the master. Only a frame of at most pipelineFrameCap goes behind
// another: the worker reads it only after the response before it, so it
// must fit the socket's buffer, never holding the sender up.
package server

import (
	"slices"
	"sync"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

// slotDepth bounds the requests sent to one slot and not yet answered. Two
// keep a busy worker fed; more would only queue requests behind a slow one
// that another slot might free up for sooner.
const slotDepth = 2

// pipelineFrameCap is the largest request frame sent to a busy slot.
const pipelineFrameCap = 64 << 10

// scheduler holds the slots that take requests and the requests waiting
// for one.
type scheduler struct {
	mu      sync.Mutex
	slots   []*slot // taking requests: registered, not retiring, not dead
	idle    []*slot // those with nothing assigned, idle longest first
	waiting []*job  // requests no slot could take, oldest first
}

// schedState is a slot's part of the scheduler, guarded by scheduler.mu.
type schedState struct {
	load     int  // requests assigned and not yet ended
	listed   bool // on the idle list
	taking   bool // on the slots list
	retiring bool // takes nothing more; shut once its load is 0
}

// assigned is a request the scheduler gave a slot, to be sent by the caller
// once the lock is released.
type assigned struct {
	s *slot
	j *job
}

// take returns a slot for j: an idle one, else one with room for a frame
// as small as j's; nil puts j on the waiting list, unless wait is false.
func (d *dispatcher) take(j *job, wait bool) *slot {
	q := &d.sched
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.idle); n > 0 {
		s := q.idle[0]
		q.idle = slices.Delete(q.idle, 0, 1)
		s.sched.listed = false
		s.sched.load++
		return s
	}
	if fitsBehind(j) {
		for _, s := range q.slots {
			if s.sched.load < slotDepth {
				s.sched.load++
				return s
			}
		}
	}
	if wait {
		j.queuedAt = time.Now()
		q.waiting = append(q.waiting, j)
		d.waiting.Add(1)
	}
	return nil
}

// notBegun counts the requests no worker has begun: those on the waiting
// list and those sent behind another request on a busy slot. Readiness
// reads it; it walks the slots, so it stays off the request path.
func (d *dispatcher) notBegun() int64 {
	q := &d.sched
	q.mu.Lock()
	defer q.mu.Unlock()
	n := int64(len(q.waiting))
	for _, s := range q.slots {
		n += int64(max(s.sched.load-1, 0))
	}
	return n
}

// withdraw takes j off the waiting list; false means a slot took it.
func (d *dispatcher) withdraw(j *job) bool {
	q := &d.sched
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.waiting, j)
	if i < 0 {
		return false
	}
	q.waiting = slices.Delete(q.waiting, i, i+1)
	d.waiting.Add(-1)
	return true
}

// register lets s take requests, the waiting ones first.
func (d *dispatcher) register(s *slot) {
	q := &d.sched
	q.mu.Lock()
	q.slots = append(q.slots, s)
	s.sched.taking = true
	next := d.fillLocked(s, nil)
	q.mu.Unlock()
	d.sendAll(next)
}

// ended counts off a request of s that ended and gives s the next waiting
// requests, or lists it idle; a retiring slot left with nothing is shut,
// which tells the worker to finish and exit.
func (d *dispatcher) ended(s *slot) {
	q := &d.sched
	var buf [slotDepth]assigned
	q.mu.Lock()
	s.sched.load--
	next := d.fillLocked(s, buf[:0])
	shut := s.sched.retiring && s.sched.load == 0
	q.mu.Unlock()
	d.sendAll(next)
	if shut {
		s.conn.CloseWrite()
	}
}

// fillLocked assigns s waiting requests up to its depth and returns them;
// with none waiting, an idle s is listed.
func (d *dispatcher) fillLocked(s *slot, next []assigned) []assigned {
	q := &d.sched
	if !s.sched.taking {
		return next
	}
	for s.sched.load < slotDepth && len(q.waiting) > 0 && (s.sched.load == 0 || fitsBehind(q.waiting[0])) {
		j := q.waiting[0]
		q.waiting = slices.Delete(q.waiting, 0, 1)
		d.waiting.Add(-1)
		d.metrics.observeQueueWait(time.Since(j.queuedAt))
		s.sched.load++
		next = append(next, assigned{s, j})
	}
	if s.sched.load == 0 && !s.sched.listed {
		s.sched.listed = true
		q.idle = append(q.idle, s)
	}
	return next
}

// sendAll sends the requests fillLocked assigned.
func (d *dispatcher) sendAll(next []assigned) {
	for _, a := range next {
		a.s.sendNow(a.j)
	}
}

// retire stops s taking requests; it is shut once its load is 0.
func (d *dispatcher) retire(s *slot) {
	if shut := d.unlist(s, true); shut {
		s.conn.CloseWrite()
	}
}

// unlist takes s off the scheduler's lists; retiring says it may still
// end requests in flight, and reports whether it has none.
func (d *dispatcher) unlist(s *slot, retiring bool) (idle bool) {
	q := &d.sched
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := slices.Index(q.slots, s); i >= 0 {
		q.slots = slices.Delete(q.slots, i, i+1)
	}
	if i := slices.Index(q.idle, s); i >= 0 {
		q.idle = slices.Delete(q.idle, i, i+1)
	}
	s.sched.taking, s.sched.listed = false, false
	s.sched.retiring = retiring
	return s.sched.load == 0
}

// fitsBehind reports whether j's request frame is small enough to wait
// behind another in a slot socket's buffer.
func fitsBehind(j *job) bool {
	size := wsgi.FrameHeaderLen + 8 + len(j.req.Vars.Block())
	if j.req.BodyFile == nil {
		size += len(j.req.Body)
	}
	return size <= pipelineFrameCap
}
