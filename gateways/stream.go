// What the uwsgi and SCGI gateways share. Their peer is a web server that
// sends one request per connection, reads the response until the connection
// closes, and needs no framing for the body. A protocol supplies how its
// request head is read and how its response head is written; this file
// reads the body, calls the handler and writes the response, on the
// connections the connection core (conncore.go) accepts and stops.
package gateways

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

// defaultMaxHeadSize is the largest request head accepted when
// StreamOptions leaves it unset: 64 KiB, the most a uwsgi packet can carry.
const defaultMaxHeadSize = 65536

// Buffer sizes of a connection's reader and writer.
const (
	streamReadBuffer  = 8 << 10
	streamWriteBuffer = 16 << 10
)

var errShortBody = errors.New("gateways: the request body ended before CONTENT_LENGTH bytes")

// StreamOptions configures a uwsgi or SCGI gateway.
type StreamOptions struct {
	// MaxHeadSize bounds a request head (a uwsgi vars block, an SCGI
	// netstring); a connection sending a larger one is logged and closed.
	// Zero means 65536.
	MaxHeadSize int
	// SpoolThreshold is the largest body kept in memory; a larger one goes
	// to a temporary file. Zero spools every non-empty body.
	SpoolThreshold int64
	// LimitPost, when not 0, is the largest CONTENT_LENGTH accepted; a
	// larger one is logged and answered 413 without reading the body.
	LimitPost int64
	// Timeout, when not 0, replaces the default bound on how long a
	// connection may take to send its request head (--socket-timeout).
	Timeout time.Duration
	// Logger receives one line per malformed request; nil means slog's
	// default logger.
	Logger *slog.Logger
}

// streamProtocol is what differs between the one-request-per-connection
// protocols.
type streamProtocol struct {
	name string // "uwsgi", "scgi": for log lines
	// readHead reads a request head of at most limit bytes from r into p.
	// buf is reusable storage for it; the grown slice is returned.
	readHead func(r *bufio.Reader, buf []byte, limit int, p *params) ([]byte, error)
	// appendHead appends the response head for status and headers to dst.
	appendHead func(dst []byte, status string, headers []byte) ([]byte, error)
	// framing is appendHead's framing, for a worker that writes the
	// response to a TCP connection itself (wsgi.DirectResponder). A
	// unix-socket connection's response goes through the master: while a
	// unix socket's descriptor is in flight to a worker, every close of a
	// unix socket makes the kernel queue its garbage collection of
	// in-flight sockets, which cost more than the relay saved (measured
	// behind nginx uwsgi_pass: 15.5k against 20k requests a second).
	framing wsgi.Framing
}

// streamServer serves one streamProtocol on any number of listeners.
type streamServer struct {
	proto     streamProtocol
	handler   wsgi.Handler
	maxHead   int
	threshold int64
	limit     int64         // --limit-post; 0 for none
	timeout   time.Duration // for the request head
	log       *slog.Logger
	conns     sync.Pool // *streamConn, reused across connections
	core      *connCore[*streamConn]
}

// streamConn is one connection and the storage reused for its request.
type streamConn struct {
	sequentialConn
	r      *bufio.Reader
	w      *bufio.Writer
	req    wsgi.Request
	packet []byte // the request head as read
	body   []byte // reused inline body storage
	resp   plainResponse
}

func newStreamServer(proto streamProtocol, handler wsgi.Handler, opts StreamOptions) *streamServer {
	s := &streamServer{
		proto:     proto,
		handler:   handler,
		maxHead:   opts.MaxHeadSize,
		threshold: opts.SpoolThreshold,
		limit:     opts.LimitPost,
		timeout:   orDefault(opts.Timeout, readHeaderTimeout),
		log:       opts.Logger,
	}
	if s.maxHead == 0 {
		s.maxHead = defaultMaxHeadSize
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.conns.New = func() any {
		return &streamConn{r: bufio.NewReaderSize(nil, streamReadBuffer), w: bufio.NewWriterSize(nil, streamWriteBuffer)}
	}
	s.core = newConnCore(proto.name, s.log, s.recycle)
	return s
}

// Serve accepts connections on ln until Shutdown or Close; it returns nil
// then, and the listener's error otherwise.
func (s *streamServer) Serve(ln net.Listener) error {
	return s.core.serve(ln, s.open, s.serveConn)
}

// Shutdown stops accepting, closes the connections that have not begun a
// request, and waits, until ctx is done, for the requests in flight.
func (s *streamServer) Shutdown(ctx context.Context) error { return s.core.Shutdown(ctx) }

// Close closes every listener and connection at once.
func (s *streamServer) Close() error { return s.core.Close() }

// open makes conn a streamConn, its storage taken from earlier ones. The
// head's deadline is set here, under the core's lock, so that a Shutdown
// sweeping the connections that have not begun a request always overrides
// it, however late the connection's goroutine starts.
func (s *streamServer) open(conn net.Conn) *streamConn {
	c := s.conns.Get().(*streamConn)
	c.conn, c.begun, c.fresh = conn, false, true
	c.r.Reset(conn)
	c.w.Reset(conn)
	conn.SetReadDeadline(time.Now().Add(s.timeout))
	return c
}

// recycle keeps c's storage for a later connection.
func (s *streamServer) recycle(c *streamConn) {
	c.conn = nil
	c.r.Reset(nil)
	c.w.Reset(nil)
	s.conns.Put(c)
}

// serveConn serves the one request a connection carries and closes it.
func (s *streamServer) serveConn(c *streamConn) {
	defer c.conn.Close()
	err := s.serveRequest(c)
	var broken *brokenResponse
	switch {
	case errors.As(err, &broken):
		abort(c.conn)
	case err != nil:
		s.log.Warn("bad request", "protocol", s.proto.name, "remote", c.conn.RemoteAddr().String(), "error", err)
	}
}

// brokenResponse is a response that could not be completed; its
// connection is reset so the web server does not take it as whole.
type brokenResponse struct{ err error }

func (b *brokenResponse) Error() string { return b.err.Error() }
func (b *brokenResponse) Unwrap() error { return b.err }

// abort resets a TCP connection (RST instead of FIN), so the web server
// sees an error rather than a response ended by the close; it waits for
// the web server to have what was sent first, since a reset discards it
// (awaitAcknowledged). A Unix socket has no reset: its close reads as the
// end of the response, which a web server then takes as whole unless the
// head declared a longer Content-Length.
func abort(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		awaitAcknowledged(tcp, abortDrainTimeout)
		tcp.SetLinger(0)
	}
}

