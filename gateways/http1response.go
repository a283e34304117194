// The response side of the plain-HTTP/1.x server (http1conn.go): how a
// response is framed on the wire (responseFraming, the one place that
// decides it) and the wsgi.ResponseWriter that writes the status line, the
// headers with Date, Server, Content-Length or chunked and Connection, and
// the body. What the framing decision needs from the request is
// responseParams, which is also what a worker writing the response itself
// is handed with the client's socket (wsgi.DirectResponder): the worker
// frames it the same way (pyembed/gw_worker_http.c), and this writer then carries
// only what the master answers itself and what the worker hands back when
// the client reads slowly.
package gateways

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

// heldBodyBytes is how much body a response holds back before its head is
// written: a response that ends within it goes out with a Content-Length
// even when the application set none, as net/http did (its 2048-byte
// buffer before chunking).
const heldBodyBytes = 2048

var (
	errBodyNotAllowed = errors.New("gateways: a body for a response whose status allows none (RFC 9110 section 15)")
	errBodyOverLength = errors.New("gateways: the body is longer than the application's Content-Length")
)

// responseParams is what the request decides about its response.
type responseParams struct {
	http11     bool // HTTP/1.1 or later: chunked allowed, keep-alive by default
	head       bool // HEAD: no body goes out (RFC 9110 section 9.3.2)
	wantsClose bool // the client asked to close, or is HTTP/1.0 without keep-alive
	keep10     bool // an HTTP/1.0 client asked for keep-alive
	stopping   bool // the server is shutting down: close after this response
	upgrade    bool // the client asked to switch protocols: the connection closes after
}

// httpFlags are p as a worker writing the response itself is told them.
func (p responseParams) httpFlags() wsgi.HTTPFlags {
	var f wsgi.HTTPFlags
	for _, bit := range []struct {
		set  bool
		flag wsgi.HTTPFlags
	}{{p.http11, wsgi.HTTP11}, {p.head, wsgi.HTTPHead}, {p.wantsClose, wsgi.HTTPWantsClose},
		{p.keep10, wsgi.HTTPKeep10}, {p.stopping, wsgi.HTTPStopping}, {p.upgrade, wsgi.HTTPUpgrade}} {
		if bit.set {
			f |= bit.flag
		}
	}
	return f
}

// responseFraming is how one response is delimited and whether its
// connection stays open after it.
type responseFraming struct {
	bodyless   bool  // no body bytes go out: HEAD, 1xx, 204, 304
	chunked    bool  // Transfer-Encoding: chunked (RFC 9112 section 7.1)
	addLength  int64 // a Content-Length to add; -1 for none
	keepAlive  bool  // the connection reads the next request afterwards
	connection string
}

// frameResponse decides how a response is framed (RFC 9112 sections 6.3
// and 9.3), as net/http did: status is its code; declared is the
// application's Content-Length, -1 for none; held is the body held back so
// far, whole when ended is set.
func frameResponse(p responseParams, status int, declared int64, held int, ended bool) responseFraming {
	// After a request that asked to upgrade the connection closes
	// (http1conn.go): it may have become another protocol.
	f := responseFraming{addLength: -1, keepAlive: !p.wantsClose && !p.stopping && !p.upgrade}
	f.bodyless = p.head || !bodyAllowed(status)
	length := declared
	if ended && declared < 0 && bodyAllowed(status) && (!p.head || held > 0) {
		f.addLength, length = int64(held), int64(held)
	}
	switch {
	case f.bodyless || length >= 0:
	case p.http11:
		f.chunked = true
	default:
		f.keepAlive = false // the body ends with the connection
	}
	if p.keep10 && !p.stopping && (p.head || length >= 0 || !bodyAllowed(status)) {
		f.keepAlive, f.connection = true, "keep-alive"
	}
	if !f.keepAlive && p.http11 {
		f.connection = "close"
	}
	return f
}

