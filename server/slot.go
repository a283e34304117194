// A worker slot as the master sees it: one socketpair end that request
// frames are written to by whichever goroutine the scheduler (sched.go)
// gives the request, and a reader goroutine that queues the response frames
// for the request's relay, in memory and past 4 MiB in a spool file; it
// waits only when a slow client's response has reached its spool limit
// (response.go), which holds back the worker streaming to it.
package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// keptFrameCap is the largest request frame buffer a slot keeps for reuse.
const keptFrameCap = 256 << 10

// maxFDsPerRead bounds the descriptors one read can carry; a worker sends one
// per FrameFile, so a read holding more frames than this is not expected.
const maxFDsPerRead = 64

var errFDsTruncated = errors.New("server: a worker sent more file descriptors than one read can take")

// slot is the master's end of one worker slot.
type slot struct {
	worker int // the worker's number, for logs
	pid    int // the worker process's pid, for the access log; 0 when unknown
	index  int // the slot's number in its worker, also its scoreboard record
	conn   *net.UnixConn
	rx     fdReader
	board  *board

	mu       sync.Mutex
	inflight []*job      // requests sent and not yet ended, oldest first
	closed   bool        // the reader has stopped; nothing more will be delivered
	d        *dispatcher // whose requests it takes; nil until it serves

	sched  schedState // guarded by d.sched.mu
	sendMu sync.Mutex // held while a request frame is built in out and written

	dead chan struct{} // closed when the reader stops
	out  []byte        // reused request frame buffer
}

func newSlot(worker, index int, conn *net.UnixConn, b *board) *slot {
	return &slot{
		worker:   worker,
		index:    index,
		conn:     conn,
		rx:       fdReader{conn: conn, oob: make([]byte, unix.CmsgSpace(4*maxFDsPerRead))},
		board:    b,
		inflight: make([]*job, 0, slotDepth),
		dead:     make(chan struct{}),
	}
}

// serve lets the slot take requests from d (sched.go) until the slot dies
// or retire is closed; a retiring slot is shut once the requests it has are
// done, which tells the worker to finish and exit.
func (s *slot) serve(d *dispatcher, retire <-chan struct{}) {
	s.mu.Lock()
	s.d = d
	s.mu.Unlock()
	d.register(s)
	select {
	case <-s.dead:
	case <-retire:
		d.retire(s)
	}
}

// sendNow builds j's request frame and writes it. It returns what send
// does.
func (s *slot) sendNow(j *job) bool {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.out = wsgi.AppendRequest(s.out[:0], j.id, j.req)
	return s.send(j)
}

// pending returns how many requests are in flight.
func (s *slot) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight)
}

// send writes j's request frame, already built in s.out, with s.sendMu
// held. It returns false
// when the slot has died, in which case j has been or will be told its
// worker is lost.
func (s *slot) send(j *job) bool {
	j.setSlot(s)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		j.lost(false)
		return false
	}
	j.servedBefore = s.servedBefore()
	s.inflight = append(s.inflight, j)
	s.mu.Unlock()
	err := writeRequestFrame(s.conn, s.out, j.client, j.req.BodyFile)
	if cap(s.out) > keptFrameCap {
		s.out = nil
	}
	if err != nil {
		// The reader then fails j and marks the slot dead.
		s.conn.Close()
		return false
	}
	return true
}

// writeRequestFrame writes a request frame to a slot socket, with the
// descriptors it calls for attached to the frame's first bytes (SCM_RIGHTS,
// unix(7)): the client connection's for a direct request, then the spooled
// body's. The worker reads the frame header with recvmsg and finds them
// there. They are duplicated into the worker; the gateway keeps and closes
// its own.
func writeRequestFrame(conn *net.UnixConn, frame []byte, client syscall.RawConn, body *os.File) error {
	if client == nil && body == nil {
		_, err := conn.Write(frame)
		return err
	}
	var bodyConn syscall.RawConn
	if body != nil {
		var err error
		if bodyConn, err = body.SyscallConn(); err != nil {
			return fmt.Errorf("server: sending a spooled body: %w", err)
		}
	}
	var n int
	var sendErr error
	// Control keeps each descriptor open while it is sent.
	err := withFDs([]syscall.RawConn{client, bodyConn}, nil, func(fds []int) {
		n, _, sendErr = conn.WriteMsgUnix(frame, unix.UnixRights(fds...), nil)
	})
	if err == nil {
		err = sendErr
	}
	if err == nil && n < len(frame) {
		_, err = conn.Write(frame[n:])
	}
	return err
}

// withFDs calls f with the descriptors of conns (nil ones skipped), each
// held open by its Control for the call.
func withFDs(conns []syscall.RawConn, fds []int, f func(fds []int)) error {
	if len(conns) == 0 {
		f(fds)
		return nil
	}
	if conns[0] == nil {
		return withFDs(conns[1:], fds, f)
	}
	var err error
	cerr := conns[0].Control(func(fd uintptr) {
		err = withFDs(conns[1:], append(fds, int(fd)), f)
	})
	if cerr != nil {
		return fmt.Errorf("server: sending a descriptor with a request: %w", cerr)
	}
	return err
}

