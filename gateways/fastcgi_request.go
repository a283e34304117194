// One FastCGI request: its goroutine, which turns the PARAMS stream into CGI
// variables, reads STDIN into a body, calls the handler and ends the request,
// and its wsgi.ResponseWriter, which frames the response as STDOUT records.
package gateways

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/gowsgi/gowsgi/wsgi"
)

// fcgiAbortedStatus is the appStatus of a request the web server aborted.
const fcgiAbortedStatus = 1

// fcgiFlushSize is how many response bytes are gathered before they are
// written, when the server does not flush sooner.
const fcgiFlushSize = 64 << 10

// fcgiKeptCap is the largest buffer kept for the next request; a larger one
// is left to the garbage collector so a rare big request does not pin memory.
const fcgiKeptCap = 256 << 10

var (
	errFCGIAborted  = errors.New("fastcgi: the web server aborted the request")
	errFCGIBodyRead = errors.New("fastcgi: STDIN after the body was read")
)

// fcgiBuffers is the storage a request reuses from earlier ones.
type fcgiBuffers struct {
	params []byte // the PARAMS stream, whole
	req    wsgi.Request
	body   []byte // inline body
	head   []byte // the CGI head
	out    []byte // records not yet written
}

// fcgiRequest is one request on a connection. The read loop owns started
// and overflow; the request's goroutine owns buf once started.
type fcgiRequest struct {
	c        *fcgiConn
	id       uint16
	keepConn bool
	buf      *fcgiBuffers
	ctx      context.Context
	cancel   context.CancelCauseFunc
	stdinR   *io.PipeReader
	stdinW   *io.PipeWriter
	aborted  atomic.Bool

	started  bool // PARAMS has ended and the goroutine runs
	overflow bool // PARAMS was longer than FastCGIOptions.MaxParamsSize
}

func (c *fcgiConn) newRequest(id uint16, keepConn bool) *fcgiRequest {
	ctx, cancel := context.WithCancelCause(context.Background())
	pr, pw := io.Pipe()
	buf := c.g.buffers.Get().(*fcgiBuffers)
	buf.params = buf.params[:0]
	return &fcgiRequest{c: c, id: id, keepConn: keepConn, buf: buf,
		ctx: ctx, cancel: cancel, stdinR: pr, stdinW: pw}
}

// stop cancels the request and unblocks its body reader.
func (r *fcgiRequest) stop(cause error) {
	r.cancel(cause)
	r.stdinR.CloseWithError(cause)
}

// serve runs the request to its END_REQUEST.
func (r *fcgiRequest) serve() {
	defer r.c.wg.Done()
	defer r.cancel(nil)
	w := fcgiResponse{r: r, out: r.buf.out[:0]}
	err := r.run(&w)
	switch {
	case r.aborted.Load():
		w.out = appendFCGIRecord(w.out[:0], fcgiStdout, r.id, nil)
		w.out = appendFCGIEndRequest(w.out, r.id, fcgiAbortedStatus, fcgiRequestComplete)
	case errors.Is(context.Cause(r.ctx), errFCGIClosed):
		w.out = w.out[:0] // the web server is gone: nobody to tell
	case err != nil:
		// The head is out but the body is not whole, and END_REQUEST would
		// pass it off as complete: only ending the connection tells the
		// web server the response is broken. What was written goes first
		// (PEP 3333: yielded blocks are transmitted), and the end is a
		// reset: nginx unbuffered takes a close without END_REQUEST as
		// the end of a whole response.
		r.c.g.log.Error("fastcgi response broken", "request", int(r.id), "error", err)
		_ = w.Flush()
		abort(r.c.nc)
		r.c.nc.Close()
		w.out = w.out[:0]
	default:
		w.out = appendFCGIRecord(w.out, fcgiStdout, r.id, nil)
		w.out = appendFCGIEndRequest(w.out, r.id, 0, fcgiRequestComplete)
	}
	if cap(w.out) <= fcgiKeptCap {
		r.buf.out = w.out[:0]
	}
	_ = r.c.end(r, w.out)
}

