// The plain-HTTP/1.x server: one goroutine per connection reads a request
// head (http1head.go), its body in full, hands the request to the handler
// and writes the response (http1response.go), then reads the next request
// on the same connection while keep-alive allows (RFC 9112 section 9.3).
// Pipelined requests are answered in order: the next one is only read once
// the previous response has ended. Every byte read passes the framing
// scanner (httpframing.go) first. Connections are accepted and stopped by
// the connection core (conncore.go).
//
// The loop owns the connection and keeps its descriptor for the
// connection's life; a worker is given a copy with each request and writes
// the response itself (http1Response.Direct), and the loop reads the next
// request once the worker's completion says the response has ended. A
// request that asks to upgrade (a WebSocket) may hand the connection to
// the app: the loop never reads it while that request runs, and closes it
// after.
package gateways

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gowsgi/gowsgi/internal/rawsock"
	"github.com/gowsgi/gowsgi/wsgi"
)

// Buffer sizes of an HTTP connection's reader and writer.
const (
	http1ReadBuffer  = 4 << 10
	http1WriteBuffer = 8 << 10
)

// http1Server serves plain HTTP/1.x on any number of listeners.
type http1Server struct {
	handler       wsgi.Handler
	maxHead       int
	threshold     int64
	limit         int64 // --limit-post; 0 for none
	headerTimeout time.Duration
	idleTimeout   time.Duration
	// proxyProtocol says every connection opens with a PROXY protocol
	// header (proxyproto.go); trust lists the proxies whose forwarding
	// headers are believed (forwarded.go).
	proxyProtocol bool
	trust         *ForwardedAllow
	log           *slog.Logger
	conns         sync.Pool // *http1Conn, reused across connections
	core          *connCore[*http1Conn]
}

// http1Conn is one connection and the storage reused for its requests.
type http1Conn struct {
	sequentialConn
	in   scanningReader
	r    *bufio.Reader
	w    *bufio.Writer
	info connInfo
	// lastPOST says the previous request was a POST, after which stray
	// line ends are skipped (RFC 9112 section 2.2, for old clients).
	lastPOST bool
	head     []byte // the request head as read
	parsed   requestHead
	req      wsgi.Request
	name     []byte // scratch for HTTP_* names
	body     []byte // reused inline body storage
	resp     http1Response
	watch    peerWatch
	// raw is the connection's descriptor for a worker to write responses
	// to, nil when it has none (a connection that is not a socket); sock
	// reads it with raw calls.
	raw  syscall.RawConn
	sock *rawsock.Socket
}

func newHTTP1Server(handler wsgi.Handler, opts HTTPOptions, log *slog.Logger) *http1Server {
	s := &http1Server{
		handler:       handler,
		maxHead:       opts.MaxHeaderBytes,
		threshold:     opts.SpoolThreshold,
		limit:         opts.LimitPost,
		headerTimeout: orDefault(opts.Timeout, readHeaderTimeout),
		idleTimeout:   orDefault(opts.IdleTimeout, orDefault(opts.Timeout, idleTimeout)),
		proxyProtocol: opts.ProxyProtocol,
		trust:         opts.ForwardedAllow,
		log:           log,
	}
	if s.maxHead <= 0 {
		s.maxHead = http.DefaultMaxHeaderBytes
	}
	s.conns.New = func() any {
		c := &http1Conn{w: bufio.NewWriterSize(nil, http1WriteBuffer), sock: rawsock.NewSocket(nil)}
		c.r = bufio.NewReaderSize(&c.in, http1ReadBuffer)
		c.resp.log = func(msg string, args ...any) { log.Warn(msg, args...) }
		c.resp.shutting = &s.core.shutting
		c.resp.await = func(d time.Duration, ready func() bool, done func() bool) { awaitPeer(c, d, ready, done) }
		c.resp.interrupt = func() { c.conn.SetReadDeadline(time.Unix(1, 0)) }
		c.watch.exited = make(chan struct{}, 1)
		return c
	}
	s.core = newConnCore("http", log, s.recycle)
	return s
}

// Serve accepts connections on ln until Shutdown or Close.
func (s *http1Server) Serve(ln net.Listener) error { return s.core.serve(ln, s.open, s.serveConn) }

// Shutdown stops accepting, closes idle connections, and waits, until ctx
// is done, for the requests in flight; their connections close after them.
func (s *http1Server) Shutdown(ctx context.Context) error { return s.core.Shutdown(ctx) }