// servedBefore returns the slot's served count as it will be when the
// worker begins the next request sent: the count now when idle, else one
// more than the request ahead's, since a worker serves a slot's requests in
// order and counts each as it ends. s.mu is held.
func (s *slot) servedBefore() uint64 {
	if n := len(s.inflight); n > 0 {
		return s.inflight[n-1].servedBefore + 1
	}
	return s.board.served(s.index)
}

// begun reports whether the worker may have begun j. A request queued
// behind one the worker never finished cannot have begun.
func (s *slot) begun(j *job) bool {
	return s.board.begun(s.index, j.id, j.servedBefore)
}

// headMayHaveLeft reports whether the worker may have written bytes of j's
// response to its client itself (a direct request), and the head's status
// code.
func (s *slot) headMayHaveLeft(j *job) (bool, int) { return s.board.headMayHaveLeft(s.index, j.id) }

// abort asks the worker to stop producing request id's response.
func (s *slot) abort(id uint32) { s.board.abort(s.index, id) }

// read hands response frames to their jobs until the socket ends. A worker
// that breaks the framing contract is reported through broken.
func (s *slot) read(broken func(error)) {
	fr := wsgi.NewFrameReader(&s.rx)
	for {
		f, err := fr.Next()
		if err == nil {
			err = s.deliver(f, fr.Buffered())
			if err != nil {
				broken(err)
			}
		}
		if err != nil {
			s.stop()
			return
		}
	}
}

// deliver queues f on the job in flight. more says another whole frame is
// already buffered, in which case waking the relay can wait for it.
func (s *slot) deliver(f wsgi.Frame, more bool) error {
	s.mu.Lock()
	var j *job
	if len(s.inflight) > 0 {
		j = s.inflight[0]
	}
	s.mu.Unlock()
	if j == nil || f.ID != j.id {
		return fmt.Errorf("server: worker %d slot %d sent a frame for request %d out of turn", s.worker, s.index, f.ID)
	}
	var file *os.File
	switch f.Kind {
	case wsgi.FrameHead, wsgi.FrameBody, wsgi.FrameEnd, wsgi.FrameHandoff, wsgi.FrameRaw:
	case wsgi.FrameFile:
		if file = s.rx.nextFile(); file == nil {
			return fmt.Errorf("server: worker %d slot %d sent a file frame without a descriptor", s.worker, s.index)
		}
	default:
		return fmt.Errorf("server: worker %d slot %d sent a frame of unknown kind %q", s.worker, s.index, byte(f.Kind))
	}
	if f.Kind != wsgi.FrameEnd {
		j.resp.push(f, file)
		if !more {
			j.resp.notify()
		}
		j.resp.waitForRoom()
		return nil
	}
	// Off the slot before its relay can see the end: the job is recycled
	// once the relay returns.
	s.mu.Lock()
	n := copy(s.inflight, s.inflight[1:])
	s.inflight[n] = nil
	s.inflight = s.inflight[:n]
	d := s.d
	s.mu.Unlock()
	j.resp.push(f, nil)
	j.resp.notify()
	if d != nil {
		d.ended(s)
	}
	return nil
}

// stop marks the slot dead and fails its requests in flight. The worker
// stores a request's id in the scoreboard when it begins one and counts it
// as served when done; if neither happened, the request never ran and can
// go to another slot.
func (s *slot) stop() {
	s.mu.Lock()
	jobs := s.inflight
	s.inflight, s.closed = nil, true
	d := s.d
	s.mu.Unlock()
	if d != nil {
		d.unlist(s, false)
	}
	for _, j := range jobs {
		if j.client != nil {
			// Read now: the board is released once the slot is dead.
			j.headLeft, j.headCode = s.headMayHaveLeft(j)
		}
		j.lost(s.begun(j))
	}
	close(s.dead)
	s.conn.Close()
	s.rx.closeFiles()
}

// fdReader reads a slot socket with recvmsg so the descriptors that arrive
// with FrameFile frames (SCM_RIGHTS, unix(7)) are kept, in order.
type fdReader struct {
	conn *net.UnixConn
	oob  []byte
	fds  []int
}

// Read reads stream bytes and collects any descriptors that came with them.
func (r *fdReader) Read(p []byte) (int, error) {
	n, oobn, flags, _, err := r.conn.ReadMsgUnix(p, r.oob)
	if oobn > 0 {
		r.collect(r.oob[:oobn])
	}
	switch {
	case err != nil:
		return n, err
	case flags&unix.MSG_CTRUNC != 0:
		return n, errFDsTruncated
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// collect keeps the descriptors of every SCM_RIGHTS message in oob.
func (r *fdReader) collect(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for i := range msgs {
		if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			r.fds = append(r.fds, fds...)
		}
	}
}

// nextFile returns the oldest descriptor not yet claimed, or nil.
func (r *fdReader) nextFile() *os.File {
	fd := r.nextFD()
	if fd < 0 {
		return nil
	}
	return os.NewFile(uintptr(fd), "worker file")
}

// nextFD returns the oldest descriptor not yet claimed, or -1; the caller
// owns it.
func (r *fdReader) nextFD() int {
	if len(r.fds) == 0 {
		return -1
	}
	fd := r.fds[0]
	r.fds = r.fds[1:]
	return fd
}

// closeFiles closes descriptors no frame claimed.
func (r *fdReader) closeFiles() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}
