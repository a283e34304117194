package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// recorder is a wsgi.ResponseWriter that records what it is asked to send.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *recorder) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) WriteHead(status string, headers []byte) error {
	r.add("head " + status)
	return nil
}

func (r *recorder) WriteBody(p []byte) error {
	r.add("body " + string(p))
	return nil
}

func (r *recorder) SendFile(f *os.File, offset, count int64) error {
	data := make([]byte, count)
	_, err := f.ReadAt(data, offset)
	r.add(fmt.Sprintf("file %d %d %s", offset, count, data))
	return err
}

func (r *recorder) Flush() error {
	r.add("flush")
	return nil
}

// testWorker is the worker's end of one slot, driven by the test: it takes
// requests from the rig's queue, or from its slot socket, and claims them
// in the request table as a real worker does.
type testWorker struct {
	t      *testing.T
	conn   *net.UnixConn // the slot socket
	queue  *net.UnixConn // the generation's queue
	frames *wsgi.FrameReader
	board  wsgi.Scoreboard
	table  *requestTable
	index  int
	pid    int
}

// nextRequest reads the next request frame from the queue, claims it and
// marks it begun in the scoreboard as a real worker does, and returns its
// id and vars.
func (w *testWorker) nextRequest() (uint32, map[string]string, string) {
	w.t.Helper()
	id, vars, body := w.peekRequest()
	require.True(w.t, w.claim(id), "claim request %d", id)
	w.board.Begin(w.index, id, time.Now().UnixNano())
	return id, vars, body
}