// Close closes every listener and connection at once.
func (s *http1Server) Close() error { return s.core.Close() }

// open makes conn an http1Conn. The first head's deadline is set here,
// under the core's lock, so that a Shutdown always overrides it.
func (s *http1Server) open(conn net.Conn) *http1Conn {
	c := s.conns.Get().(*http1Conn)
	c.conn, c.begun, c.fresh, c.lastPOST = conn, false, true, false
	c.raw = nil
	if sc, ok := conn.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.in = scanningReader{conn: conn}
	if c.raw != nil {
		c.sock.Reset(c.raw)
		c.in.sys = c.sock
	}
	c.r.Reset(&c.in)
	c.w.Reset(conn)
	c.info = connInfo{trust: s.trust}
	c.info.serverName, c.info.serverPort = hostPort(conn.LocalAddr().String())
	c.info.remoteAddr, c.info.remotePort = hostPort(conn.RemoteAddr().String())
	c.setReadDeadline(time.Now().Add(s.headerTimeout))
	return c
}

func (s *http1Server) recycle(c *http1Conn) {
	c.conn, c.in, c.raw = nil, scanningReader{}, nil
	c.sock.Reset(nil)
	c.r.Reset(&c.in)
	c.w.Reset(nil)
	s.conns.Put(c)
}

// serveConn serves requests on c until one of them, or the client, ends
// the connection.
func (s *http1Server) serveConn(c *http1Conn) {
	defer c.conn.Close()
	if s.proxyProtocol && !s.takeProxyHeader(c) {
		return
	}
	for n := int64(1); s.awaitRequest(c, n) && s.serveRequest(c, n); n++ {
	}
}

// takeProxyHeader reads the PROXY header that opens c, before the framing
// scanner sees any byte, and makes its source the client's address. A
// connection without one is refused: it did not come through the proxy.
func (s *http1Server) takeProxyHeader(c *http1Conn) bool {
	c.in.raw = true
	h, err := readProxyHeader(c.r)
	c.in.raw = false
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, io.EOF) {
			return false // the peer sent nothing in time, or left
		}
		return s.refuse(c, http.StatusBadRequest, err)
	}
	// What came after the header is the first request: scanned as if it
	// had been read after it.
	after, _ := c.r.Peek(c.r.Buffered())
	c.in.scanner.scan(after)
	if h.source.IsValid() {
		c.info.remoteAddr, c.info.remotePort = h.source.Addr().String(), strconv.Itoa(int(h.source.Port()))
	}
	return true
}

// awaitRequest waits for the first byte of request n: at most the idle
// timeout after a previous one, and not at all once the server stops.
func (s *http1Server) awaitRequest(c *http1Conn, n int64) bool {
	if n > 1 {
		// The deadline is set before the request counts as ended, so a
		// stop sweeping the connections from then on overrides it. A
		// request already here needs none: nothing waits.
		if !c.nextIsHere() {
			c.setReadDeadline(time.Now().Add(s.idleTimeout))
		}
		if !s.core.endRequest(&c.sequentialConn) {
			return false
		}
	}
	if _, err := c.r.Peek(1); err != nil {
		return false
	}
	if !s.core.beginRequest(&c.sequentialConn) {
		return false
	}
	if n > 1 {
		// Most heads came whole with their first byte: the header
		// timeout is set only if reading the head reads the connection.
		c.in.arm = time.Now().Add(s.headerTimeout)
	}
	return true
}

// nextIsHere reports whether bytes of the next request were read already.
func (c *http1Conn) nextIsHere() bool { return len(c.in.pending) > 0 || c.r.Buffered() > 0 }

// setReadDeadline sets the connection's read deadline for the loop, which
// clears it (clearReadDeadline) only when one is set: each change costs
// the runtime a timer update, and most requests need none.
func (c *http1Conn) setReadDeadline(t time.Time) {
	c.in.arm = time.Time{}
	c.conn.SetReadDeadline(t)
	c.in.deadline = true
}

// clearReadDeadline lifts the loop's read deadline, set or armed.
func (c *http1Conn) clearReadDeadline() {
	c.in.arm = time.Time{}
	if c.in.deadline {
		c.conn.SetReadDeadline(time.Time{})
		c.in.deadline = false
	}
}

