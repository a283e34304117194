// Harakiri, uWSGI's --harakiri: the pool reads each slot's scoreboard
// record, and a worker whose request has run longer than the limit is
// killed and replaced. The master still owns that request's connection, so
// its client gets 504 Gateway Timeout (RFC 9110 section 15.6.5) rather than
// the 502 of a worker that died by itself.
package server

import (
	"time"
)

// harakiri kills w if one of its slots has run a request for longer than
// --harakiri, starting its replacement first; it reports whether it did.
// When no replacement can be started, w's death is left to the respawn
// logic of an unexpected exit.
func (p *pool) harakiri(w *worker, now time.Time) bool {
	for i, s := range w.slots {
		id, started := w.board.running(i)
		if id == 0 || now.UnixNano()-started < int64(p.limits.Harakiri) {
			continue
		}
		method, path := s.markTimedOut(id)
		p.log.Error("harakiri: request ran too long, killing its worker",
			"worker", w.num, "pid", w.proc.pid(), "method", method, "path", path,
			"running", time.Duration(now.UnixNano()-started).Round(time.Millisecond), "harakiri", p.limits.Harakiri)
		p.countsOf(w.num).harakiris++
		if p.recyclable(w) {
			p.startSuccessor(w)
		}
		if w.successor != nil {
			p.handOver(w)
		}
		w.killed = true
		w.proc.kill()
		return true
	}
	return false
}

// markTimedOut flags the request id in flight on s, so that its relay
// answers 504 once the worker is gone, and returns its method and path for
// the log. The pool goroutine calls it; the job stays valid while it is in
// s.inflight.
func (s *slot) markTimedOut(id uint32) (method, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.inflight {
		if j.id == id {
			j.timedOut.Store(true)
			method, _ = j.req.Vars.Get("REQUEST_METHOD")
			path, _ = j.req.Vars.Get("PATH_INFO")
			return method, path
		}
	}
	return "", ""
}
