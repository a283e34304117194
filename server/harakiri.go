// Harakiri, uWSGI's --harakiri: the pool reads each slot's scoreboard
// record, and a worker whose request has run longer than the limit is
// killed and replaced. The master still owns that request's connection, so
// its client gets 504 Gateway Timeout (RFC 9110 section 15.6.5) rather than
// the 502 of a worker that died by itself. The app's own deadline
// (uwsgi.set_user_harakiri, uwsgidecorators.harakiri) is enforced the same
// way, with or without --harakiri.
package server

import (
	"time"
)

// harakiri kills w if one of its slots has run a request for longer than
// --harakiri, starting its replacement first; it reports whether it did.
// When no replacement can be started, w's death is left to the respawn
// logic of an unexpected exit.
func (p *pool) harakiri(w *worker, now time.Time) bool {
	for i := range w.slots {
		id, started := w.board.running(i)
		if id == 0 || now.UnixNano()-started < int64(p.limits.Harakiri) {
			continue
		}
		method, path := p.dispatch.markTimedOut(id)
		p.log.Error("harakiri: request ran too long, killing its worker",
			"worker", w.num, "pid", w.proc.pid(), "method", method, "path", path,
			"running", time.Duration(now.UnixNano()-started).Round(time.Millisecond), "harakiri", p.limits.Harakiri)
		p.killForHarakiri(w)
		return true
	}
	return false
}

// userHarakiri kills w if one of its slots has passed the deadline the app
// set (uwsgi.set_user_harakiri), as harakiri does; it reports whether it
// did. The slot may be running a signal handler rather than a request.
func (p *pool) userHarakiri(w *worker, now time.Time) bool {
	for i := range w.slots {
		deadline := w.board.userHarakiri(i)
		if deadline == 0 || now.UnixNano() < deadline {
			continue
		}
		var method, path string
		if id, _ := w.board.running(i); id != 0 {
			method, path = p.dispatch.markTimedOut(id)
		}
		p.log.Error("harakiri: the app's deadline (uwsgi.set_user_harakiri) passed, killing its worker",
			"worker", w.num, "pid", w.proc.pid(), "method", method, "path", path)
		p.killForHarakiri(w)
		return true
	}
	return false
}

// killForHarakiri kills w, starting its replacement first when it can.
func (p *pool) killForHarakiri(w *worker) {
	p.countsOf(w.num).harakiris++
	if p.recyclable(w) {
		p.startSuccessor(w)
	}
	if w.successor != nil {
		p.handOver(w)
	}
	w.killed = true
	w.proc.kill()
}