// serveRequest reads request n and answers it. It reports whether the
// connection carries on to the next request.
func (s *http1Server) serveRequest(c *http1Conn, n int64) bool {
	if c.lastPOST {
		skipStrayLineEnds(c.r)
	}
	var err error
	c.head, err = readHead(c.r, c.head, s.maxHead)
	if c.in.malformedFrom(n) {
		return s.refuse(c, http.StatusBadRequest, c.in.scanner.why)
	}
	switch {
	case errors.Is(err, errHeadTooLarge):
		return s.refuse(c, http.StatusRequestHeaderFieldsTooLarge, err)
	case errors.Is(err, errHeadCutShort):
		return s.refuse(c, http.StatusBadRequest, err)
	case err != nil:
		return false // the client left, or sent no head in time
	}
	c.clearReadDeadline()
	h := &c.parsed
	if herr := h.parse(c.head); herr != nil {
		return s.refuse(c, herr.status, herr)
	}
	c.lastPOST = string(h.method) == http.MethodPost
	if code := refusal(string(h.method), string(h.target), h.types); code != 0 {
		return s.refuse(c, code, errRefused)
	}
	if overLimit(h.length, s.limit) {
		return s.refuse(c, http.StatusRequestEntityTooLarge, errBodyTooLarge)
	}
	if h.expect && h.minor >= 1 && h.wantsBody() {
		if !s.sendContinue(c) {
			return false
		}
	}
	b, herr := s.readBody(c)
	if herr != nil {
		return s.refuse(c, herr.status, herr)
	}
	defer b.close()
	if b.file == nil && cap(b.data) <= keptBodyCap {
		c.body = b.data[:0]
	}
	// The scanner has now seen the body and its trailers too.
	if c.in.malformedFrom(n) {
		return s.refuse(c, http.StatusBadRequest, c.in.scanner.why)
	}
	c.req.Vars.Reset()
	c.name = addHeadVars(&c.req.Vars, h, &c.info, b.size, c.name)
	if c.req.Vars.Err() != nil {
		return s.refuse(c, http.StatusRequestHeaderFieldsTooLarge, c.req.Vars.Err())
	}
	c.req.Body, c.req.BodyFile = b.data, b.file
	defer func() { c.req.Body, c.req.BodyFile = nil, nil }()
	return s.respond(c, h)
}

// respond runs the request through the handler while the peer watch looks
// out for the client leaving, and ends the response.
func (s *http1Server) respond(c *http1Conn, h *requestHead) bool {
	c.resp.begin(c.w, c.conn, c.raw, responseParams{
		http11:     h.minor >= 1,
		head:       string(h.method) == http.MethodHead,
		wantsClose: h.close,
		keep10:     h.keep10,
		upgrade:    h.upgrade,
	})
	ctx, cancel := context.WithCancelCause(context.Background())
	// A request that asks to upgrade may turn the connection into another
	// protocol (a WebSocket) that the worker reads itself, so the master
	// must not read it: the watch would take the client's bytes.
	if !h.upgrade {
		c.watch.start(c, cancel)
	}
	err := s.handler.ServeWSGI(ctx, &c.resp, &c.req)
	if !h.upgrade {
		c.watch.stop(c)
	}
	cancel(nil)
	if err != nil {
		// The head is out but the body is not whole. What was written
		// still goes out, then only closing the connection tells the
		// client the response is broken: a chunked body lacks its last
		// chunk, a Content-Length one is short (RFC 9112 section 8).
		c.resp.flushBroken()
		return false
	}
	if direct, keep := c.resp.wroteDirect(); direct {
		// A worker wrote the response; bytes it handed back may wait.
		// After an upgrade request the connection may be in another
		// protocol, so it never carries another request.
		return c.w.Flush() == nil && keep && !h.upgrade
	}
	keep, err := c.resp.finish()
	return err == nil && keep && !h.upgrade
}

// sendContinue answers Expect: 100-continue before the body is read (RFC
// 9110 section 10.1.1): the whole body is read before the application
// runs, so the client may send it now.
func (s *http1Server) sendContinue(c *http1Conn) bool {
	if _, err := c.w.WriteString("HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
		return false
	}
	return c.w.Flush() == nil
}

