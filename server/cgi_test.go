// Tests of the CGI role's request path in this process: the CGI gateway,
// the dispatcher and an embedded slot over a socketpair. The e2e tests run
// the real binary as a web server would.
package server

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/pyembed"
)

// cgiWait bounds one CGI request, so a hang fails the test.
const cgiWait = 30 * time.Second

var (
	cgiInitOnce sync.Once
	cgiInitErr  error
)

// initCGIApp starts Python in the test process with testdata/cgi_app.py,
// once; the worker tests run Python only in child processes.
func initCGIApp(t *testing.T) {
	t.Helper()
	cgiInitOnce.Do(func() {
		cgiInitErr = initCGI(pyembed.AppSpec{WSGIFile: filepath.Join("testdata", "cgi_app.py")})
	})
	require.NoError(t, cgiInitErr)
}

// serveCGIRequest serves one CGI request in this process and returns
// stdout, with a deadline.
func serveCGIRequest(t *testing.T, env []string, stdin string) (string, error) {
	t.Helper()
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() {
		gateway := cgiGateway(1<<20, env, strings.NewReader(stdin), &stdout)
		done <- serveCGI(gateway, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	select {
	case err := <-done:
		return stdout.String(), err
	case <-time.After(cgiWait):
		require.FailNow(t, "the CGI request did not end")
		return "", nil
	}
}

func cgiTestEnv(method, path, query string, extra ...string) []string {
	return append([]string{
		"GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=" + method, "SERVER_NAME=localhost", "SERVER_PORT=80",
		"SERVER_PROTOCOL=HTTP/1.1", "SCRIPT_NAME=", "PATH_INFO=" + path, "QUERY_STRING=" + query,
	}, extra...)
}

func TestServeCGI(t *testing.T) {
	initCGIApp(t)
	source, err := os.ReadFile(filepath.Join("testdata", "cgi_app.py"))
	require.NoError(t, err)
	big := 3 << 20 // many times the socket buffers between slot and gateway

	tests := []struct {
		name    string
		env     []string
		stdin   string
		want    string
		wantErr bool
	}{
		{
			name:  "POST",
			env:   cgiTestEnv("POST", "/echo", "", "CONTENT_LENGTH=5"),
			stdin: "hello!",
			want: "Status: 200 OK\r\nContent-Type: application/octet-stream\r\nX-Run-Once: True\r\n" +
				"X-Multiprocess: True\r\nX-Multithread: False\r\n\r\nhello",
		},
		{
			name: "a large streamed body",
			env:  cgiTestEnv("GET", "/big", strconv.Itoa(big)),
			want: "Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + strings.Repeat("x", big),
		},
		{
			name: "file_wrapper",
			env:  cgiTestEnv("GET", "/file", ""),
			want: "Status: 200 OK\r\nContent-Type: text/x-python\r\nContent-Length: " + strconv.Itoa(len(source)) + "\r\n\r\n" + string(source),
		},
		{
			name: "an app exception",
			env:  cgiTestEnv("GET", "/raise", ""),
			want: "Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\nInternal Server Error",
		},
		{
			name:    "a request the gateway refuses never reaches the slot",
			env:     cgiTestEnv("POST", "/echo", "", "CONTENT_LENGTH=10"),
			stdin:   "short",
			want:    "Status: 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n400 Bad Request\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := serveCGIRequest(t, tt.env, tt.stdin)
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
			// Not assert.Equal: a 3 MiB diff helps nobody.
			assert.True(t, got == tt.want, "stdout differs: got %d bytes starting %.200q, want %d bytes starting %.200q",
				len(got), got, len(tt.want), tt.want)
		})
	}
}
