// A benchmark of the worker's per-request work, for tuning the C hot path.
package pyembed

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// BenchmarkServeHello measures one hello-world request through a slot:
// environ, the app call, the frames and their write, and reading the
// frames back as the master would.
func BenchmarkServeHello(b *testing.B) {
	h := newSlotHarness(b)
	req := newRequest("GET", "/hello", "")
	req.Vars.Add("HTTP_HOST", "127.0.0.1:8000")
	req.Vars.Add("HTTP_USER_AGENT", "bench")
	req.Vars.Add("HTTP_ACCEPT", "*/*")
	frame := wsgi.AppendRequest(nil, 1, req)
	b.ReportAllocs()
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
}
