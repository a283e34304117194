// The FastCGI gateway, responder role
// (https://fastcgi-archives.github.io/FastCGI_Specification.html): its
// options, the accept loop, and Shutdown and Close over the connections
// (fastcgi_conn.go), whose requests (fastcgi_request.go) are multiplexed,
// each served in its own goroutine so a slow one never holds up the others.
package gateways

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

// fcgiAcceptRetry is the longest pause after a failed accept (out of file
// descriptors, say) before trying again.
const fcgiAcceptRetry = time.Second

// FastCGIOptions configures a FastCGI gateway.
type FastCGIOptions struct {
	// MaxParamsSize bounds a request's PARAMS stream (--buffer-size, as for
	// every gateway's request head); a larger one is answered with 431.
	// Zero means 65536.
	MaxParamsSize int
	// SpoolThreshold is the largest body kept in memory; a larger one goes
	// to a temporary file. Zero spools every non-empty body.
	SpoolThreshold int64
	// LimitPost, when not 0, is the largest request body accepted; a
	// larger one gets 413 (limits.go).
	LimitPost int64
	// MaxConns and MaxReqs are the answers to FCGI_GET_VALUES for
	// FCGI_MAX_CONNS and FCGI_MAX_REQS: how many connections and how many
	// requests at once the application serves. A web server sizes its pool
	// by them; they are not enforced (requests beyond MaxReqs wait in the
	// server's queue). Zero leaves the name out of the answer.
	MaxConns, MaxReqs int
	// Timeout, when not 0, closes a connection that has no request in
	// flight and sends nothing for that long (--socket-timeout).
	Timeout time.Duration
	// Logger receives protocol errors; nil means slog's default logger.
	Logger *slog.Logger
}

// FastCGI serves the FastCGI responder role on any number of listeners and
// hands every request to a wsgi.Handler.
type FastCGI struct {
	handler   wsgi.Handler
	maxParams int
	threshold int64
	limit     int64             // --limit-post; 0 for none
	timeout   time.Duration     // idle connections; 0 for none
	values    map[string]string // GET_VALUES answers
	log       *slog.Logger
	buffers   sync.Pool // *fcgiBuffers, reused across requests

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*fcgiConn]struct{}
	closing   bool           // Shutdown or Close was called
	shutting  atomic.Bool    // Shutdown was called: close connections once idle
	connWG    sync.WaitGroup // one per connection being served
}

// NewFastCGI returns a FastCGI gateway that serves requests with h.
func NewFastCGI(h wsgi.Handler, opts FastCGIOptions) *FastCGI {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	values := map[string]string{fcgiMpxsConnName: "1"}
	if opts.MaxConns > 0 {
		values[fcgiMaxConnsName] = strconv.Itoa(opts.MaxConns)
	}
	if opts.MaxReqs > 0 {
		values[fcgiMaxReqsName] = strconv.Itoa(opts.MaxReqs)
	}
	maxParams := opts.MaxParamsSize
	if maxParams <= 0 {
		maxParams = defaultMaxHeadSize
	}
	g := &FastCGI{
		handler:   h,
		maxParams: maxParams,
		threshold: opts.SpoolThreshold,
		limit:     opts.LimitPost,
		timeout:   opts.Timeout,
		values:    values,
		log:       logger,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*fcgiConn]struct{}),
	}
	g.buffers.New = func() any { return new(fcgiBuffers) }
	return g
}

// Serve accepts connections on ln until Shutdown or Close; it returns nil
// then, and the listener's error otherwise.
func (g *FastCGI) Serve(ln net.Listener) error {
	if !g.track(ln) {
		ln.Close()
		return nil
	}
	defer g.untrack(ln)
	pause := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if g.isClosing() {
				return nil
			}
			if !temporaryAcceptError(err) {
				return fmt.Errorf("fastcgi: serving on %s: %w", ln.Addr(), err)
			}
			g.log.Warn("fastcgi accept failed", "error", err, "retry", pause)
			time.Sleep(pause)
			pause = min(2*pause, fcgiAcceptRetry)
			continue
		}
		pause = 5 * time.Millisecond
		if c := g.newConn(nc); c != nil {
			go c.serve()
		}
	}
}

// temporaryAcceptError reports an accept failure that passes once some
// connections have closed.
func temporaryAcceptError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

func (g *FastCGI) track(ln net.Listener) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.listeners[ln] = struct{}{}
	return true
}

func (g *FastCGI) untrack(ln net.Listener) {
	g.mu.Lock()
	delete(g.listeners, ln)
	g.mu.Unlock()
}

func (g *FastCGI) isClosing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

// newConn registers nc, or closes it and returns nil when the gateway is
// stopping.
func (g *FastCGI) newConn(nc net.Conn) *fcgiConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		nc.Close()
		return nil
	}
	c := &fcgiConn{g: g, nc: nc, requests: make(map[uint16]*fcgiRequest)}
	g.conns[c] = struct{}{}
	g.connWG.Add(1)
	return c
}

func (g *FastCGI) dropConn(c *fcgiConn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	g.connWG.Done()
}

// stopAccepting closes every listener and returns the open connections.
func (g *FastCGI) stopAccepting() []*fcgiConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closing = true
	for ln := range g.listeners {
		ln.Close()
	}
	conns := make([]*fcgiConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	return conns
}

// Shutdown stops accepting connections, closes the idle ones and waits,
// until ctx is done, for the requests in flight to finish; each connection
// closes once its last request has ended.
func (g *FastCGI) Shutdown(ctx context.Context) error {
	g.shutting.Store(true)
	for _, c := range g.stopAccepting() {
		c.closeIfIdle()
	}
	drained := make(chan struct{})
	go func() {
		g.connWG.Wait()
		close(drained)
	}()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes every listener and connection at once; requests in flight
// see their context cancelled.
func (g *FastCGI) Close() error {
	for _, c := range g.stopAccepting() {
		c.nc.Close()
	}
	return nil
}
