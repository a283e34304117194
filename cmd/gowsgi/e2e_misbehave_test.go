// An application that breaks PEP 3333 (testdata/misbehave.py) must get a
// clean 500 and a log line saying what to fix, never a malformed response.
package main_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMisbehavingApp(t *testing.T) {
	t.Parallel()
	app := start(t, "--wsgi-file", testdataPath(t, "misbehave.py"), "-p", "1", "--threads", "2")

	tests := []struct {
		path    string
		wantLog string // what stderr must say about it
	}{
		{path: "/str-body", wantLog: "bytes"},
		{path: "/raise-before", wantLog: "RuntimeError: misbehave: raised before start_response"},
		{path: "/bad-status", wantLog: "status"},
		{path: "/hop-by-hop", wantLog: "hop-by-hop"},
		{path: "/non-str-header", wantLog: "X-Number"},
		{path: "/newline-header", wantLog: "X-Injected"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			since := len(app.Stderr())
			resp, body := get(t, app.URL+tt.path)
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "body: %s", body)
			assert.Empty(t, resp.Header.Values("Set-Cookie"), "a header the app smuggled reached the client")
			eventually(t, 10*time.Second, func() bool {
				return strings.Contains(problemLines(app.Stderr()[since:]), tt.wantLog)
			}, "stderr says nothing with %q after the request; stderr:\n%s", tt.wantLog, app.Stderr()[since:])
		})
	}

	t.Run("the worker survives and still answers", func(t *testing.T) {
		resp, _ := get(t, app.URL+"/pid")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("raise mid-stream closes the connection before the terminator", func(t *testing.T) {
		conn := dial(t, app.Addr)
		_, err := io.WriteString(conn, "GET /raise-midstream?tag=m1 HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, &http.Request{Method: http.MethodGet})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, []string{"chunked"}, resp.TransferEncoding)
		partial := make([]byte, len("partial"))
		_, err = io.ReadFull(resp.Body, partial)
		require.NoError(t, err)
		assert.Equal(t, "partial", string(partial))
		app.release(t, "m1")
		rest, err := io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the chunked body ended cleanly after the app raised; rest %q", rest)
	})
}

// problemLines drops the access log lines from a piece of stderr, leaving
// the tracebacks and error messages.
func problemLines(log string) string {
	var kept []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg=request") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}