// nextAddressed is nextRequest for a frame sent to the slot's own socket.
func (w *testWorker) nextAddressed() (uint32, map[string]string, string) {
	w.t.Helper()
	require.NoError(w.t, w.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	f, err := w.frames.Next()
	require.NoError(w.t, err)
	id, vars, body := w.parseRequest(f)
	require.True(w.t, w.claim(id), "claim request %d", id)
	w.board.Begin(w.index, id, time.Now().UnixNano())
	return id, vars, body
}

// claim moves request id's word QUEUED -> TAKEN with the worker's pid, as
// gw_request_claim does.
func (w *testWorker) claim(id uint32) bool { return claimRequest(w.table, id, w.pid) }

// claimRequest claims request id in t for worker pid, as gw_request_claim
// does, and counts the claim in the table's header.
func claimRequest(t *requestTable, id uint32, pid int) bool {
	word := (*uint64)(unsafe.Pointer(&t.table.Entry(id)[0]))
	for {
		old := atomic.LoadUint64(word)
		r := wsgi.DecodeRequestWord(old)
		if r.ID != id || r.Phase != wsgi.PhaseQueued {
			return false
		}
		r.Phase, r.PID = wsgi.PhaseTaken, pid
		if atomic.CompareAndSwapUint64(word, old, wsgi.EncodeRequestWord(r)) {
			atomic.AddUint64((*uint64)(unsafe.Pointer(&t.mem[0])), 1)
			return true
		}
	}
}

// peekRequest reads the next request frame from the queue without
// claiming or beginning it, as a worker that dies right after reading it.
func (w *testWorker) peekRequest() (uint32, map[string]string, string) {
	w.t.Helper()
	require.NoError(w.t, w.queue.SetReadDeadline(time.Now().Add(5*time.Second)))
	msg := make([]byte, wsgi.FrameHeaderLen+wsgi.QueueFrameCap)
	oob := make([]byte, unix.CmsgSpace(8))
	n, oobn, _, _, err := w.queue.ReadMsgUnix(msg, oob)
	require.NoError(w.t, err)
	closeRights(oob[:oobn]) // a direct request's connection, a spooled body
	f, err := wsgi.NewFrameReader(bytes.NewReader(msg[:n])).Next()
	require.NoError(w.t, err)
	return w.parseRequest(f)
}

// closeRights closes the descriptors an SCM_RIGHTS message brought.
func closeRights(oob []byte) {
	msgs, _ := unix.ParseSocketControlMessage(oob)
	for i := range msgs {
		fds, _ := unix.ParseUnixRights(&msgs[i])
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

func (w *testWorker) parseRequest(f wsgi.Frame) (uint32, map[string]string, string) {
	w.t.Helper()
	require.Equal(w.t, wsgi.FrameRequest, f.Kind)
	require.NotZero(w.t, f.Flags&wsgi.FlagPosted, "every request is posted in the table")
	payload := f.Payload
	if f.Flags&wsgi.FlagDirect != 0 {
		var err error
		_, _, payload, err = wsgi.ParseDirect(payload)
		require.NoError(w.t, err)
	}
	block, body, err := wsgi.ParseRequest(payload)
	require.NoError(w.t, err)
	vars := map[string]string{}
	require.NoError(w.t, wsgi.EachVar(block, func(k, v []byte) bool {
		vars[string(k)] = string(v)
		return true
	}))
	return f.ID, vars, string(body)
}

func (w *testWorker) write(b []byte) {
	w.t.Helper()
	_, err := w.conn.Write(b)
	require.NoError(w.t, err)
}

func head(id uint32, status string) []byte { return wsgi.AppendHead(nil, id, status, nil) }

func bodyFrame(id uint32, s string) []byte {
	return append(wsgi.AppendFrameHeader(nil, wsgi.FrameBody, 0, id, len(s)), s...)
}

func end(id uint32, flags uint8) []byte {
	return wsgi.AppendFrameHeader(nil, wsgi.FrameEnd, flags, id, 0)
}

// dispatchRig is a dispatcher with slots whose workers the test plays.
type dispatchRig struct {
	d       *dispatcher
	slots   []*slot
	workers []*testWorker
	board   *board
	broken  chan error
}

func newDispatchRig(t *testing.T, slots int) *dispatchRig {
	rig, start := newRig(t, slots)
	for i := range slots {
		start(i)
	}
	return rig
}

// newRig builds a dispatchRig whose slots take requests once start(i) is
// called.
func newRig(t *testing.T, slots int) (*dispatchRig, func(i int)) {
	d, err := newDispatcher(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	rig := &dispatchRig{d: d, broken: make(chan error, slots)}
	b, boardFile, err := newBoard(slots)
	require.NoError(t, err)
	boardFile.Close()
	rig.board = b
	q, err := newGenQueue(1)
	require.NoError(t, err)
	retire := make(chan struct{})
	for i := range slots {
		conn, theirs, err := slotSocketpair()
		require.NoError(t, err)
		wc, err := net.FileConn(theirs)
		require.NoError(t, err)
		theirs.Close()
		qc, err := net.FileConn(q.theirs)
		require.NoError(t, err)
		// Each test worker is a process of its own to the table.
		s := newSlot(1, i, 1000+i, conn, b, q)
		d.adopt(s)
		go s.read(func(err error) { rig.broken <- err })
		rig.slots = append(rig.slots, s)
		rig.workers = append(rig.workers, &testWorker{t: t, conn: wc.(*net.UnixConn), queue: qc.(*net.UnixConn),
			frames: wsgi.NewFrameReader(wc), board: b.sb, table: d.requests, index: i, pid: 1000 + i})
	}
	t.Cleanup(func() {
		close(retire)
		for i, s := range rig.slots {
			s.conn.Close()
			rig.workers[i].conn.Close()
			rig.workers[i].queue.Close()
			<-s.dead
		}
		q.close()
		b.release()
	})
	return rig, func(i int) {
		rig.d.register(rig.slots[i])
		go rig.slots[i].serve(rig.d, retire)
	}
}

// serve runs one request in the background; the result arrives on the
// returned channel.
func (rig *dispatchRig) serve(ctx context.Context, w wsgi.ResponseWriter, path, body string) <-chan error {
	req := &wsgi.Request{Body: []byte(body)}
	req.Vars.Add("REQUEST_METHOD", "POST")
	req.Vars.Add("PATH_INFO", path)
	done := make(chan error, 1)
	go func() { done <- rig.d.ServeWSGI(ctx, w, req) }()
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		require.FailNow(t, "ServeWSGI did not return")
		return nil
	}
}

// eventually polls cond every 5ms for up to 5s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond, msg)
}

func TestDispatchRelaysABatchedResponseWithoutFlushing(t *testing.T) {
	rig := newDispatchRig(t, 1)
	rec := &recorder{}
	done := rig.serve(context.Background(), rec, "/hello", "payload")
	w := rig.workers[0]
	id, vars, body := w.nextRequest()
	assert.Equal(t, map[string]string{"REQUEST_METHOD": "POST", "PATH_INFO": "/hello"}, vars)
	assert.Equal(t, "payload", body)
	frames := append(append(head(id, "200 OK"), bodyFrame(id, "hi ")...), bodyFrame(id, "there")...)
	w.write(append(frames, end(id, 0)...))
	require.NoError(t, wait(t, done))
	// Frames that arrive together are written together, and net/http can
	// still pick Content-Length since nothing was flushed.
	assert.Equal(t, []string{"head 200 OK", "body hi ", "body there"}, rec.log())
}

func TestDispatchFlushesWhenTheWorkerPauses(t *testing.T) {
	rig := newDispatchRig(t, 1)
	rec := &recorder{}
	done := rig.serve(context.Background(), rec, "/stream", "")
	w := rig.workers[0]
	id, _, _ := w.nextRequest()
	w.write(append(head(id, "200 OK"), bodyFrame(id, "first")...))
	eventually(t, func() bool { return len(rec.log()) == 3 }, "head, body and a flush")
	w.write(append(bodyFrame(id, "second"), end(id, 0)...))
	require.NoError(t, wait(t, done))
	assert.Equal(t, []string{"head 200 OK", "body first", "flush", "body second"}, rec.log())
}

func TestDispatchBrokenEnd(t *testing.T) {
	rig := newDispatchRig(t, 1)
	rec := &recorder{}
	done := rig.serve(context.Background(), rec, "/", "")
	id, _, _ := rig.workers[0].nextRequest()
	rig.workers[0].write(append(head(id, "200 OK"), end(id, wsgi.FlagEndBroken)...))
	assert.ErrorIs(t, wait(t, done), errBrokenResponse)
}

func TestDispatchWorkerLost(t *testing.T) {
	tests := []struct {
		name    string
		before  func(id uint32) []byte // sent before the worker's socket closes
		wantErr error
		want    []string
	}{
		{"before the head: 502", func(uint32) []byte { return nil }, nil,
			[]string{"head 502 Bad Gateway", "body 502 Bad Gateway\n"}},
		{"after the head: broken", func(id uint32) []byte { return head(id, "200 OK") }, errWorkerLost,
			[]string{"head 200 OK"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newDispatchRig(t, 1)
			rec := &recorder{}
			done := rig.serve(context.Background(), rec, "/", "")
			w := rig.workers[0]
			id, _, _ := w.nextRequest()
			if b := tt.before(id); b != nil {
				w.write(b)
				eventually(t, func() bool { return len(rec.log()) > 0 }, "head relayed")
			}
			require.NoError(t, w.conn.Close())
			err := wait(t, done)
			if tt.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErr)
			}
			assert.Equal(t, tt.want[0], rec.log()[0])
			if tt.wantErr == nil {
				assert.Equal(t, tt.want, rec.log())
			}
		})
	}
}

