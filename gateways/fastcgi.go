// The FastCGI gateway, responder role
// (https://fastcgi-archives.github.io/FastCGI_Specification.html): its
// options, and its connections (fastcgi_conn.go) as the connection core
// (conncore.go) accepts, tracks and stops them. Their requests
// (fastcgi_request.go) are multiplexed, each served in its own goroutine so
// a slow one never holds up the others.
package gateways

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

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
	core      *connCore[*fcgiConn]
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
		core:      newConnCore[*fcgiConn]("fastcgi", logger, nil),
	}
	g.buffers.New = func() any { return new(fcgiBuffers) }
	return g
}

// Serve accepts connections on ln until Shutdown or Close; it returns nil
// then, and the listener's error otherwise.
func (g *FastCGI) Serve(ln net.Listener) error {
	return g.core.serve(ln, g.newConn, (*fcgiConn).serve)
}

// newConn makes nc a connection of the gateway.
func (g *FastCGI) newConn(nc net.Conn) *fcgiConn {
	return &fcgiConn{g: g, nc: nc, requests: make(map[uint16]*fcgiRequest)}
}

// Shutdown stops accepting connections, closes the idle ones and waits,
// until ctx is done, for the requests in flight to finish; each connection
// closes once its last request has ended, and a new request is refused as
// overloaded.
func (g *FastCGI) Shutdown(ctx context.Context) error { return g.core.Shutdown(ctx) }

// Close closes every listener and connection at once; requests in flight
// see their context cancelled.
func (g *FastCGI) Close() error { return g.core.Close() }
