// A worker slot as the master sees it: one socketpair end, a writer
// goroutine that takes a request from the global queue only when the slot
// is idle, and a reader goroutine that hands the response frames to the
// request's relay without ever waiting for the client.
package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

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
	index  int // the slot's number in its worker, also its scoreboard record
	conn   *net.UnixConn
	rx     fdReader
	board  *board

	mu     sync.Mutex
	cur    *job // the request in flight, nil when idle
	closed bool // the reader has stopped; nothing more will be delivered

	idle chan struct{} // one token: the request in flight has ended
	dead chan struct{} // closed when the reader stops
	out  []byte        // reused request frame buffer
}

func newSlot(worker, index int, conn *net.UnixConn, b *board) *slot {
	return &slot{
		worker: worker,
		index:  index,
		conn:   conn,
		rx:     fdReader{conn: conn, oob: make([]byte, unix.CmsgSpace(4*maxFDsPerRead))},
		board:  b,
		idle:   make(chan struct{}, 1),
		dead:   make(chan struct{}),
	}
}

// serve takes requests from queue one at a time until the slot dies or
// retire is closed; retiring shuts the socket's write side once the slot is
// idle, which tells the worker to finish and exit.
func (s *slot) serve(queue <-chan *job, retire <-chan struct{}) {
	for {
		select {
		case <-s.dead:
			return
		case <-retire:
			s.conn.CloseWrite()
			return
		default:
		}
		select {
		case <-s.dead:
			return
		case <-retire:
			s.conn.CloseWrite()
			return
		case j := <-queue:
			if !s.send(j) {
				return
			}
			select {
			case <-s.idle:
			case <-s.dead:
				return
			}
		}
	}
}

// send writes j's request frame. It returns false when the slot has died,
// in which case j has been or will be told its worker is lost.
func (s *slot) send(j *job) bool {
	j.setSlot(s)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		j.lost(false)
		return false
	}
	s.cur = j
	s.mu.Unlock()
	j.servedBefore = s.board.served(s.index)
	s.out = wsgi.AppendRequest(s.out[:0], j.id, j.req)
	_, err := s.conn.Write(s.out)
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
	j := s.cur
	s.mu.Unlock()
	if j == nil || f.ID != j.id {
		return fmt.Errorf("server: worker %d slot %d sent a frame for request %d out of turn", s.worker, s.index, f.ID)
	}
	var file *os.File
	switch f.Kind {
	case wsgi.FrameHead, wsgi.FrameBody, wsgi.FrameEnd:
	case wsgi.FrameFile:
		if file = s.rx.nextFile(); file == nil {
			return fmt.Errorf("server: worker %d slot %d sent a file frame without a descriptor", s.worker, s.index)
		}
	default:
		return fmt.Errorf("server: worker %d slot %d sent a frame of unknown kind %q", s.worker, s.index, byte(f.Kind))
	}
	j.resp.push(f, file)
	if f.Kind != wsgi.FrameEnd {
		if !more {
			j.resp.notify()
		}
		j.resp.waitForRoom()
		return nil
	}
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
	j.resp.notify()
	s.idle <- struct{}{}
	return nil
}

// stop marks the slot dead and fails its request in flight. The worker
// stores a request's id in the scoreboard when it begins one and counts it
// as served when done; if neither happened, the request never ran and can
// go to another slot.
func (s *slot) stop() {
	s.mu.Lock()
	j := s.cur
	s.cur, s.closed = nil, true
	s.mu.Unlock()
	if j != nil {
		j.lost(s.board.begun(s.index, j.id, j.servedBefore))
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
	if len(r.fds) == 0 {
		return nil
	}
	fd := r.fds[0]
	r.fds = r.fds[1:]
	return os.NewFile(uintptr(fd), "worker file")
}

// closeFiles closes descriptors no frame claimed.
func (r *fdReader) closeFiles() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}