// bodyAllowed reports whether a status may carry a body (RFC 9110 sections
// 15.2, 15.3.5 and 15.4.5).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// http1Response is a wsgi.ResponseWriter on an HTTP/1.x connection. Its
// zero value is not usable; the connection sets it up with begin.
type http1Response struct {
	w      *bufio.Writer
	raw    net.Conn // file bodies go straight to it once w is flushed
	params responseParams
	// direct, when not nil, is raw's descriptor for a worker to write the
	// response to itself; completion is then how that response ended.
	direct     syscall.RawConn
	completion wsgi.Completion
	completed  bool

	head      []byte // the status line and the application's headers
	status    int
	declared  int64 // the application's Content-Length; -1 for none
	hasServer bool
	hasDate   bool
	held      []byte // body held back before the head is written
	headDone  bool   // WriteHead was called
	committed bool   // the head is in w
	framing   responseFraming
	written   int64 // body bytes written
	log       func(msg string, args ...any)
	// shutting, when set, says the server is shutting down; it is read
	// when the head goes out, as late as the framing can still say so.
	shutting *atomic.Bool
	// await and interrupt wait for the client's next bytes and cut that
	// wait short (wsgi.PeerAwaiter), on the connection's reader.
	await     func(d time.Duration, ready func() bool, done func() bool)
	interrupt func()
}

// begin readies r for a response to a request with params p.
func (r *http1Response) begin(w *bufio.Writer, raw net.Conn, direct syscall.RawConn, p responseParams) {
	*r = http1Response{w: w, raw: raw, direct: direct, params: p, head: r.head[:0], held: r.held[:0], declared: -1,
		log: r.log, shutting: r.shutting, await: r.await, interrupt: r.interrupt}
}

// Direct offers the connection to a worker, framed as this writer would
// frame the response, unless it cannot be handed on or bytes are already
// buffered ahead of the worker's.
func (r *http1Response) Direct() (syscall.RawConn, wsgi.Framing, wsgi.HTTPFlags, bool) {
	if r.direct == nil || r.w.Buffered() > 0 {
		return nil, wsgi.FramingNone, 0, false
	}
	p := r.params
	p.stopping = p.stopping || (r.shutting != nil && r.shutting.Load())
	return r.direct, wsgi.FramingHTTP1, p.httpFlags(), true
}

// WriteRaw writes bytes the worker framed already, handed back because
// the client read slowly.
func (r *http1Response) WriteRaw(p []byte) error {
	_, err := r.w.Write(p)
	return err
}

// SendFileRaw sends a file's bytes as they are, after what is buffered.
func (r *http1Response) SendFileRaw(f *os.File, offset, count int64) error {
	if err := r.w.Flush(); err != nil {
		return err
	}
	return copyFile(r.raw, f, offset, count)
}

// http1Response may end a response lazily (server/lazy.go).
var _ wsgi.PeerAwaiter = (*http1Response)(nil)

// AwaitPeer waits for the client's next request or its leaving, at most d
// (wsgi.PeerAwaiter).
func (r *http1Response) AwaitPeer(d time.Duration, ready func() bool, done func() bool) {
	r.await(d, ready, done)
}

// InterruptAwait ends AwaitPeer's wait early.
func (r *http1Response) InterruptAwait() { r.interrupt() }

// Completed records how a response the worker wrote ended.
func (r *http1Response) Completed(c wsgi.Completion) {
	r.completion, r.completed = c, true
}

// wroteDirect reports whether a worker wrote the response, and whether the
// connection may then carry another request.
func (r *http1Response) wroteDirect() (direct, keepAlive bool) {
	return r.completed, r.completed && r.completion.KeepAlive && !r.completion.Broken
}