// readBody reads the request body in full, spooling a large one, and for
// a chunked body its trailer section too.
func (s *http1Server) readBody(c *http1Conn) (body, *headError) {
	h := &c.parsed
	var src io.Reader
	switch {
	case h.chunked:
		src = httputil.NewChunkedReader(c.r)
	case h.length > 0:
		src = io.LimitReader(c.r, h.length)
	default:
		return body{data: c.body[:0]}, nil
	}
	b, err := readBody(limitBody(src, s.limit), h.length, s.threshold, c.body)
	switch {
	case errors.Is(err, errBodyTooLarge):
		return body{}, refuseWith(http.StatusRequestEntityTooLarge, err)
	case err != nil:
		return body{}, refuseWith(http.StatusBadRequest, err)
	case h.length > 0 && b.size != h.length:
		b.close()
		return body{}, refuseWith(http.StatusBadRequest, errShortBody)
	}
	if h.chunked {
		if herr := readTrailers(c.r); herr != nil {
			b.close()
			return body{}, herr
		}
	}
	return b, nil
}

// readTrailers reads a chunked body's trailer section up to its empty line
// and refuses fields a trailer must not carry (RFC 9110 section 6.5.1).
func readTrailers(r *bufio.Reader) *headError {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return refuseWith(http.StatusBadRequest, errTrailerFields)
		}
		line, _ = cutLine(line)
		if len(line) == 0 {
			return nil
		}
		name, _, _ := cutField(line)
		if forbiddenTrailer(name) {
			return refuseWith(http.StatusBadRequest, errTrailerFields)
		}
	}
}

func cutField(line []byte) (name, value []byte, ok bool) {
	for i, b := range line {
		if b == ':' {
			return line[:i], line[i+1:], true
		}
	}
	return line, nil, false
}

// skipStrayLineEnds drops up to four CR or LF bytes before a request line,
// as net/http did after a POST, whose body old clients end with CRLF
// (RFC 9112 section 2.2). The scanner still judges them.
func skipStrayLineEnds(r *bufio.Reader) {
	peek, _ := r.Peek(4)
	n := 0
	for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
		n++
	}
	r.Discard(n)
}

var errRefused = errors.New("gateways: request refused before the application")

// refuse answers a request that never reaches the application and closes
// the connection, since what follows on it cannot be trusted. The answer
// is sent, the connection half-closed, and what the client still sends
// read and dropped for a moment: closing with unread bytes would reset the
// connection and could destroy the answer before the client reads it.
func (s *http1Server) refuse(c *http1Conn, status int, why error) bool {
	s.log.Debug("request refused", "protocol", "http", "remote", c.conn.RemoteAddr().String(), "status", status, "error", why)
	text := http.StatusText(status)
	var head [160]byte
	answer := append(head[:0], "HTTP/1.1 "...)
	answer = append(strconv.AppendInt(answer, int64(status), 10), ' ')
	answer = append(answer, text...)
	answer = append(answer, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	answer = strconv.AppendInt(answer, int64(len(text)+1), 10)
	answer = append(answer, "\r\nConnection: close\r\n\r\n"...)
	answer = append(append(answer, text...), '\n')
	if _, err := c.w.Write(answer); err != nil || c.w.Flush() != nil {
		return false
	}
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		c.setReadDeadline(time.Now().Add(unreadLinger))
		_, _ = io.Copy(io.Discard, c.conn)
	}
	return false
}

// scanningReader reads the connection through the framing scanner. Bytes
// the peer watch read ahead come first.
type scanningReader struct {
	conn net.Conn
	// sys, when the connection has a descriptor, is read with raw calls
	// (internal/rawsock): the loop reads once or twice a request.
	sys     *rawsock.Socket
	scanner framingScanner
	pending []byte
	// deadline says the loop left a read deadline set; arm, when set, is
	// one to set before the connection is next read (the header timeout).
	deadline bool
	arm      time.Time
	// drained says the last read left nothing in the socket (it read less
	// than it could), so the next bytes come with a readiness event.
	drained bool
	// raw passes bytes by the scanner: a PROXY header's, which is no part
	// of HTTP.
	raw bool
}

func (s *scanningReader) Read(p []byte) (int, error) {
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	return s.readConn(p)
}

// readConn reads the connection itself and scans what came.
func (s *scanningReader) readConn(p []byte) (n int, err error) {
	if !s.arm.IsZero() {
		s.conn.SetReadDeadline(s.arm)
		s.arm, s.deadline = time.Time{}, true
	}
	if s.sys != nil {
		n, err = s.sys.Read(p)
	} else {
		n, err = s.conn.Read(p)
	}
	s.drained = n < len(p)
	if n > 0 && !s.raw {
		s.scanner.scan(p[:n])
	}
	return n, err
}

