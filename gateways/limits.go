// The request body limit (--limit-post, uWSGI's option): a body larger than
// the limit gets 413 Content Too Large (RFC 9110 section 15.5.14) before the
// master reads it when its length is declared, and as soon as it passes the
// limit when it is not (a chunked HTTP body, a FastCGI STDIN stream ended by
// an empty record), so a client cannot make the master spool without bound.
package gateways

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// unreadLinger is how long a connection refused with its body unread stays
// half-closed before it is closed: closing at once, with body bytes
// unread, would reset it and could destroy the answer before the client
// reads it (net/http waits as long for the same reason).
const unreadLinger = 500 * time.Millisecond

// errBodyTooLarge is the error a body passing the limit is read with.
var errBodyTooLarge = errors.New("gateways: the request body is larger than the limit")

// overLimit reports whether a declared body length passes limit; a limit
// of 0 means none, and a length of -1 (unknown) is checked while reading.
func overLimit(declared, limit int64) bool {
	return limit > 0 && declared > limit
}

// refuseUnread answers 413 and closes the connection without reading the
// body. net/http would otherwise read up to 256 KiB of it when the handler
// returns, and wait for a client that sent only the head.
func refuseUnread(w http.ResponseWriter) {
	body := http.StatusText(http.StatusRequestEntityTooLarge) + "\n"
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = io.WriteString(w, body)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		return // HTTP/2: ending the handler resets just this stream
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	time.AfterFunc(unreadLinger, func() { closeQuietly(conn) })
}

func closeQuietly(conn net.Conn) { _ = conn.Close() }

// limitBody returns r, or, when limit is not 0, a reader of r that fails
// with errBodyTooLarge once more than limit bytes have come through.
func limitBody(r io.Reader, limit int64) io.Reader {
	if limit <= 0 {
		return r
	}
	return &limitedBody{r: r, left: limit}
}

// limitedBody is limitBody's reader. Unlike io.LimitReader it tells a body
// that ends at the limit from one that goes on: it reads one byte past the
// limit before failing.
type limitedBody struct {
	r    io.Reader
	left int64 // bytes still allowed
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n + int(l.left), errBodyTooLarge
	}
	return n, err
}