// WriteHead keeps the status line and headers until the framing is known.
// A 1xx status is refused: PEP 3333's status is the final one.
func (r *http1Response) WriteHead(status string, headers []byte) error {
	code, err := strconv.Atoi(status[:min(3, len(status))])
	if err != nil || code < 100 || code > 999 {
		return fmt.Errorf("gateways: bad status %q", status)
	}
	if code < 200 {
		return errInterimStatus
	}
	r.status, r.headDone = code, true
	r.head = append(r.head, statusLinePrefix(r.params.http11)...)
	r.head = append(append(r.head, status...), "\r\n"...)
	err = wsgi.EachVar(headers, func(name, value []byte) bool {
		r.addHeader(name, value)
		return true
	})
	if err != nil {
		return fmt.Errorf("gateways: response headers: %w", err)
	}
	return nil
}

// statusLinePrefix is the version a response is sent as: HTTP/1.0 to an
// HTTP/1.0 client, as net/http answered (RFC 9110 section 6.2).
func statusLinePrefix(http11 bool) string {
	if http11 {
		return "HTTP/1.1 "
	}
	return "HTTP/1.0 "
}

// addHeader appends one application header, noting the ones the framing
// depends on. A Content-Length that is not a number is dropped, and a
// status without a body loses the fields that would describe one, as
// net/http did.
func (r *http1Response) addHeader(name, value []byte) {
	switch {
	case asciiEqualFold(name, "Content-Length"):
		if !bodyAllowed(r.status) || r.declared >= 0 {
			return
		}
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || n < 0 {
			r.log("dropping an invalid Content-Length", "value", string(value))
			return
		}
		r.declared = n
	case asciiEqualFold(name, "Content-Type") && r.status == http.StatusNotModified:
		return
	case asciiEqualFold(name, "Server"):
		r.hasServer = true
	case asciiEqualFold(name, "Date"):
		r.hasDate = true
	}
	r.head = append(append(append(append(r.head, name...), ": "...), value...), "\r\n"...)
}

// commit decides the framing and puts the head, and the body held so far,
// in w. ended says the response has no more body to come.
func (r *http1Response) commit(ended bool) error {
	r.committed = true
	if r.shutting != nil && r.shutting.Load() {
		r.params.stopping = true
	}
	r.framing = frameResponse(r.params, r.status, r.declared, len(r.held), ended)
	h := r.head
	if !r.hasServer {
		h = append(h, "Server: gowsgi\r\n"...)
	}
	if !r.hasDate {
		h = append(h, "Date: "...)
		h = appendHTTPDate(h)
		h = append(h, "\r\n"...)
	}
	if r.framing.addLength >= 0 {
		h = append(h, "Content-Length: "...)
		h = append(strconv.AppendInt(h, r.framing.addLength, 10), "\r\n"...)
	}
	if r.framing.connection != "" {
		h = append(append(append(h, "Connection: "...), r.framing.connection...), "\r\n"...)
	}
	if r.framing.chunked {
		h = append(h, "Transfer-Encoding: chunked\r\n"...)
	}
	r.head = append(h, "\r\n"...)
	if _, err := r.w.Write(r.head); err != nil {
		return err
	}
	held := r.held
	r.held = r.held[:0]
	return r.writeFramed(held)
}

// WriteBody writes a chunk of the body, holding it back while the head
// has not gone out and the held bytes fit heldBodyBytes.
func (r *http1Response) WriteBody(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if err := r.count(int64(len(p))); err != nil {
		return err
	}
	if !r.committed {
		if len(r.held)+len(p) <= heldBodyBytes {
			r.held = append(r.held, p...)
			return nil
		}
		if err := r.commit(false); err != nil {
			return err
		}
	}
	return r.writeFramed(p)
}

// count adds n body bytes, refusing a body the status does not allow
// (HEAD drops its body silently) or one longer than the declared length.
func (r *http1Response) count(n int64) error {
	if !bodyAllowed(r.status) {
		return errBodyNotAllowed
	}
	r.written += n
	if r.declared >= 0 && r.written > r.declared {
		return errBodyOverLength
	}
	return nil
}

