// The connection core of the gateways: uwsgi and SCGI (stream.go), FastCGI
// (fastcgi.go) and plain HTTP/1.x (http1conn.go): the accept loop over any number of
// listeners, the set of open connections, and the two ways to stop, Shutdown
// (idle connections close; requests in flight finish, and so do the first
// requests of connections just opened or still in the accept queue) and
// Close (everything closes at once). Accepting waits out the errors that
// pass (patientListener), the same way for these gateways and for HTTP.
package gateways

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bounds of the wait before accepting again after an accept failed for a
// reason that passes.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// firstRequestGrace is how long, once a Shutdown began, a connection on
// which no request has begun has for its first one. Its client opened it
// to send one, and may have: closing it unanswered would make a load
// balancer that already sent a POST answer 502 (net/http's Shutdown
// spares new connections the same way).
const firstRequestGrace = 2 * time.Second

// peerConn is a connection the core tracks.
type peerConn interface {
	comparable
	// stopIdle is called when the gateway shuts down: the connection
	// closes now when no request is in flight on it, else once its last
	// one has ended. It runs with the core's lock held.
	stopIdle()
	// closeNow closes the connection at once. It runs with the core's lock
	// held.
	closeNow()
}

// connCore accepts and tracks connections of type C. Its zero value is not
// usable; call newConnCore.
type connCore[C peerConn] struct {
	protocol string // "uwsgi", "scgi", "fastcgi": for errors and logs
	log      *slog.Logger
	// recycle, when not nil, takes a connection back once it is forgotten,
	// so its storage serves a later one.
	recycle func(C)

	mu        sync.Mutex
	listeners map[*patientListener]struct{}
	conns     map[C]struct{}
	closing   bool           // Shutdown or Close was called
	closedNow bool           // Close was called
	shutting  atomic.Bool    // Shutdown was called
	wg        sync.WaitGroup // one per connection in conns
	// serving counts the listeners' accept loops, which a Shutdown waits
	// for: each serves its queue before it ends (serveQueued).
	serving sync.WaitGroup
}

func newConnCore[C peerConn](protocol string, log *slog.Logger, recycle func(C)) *connCore[C] {
	return &connCore[C]{
		protocol:  protocol,
		log:       log,
		recycle:   recycle,
		listeners: make(map[*patientListener]struct{}),
		conns:     make(map[C]struct{}),
	}
}

// serve accepts connections on ln until Shutdown or Close; it returns nil
// then, and the listener's error otherwise. open makes each accepted
// connection a C, with the core's lock held so that a stop sweeping the
// connections cannot miss it; run serves it on a goroutine of its own, and
// must close it before it returns. After a Shutdown it serves what is left
// in ln's accept queue, then closes ln.
func (c *connCore[C]) serve(ln net.Listener, open func(net.Conn) C, run func(C)) error {
	pl := newPatientListener(ln, c.log, c.protocol)
	if !c.addListener(pl) {
		ln.Close()
		return nil
	}
	defer c.removeListener(pl)
	for {
		nc, err := pl.Accept()
		if err != nil {
			if c.stopping() {
				c.serveQueued(pl, open, run)
				return nil
			}
			return fmt.Errorf("gateways: serving %s on %s: %w", c.protocol, ln.Addr(), err)
		}
		if conn, ok := c.track(nc, open); ok {
			go c.runConn(conn, run)
		}
	}
}

// serveQueued accepts, without waiting, the connections in pl's accept
// queue and serves them, then closes pl; a Close stops it. Accepting waits
// out the errors that pass, as Accept does: the descriptors the closing
// idle connections give back are what an accept short of them waits for.
func (c *connCore[C]) serveQueued(pl *patientListener, open func(net.Conn) C, run func(C)) {
	defer pl.Close()
	var backoff time.Duration
	for !c.stoppedNow() {
		nc, err := acceptQueued(pl.Listener)
		switch {
		case err == nil && nc == nil:
			return // the queue is empty, and new handshakes are dropped
		case err == nil:
			backoff = 0
			if conn, ok := c.track(nc, open); ok {
				go c.runConn(conn, run)
			}
		case isTransientAcceptError(err):
			backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
			time.Sleep(backoff)
		case errors.Is(err, net.ErrClosed):
			return
		default:
			c.log.Warn("cannot serve the connections left in the accept queue", "protocol", c.protocol, "error", err)
			return
		}
	}
}

func (c *connCore[C]) addListener(pl *patientListener) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.listeners[pl] = struct{}{}
	c.serving.Add(1)
	return true
}

func (c *connCore[C]) removeListener(pl *patientListener) {
	c.mu.Lock()
	delete(c.listeners, pl)
	c.mu.Unlock()
	c.serving.Done()
}

// stopping reports whether Shutdown or Close was called.
func (c *connCore[C]) stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// stoppedNow reports whether Close was called.
func (c *connCore[C]) stoppedNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedNow
}

// shuttingDown reports whether Shutdown was called, after which no new
// request may begin but a new connection's first.
func (c *connCore[C]) shuttingDown() bool { return c.shutting.Load() }

// track opens nc and adds it to the connections, or closes it after a
// Close. One accepted once a Shutdown began has firstRequestGrace for its
// first request.
func (c *connCore[C]) track(nc net.Conn, open func(net.Conn) C) (C, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closedNow {
		nc.Close()
		var none C
		return none, false
	}
	conn := open(nc)
	if c.closing {
		nc.SetReadDeadline(time.Now().Add(firstRequestGrace))
	}
	c.conns[conn] = struct{}{}
	c.wg.Add(1)
	return conn, true
}

