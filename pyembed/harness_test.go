// The test harness: Python is started once for the whole test binary, and
// each test drives a Slot over a real socketpair, reading the response
// frames (and any passed descriptors) back the way the master does.
package pyembed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// loadSpecEnv, when set, makes the test binary a child that only runs Init
// with the JSON AppSpec it holds and prints the outcome (see load_test.go).
const loadSpecEnv = "PYEMBED_TEST_LOAD_SPEC"

func TestMain(m *testing.M) {
	if spec := os.Getenv(loadSpecEnv); spec != "" {
		os.Exit(runLoadChild(spec))
	}
	dir, err := filepath.Abs("testdata")
	if err == nil {
		err = Init(AppSpec{Module: "cases_app", PythonPath: []string{dir}, Multithread: true})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// frameWait bounds every wait for a frame, so a hung worker fails a test
// instead of stalling it.
const frameWait = 10 * time.Second

type sentFile struct {
	offset, count int64
	fd            int
}

type response struct {
	status     string
	headers    [][2]string
	body       []byte
	bodyFrames int
	files      []sentFile
	streamed   []byte // the body frames and the files' bytes, in the order sent
	endFlags   uint8
	endPayload []byte // the log variables the app set, a vars block
}

type slotHarness struct {
	tb       testing.TB
	slot     *Slot
	board    wsgi.Scoreboard
	frames   chan wsgi.Frame
	fds      chan int
	nextID   uint32
	masterFD int           // the master's end of the slot socket
	reading  chan struct{} // closed once the frame reader may start
	readOnce sync.Once
}

// newSlotHarness locks the calling goroutine to its thread, as a worker's
// slot goroutine is, and serves a slot over a fresh socketpair.
func newSlotHarness(tb testing.TB) *slotHarness {
	h := newPausedSlotHarness(tb)
	h.startReading()
	return h
}

// newPausedSlotHarness is newSlotHarness with nobody reading the slot
// socket until startReading, so a response larger than the socket's buffer
// holds its slot inside a write, with the GIL released.
func newPausedSlotHarness(tb testing.TB) *slotHarness {
	runtime.LockOSThread()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(tb, err)
	mem, err := unix.Mmap(-1, 0, wsgi.SlotRecordLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_SHARED)
	require.NoError(tb, err)
	board, err := wsgi.NewScoreboard(mem)
	require.NoError(tb, err)
	slot, err := NewSlot(pair[0], board.Record(0))
	require.NoError(tb, err)
	h := &slotHarness{tb: tb, slot: slot, board: board, frames: make(chan wsgi.Frame, 256), fds: make(chan int, 16),
		masterFD: pair[1], reading: make(chan struct{})}
	readerDone := make(chan struct{})
	go func() {
		<-h.reading
		h.readFrames(pair[1], readerDone)
	}()
	tb.Cleanup(func() {
		h.startReading() // before Close, which writes what is still buffered
		slot.Close()
		unix.Close(pair[0]) // the reader sees EOF
		select {
		case <-readerDone:
		case <-time.After(frameWait):
			tb.Error("frame reader did not stop")
		}
		unix.Close(pair[1])
		unix.Munmap(mem)
		runtime.UnlockOSThread()
	})
	return h
}

// startReading starts reading the slot socket; it may be called from any
// goroutine, more than once.
func (h *slotHarness) startReading() {
	h.readOnce.Do(func() { close(h.reading) })
}

// fdConn reads a socket with recvmsg, handing descriptors passed as
// SCM_RIGHTS to fds.
type fdConn struct {
	fd  int
	fds chan<- int
}

func (c fdConn) Read(p []byte) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(c.fd, p, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if err := c.takeRights(oob[:oobn]); err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (c fdConn) takeRights(oob []byte) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return err
	}
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return err
		}
		for _, fd := range fds {
			c.fds <- fd
		}
	}
	return nil
}

func (h *slotHarness) readFrames(fd int, done chan<- struct{}) {
	defer close(done)
	fr := wsgi.NewFrameReader(fdConn{fd: fd, fds: h.fds})
	for {
		f, err := fr.Next()
		if err != nil {
			// As the master does, end the socket: a slot that broke the
			// framing then fails its writes instead of blocking in them.
			unix.Shutdown(fd, unix.SHUT_RDWR)
			return
		}
		f.Payload = append([]byte(nil), f.Payload...)
		h.frames <- f
	}
}