func TestDispatchRetriesARequestItsWorkerNeverBegan(t *testing.T) {
	rig := newDispatchRig(t, 2)
	rec := &recorder{}
	done := rig.serve(context.Background(), rec, "/again", "")
	// The first worker reads it from the queue and dies before claiming it.
	firstID, _, _ := rig.workers[0].peekRequest()
	require.NoError(t, rig.workers[0].conn.Close())
	w := rig.workers[1]
	id, vars, _ := w.nextRequest()
	assert.NotEqual(t, firstID, id, "sent again under a new id")
	assert.False(t, w.claim(firstID), "the copy the dead worker read can no longer be claimed")
	assert.Equal(t, "/again", vars["PATH_INFO"])
	w.write(append(head(id, "200 OK"), end(id, 0)...))
	require.NoError(t, wait(t, done))
	assert.Equal(t, []string{"head 200 OK"}, rec.log())
}

func TestDispatchClientGoneSetsAbortAndDrains(t *testing.T) {
	rig := newDispatchRig(t, 1)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := rig.serve(ctx, rec, "/", "")
	w := rig.workers[0]
	id, _, _ := w.nextRequest()
	w.write(head(id, "200 OK"))
	eventually(t, func() bool { return len(rec.log()) > 0 }, "head relayed")
	cancel()
	abortWord := (*uint32)(unsafe.Pointer(&rig.board.sb.Record(0)[4]))
	eventually(t, func() bool { return atomic.LoadUint32(abortWord) == id }, "abort word set")
	w.write(append(bodyFrame(id, "late"), end(id, 0)...))
	assert.ErrorIs(t, wait(t, done), context.Canceled)
	assert.NotContains(t, rec.log(), "body late")

	// The slot is idle again and serves the next request.
	rec2 := &recorder{}
	done2 := rig.serve(context.Background(), rec2, "/next", "")
	id2, vars, _ := w.nextRequest()
	assert.Equal(t, "/next", vars["PATH_INFO"])
	w.write(append(head(id2, "204 No Content"), end(id2, 0)...))
	require.NoError(t, wait(t, done2))
	assert.Equal(t, []string{"head 204 No Content"}, rec2.log())
}

