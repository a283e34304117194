// Connections whose request framing is checked as net/http reads them: a
// listener wrapper feeds every byte net/http reads through a framingScanner
// (httpframing.go) and keeps the verdicts per request number, so the HTTP
// handler can refuse a malformed request before it reads its body or calls
// the application. The scanner may be ahead of the handler when requests are
// pipelined, which is why a verdict names the request it is about.
package gateways

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// framingListener accepts connections whose framing is checked.
type framingListener struct {
	net.Listener
}

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framedConn{Conn: c}, nil
}

// badFramingAnswer is sent instead of net/http's own refusal of a request
// the scanner found malformed: RFC 9112 section 6.3 asks for 400 where
// net/http answers 501 to a coding list that does not end in chunked.
var badFramingAnswer = []byte("HTTP/1.1 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Length: 12\r\n" +
	"Connection: close\r\n\r\n" +
	"Bad Request\n")

// framedConn is a server connection that scans what net/http reads from it.
type framedConn struct {
	net.Conn
	// scanner is used only inside Read, which net/http never calls from
	// two goroutines at once.
	scanner framingScanner
	// malformed is the number of the first malformed request, 0 while none.
	malformed atomic.Int64
	// started counts the requests handed to the handler; answered is what
	// started was when net/http last finished a response (http.StateIdle).
	started  atomic.Int64
	answered atomic.Int64
	// answeredForNetHTTP is set once badFramingAnswer has replaced
	// net/http's own refusal; what net/http writes after it is dropped.
	answeredForNetHTTP atomic.Bool
	// reason, when set, is the application's reason phrase for the
	// response the handler is starting, which net/http would replace with
	// its own. Set and used on the connection's serving goroutine, which
	// is the one that runs the handler and writes its response.
	reason string
}

// Read passes what it reads through the scanner.
func (c *framedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.scanner.malformed == 0 {
		c.scanner.scan(p[:n])
		if c.scanner.malformed != 0 {
			c.malformed.Store(c.scanner.malformed)
		}
	}
	return n, err
}

// Write replaces net/http's own refusal of a malformed request with
// badFramingAnswer. net/http writes such a refusal straight to the
// connection when no handler is running and every earlier response is
// complete, which is how it is told apart from a handler's output.
func (c *framedConn) Write(p []byte) (int, error) {
	if c.reason != "" {
		return c.writeWithReason(p)
	}
	if c.malformed.Load() == 0 {
		return c.Conn.Write(p)
	}
	if c.answeredForNetHTTP.Load() {
		return len(p), nil
	}
	started := c.started.Load()
	if c.malformed.Load() != started+1 || c.answered.Load() != started {
		return c.Conn.Write(p)
	}
	c.answeredForNetHTTP.Store(true)
	if _, err := c.Conn.Write(badFramingAnswer); err != nil {
		return 0, err
	}
	return len(p), nil
}

// statusLineStart is "HTTP/1.1 200 ", the part of a status line before the
// reason phrase.
const statusLineStart = len("HTTP/1.1 200 ")

// writeWithReason writes p, which starts a response (net/http flushes each
// response whole before it writes the next), with c.reason in place of the
// reason phrase net/http wrote.
func (c *framedConn) writeWithReason(p []byte) (int, error) {
	reason := c.reason
	c.reason = ""
	end := bytes.Index(p, []byte("\r\n"))
	if end < statusLineStart || !bytes.HasPrefix(p, []byte("HTTP/1.")) {
		return c.Write(p) // not a status line after all: as net/http wrote it
	}
	line := make([]byte, 0, len(p)-end+statusLineStart+len(reason))
	line = append(append(append(line, p[:statusLineStart]...), reason...), p[end:]...)
	if _, err := c.Conn.Write(line); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrom keeps sendfile(2) for file responses: net/http looks for
// io.ReaderFrom on the connection, which embedding net.Conn hides.
func (c *framedConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(c.Conn, r)
}

// CloseWrite keeps net/http's lingering close after a refusal that left the
// body unread: it half-closes and waits, so the client reads the answer
// before a reset.
func (c *framedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// beginRequest counts a request reaching the handler and returns its
// number on the connection.
func (c *framedConn) beginRequest() int64 { return c.started.Add(1) }

// malformedFrom reports whether request number n, or one before it, was
// found malformed, which makes n's framing untrustworthy too.
func (c *framedConn) malformedFrom(n int64) bool {
	bad := c.malformed.Load()
	return bad != 0 && bad <= n
}

// framedConnKey is the context key under which the handler finds the
// request's connection.
type framedConnKey struct{}

// withFramedConn is http.Server.ConnContext: it lets the handler find c.
func withFramedConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, framedConnKey{}, c)
}

// framedConnOf returns the connection r arrived on.
func framedConnOf(r *http.Request) *framedConn {
	return r.Context().Value(framedConnKey{}).(*framedConn)
}

// noteConnState is http.Server.ConnState: net/http enters StateIdle once a
// response is complete and before it reads the next request.
func noteConnState(c net.Conn, state http.ConnState) {
	if state != http.StateIdle {
		return
	}
	if fc, ok := c.(*framedConn); ok {
		fc.answered.Store(fc.started.Load())
	}
}