// run builds the request and serves it, or answers it itself when the web
// server sent something no application should see.
func (r *fcgiRequest) run(w *fcgiResponse) error {
	defer r.stdinR.CloseWithError(errFCGIBodyRead)
	if r.overflow {
		return w.refuse(http.StatusRequestHeaderFieldsTooLarge)
	}
	req := &r.buf.req
	p := newParams(&req.Vars)
	err := eachFCGIPair(r.buf.params, p.add)
	if err == nil {
		err = p.finish()
	}
	if err != nil {
		r.c.g.log.Warn("fastcgi request refused", "request", int(r.id), "error", err)
		if errors.Is(err, wsgi.ErrVarTooLong) {
			return w.refuse(http.StatusRequestHeaderFieldsTooLarge)
		}
		return w.refuse(http.StatusBadRequest)
	}
	if overLimit(p.contentLength, r.c.g.limit) {
		r.c.g.log.Warn("fastcgi request refused", "request", int(r.id), "error", errBodyTooLarge)
		return w.refuse(http.StatusRequestEntityTooLarge)
	}
	b, err := readBody(limitBody(r.stdinR, r.c.g.limit), p.contentLength, r.c.g.threshold, r.buf.body)
	r.stdinR.CloseWithError(errFCGIBodyRead)
	if err != nil {
		if r.aborted.Load() {
			return nil
		}
		if errors.Is(err, errBodyTooLarge) {
			r.c.g.log.Warn("fastcgi request refused", "request", int(r.id), "error", err)
			return w.refuse(http.StatusRequestEntityTooLarge)
		}
		r.c.g.log.Warn("fastcgi request refused", "request", int(r.id), "error", err)
		return w.refuse(http.StatusBadRequest)
	}
	if b.file != nil {
		defer b.file.Close()
	} else if cap(b.data) <= fcgiKeptCap {
		r.buf.body = b.data[:0]
	}
	if p.contentLength < 0 && b.size > 0 {
		// The stream's end marked the body's; the app still needs its length.
		req.Vars.Add("CONTENT_LENGTH", strconv.FormatInt(b.size, 10))
	}
	req.Body, req.BodyFile = b.data, b.file
	err = r.c.g.handler.ServeWSGI(r.ctx, w, req)
	req.Body = nil
	return err
}

// fcgiResponse is a wsgi.ResponseWriter that frames the response as STDOUT
// records (section 6.2): a CGI head, then the body.
type fcgiResponse struct {
	r   *fcgiRequest
	out []byte
}

// refuse answers on the gateway's own behalf with a short plain-text body.
func (w *fcgiResponse) refuse(code int) error {
	status := strconv.Itoa(code) + " " + http.StatusText(code)
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain; charset=utf-8")
	if err := w.WriteHead(status, headers.Block()); err != nil {
		return err
	}
	return w.WriteBody([]byte(status + "\n"))
}

// live reports errFCGIAborted once the web server has aborted the request:
// it reads no more of it.
func (w *fcgiResponse) live() error {
	if w.r.aborted.Load() {
		return errFCGIAborted
	}
	return nil
}

// WriteHead sends the CGI head (RFC 3875 section 6.3) that web servers turn
// into the HTTP status line and headers.
func (w *fcgiResponse) WriteHead(status string, headers []byte) error {
	if err := w.live(); err != nil {
		return err
	}
	head, err := appendCGIHead(w.r.buf.head[:0], status, headers)
	w.r.buf.head = head[:0]
	if err != nil {
		return err
	}
	w.out = appendFCGIStream(w.out, fcgiStdout, w.r.id, head)
	return w.flushIfFull()
}

// WriteBody sends a chunk of the body.
func (w *fcgiResponse) WriteBody(p []byte) error {
	if err := w.live(); err != nil {
		return err
	}
	for len(p) > 0 {
		n := min(len(p), fcgiChunk)
		w.out = appendFCGIRecord(w.out, fcgiStdout, w.r.id, p[:n])
		p = p[n:]
		if err := w.flushIfFull(); err != nil {
			return err
		}
	}
	return nil
}

// SendFile sends count bytes of f from offset (count -1: to its end). The
// record framing rules out sendfile(2): the file is read a record's worth at
// a time straight into the record.
func (w *fcgiResponse) SendFile(f *os.File, offset, count int64) error {
	if err := w.Flush(); err != nil {
		return err
	}
	if cap(w.out) < fcgiHeaderLen+fcgiChunk {
		w.out = make([]byte, 0, fcgiHeaderLen+fcgiChunk)
	}
	for count != 0 {
		if err := w.live(); err != nil {
			return err
		}
		want := fcgiChunk
		if count > 0 {
			want = int(min(count, int64(want)))
		}
		rec := w.out[:fcgiHeaderLen+want]
		n, err := f.ReadAt(rec[fcgiHeaderLen:], offset)
		if n > 0 {
			hdr, padding := appendFCGIHeader(rec[:0], fcgiStdout, w.r.id, n)
			rec = append(hdr[:fcgiHeaderLen+n], fcgiPadding[:padding]...)
			if werr := w.r.c.write(rec); werr != nil {
				return werr
			}
			offset += int64(n)
			if count > 0 {
				count -= int64(n)
			}
		}
		switch {
		case count == 0 || err == nil:
		case errors.Is(err, io.EOF) && count < 0:
			return nil
		case errors.Is(err, io.EOF):
			return fmt.Errorf("fastcgi: sendfile: %s ended %d bytes short", f.Name(), count)
		case err != nil:
			return fmt.Errorf("fastcgi: sendfile: %w", err)
		}
	}
	return nil
}

// Flush writes the records gathered so far.
func (w *fcgiResponse) Flush() error {
	if len(w.out) == 0 {
		return w.live()
	}
	err := w.r.c.write(w.out)
	w.out = w.out[:0]
	return err
}

func (w *fcgiResponse) flushIfFull() error {
	if len(w.out) < fcgiFlushSize {
		return nil
	}
	return w.Flush()
}