// writeFramed writes body bytes after the head, in a chunk when the
// response is chunked.
func (r *http1Response) writeFramed(p []byte) error {
	if len(p) == 0 || r.framing.bodyless {
		return nil
	}
	if r.framing.chunked {
		if err := r.chunkHeader(int64(len(p))); err != nil {
			return err
		}
	}
	if _, err := r.w.Write(p); err != nil {
		return err
	}
	if r.framing.chunked {
		_, err := r.w.WriteString("\r\n")
		return err
	}
	return nil
}

func (r *http1Response) chunkHeader(n int64) error {
	var buf [20]byte
	line := append(strconv.AppendInt(buf[:0], n, 16), "\r\n"...)
	_, err := r.w.Write(line)
	return err
}

// SendFile commits the head, then copies count bytes of f from offset
// (count -1: to its end) with sendfile(2), in one chunk when the response
// is chunked.
func (r *http1Response) SendFile(f *os.File, offset, count int64) error {
	if count < 0 {
		info, err := f.Stat()
		if err != nil {
			return fmt.Errorf("gateways: sending a file: %w", err)
		}
		count = max(info.Size()-offset, 0)
	}
	if count == 0 {
		return nil
	}
	if err := r.count(count); err != nil {
		return err
	}
	if !r.committed {
		if err := r.commit(false); err != nil {
			return err
		}
	}
	if r.framing.bodyless {
		return nil
	}
	if r.framing.chunked {
		if err := r.chunkHeader(count); err != nil {
			return err
		}
	}
	if err := r.w.Flush(); err != nil {
		return err
	}
	if err := copyFile(r.raw, f, offset, count); err != nil {
		return err
	}
	if r.framing.chunked {
		_, err := r.w.WriteString("\r\n")
		return err
	}
	return nil
}

// Flush sends the head and what is buffered. Before WriteHead only bytes
// a worker handed back can be buffered.
func (r *http1Response) Flush() error {
	if !r.headDone {
		return r.w.Flush() // bytes a worker handed back, if any
	}
	if !r.committed {
		if err := r.commit(false); err != nil {
			return err
		}
	}
	return r.w.Flush()
}

// finish ends a response the application completed: the last chunk of a
// chunked body, and everything flushed. keepAlive reports whether the
// connection may carry another request: not when the body was shorter than
// its Content-Length (the client would read the next response as its
// rest).
func (r *http1Response) finish() (keepAlive bool, err error) {
	if !r.headDone {
		return false, errors.New("gateways: the response ended without a head")
	}
	if !r.committed {
		if err := r.commit(true); err != nil {
			return false, err
		}
	}
	if r.framing.chunked {
		if _, err := r.w.WriteString("0\r\n\r\n"); err != nil {
			return false, err
		}
	}
	if err := r.w.Flush(); err != nil {
		return false, err
	}
	short := r.declared >= 0 && !r.framing.bodyless && r.written != r.declared
	return r.framing.keepAlive && !short, nil
}

// flushBroken sends what a broken response wrote before it broke (PEP 3333:
// every block the app yielded is transmitted), without the end a whole
// response has. Without a head only what a worker handed back goes out.
func (r *http1Response) flushBroken() {
	_ = r.Flush()
}

// dateCache keeps the formatted Date for the current second, shared by
// every connection's goroutine.
var dateCache atomic.Pointer[dateStamp]

type dateStamp struct {
	unix int64
	text []byte
}

// appendHTTPDate appends the current time in the IMF-fixdate form (RFC 9110
// section 5.6.7), formatted once a second.
func appendHTTPDate(dst []byte) []byte {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.unix == now.Unix() {
		return append(dst, d.text...)
	}
	text := now.UTC().AppendFormat(nil, http.TimeFormat)
	dateCache.Store(&dateStamp{unix: now.Unix(), text: text})
	return append(dst, text...)
}
