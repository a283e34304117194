// The response writer of the gateways whose response is a head and then
// the body's bytes as they are, ended by the end of the stream: uwsgi and
// SCGI on a connection (stream.go), CGI on stdout (cgi.go). FastCGI frames
// its body in records instead (fastcgi_request.go). On a connection the
// worker writes the response itself (wsgi.DirectResponder), framed the same
// way, and this writer carries only what the master sends: its own answers
// and what the worker hands back when the peer reads slowly.
package gateways

import (
	"bufio"
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/gowsgi/gowsgi/wsgi"
)

var errInterimStatus = errors.New("gateways: a 1xx status cannot end a response")

// plainResponse is a wsgi.ResponseWriter that writes its protocol's head
// and then the body through a buffered writer.
type plainResponse struct {
	w *bufio.Writer
	// raw is what w writes to: file bodies go straight to it once w is
	// flushed.
	raw io.Writer
	// appendHead appends the protocol's head for a status and headers.
	appendHead func(dst []byte, status string, headers []byte) ([]byte, error)
	head       []byte // reused storage for the formatted head
	// conn, when not nil, is the connection a worker may write the
	// response to itself, framed as framing says (wsgi.DirectResponder).
	conn    syscall.RawConn
	framing wsgi.Framing
}

// WriteHead writes the response head. A 1xx status is refused: PEP 3333's
// status is the final one, and the peer would wait for another head.
func (r *plainResponse) WriteHead(status string, headers []byte) error {
	if len(status) > 0 && status[0] == '1' {
		return errInterimStatus
	}
	var err error
	if r.head, err = r.appendHead(r.head[:0], status, headers); err != nil {
		return err
	}
	_, err = r.w.Write(r.head)
	return err
}

// WriteBody writes a chunk of the body.
func (r *plainResponse) WriteBody(p []byte) error {
	_, err := r.w.Write(p)
	return err
}

// SendFile flushes what is buffered and copies count bytes of f from
// offset (count -1: to its end) to raw itself: a TCP connection takes an
// io.LimitedReader over an *os.File to sendfile(2), and a file sent to its
// end goes through sendfile(2) on a Unix socket or splice(2) to a pipe too.
func (r *plainResponse) SendFile(f *os.File, offset, count int64) error {
	if err := r.w.Flush(); err != nil {
		return err
	}
	return copyFile(r.raw, f, offset, count)
}

// Flush sends what is buffered.
func (r *plainResponse) Flush() error { return r.w.Flush() }

// Direct offers the connection to a worker, unless nothing was set up for
// it (CGI's stdout) or something is already buffered ahead of the worker's
// bytes.
func (r *plainResponse) Direct() (syscall.RawConn, wsgi.Framing, wsgi.HTTPFlags, bool) {
	return r.conn, r.framing, 0, r.conn != nil && r.framing != wsgi.FramingNone && r.w.Buffered() == 0
}

// WriteRaw writes bytes the worker framed already: for these protocols the
// body is the bytes as they are, so as WriteBody.
func (r *plainResponse) WriteRaw(p []byte) error { return r.WriteBody(p) }

// SendFileRaw sends a file's bytes as they are, as SendFile does.
func (r *plainResponse) SendFileRaw(f *os.File, offset, count int64) error {
	return r.SendFile(f, offset, count)
}

// Completed needs nothing here: the connection ends with the request, and
// a broken response comes back as ServeWSGI's error.
func (r *plainResponse) Completed(wsgi.Completion) {}
