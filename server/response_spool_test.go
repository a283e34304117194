package server

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// gatedWriter is a ResponseWriter for a client that reads nothing until
// gate is closed. It keeps the body bytes in the order they are sent and,
// per write, where they came from: "body" (memory), "file" (a worker's
// descriptor) or "spool".
type gatedWriter struct {
	gate     chan struct{}
	openOnce sync.Once

	mu      sync.Mutex
	body    bytes.Buffer
	sources []string
	spools  []*os.File
}

// newGatedWriter returns a gatedWriter that t's cleanup opens, so a failed
// test does not leave a relay, and the worker it holds, waiting.
func newGatedWriter(t *testing.T) *gatedWriter {
	w := &gatedWriter{gate: make(chan struct{})}
	t.Cleanup(w.open)
	return w
}

// open lets the client read.
func (w *gatedWriter) open() { w.openOnce.Do(func() { close(w.gate) }) }

func (w *gatedWriter) WriteHead(status string, headers []byte) error { return nil }
func (w *gatedWriter) Flush() error                                  { return nil }

func (w *gatedWriter) WriteBody(p []byte) error {
	<-w.gate
	w.mu.Lock()
	defer w.mu.Unlock()
	w.body.Write(p)
	w.sources = append(w.sources, "body")
	return nil
}

func (w *gatedWriter) SendFile(f *os.File, offset, count int64) error {
	<-w.gate
	data := make([]byte, count)
	if _, err := f.ReadAt(data, offset); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.body.Write(data)
	if strings.HasSuffix(f.Name(), "(spool)") {
		w.sources = append(w.sources, "spool")
		w.spools = append(w.spools, f)
	} else {
		w.sources = append(w.sources, "file")
	}
	return nil
}

// A worker streaming to a client that reads nothing writes its whole
// response and is free: past the memory mark its body frames wait in a
// spool file with no name, and the client then gets every byte in the
// order the worker sent it, memory, spool and the worker's own file
// descriptors mixed.
func TestDispatchSpoolsPastTheMemoryMarkInOrder(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	rig := newDispatchRig(t, 1)
	rig.d.spoolLimit = 64 << 20
	rec := newGatedWriter(t)
	done := rig.serve(context.Background(), rec, "/stream", "")
	w := rig.workers[0]
	id, _, _ := w.nextRequest()

	// The frames: 1 MiB bodies, each of one letter, with a worker's file
	// after the memory mark is passed, and small bodies around it.
	var want bytes.Buffer
	frames := head(id, "200 OK")
	addBody := func(b []byte) {
		frames = append(frames, bodyFrame(id, string(b))...)
		want.Write(b)
	}
	for c := byte('a'); c <= 'f'; c++ {
		addBody(bytes.Repeat([]byte{c}, 1<<20))
	}
	addBody([]byte("small before the file"))
	workerFile := fileHolding(t, "0123456789")
	fileAt := len(frames)
	frames = append(frames, wsgi.AppendFile(nil, id, 2, 5)...)
	want.WriteString("23456")
	addBody([]byte("small after the file"))
	for c := byte('g'); c <= 'h'; c++ {
		addBody(bytes.Repeat([]byte{c}, 1<<20))
	}
	frames = append(frames, end(id, 0)...)

	written := make(chan error, 1)
	go func() {
		// As a worker does, the descriptor goes with the file frame's
		// first byte; a stream socket may take part of a sendmsg.
		_, err := w.conn.Write(frames[:fileAt])
		if err == nil {
			var n int
			n, _, err = w.conn.WriteMsgUnix(frames[fileAt:], unix.UnixRights(int(workerFile.Fd())), nil)
			if err == nil {
				_, err = w.conn.Write(frames[fileAt+n:])
			}
		}
		written <- err
	}()
	select {
	case err := <-written:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the worker is held by a client that reads nothing")
	}
	// The worker is free while the client has read nothing: it serves the
	// next request.
	recNext := &recorder{}
	doneNext := rig.serve(context.Background(), recNext, "/next", "")
	idNext, _, _ := w.nextRequest()
	w.write(append(head(idNext, "204 No Content"), end(idNext, 0)...))
	require.NoError(t, wait(t, doneNext))
	left, err := os.ReadDir(os.TempDir())
	require.NoError(t, err)
	assert.Empty(t, left, "the spool file has no name")

	rec.open()
	require.NoError(t, wait(t, done))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.True(t, bytes.Equal(want.Bytes(), rec.body.Bytes()), "every byte, in order")
	assert.Contains(t, rec.sources, "spool")
	assert.Contains(t, rec.sources, "file")
	assert.Equal(t, "body", rec.sources[0], "the first frames stay in memory")
	for _, f := range rec.spools {
		_, err := f.Stat()
		assert.ErrorIs(t, err, os.ErrClosed, "the spool file outlived its response")
	}
}

// fileHolding returns an open file holding content.
func fileHolding(t *testing.T, content string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "worker-file")
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	_, err = f.WriteString(content)
	require.NoError(t, err)
	return f
}
