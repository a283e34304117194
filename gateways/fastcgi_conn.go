// One FastCGI connection from a web server: the loop that reads its records
// and routes them to its requests (multiplexed, section 3.3), answers the
// management records itself, and closes the connection when the request
// flags, a protocol error or a shutdown say so.
package gateways

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// fcgiLinger is how long a connection the web server asked us to close is
// still read, so a record it sent after our END_REQUEST does not turn the
// close into a reset that could destroy the response in flight.
const fcgiLinger = 5 * time.Second

// fcgiReadBuffer is the read buffer of a connection: a few records' worth.
const fcgiReadBuffer = 16 << 10

var (
	errFCGIClosed     = errors.New("fastcgi: connection closed")
	errFCGIStdinEarly = errors.New("fastcgi: STDIN before the end of PARAMS")
)

// fcgiConn is one connection from a web server.
type fcgiConn struct {
	g  *FastCGI
	nc net.Conn

	wmu sync.Mutex // serializes writes: records must not interleave

	mu       sync.Mutex
	requests map[uint16]*fcgiRequest // by id, until END_REQUEST is due
	active   int                     // requests whose END_REQUEST is not yet written
	closed   bool                    // no new request will be taken
	wg       sync.WaitGroup

	// Owned by the read loop.
	rbuf []byte // one record's content and padding
	mgmt []byte // replies the read loop writes itself
}

// serve reads records until the connection ends, then cancels the requests
// still in flight, waits for them and closes the connection.
func (c *fcgiConn) serve() {
	err := c.readLoop()
	if err != nil && !isClosedConnError(err) {
		c.g.log.Warn("fastcgi connection closed", "remote", c.nc.RemoteAddr().String(), "error", err)
	}
	c.mu.Lock()
	c.closed = true
	for _, r := range c.requests {
		r.stop(errFCGIClosed)
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.nc.Close()
}

// isClosedConnError reports an end of the connection that is no protocol
// error: the web server closed it, or we did.
func isClosedConnError(err error) bool {
	var ne net.Error
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &ne) && ne.Timeout() || errors.Is(err, io.EOF)
}

func (c *fcgiConn) readLoop() error {
	br := bufio.NewReaderSize(c.nc, fcgiReadBuffer)
	c.rbuf = make([]byte, fcgiMaxContent+255)
	for {
		c.setIdleDeadline(br)
		h, content, err := readFCGIRecord(br, c.rbuf)
		if err != nil {
			return err
		}
		if err := c.route(h, content); err != nil {
			return err
		}
	}
}

