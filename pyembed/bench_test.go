// A benchmark of the worker's per-request work, for tuning the C hot path.
package pyembed

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// BenchmarkServeHello measures one hello-world request through a slot:
// environ, the app call, the frames and their write, and reading the
// frames back as the master would. Besides the wall time it reports
// slot-cpu-ns/op, the CPU time of the slot's thread (the worker's share),
// which other processes on a loaded machine inflate far less.
func BenchmarkServeHello(b *testing.B) {
	h := newSlotHarness(b)
	req := newRequest("GET", "/hello", "")
	req.Vars.Add("HTTP_HOST", "127.0.0.1:8000")
	req.Vars.Add("HTTP_USER_AGENT", "bench")
	req.Vars.Add("HTTP_ACCEPT", "*/*")
	frame := wsgi.AppendRequest(nil, 1, req)
	b.ReportAllocs()
	start := threadCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := uint32(i + 1)
		require.NoError(b, h.slot.Serve(id, 0, frame[wsgi.FrameHeaderLen:], -1, true))
		r, err := h.collect(id, response{})
		require.NoError(b, err)
		if len(r.body) != len("Hello World!\n") {
			b.Fatalf("body %q", r.body)
		}
	}
	b.ReportMetric(float64(threadCPU(b)-start)/float64(b.N), "slot-cpu-ns/op")
}

// threadCPU returns the CPU time the calling thread has used, in
// nanoseconds; the slot harness keeps its goroutine on one thread.
func threadCPU(b *testing.B) int64 {
	var ru unix.Rusage
	require.NoError(b, unix.Getrusage(unix.RUSAGE_THREAD, &ru))
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkServeHelloDirect is BenchmarkServeHello for a request whose
// response the worker writes to the client itself (HTTP/1.1 keep-alive,
// FramingHTTP1): the head framed in C, the write to the client's socket,
// and only the FrameEnd with its completion record back to the master.
func BenchmarkServeHelloDirect(b *testing.B) {
	h := newSlotHarness(b)
	req := newRequest("GET", "/hello", "")
	req.Vars.Add("HTTP_HOST", "127.0.0.1:8000")
	req.Framing, req.HTTPFlags = wsgi.FramingHTTP1, wsgi.HTTP11
	frame := wsgi.AppendRequest(nil, 1, req)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(b, err)
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	answer := make([]byte, 4096)
	b.ReportAllocs()
	start := threadCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := uint32(i + 1)
		client, err := unix.Dup(pair[0]) // the slot takes its copy over
		require.NoError(b, err)
		require.NoError(b, h.slot.ServeDirect(id, frame[1], frame[wsgi.FrameHeaderLen:], client, -1, true))
		end := <-h.frames
		if end.Kind != wsgi.FrameEnd {
			b.Fatalf("frame %q", end.Kind)
		}
		if n, err := unix.Read(pair[1], answer); err != nil || n < len("Hello World!\n") {
			b.Fatalf("answer of %d bytes: %v", n, err)
		}
	}
	b.ReportMetric(float64(threadCPU(b)-start)/float64(b.N), "slot-cpu-ns/op")
}
