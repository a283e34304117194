package server

import (
	"encoding/binary"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/internal/rawsock"
)

// queueWithClient returns a generation's queue, a client connection's
// descriptor to send with requests, and a worker's end of the queue.
func queueWithClient(tb testing.TB) (*genQueue, syscall.RawConn, *rawsock.Socket) {
	tb.Helper()
	q, err := newGenQueue(1)
	require.NoError(tb, err)
	tb.Cleanup(q.close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() { ln.Close() })
	dialed, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(tb, err)
	tb.Cleanup(func() { dialed.Close() })
	raw, err := dialed.(*net.TCPConn).SyscallConn()
	require.NoError(tb, err)
	theirs, err := q.theirs.SyscallConn()
	require.NoError(tb, err)
	return q, raw, rawsock.NewSocket(theirs)
}

// TestQueueSendPassesTheClientAndAllocatesNothing: a request goes on the
// queue as one message with its client's descriptor, and sending it, once
// per request, allocates nothing.
func TestQueueSendPassesTheClientAndAllocatesNothing(t *testing.T) {
	q, raw, worker := queueWithClient(t)
	frame, buf, oob := []byte("request frame"), make([]byte, 64), make([]byte, unix.CmsgSpace(4))

	var received []string
	allocs := testing.AllocsPerRun(50, func() {
		require.NoError(t, q.send(frame, raw, nil))
		n, oobn, _, err := worker.RecvMsg(buf, oob)
		require.NoError(t, err)
		require.Equal(t, unix.CmsgSpace(4), oobn)
		fd := int(binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):]))
		if len(received) == 0 {
			received = append(received, string(buf[:n]))
			var st unix.Stat_t
			require.NoError(t, unix.Fstat(fd, &st))
			assert.Equal(t, uint32(unix.S_IFSOCK), st.Mode&unix.S_IFMT, "the client's descriptor came with the frame")
		}
		unix.Close(fd)
	})
	assert.Equal(t, []string{"request frame"}, received)
	assert.Zero(t, allocs)
}

// BenchmarkQueueSendWithClient: one request frame on the queue with its
// client's descriptor, and a worker's read of it.
func BenchmarkQueueSendWithClient(b *testing.B) {
	q, raw, worker := queueWithClient(b)
	frame, buf, oob := make([]byte, 600), make([]byte, 1024), make([]byte, unix.CmsgSpace(4))
	b.ReportAllocs()
	for b.Loop() {
		if err := q.send(frame, raw, nil); err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := worker.RecvMsg(buf, oob); err != nil {
			b.Fatal(err)
		}
		unix.Close(int(binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):])))
	}
}