// setIdleDeadline bounds the wait for the next record by the gateway's
// timeout when no request is in flight and nothing is buffered, and lifts
// the bound otherwise.
func (c *fcgiConn) setIdleDeadline(br *bufio.Reader) {
	if c.g.timeout == 0 {
		return
	}
	c.mu.Lock()
	idle := len(c.requests) == 0
	c.mu.Unlock()
	if idle && br.Buffered() == 0 {
		c.nc.SetReadDeadline(time.Now().Add(c.g.timeout))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
}

// route handles one record; an error closes the connection.
func (c *fcgiConn) route(h fcgiHeader, content []byte) error {
	switch h.kind {
	case fcgiGetValues:
		if h.id != 0 {
			return c.ignore(h, "management record with a request id")
		}
		return c.answerValues(content)
	case fcgiBeginRequest:
		return c.begin(h.id, content)
	case fcgiParams:
		return c.params(h, content)
	case fcgiStdin:
		return c.stdin(h, content)
	case fcgiAbortRequest:
		return c.abort(h)
	case fcgiData, fcgiEndRequest, fcgiStdout, fcgiStderr, fcgiGetValuesResult, fcgiUnknownType:
		// Known types a responder is never sent: the Filter role's DATA, or
		// records only an application sends.
		return c.ignore(h, "not for a responder")
	}
	c.mgmt = appendFCGIUnknownType(c.mgmt[:0], h.kind)
	return c.write(c.mgmt)
}

// ignore logs a record the specification says to ignore.
func (c *fcgiConn) ignore(h fcgiHeader, reason string) error {
	c.g.log.Warn("fastcgi record ignored", "type", int(h.kind), "request", int(h.id), "reason", reason)
	return nil
}

// answerValues answers FCGI_GET_VALUES with the variables it asks about
// that the gateway knows (section 4.1).
func (c *fcgiConn) answerValues(content []byte) error {
	var reply []byte
	err := eachFCGIPair(content, func(name, _ []byte) error {
		if value, ok := c.g.values[string(name)]; ok {
			reply = appendFCGIPair(reply, string(name), value)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(reply) > fcgiMaxContent {
		return errFCGIPairs // only by asking for the same names many times
	}
	c.mgmt = appendFCGIRecord(c.mgmt[:0], fcgiGetValuesResult, 0, reply)
	return c.write(c.mgmt)
}

// begin starts a request (section 5.1).
func (c *fcgiConn) begin(id uint16, content []byte) error {
	b, err := parseFCGIBegin(content)
	if err != nil {
		return err
	}
	if id == 0 {
		return c.ignore(fcgiHeader{kind: fcgiBeginRequest}, "request id 0")
	}
	switch {
	case b.role != fcgiResponder:
		return c.refuseBegin(id, fcgiUnknownRole)
	case c.g.core.shuttingDown():
		return c.refuseBegin(id, fcgiOverloaded)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	if _, live := c.requests[id]; live {
		c.g.log.Warn("fastcgi record ignored", "type", int(fcgiBeginRequest), "request", int(id), "reason", "request already active")
		return nil
	}
	c.requests[id] = c.newRequest(id, b.flags&fcgiKeepConn != 0)
	c.active++
	return nil
}

// refuseBegin ends a request before it starts.
func (c *fcgiConn) refuseBegin(id uint16, status fcgiProtocolStatus) error {
	c.mgmt = appendFCGIEndRequest(c.mgmt[:0], id, 0, status)
	return c.write(c.mgmt)
}

// lookup returns the live request id, or nil after logging the record.
func (c *fcgiConn) lookup(h fcgiHeader) *fcgiRequest {
	c.mu.Lock()
	r := c.requests[h.id]
	c.mu.Unlock()
	if r == nil {
		// Usual, not a fault: a request may end as soon as it has the body
		// CONTENT_LENGTH declared, before the empty STDIN record arrives.
		c.g.log.Debug("fastcgi record ignored", "type", int(h.kind), "request", int(h.id), "reason", "no such request")
	}
	return r
}

// params adds to a request's PARAMS stream; the empty record that ends it
// starts the request's goroutine.
func (c *fcgiConn) params(h fcgiHeader, content []byte) error {
	r := c.lookup(h)
	switch {
	case r == nil:
		return nil
	case r.started:
		return c.ignore(h, "PARAMS after its stream ended")
	case len(content) == 0:
		r.started = true
		c.wg.Add(1)
		go r.serve()
		return nil
	}
	if len(r.buf.params)+len(content) > c.g.maxParams {
		r.overflow = true // answered with 431 once the stream ends
		return nil
	}
	r.buf.params = append(r.buf.params, content...)
	return nil
}

// stdin passes a request's STDIN bytes to its body reader; it blocks until
// they are read, so a request's body is never held in memory twice.
func (c *fcgiConn) stdin(h fcgiHeader, content []byte) error {
	r := c.lookup(h)
	switch {
	case r == nil:
		return nil
	case !r.started:
		return errFCGIStdinEarly
	case len(content) == 0:
		r.stdinW.Close()
		return nil
	}
	// An error means the request no longer reads its body: it has all it
	// declared, or it ended. The rest is dropped.
	_, _ = r.stdinW.Write(content)
	return nil
}

// abort cancels a request (section 5.4); a request not started yet ends here.
func (c *fcgiConn) abort(h fcgiHeader) error {
	r := c.lookup(h)
	if r == nil {
		return nil
	}
	r.aborted.Store(true)
	r.stop(errFCGIAborted)
	if r.started {
		return nil // its goroutine sends END_REQUEST
	}
	c.mgmt = appendFCGIEndRequest(c.mgmt[:0], r.id, fcgiAbortedStatus, fcgiRequestComplete)
	return c.end(r, c.mgmt)
}

// end writes a request's last records and retires it. The id is freed
// first: the web server may reuse it as soon as it reads END_REQUEST.
// Without FCGI_KEEP_CONN the connection then starts closing: writes end
// now, reads linger (fcgiLinger).
func (c *fcgiConn) end(r *fcgiRequest, last []byte) error {
	c.mu.Lock()
	delete(c.requests, r.id)
	c.mu.Unlock()
	var err error
	if len(last) > 0 {
		err = c.write(last)
	}
	c.mu.Lock()
	c.active--
	idle := c.active == 0
	c.mu.Unlock()
	c.g.buffers.Put(r.buf)
	switch {
	case !r.keepConn:
		c.closeAfterResponse()
	case idle && c.g.core.shuttingDown():
		c.closeIfIdle()
	}
	return err
}

// closeAfterResponse ends the writing half and gives the web server
// fcgiLinger to close its side.
func (c *fcgiConn) closeAfterResponse() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		c.nc.Close()
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(fcgiLinger))
}

// stopIdle closes the connection when no request is in flight on it; the
// last request to end closes it otherwise (end).
func (c *fcgiConn) stopIdle() { c.closeIfIdle() }

// closeNow closes the connection; its requests see their context cancelled.
func (c *fcgiConn) closeNow() { c.nc.Close() }

// closeIfIdle closes the connection when no request is in flight on it.
func (c *fcgiConn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == 0 {
		c.closed = true
		c.nc.Close()
	}
}

// write sends b whole; a failed write closes the connection, which stops
// every request on it.
func (c *fcgiConn) write(b []byte) error {
	c.wmu.Lock()
	_, err := c.nc.Write(b)
	c.wmu.Unlock()
	if err != nil {
		c.nc.Close()
		return fmt.Errorf("fastcgi: writing to the web server: %w", err)
	}
	return nil
}
