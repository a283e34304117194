// A worker slot as the master sees it: one socketpair end, which carries
// the worker's frames for the requests the slot took (relayed responses,
// hand-offs, FrameEnds the master waits for) and, the other way, the rare
// request frame too big for the shared queue (sched.go). Its reader
// goroutine finds each frame's job by its id (requests_linux.go) and queues
// the frames for the request's relay, in memory and past 4 MiB in a spool
// file; it waits only when a slow client's response has reached its spool
// limit (response.go), which holds back the worker streaming to it.
package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/internal/rawsock"
	"github.com/gowsgi/gowsgi/wsgi"
)

// maxFDsPerRead bounds the descriptors one read can carry; a worker sends one
// per FrameFile, so a read holding more frames than this is not expected.
const maxFDsPerRead = 64

var errFDsTruncated = errors.New("server: a worker sent more file descriptors than one read can take")

// slot is the master's end of one worker slot.
type slot struct {
	worker int // the worker's number, for logs
	index  int // the slot's number in its worker, also its scoreboard record
	pid    int // the worker's pid: what its claims in the request table carry, and the access log shows
	conn   *net.UnixConn
	rx     fdReader
	board  *board
	queue  *genQueue // its generation's shared queue; nil without one (CGI mode)

	mu     sync.Mutex
	closed bool        // the reader has stopped; nothing more will be delivered
	d      *dispatcher // whose requests it takes; nil until it serves

	// retiring is set once the slot takes no more requests and its worker
	// is to end what it runs and exit.
	retiring atomic.Bool
	sendMu   sync.Mutex // held while a request frame is written

	dead chan struct{} // closed when the reader stops
}

func newSlot(worker, index, pid int, conn *net.UnixConn, b *board, q *genQueue) *slot {
	return &slot{
		worker: worker,
		index:  index,
		pid:    pid,
		conn:   conn,
		rx:     newFDReader(conn),
		board:  b,
		queue:  q,
		dead:   make(chan struct{}),
	}
}

// serve keeps the slot, which d has registered (sched.go), taking requests
// until the slot dies or retire is closed; a retiring slot is shut, which
// tells the worker to finish what it runs and exit.
func (s *slot) serve(d *dispatcher, retire <-chan struct{}) {
	select {
	case <-s.dead:
	case <-retire:
		d.retire(s)
	}
}

// sendFrame writes j's request frame, built in frame, to the slot's own
// socket. It returns false when the slot has died, in which case j has
// been or will be told its worker is lost.
func (s *slot) sendFrame(j *job, frame []byte) bool {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return false
	}
	s.sendMu.Lock()
	err := writeRequestFrame(s.conn, frame, j.client, j.req.BodyFile)
	s.sendMu.Unlock()
	if err != nil {
		// The reader then sees the slot dead and withdraws j.
		s.conn.Close()
		return false
	}
	return true
}

// idle reports whether the scoreboard shows the slot running nothing.
func (s *slot) idle() bool { return s.board.currentID(s.index) == 0 }

// writeRequestFrame writes a request frame to a slot socket, or as one
// message to a queue, with the descriptors it calls for attached to the
// frame's first bytes (SCM_RIGHTS, unix(7)): the client connection's for a
// direct request, then the spooled body's. The worker reads the frame
// header with recvmsg and finds them there. They are duplicated into the
// worker; the gateway keeps and closes its own.
func writeRequestFrame(conn *net.UnixConn, frame []byte, client syscall.RawConn, body *os.File) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("server: sending a request: %w", err)
	}
	sock := rawsock.NewSocket(rc)
	var n int
	err = withRights(client, body, func(rights []byte) (err error) {
		n, err = sock.SendMsg(frame, rights)
		return err
	})
	// A stream socket may take part of a large frame; the rest follows.
	for err == nil && n < len(frame) {
		frame = frame[n:]
		n, err = sock.SendMsg(frame, nil)
	}
	return err
}

// withRights calls send with the SCM_RIGHTS control message that carries
// the client's descriptor and the spooled body's, whichever there are
// (none: nil), each held open by its Control for the call.
func withRights(client syscall.RawConn, body *os.File, send func(rights []byte) error) error {
	var bodyConn syscall.RawConn
	if body != nil {
		var err error
		if bodyConn, err = body.SyscallConn(); err != nil {
			return fmt.Errorf("server: sending a spooled body: %w", err)
		}
	}
	var sendErr error
	err := withFDs([]syscall.RawConn{client, bodyConn}, nil, func(fds []int) {
		var rights []byte
		if len(fds) > 0 {
			rights = unix.UnixRights(fds...)
		}
		sendErr = send(rights)
	})
	if err != nil {
		return err
	}
	return sendErr
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

// deliver queues f on its job. more says another whole frame is already
// buffered, in which case waking the relay can wait for it. A frame for a
// request this slot's worker did not take breaks the contract.
func (s *slot) deliver(f wsgi.Frame, more bool) error {
	s.mu.Lock()
	d := s.d
	s.mu.Unlock()
	var j *job
	if d != nil {
		j = d.requests.job(f.ID)
	}
	if j == nil || !j.from(s, d.requests.table.Load(f.ID)) {
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
	j.setSlot(s)
	j.resp.push(f, file)
	if f.Kind == wsgi.FrameEnd || !more {
		j.resp.notify()
		j.interruptLazy()
	}
	if f.Kind != wsgi.FrameEnd {
		j.resp.waitForRoom()
	}
	return nil
}

// stop marks the slot dead and withdraws what its worker may have read
// without taking it; once every slot of the worker has stopped, the worker
// is gone and what it had taken fails (lostWorker).
func (s *slot) stop() {
	s.mu.Lock()
	s.closed = true
	d := s.d
	s.mu.Unlock()
	if d != nil {
		d.unlist(s)
		d.lostWorker(s, d.forget(s))
	}
	close(s.dead)
	s.conn.Close()
	s.rx.closeFiles()
}

// fdReader reads a slot socket with recvmsg so the descriptors that arrive
// with FrameFile frames (SCM_RIGHTS, unix(7)) are kept, in order.
type fdReader struct {
	conn *rawsock.Socket
	oob  []byte
	fds  []int
}

// newFDReader reads conn, an open socket: SyscallConn fails only for a
// conn that has no descriptor.
func newFDReader(conn *net.UnixConn) fdReader {
	rc, _ := conn.SyscallConn()
	return fdReader{conn: rawsock.NewSocket(rc), oob: make([]byte, unix.CmsgSpace(4*maxFDsPerRead))}
}

// Read reads stream bytes and collects any descriptors that came with them.
func (r *fdReader) Read(p []byte) (int, error) {
	n, oobn, flags, err := r.conn.RecvMsg(p, r.oob)
	if oobn > 0 {
		r.collect(r.oob[:oobn])
	}
	switch {
	case err != nil:
		return n, err
	case flags&unix.MSG_CTRUNC != 0:
		return n, errFDsTruncated
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