func TestDispatchSendsFilesWithTheirDescriptors(t *testing.T) {
	rig := newDispatchRig(t, 1)
	rec := &recorder{}
	done := rig.serve(context.Background(), rec, "/file", "")
	w := rig.workers[0]
	id, _, _ := w.nextRequest()

	f, err := os.CreateTemp(t.TempDir(), "body")
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteString("0123456789")
	require.NoError(t, err)
	frames := append(append(head(id, "200 OK"), wsgi.AppendFile(nil, id, 2, 5)...), end(id, 0)...)
	_, _, err = w.conn.WriteMsgUnix(frames, unix.UnixRights(int(f.Fd())), nil)
	require.NoError(t, err)
	require.NoError(t, wait(t, done))
	assert.Equal(t, []string{"head 200 OK", "file 2 5 23456"}, rec.log())
}

func TestDispatchUsesEveryIdleSlot(t *testing.T) {
	rig := newDispatchRig(t, 2)
	recs := []*recorder{{}, {}}
	dones := []<-chan error{
		rig.serve(context.Background(), recs[0], "/a", ""),
		rig.serve(context.Background(), recs[1], "/b", ""),
	}
	// Both slots hold a request at once: neither waits for the other.
	idA, varsA, _ := rig.workers[0].nextRequest()
	idB, varsB, _ := rig.workers[1].nextRequest()
	assert.ElementsMatch(t, []string{"/a", "/b"}, []string{varsA["PATH_INFO"], varsB["PATH_INFO"]})
	rig.workers[0].write(append(head(idA, "200 OK"), end(idA, 0)...))
	rig.workers[1].write(append(head(idB, "200 OK"), end(idB, 0)...))
	for _, done := range dones {
		require.NoError(t, wait(t, done))
	}
}

func TestDispatchOutOfTurnFrameFailsTheSlot(t *testing.T) {
	rig := newDispatchRig(t, 1)
	rec := &recorder{}
	done := rig.serve(context.Background(), rec, "/", "")
	id, _, _ := rig.workers[0].nextRequest()
	rig.workers[0].write(head(id+1, "200 OK"))
	select {
	case err := <-rig.broken:
		assert.ErrorContains(t, err, "out of turn")
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the slot did not report the broken worker")
	}
	require.NoError(t, wait(t, done))
	assert.Equal(t, "head 502 Bad Gateway", rec.log()[0])
}

