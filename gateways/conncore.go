// The connection core of the gateways: uwsgi and SCGI (stream.go), FastCGI
// (fastcgi.go) and plain HTTP/1.x (http1conn.go): the accept loop over any number of
// listeners, the set of open connections, and the two ways to stop, Shutdown
// (idle connections close, requests in flight finish) and Close (everything
// closes at once). Accepting waits out the errors that pass (patientListener),
// the same way for these gateways and for HTTP.
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
	shutting  atomic.Bool    // Shutdown was called
	wg        sync.WaitGroup // one per connection in conns
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
// must close it before it returns.
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
				return nil
			}
			return fmt.Errorf("gateways: serving %s on %s: %w", c.protocol, ln.Addr(), err)
		}
		if conn, ok := c.track(nc, open); ok {
			go c.runConn(conn, run)
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
	return true
}

func (c *connCore[C]) removeListener(pl *patientListener) {
	c.mu.Lock()
	delete(c.listeners, pl)
	c.mu.Unlock()
}

// stopping reports whether Shutdown or Close was called.
func (c *connCore[C]) stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// shuttingDown reports whether Shutdown was called, after which no new
// request may begin.
func (c *connCore[C]) shuttingDown() bool { return c.shutting.Load() }

// track opens nc and adds it to the connections, or closes it when the
// gateway is stopping.
func (c *connCore[C]) track(nc net.Conn, open func(net.Conn) C) (C, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		nc.Close()
		var none C
		return none, false
	}
	conn := open(nc)
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

// beginRequest sets *begun, under the lock Shutdown sweeps the connections
// with, unless the gateway is stopping: a request then either begins before
// the sweep, which waits for it, or not at all.
func (c *connCore[C]) beginRequest(begun *bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	*begun = true
	return true
}

// endRequest clears *begun once a connection's request has ended, under
// the same lock, and reports whether another request may begin on it: not
// once the gateway is stopping, when the connection closes instead.
func (c *connCore[C]) endRequest(begun *bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	*begun = false
	return !c.closing
}

// stop closes every listener, marks the gateway stopping and calls each
// connection's stopIdle, or closeNow when now is set.
func (c *connCore[C]) stop(now bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	for pl := range c.listeners {
		pl.Close()
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
// ctx is done, for the requests in flight to finish.
func (c *connCore[C]) Shutdown(ctx context.Context) error {
	c.shutting.Store(true)
	c.stop(false)
	drained := make(chan struct{})
	go func() {
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
}

// stopIdle wakes the read of a connection whose next request has not
// begun, so it never begins; a request in flight carries on and its
// connection closes after it.
func (c *sequentialConn) stopIdle() {
	if !c.begun {
		c.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

func (c *sequentialConn) closeNow() { c.conn.Close() }