// malformedFrom reports whether request number n, or one before it, was
// found malformed, which makes n's framing untrustworthy too.
func (s *scanningReader) malformedFrom(n int64) bool {
	bad := s.scanner.malformed
	return bad != 0 && bad <= n
}

// peerWatch reads the connection while a request runs, which nothing else
// does then, to learn that the client left: its close or reset cancels the
// request, so a queued request is dropped and a running one stopped, its
// iterable closed (PEP 3333). Bytes that arrive instead are the next
// pipelined request; they are kept for the loop and the watch ends. It
// starts once the request has run peerWatchDelay, as for uwsgi and SCGI
// (stream.go): most requests end sooner, and a reader per request cost the
// master a goroutine and wake-ups each; a worker writing to a client that
// left learns it from the write in any case.
type peerWatch struct {
	stopping atomic.Bool
	exited   chan struct{}
	scratch  [512]byte
	// timer starts the watch; c and cancel are the request's, set before
	// the timer is armed.
	timer  *time.Timer
	c      *http1Conn
	cancel context.CancelCauseFunc
	// parked says awaitPeer stopped the timer and the response ended: no
	// watch runs, and stop has nothing to wait for.
	parked bool
}

func (w *peerWatch) start(c *http1Conn, cancel context.CancelCauseFunc) {
	w.c, w.cancel, w.parked = c, cancel, false
	if w.timer == nil {
		w.timer = time.AfterFunc(peerWatchDelay, w.run)
		return
	}
	w.timer.Reset(peerWatchDelay)
}

// run reads once and reports to exited, which stop waits on.
func (w *peerWatch) run() {
	c := w.c
	defer func() { w.exited <- struct{}{} }()
	if len(c.in.pending) > 0 || c.r.Buffered() > 0 {
		return // the next request is already here
	}
	n, err := c.in.readConn(w.scratch[:])
	if n > 0 {
		c.in.pending = w.scratch[:n]
	}
	var ne net.Error
	if err != nil && n == 0 && !(w.stopping.Load() && errors.As(err, &ne) && ne.Timeout()) {
		w.cancel(fmt.Errorf("gateways: the client closed the connection: %w", err))
	}
}

// awaitPeer is the lazy completion's wait (wsgi.PeerAwaiter): the request's
// own goroutine reads the connection for at most d, so the client's next
// request wakes it with no goroutine or timer of the watch's. The watch's
// timer is held back meanwhile, since only one may read. When the response
// has ended (done says no more), the loop reads next and sets its own
// deadline, so nothing is undone; else the deadline is cleared and the
// watch armed again: the request still running is watched as before.
func awaitPeer(c *http1Conn, d time.Duration, ready func() bool, done func() (more bool)) {
	w := &c.watch
	if w.timer == nil || !w.timer.Stop() {
		done() // the watch reads already, or there is none (an upgrade)
		return
	}
	var err error
	if !c.nextIsHere() {
		c.setReadDeadline(time.Now().Add(d))
		if !ready() {
			err = c.readNext()
		}
	}
	// Before the deadline is cleared: an interruption cannot come after.
	if !done() {
		w.parked = true
		return
	}
	c.clearReadDeadline()
	w.timer.Reset(peerWatchDelay)
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		w.cancel(fmt.Errorf("gateways: the client closed the connection: %w", err))
	}
}

// readNext reads the first bytes of the next request. When the last read
// drained the socket, which it does unless a client sends ahead, nothing
// can be there before the client has read the response: the read waits
// for the readiness event first, rather than try, fail with EAGAIN and
// then wait. A readiness event left over from bytes already read only
// costs that failed read after all.
func (c *http1Conn) readNext() error {
	if c.in.drained && c.in.sys != nil {
		if err := c.in.sys.AwaitReadable(); err != nil {
			return err
		}
	}
	_, err := c.r.Peek(1)
	return err
}

// stop ends the watch and waits for it, so the loop may read again. A
// watch that never started has nothing to wait for.
func (w *peerWatch) stop(c *http1Conn) {
	if w.timer.Stop() || w.parked {
		w.parked = false
		return
	}
	w.stopping.Store(true)
	c.conn.SetReadDeadline(time.Unix(1, 0))
	<-w.exited
	w.stopping.Store(false)
	c.in.deadline = true
	c.clearReadDeadline()
}