func TestDispatchStoppedAnswers503(t *testing.T) {
	d, err := newDispatcher(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	d.stop()
	rec := &recorder{}
	require.NoError(t, d.ServeWSGI(context.Background(), rec, &wsgi.Request{}))
	assert.Equal(t, "head 503 Service Unavailable", rec.log()[0])
}

// A client that reads slowly holds back its worker only once the master
// holds all it may of the response: memoryMark bytes in memory with
// spooling off, that and the spool limit with it.
func TestDispatchHoldsBackAWorkerAheadOfASlowClient(t *testing.T) {
	tests := []struct {
		name       string
		spoolLimit int64
	}{
		{"spooling off: at the memory mark", 0},
		{"at the spool limit", 2 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			rig := newDispatchRig(t, 1)
			logs := &syncBuffer{}
			rig.d.log = slog.New(slog.NewTextHandler(logs, nil))
			rig.d.spoolLimit = tc.spoolLimit
			rec := newGatedWriter(t)
			done := rig.serve(context.Background(), rec, "/big", "")
			w := rig.workers[0]
			id, _, _ := w.nextRequest()
			w.write(head(id, "200 OK"))
			chunk := string(make([]byte, 1<<20))
			frames := 3 * (memoryMark + int(tc.spoolLimit)) / len(chunk)
			written := make(chan struct{})
			go func() {
				defer close(written)
				for range frames {
					if _, err := w.conn.Write(bodyFrame(id, chunk)); err != nil {
						return
					}
				}
				w.conn.Write(end(id, 0))
			}()
			// With the client stalled, the master holds at most about that
			// much, and the socket buffers hold the rest back in the worker.
			bound := memoryMark + int(tc.spoolLimit)
			eventually(t, func() bool { return rig.heldBytes() >= bound }, "the master's share fills up")
			assert.LessOrEqual(t, rig.heldBytes(), bound+2*(len(chunk)+wsgi.FrameHeaderLen))
			select {
			case <-written:
				require.FailNow(t, "the worker wrote everything although the client is stalled")
			default:
			}
			rec.open()
			require.NoError(t, wait(t, done))
			<-written
			assert.Equal(t, frames*len(chunk), rec.body.Len())
			warnings := strings.Count(logs.String(), "reached --response-spool-limit")
			if tc.spoolLimit > 0 {
				assert.Equal(t, 1, warnings, "the limit is logged once per response")
			} else {
				assert.Zero(t, warnings, "no spool, no limit to log")
			}
		})
	}
}

// heldBytes returns the bytes the master holds for the requests in flight
// and their relays have not taken or sent: in memory and in the spool.
func (rig *dispatchRig) heldBytes() int {
	n := 0
	rig.d.requests.each(func(j *job) {
		r := j.resp
		r.mu.Lock()
		n += len(r.data) + int(r.spool.held)
		r.mu.Unlock()
	})
	return n
}

// A head that breaks PEP 3333's rules can only come from a worker whose
// memory the app corrupted; the client gets a 502 instead of its bytes.
func TestDispatchReplacesAnInvalidHeadWith502(t *testing.T) {
	var splitting wsgi.Vars
	splitting.Add("X-Split", "a\r\nSet-Cookie: stolen=1")
	var hopByHop wsgi.Vars
	hopByHop.Add("Transfer-Encoding", "chunked")
	tests := []struct {
		name    string
		status  string
		headers []byte
	}{
		{"malformed status", "OK", nil},
		{"header splitting", "200 OK", splitting.Block()},
		{"hop-by-hop header", "200 OK", hopByHop.Block()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rig := newDispatchRig(t, 1)
			rec := &recorder{}
			done := rig.serve(context.Background(), rec, "/", "")
			w := rig.workers[0]
			id, _, _ := w.nextRequest()
			frames := append(wsgi.AppendHead(nil, id, tc.status, tc.headers), bodyFrame(id, "secret")...)
			w.write(append(frames, end(id, 0)...))
			require.NoError(t, wait(t, done), "the 502 is a complete response")
			assert.Equal(t, []string{"head 502 Bad Gateway", "body 502 Bad Gateway\n"}, rec.log())
		})
	}
}
