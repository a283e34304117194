// The lazy end of a response the worker wrote to an HTTP/1.x client
// itself: the worker stores how the response ended in the request table
// and sends no FrameEnd unless the master waits for one (wsgi/requests.go),
// so the master is woken once per request, by the client, instead of twice.
// The relay waits, in the connection's own goroutine, for what wakes the
// connection anyway: the client's next bytes (it read the response and
// sent its next request), its leaving, or lazyWaitFor. Then it sets the
// table's waiting bit: if the worker had ended, the relay takes the
// completion from the table; otherwise the worker will send the FrameEnd
// and the relay waits for it as for any response.
package server

import (
	"context"
	"sync"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

// lazyWaitFor bounds the wait for the client before the relay asks for the
// FrameEnd: the access line, metrics and --stats of a response whose
// client sends nothing more are late by at most this, and so is the next
// request of a pipelining client whose request came before the worker
// ended. 20 ms, as peerWatchDelay: most responses end far sooner, and a
// timer per idle connection per 20 ms costs nothing worth counting.
const lazyWaitFor = 20 * time.Millisecond

// lazyWait is a job's side of the wait: the awaiter while the relay waits,
// so that a frame for the job (a hand-off, a FrameEnd with log variables,
// the worker lost) cuts the wait short.
type lazyWait struct {
	mu      sync.Mutex
	waiting wsgi.PeerAwaiter
}

// interruptLazy ends the relay's wait for the client, if it waits.
func (j *job) interruptLazy() {
	j.lazy.mu.Lock()
	if a := j.lazy.waiting; a != nil {
		a.InterruptAwait()
	}
	j.lazy.mu.Unlock()
}

// lazyAllowed reports whether the job's response may end lazily: the worker
// writes it to an HTTP/1.x client whose connection the relay may read. An
// upgrade request's connection may become the app's protocol, which the
// master must not read. A request alone in flight ends lazily too: it was
// once eager, when the FrameEnd's wake-up looked free on an idle master,
// but with idle slots waiting as SCHED_BATCH, hello at 1 connection
// measured 11,500 req/s eager against 13,900 lazy (master 32 against
// 24 µs a request).
func (r *relay) lazyAllowed() bool {
	if r.direct == nil || r.job.req.Framing != wsgi.FramingHTTP1 || r.job.req.HTTPFlags&wsgi.HTTPUpgrade != 0 {
		return false
	}
	_, ok := r.direct.(wsgi.PeerAwaiter)
	return ok
}

// endedInTable sets the table's waiting bit and reports whether the response
// had ended, its completion in the table; if not, its FrameEnd will come.
func (r *relay) endedInTable() bool {
	t := r.d.requests.table
	before, err := t.Await(r.job.id)
	return err == nil && before.Phase == wsgi.PhaseDone && !t.FrameFollows(r.job.id)
}

// awaitLazy waits for the client, then for the response's end: it reports
// true when it took the completion from the table, false when the relay is
// to wait for the worker's frames (r.run).
func (r *relay) awaitLazy(ctx context.Context) bool {
	j := r.job
	a := r.direct.(wsgi.PeerAwaiter)
	j.lazy.mu.Lock()
	j.lazy.waiting = a
	j.lazy.mu.Unlock()
	ended := false
	a.AwaitPeer(lazyWaitFor, func() bool { return !j.resp.empty() || ctx.Err() != nil }, func() bool {
		j.lazy.mu.Lock()
		j.lazy.waiting = nil
		j.lazy.mu.Unlock()
		ended = r.endedInTable()
		return !ended
	})
	if !ended {
		return false
	}
	c := r.d.requests.table.Completion(j.id)
	r.headSent = r.headSent || c.Status != 0
	r.headBytes, r.bytes = c.HeadBytes, c.BodyBytes
	r.direct.Completed(c)
	if s := r.d.sched.anySlotOf(r.d.requests.table.Load(j.id).PID); s != nil {
		s.board.responseEnded() // counted per worker, for --max-requests
	}
	return true
}