// serveRequest reads the request and serves it. It returns an error for a
// malformed request, which is logged, or a *brokenResponse.
func (s *streamServer) serveRequest(c *streamConn) error {
	if _, err := c.r.Peek(1); err != nil {
		// Closed before sending anything: a web server's connection check,
		// or a stop.
		return nil
	}
	if !s.core.beginRequest(&c.sequentialConn) {
		return nil
	}
	p := newParams(&c.req.Vars)
	var err error
	if c.packet, err = s.proto.readHead(c.r, c.packet, s.maxHead, &p); err != nil {
		return err
	}
	if err := p.finish(); err != nil {
		return err
	}
	c.conn.SetReadDeadline(time.Time{})
	if overLimit(p.contentLength, s.limit) {
		return s.refuseTooLarge(c, p.contentLength)
	}
	b, err := readDeclaredBody(c.r, p.contentLength, s.threshold, c.body)
	if err != nil {
		return err
	}
	if b.file != nil {
		defer b.file.Close()
	} else if cap(b.data) <= keptBodyCap {
		c.body = b.data[:0]
	}
	c.req.Body, c.req.BodyFile = b.data, b.file
	defer func() { c.req.Body = nil }()

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	conn := c.conn // not c.conn in the func: c is reused once this returns
	// A uwsgi request that asks to upgrade may turn the connection into a
	// WebSocket the worker reads itself (nginx's uwsgi_pass carries one):
	// the watch, which reads and drops, must leave it alone.
	upgrade := s.proto.framing == wsgi.FramingHTTPHead && p.asksToUpgrade()
	if !upgrade {
		watch := time.AfterFunc(peerWatchDelay, func() { watchPeer(conn, cancel) })
		defer watch.Stop()
	}
	c.resp = plainResponse{w: c.w, raw: c.conn, appendHead: s.proto.appendHead, head: c.resp.head,
		framing: s.proto.framing}
	if upgrade {
		c.resp.flags = wsgi.HTTPUpgrade
	}
	if tc, ok := c.conn.(*net.TCPConn); ok {
		c.resp.conn, _ = tc.SyscallConn()
	}
	err = s.handler.ServeWSGI(ctx, &c.resp, &c.req)
	// Flushed even when the response broke: every block the app yielded
	// before it broke is transmitted (PEP 3333) before the reset.
	if ferr := c.w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return &brokenResponse{err: err}
	}
	return nil
}

// refuseTooLarge answers a request whose declared body passes the limit
// with a 413 head and no body read; the connection is then closed.
func (s *streamServer) refuseTooLarge(c *streamConn, declared int64) error {
	s.log.Warn("request body too large", "protocol", s.proto.name, "remote", c.conn.RemoteAddr().String(),
		"content_length", declared, "limit", s.limit)
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain; charset=utf-8")
	headers.Add("Connection", "close")
	head, err := s.proto.appendHead(c.resp.head[:0], "413 Content Too Large", headers.Block())
	if err == nil {
		_, err = c.w.Write(head)
	}
	if err == nil {
		err = c.w.Flush()
	}
	if err != nil {
		return &brokenResponse{err: err}
	}
	return nil
}

// readDeclaredBody reads exactly n bytes of body from r; n < 0, no
// CONTENT_LENGTH, means no body, since these protocols have no other way to
// frame one.
func readDeclaredBody(r io.Reader, n, threshold int64, buf []byte) (body, error) {
	if n <= 0 {
		return body{data: buf[:0]}, nil
	}
	b, err := readBody(io.LimitReader(r, n), n, threshold, buf)
	if err == nil && b.size != n {
		b.close()
		return body{}, errShortBody
	}
	return b, err
}

// peerWatchDelay is how long a request runs before its connection is
// watched for the web server leaving: most requests end sooner, and a
// goroutine blocked reading each connection costs the master a wake-up per
// request.
const peerWatchDelay = 20 * time.Millisecond

// watchPeer reads conn until it fails and then cancels the request: the web
// server resets or closes the connection when its client goes away. A clean
// end of stream is not taken as leaving, because a web server may half-close
// its side once the request is sent (older lighttpd does), and anything sent
// after the body has no meaning in these protocols and is dropped. It
// returns when the connection is closed after the response.
func watchPeer(conn net.Conn, cancel context.CancelCauseFunc) {
	var scratch [512]byte
	for {
		_, err := conn.Read(scratch[:])
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			cancel(fmt.Errorf("gateways: the web server closed the connection: %w", err))
			return
		}
	}
}

// growTo returns buf resized to n bytes, reallocated when it is short.
func growTo(buf []byte, n int) []byte {
	if cap(buf) < n {
		return make([]byte, n)
	}
	return buf[:n]
}
