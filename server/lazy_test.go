// Tests of the lazy end of a response the worker wrote to an HTTP/1.x
// client itself (lazy.go): the worker stores the completion in the request
// table and sends no FrameEnd unless the master waits for one.
package server

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// peerRecorder is a recorder on a plain-HTTP connection the worker writes
// to itself, whose client's next bytes the test lets arrive.
type peerRecorder struct {
	recorder
	conn        syscall.RawConn
	peer        chan struct{} // closed: the client's next request arrived
	interrupted chan struct{}

	mu         sync.Mutex
	completion *wsgi.Completion
}

func newPeerRecorder(t *testing.T) *peerRecorder {
	a, b, err := socketPair()
	require.NoError(t, err)
	t.Cleanup(func() { a.Close(); b.Close() })
	raw, err := a.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	return &peerRecorder{conn: raw, peer: make(chan struct{}), interrupted: make(chan struct{}, 1)}
}

func socketPair() (net.Conn, net.Conn, error) {
	conn, theirs, err := slotSocketpair()
	if err != nil {
		return nil, nil, err
	}
	other, err := net.FileConn(theirs)
	theirs.Close()
	return conn, other, err
}

func (r *peerRecorder) Direct() (syscall.RawConn, wsgi.Framing, wsgi.HTTPFlags, bool) {
	return r.conn, wsgi.FramingHTTP1, wsgi.HTTP11, true
}
func (r *peerRecorder) WriteRaw(p []byte) error                           { r.add("raw " + string(p)); return nil }
func (r *peerRecorder) SendFileRaw(f *os.File, offset, count int64) error { return f.Close() }
func (r *peerRecorder) Completed(c wsgi.Completion) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.completion = &c
}

func (r *peerRecorder) AwaitPeer(d time.Duration, ready func() bool, done func() bool) {
	defer done()
	if ready() {
		return
	}
	select {
	case <-r.peer:
	case <-r.interrupted:
	case <-time.After(d):
	}
}

func (r *peerRecorder) InterruptAwait() {
	select {
	case r.interrupted <- struct{}{}:
	default:
	}
}

func (r *peerRecorder) completed() *wsgi.Completion {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.completion
}

// endInTable stores c in request id's entry and moves its word to done, as
// gw_request_done does; it reports whether the master waits for the
// FrameEnd.
func endInTable(t *requestTable, id uint32, c wsgi.Completion) bool {
	e := t.table.Entry(id)
	flags := uint32(c.HeadFields) << wsgi.CompletionFieldsShift
	if c.KeepAlive {
		flags |= wsgi.CompletionKeepAlive
	}
	binary.LittleEndian.PutUint32(e[8:], uint32(c.Status))
	binary.LittleEndian.PutUint32(e[12:], flags)
	binary.LittleEndian.PutUint64(e[16:], uint64(c.HeadBytes))
	binary.LittleEndian.PutUint64(e[24:], uint64(c.BodyBytes))
	word := (*uint64)(unsafe.Pointer(&e[0]))
	for {
		old := atomic.LoadUint64(word)
		w := wsgi.DecodeRequestWord(old)
		w.Phase = wsgi.PhaseDone
		if atomic.CompareAndSwapUint64(word, old, wsgi.EncodeRequestWord(w)) {
			return wsgi.DecodeRequestWord(old).Waiting
		}
	}
}

func TestLazyCompletionComesFromTheTable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		clientNext bool // the client sends its next request; else it stays idle
	}{
		{"the client's next request wakes the master", true},
		{"an idle client's response ends after lazyWaitFor", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newDispatchRig(t, 1)
			rec := newPeerRecorder(t)
			done := rig.serve(context.Background(), rec, "/lazy", "")
			w := rig.workers[0]
			id, _, _ := w.nextRequest()
			want := wsgi.Completion{Status: 200, KeepAlive: true, HeadBytes: 80, BodyBytes: 13, HeadFields: 3}
			assert.False(t, endInTable(rig.d.requests, id, want), "the master did not wait: no FrameEnd")
			if tc.clientNext {
				close(rec.peer)
			}
			require.NoError(t, wait(t, done))
			require.NotNil(t, rec.completed(), "the completion reached the writer")
			assert.Equal(t, want, *rec.completed())
		})
	}
}

func TestLazyCompletionAsksForTheFrameEndWhenTheWorkerHasNotEnded(t *testing.T) {
	rig := newDispatchRig(t, 1)
	rec := newPeerRecorder(t)
	done := rig.serve(context.Background(), rec, "/pipelined", "")
	w := rig.workers[0]
	id, _, _ := w.nextRequest()
	close(rec.peer) // the next request came before the worker ended
	eventually(t, func() bool { return rig.d.requests.table.Load(id).Waiting }, "the master waits for the FrameEnd")
	want := wsgi.Completion{Status: 201, KeepAlive: true, HeadBytes: 90, BodyBytes: 2}
	require.True(t, endInTable(rig.d.requests, id, want), "the worker sees the master wait")
	w.write(wsgi.AppendCompletion(nil, id, want))
	require.NoError(t, wait(t, done))
	require.NotNil(t, rec.completed())
	assert.Equal(t, want, *rec.completed())
}
