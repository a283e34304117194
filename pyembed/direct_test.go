package pyembed

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// TestDirectResponseBytes: a direct request's response reaches the client
// socket framed exactly as the gateway frames it, only the FrameEnd with its
// completion record goes to the slot socket, and the scoreboard's head-out
// words name the request and its status, as the master reads them.
func TestDirectResponseBytes(t *testing.T) {
	cases := []struct {
		name    string
		framing wsgi.Framing
		method  string
		want    string
		body    int64
	}{
		{"uwsgi", wsgi.FramingHTTPHead, "GET",
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello World!\n", 13},
		{"scgi", wsgi.FramingCGI, "GET",
			"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello World!\n", 13},
		{"head", wsgi.FramingHTTPHead, "HEAD",
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n", 0},
	}
	h := newSlotHarness(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			require.NoError(t, err)
			client := os.NewFile(uintptr(pair[1]), "client")
			defer client.Close()
			req := newRequest(c.method, "/hello", "")
			req.Framing = c.framing
			h.nextID++
			frame := wsgi.AppendRequest(nil, h.nextID, req)
			require.Equal(t, wsgi.FlagDirect, frame[1]&wsgi.FlagDirect)
			require.NoError(t, h.slot.ServeDirect(h.nextID, frame[1], frame[wsgi.FrameHeaderLen:], pair[0], -1, true))

			got, err := io.ReadAll(client) // the worker closed its copy: EOF
			require.NoError(t, err)
			assert.Equal(t, c.want, string(got))
			select {
			case f := <-h.frames:
				require.Equal(t, wsgi.FrameEnd, f.Kind, "only the end comes back")
				comp, err := wsgi.ParseCompletion(f.Flags, f.Payload)
				require.NoError(t, err)
				// Content-Type and Content-Length: the access line's "2 headers".
				assert.Equal(t, wsgi.Completion{Status: 200, HeadBytes: int64(len(c.want)) - c.body, BodyBytes: c.body, HeadFields: 2}, comp)
			case <-time.After(5 * time.Second):
				require.FailNow(t, "no FrameEnd")
			}
			left, code := h.board.HeadMayHaveLeft(0, h.nextID)
			assert.True(t, left)
			assert.Equal(t, 200, code)
			left, _ = h.board.HeadMayHaveLeft(0, h.nextID+1)
			assert.False(t, left, "another request's id")
		})
	}
}

// TestDirectHTTPEndIsAFrameOnlyWhenTheConnectionCloses: a response on a
// kept-alive connection ends in the request table alone, for the master to
// read when the client's next request wakes it; one whose connection closes
// also sends its FrameEnd, since the client sees the end only once the
// master closes its copy of the connection, and no next request will come
// to wake it.
func TestDirectHTTPEndIsAFrameOnlyWhenTheConnectionCloses(t *testing.T) {
	h := newSlotHarness(t)
	table := sharedRequestTable(t, 8)
	serve := func(id uint32, flags wsgi.HTTPFlags) string {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		client := os.NewFile(uintptr(pair[1]), "client")
		defer client.Close()
		req := newRequest("GET", "/hello", "")
		req.Framing, req.HTTPFlags = wsgi.FramingHTTP1, flags
		frame := wsgi.AppendRequest(nil, id, req)
		table.Post(id, false) // the master does not wait
		require.True(t, claimRequest(table.Entry(id), id, 4194304))
		require.NoError(t, h.slot.serveDirectClaimed(table.Entry(id), id, frame[1], frame[wsgi.FrameHeaderLen:], pair[0]))
		got, err := io.ReadAll(client)
		require.NoError(t, err)
		return string(got)
	}
	const kept, closing = 1, 2
	assert.NotContains(t, serve(kept, wsgi.HTTP11), "Connection: close")
	assert.Contains(t, serve(closing, wsgi.HTTP11|wsgi.HTTPWantsClose), "Connection: close\r\n")

	// Frames keep their order: had the kept-alive response sent one, it
	// would come first.
	select {
	case f := <-h.frames:
		require.Equal(t, wsgi.FrameEnd, f.Kind)
		assert.Equal(t, uint32(closing), f.ID, "the first FrameEnd is the closing response's")
	case <-time.After(frameWait):
		require.FailNow(t, "no FrameEnd for the response that closes its connection")
	}
	for id, keep := range map[uint32]bool{kept: true, closing: false} {
		assert.Equal(t, wsgi.PhaseDone, table.Load(id).Phase)
		assert.Equal(t, keep, table.Completion(id).KeepAlive)
		assert.Equal(t, !keep, table.FrameFollows(id), "request %d", id)
	}
}