func (c *connCore[C]) runConn(conn C, run func(C)) {
	run(conn)
	c.mu.Lock()
	delete(c.conns, conn)
	c.mu.Unlock()
	c.wg.Done()
	if c.recycle != nil {
		c.recycle(conn)
	}
}

// beginRequest marks sc's request begun, under the lock Shutdown sweeps
// the connections with, unless the gateway is stopping and the request is
// not the connection's first: a request then either begins before the
// sweep, which waits for it, or not at all.
func (c *connCore[C]) beginRequest(sc *sequentialConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closedNow || c.closing && !sc.fresh {
		return false
	}
	sc.begun, sc.fresh = true, false
	return true
}

// endRequest clears begun once a connection's request has ended, under
// the same lock, and reports whether another request may begin on it: not
// once the gateway is stopping, when the connection closes instead.
func (c *connCore[C]) endRequest(sc *sequentialConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc.begun = false
	return !c.closing
}

// stop marks the gateway stopping and calls each connection's stopIdle,
// or closeNow when now is set. Now closes every listener; otherwise each
// stops taking new handshakes and its accept loop is woken to serve its
// queue (serveQueued) and close it.
func (c *connCore[C]) stop(now bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	c.closedNow = c.closedNow || now
	for pl := range c.listeners {
		if now {
			pl.Close()
		} else {
			pl.stopAccepting(c.log, c.protocol)
		}
	}
	for conn := range c.conns {
		if now {
			conn.closeNow()
		} else {
			conn.stopIdle()
		}
	}
}

// Shutdown stops accepting, closes the idle connections and waits, until
// ctx is done, for the requests in flight to finish, and for the first
// requests of the connections just opened or left in the accept queue.
func (c *connCore[C]) Shutdown(ctx context.Context) error {
	c.shutting.Store(true)
	c.stop(false)
	drained := make(chan struct{})
	go func() {
		c.serving.Wait() // every queued connection is tracked by then
		c.wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateways: %s shutdown: %w", c.protocol, ctx.Err())
	}
}

// Close closes every listener and connection at once.
func (c *connCore[C]) Close() error {
	c.stop(true)
	return nil
}

// patientListener is a listener whose Accept waits out the errors that
// pass (isTransientAcceptError), pausing a little longer each time, rather
// than return them and end the gateway. Every gateway accepts through one,
// HTTP included: net/http's own retry covers only part of the set.
type patientListener struct {
	net.Listener
	log      *slog.Logger
	protocol string
	closed   chan struct{} // closed by Close: wakes a pause
	once     sync.Once
}

func newPatientListener(ln net.Listener, log *slog.Logger, protocol string) *patientListener {
	return &patientListener{Listener: ln, log: log, protocol: protocol, closed: make(chan struct{})}
}

// Accept returns the next connection, or an error that does not pass.
func (l *patientListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		nc, err := l.Listener.Accept()
		if err == nil || !isTransientAcceptError(err) {
			return nc, err
		}
		select {
		case <-l.closed: // the deadline stopAccepting set woke it
			return nil, net.ErrClosed
		default:
		}
		backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
		l.log.Warn("accept failed, retrying", "protocol", l.protocol, "error", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
}

// Close closes the listener and ends a pause in Accept.
func (l *patientListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// stopAccepting makes the kernel drop new handshakes (dropNewHandshakes)
// and wakes Accept, which returns an error, without closing the listener,
// whose queue is still to be served. A listener that cannot do either is
// closed, as before.
func (l *patientListener) stopAccepting(log *slog.Logger, protocol string) {
	l.once.Do(func() { close(l.closed) })
	d, ok := l.Listener.(interface{ SetDeadline(time.Time) error })
	if !ok || d.SetDeadline(time.Unix(1, 0)) != nil {
		l.Listener.Close()
		return
	}
	if err := dropNewHandshakes(l.Listener); err != nil {
		log.Debug("new connections are not dropped while the accept queue is served", "protocol", protocol, "error", err)
	}
}

// isTransientAcceptError reports an accept failure that passes: the
// process or the system out of file descriptors (EMFILE, ENFILE) or of
// memory for sockets (ENOBUFS, ENOMEM), a connection reset while it waited
// in the backlog (ECONNABORTED), or a timeout.
func isTransientAcceptError(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.As(err, &ne) && ne.Timeout()
}

// sequentialConn is the part of a connection that serves one request at a
// time (HTTP/1.x, uwsgi, SCGI) which the core sweeps on Shutdown.
type sequentialConn struct {
	conn  net.Conn
	begun bool // a request began; guarded by the core's lock
	// fresh: no request has begun on it yet; guarded by the core's lock.
	// The open functions set it.
	fresh bool
}

// stopIdle wakes the read of a connection whose next request has not
// begun, so it never begins; a request in flight carries on and its
// connection closes after it. A fresh connection has firstRequestGrace
// for its first request.
func (c *sequentialConn) stopIdle() {
	switch {
	case c.fresh:
		c.conn.SetReadDeadline(time.Now().Add(firstRequestGrace))
	case !c.begun:
		c.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

func (c *sequentialConn) closeNow() { c.conn.Close() }