// newRequest returns a request with the variables a gateway always sets.
func newRequest(method, path, query string) *wsgi.Request {
	req := &wsgi.Request{}
	for _, kv := range [][2]string{
		{"REQUEST_METHOD", method}, {"PATH_INFO", path}, {"QUERY_STRING", query},
		{"SERVER_NAME", "127.0.0.1"}, {"SERVER_PORT", "8000"}, {"SERVER_PROTOCOL", "HTTP/1.1"},
		{"REMOTE_ADDR", "127.0.0.1"}, {"REMOTE_PORT", "40000"}, {"wsgi.url_scheme", "http"},
	} {
		req.Vars.Add(kv[0], kv[1])
	}
	return req
}

// start sends req to the slot and returns its id once Serve has returned. A
// BodyFile goes as a descriptor of its own, as one sent with the frame does.
func (h *slotHarness) start(req *wsgi.Request) uint32 {
	h.nextID++
	frame := wsgi.AppendRequest(nil, h.nextID, req)
	bodyFD := -1
	if req.BodyFile != nil {
		var err error
		bodyFD, err = unix.Dup(int(req.BodyFile.Fd()))
		require.NoError(h.tb, err)
	}
	require.NoError(h.tb, h.slot.Serve(h.nextID, frame[1], frame[wsgi.FrameHeaderLen:], bodyFD, true))
	return h.nextID
}

func (h *slotHarness) roundTrip(req *wsgi.Request) response {
	id := h.start(req)
	r, err := h.collect(id, response{})
	require.NoError(h.tb, err)
	return r
}

func (h *slotHarness) get(path, query string) response {
	return h.roundTrip(newRequest("GET", path, query))
}

// nextFrame waits a bounded time for the next frame.
func (h *slotHarness) nextFrame() (wsgi.Frame, error) {
	select {
	case f := <-h.frames:
		return f, nil
	case <-time.After(frameWait):
		return wsgi.Frame{}, errors.New("no frame within the wait")
	}
}

// collect adds the frames of request id to r until its FrameEnd. It returns
// errors rather than failing, so a helper goroutine may call it.
func (h *slotHarness) collect(id uint32, r response) (response, error) {
	for {
		f, err := h.nextFrame()
		if err != nil {
			return r, err
		}
		if f.ID != id {
			return r, fmt.Errorf("frame %c for request %d, want %d", f.Kind, f.ID, id)
		}
		done, err := h.add(&r, f)
		if err != nil || done {
			return r, err
		}
	}
}

func (h *slotHarness) add(r *response, f wsgi.Frame) (done bool, err error) {
	switch f.Kind {
	case wsgi.FrameHead:
		status, headers, err := wsgi.ParseHead(f.Payload)
		if err != nil {
			return false, err
		}
		r.status = status
		return false, wsgi.EachVar(headers, func(k, v []byte) bool {
			r.headers = append(r.headers, [2]string{string(k), string(v)})
			return true
		})
	case wsgi.FrameBody:
		r.body = append(r.body, f.Payload...)
		r.streamed = append(r.streamed, f.Payload...)
		r.bodyFrames++
	case wsgi.FrameFile:
		offset, count, err := wsgi.ParseFile(f.Payload)
		if err != nil {
			return false, err
		}
		select {
		case fd := <-h.fds:
			r.files = append(r.files, sentFile{offset: offset, count: count, fd: fd})
			return false, r.appendFile(fd, offset, count)
		case <-time.After(frameWait):
			return false, errors.New("FrameFile arrived without a descriptor")
		}
	case wsgi.FrameEnd:
		r.endFlags = f.Flags
		r.endPayload = bytes.Clone(f.Payload)
		return true, nil
	default:
		return false, fmt.Errorf("unexpected frame kind %c", f.Kind)
	}
	return false, nil
}

// appendFile adds count bytes of fd from offset (count -1: to its end) to
// r.streamed, leaving fd and its offset as they were.
func (r *response) appendFile(fd int, offset, count int64) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if count < 0 {
		count = st.Size - offset
	}
	data := make([]byte, count)
	n, err := unix.Pread(fd, data, offset)
	if err != nil {
		return err
	}
	if int64(n) != count {
		return fmt.Errorf("FrameFile of %d bytes from %d: the file holds %d", count, offset, n)
	}
	r.streamed = append(r.streamed, data...)
	return nil
}
