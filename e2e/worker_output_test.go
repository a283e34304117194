// The worker's C side under an app that runs it out of room
// (testdata/memory_limits.py): a head over the frame limit, and output it
// cannot allocate. Each must end its own response cleanly, say why in the
// log, and leave the worker serving: a half-built frame would corrupt every
// response after it on that slot.
package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

func TestHeadOverTheFrameLimitIs500(t *testing.T) {
	t.Parallel()
	app := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "memory_limits.py"), "-p", "1")
	resp, body := harness.Get(t, app.URL+"/head-of?n="+strconv.Itoa(wsgi.MaxFramePayload+1))
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "body: %s", body)
	app.AwaitLogged(t, "wsgi: exception in app for GET /head-of",
		"ValueError: start_response() status and headers are over the 67108864 byte limit of a response head")
	assert.NotContains(t, app.Stderr(), "worker broke the frame protocol")
	resp, body = harness.Get(t, app.URL+"/hello")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "hello", string(body))
}

func TestWorkerOutOfMemoryForItsOutput(t *testing.T) {
	t.Parallel()
	// One worker slot, so every request below goes through the same
	// output buffer and slot socket.
	app := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "memory_limits.py"), "-p", "1", "--threads", "1")

	t.Run("head: 500", func(t *testing.T) {
		resp, body := harness.Get(t, app.URL+"/oom-head")
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "body: %s", body)
		app.AwaitLogged(t, "wsgi: error sending the app's response for GET /oom-head", "MemoryError")
	})
	t.Run("body: the head, then a cut", func(t *testing.T) {
		conn := harness.Dial(t, app.Addr)
		require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
		_, err := io.WriteString(conn, "GET /oom-body HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		// Not reading until the worker has failed keeps the client's socket
		// full, so the worker hands the response over and its output buffer
		// must then hold the items; a client that read would take them all
		// straight from the worker, and nothing would run out.
		app.AwaitLogged(t, "wsgi: error sending the app's response for GET /oom-body", "MemoryError")
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodGet})
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		body, err := io.ReadAll(resp.Body)
		var netErr net.Error
		require.False(t, errors.As(err, &netErr) && netErr.Timeout(), "the response neither ended nor was cut")
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the chunked body ended cleanly")
		assert.True(t, strings.Count(string(body), "x") == len(body), "the body holds bytes the app did not send")
		assert.Less(t, len(body), 48<<20)
	})
	t.Run("the worker serves on", func(t *testing.T) {
		for range 3 {
			resp, body := harness.Get(t, app.URL+"/hello")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "hello", string(body))
		}
		assert.NotContains(t, app.Stderr(), "worker broke the frame protocol")
	})
}
