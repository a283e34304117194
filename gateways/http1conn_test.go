package gateways

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// bodyApp answers every request with "hello", declaring its length only
// when the path is /sized, and flushing before the body when it is
// /streamed.
func bodyApp(w wsgi.ResponseWriter, path string) error {
	var headers wsgi.Vars
	if path == "/sized" {
		headers.Add("Content-Length", "5")
	}
	if err := w.WriteHead("200 OK", headers.Block()); err != nil {
		return err
	}
	if path == "/streamed" {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return w.WriteBody([]byte("hello"))
}

type pathApp func(w wsgi.ResponseWriter, path string) error

func (a pathApp) ServeWSGI(_ context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	path, _ := req.Vars.Get("PATH_INFO")
	return a(w, path)
}

// TestHTTP1ResponseFraming pins how each response is delimited and whether
// the connection stays open (RFC 9112 sections 6.3 and 9.3), as net/http
// did: what follows the head, and whether a second request on the same
// connection is answered.
func TestHTTP1ResponseFraming(t *testing.T) {
	tests := []struct {
		name    string
		request string
		want    []string // in the first response, in order
		absent  []string
		second  bool // the connection answered a second request
	}{
		{"1.1 ended within the held bytes gets a length", "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n", "\r\nhello"}, []string{"Connection:", "chunked"}, true},
		{"1.1 flushed before the end is chunked", "GET /streamed HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}, []string{"Content-Length"}, true},
		{"1.1 Connection: close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"Connection: close\r\n"}, nil, false},
		{"1.0 without keep-alive closes", "GET / HTTP/1.0\r\n\r\n",
			[]string{"HTTP/1.0 200 OK\r\n", "Content-Length: 5\r\n"}, []string{"Connection:"}, false},
		{"1.0 keep-alive with a length stays open", "GET /sized HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			[]string{"Content-Length: 5\r\n", "Connection: keep-alive\r\n"}, nil, true},
		{"1.0 keep-alive streamed is close-delimited", "GET /streamed HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			[]string{"HTTP/1.0 200 OK\r\n", "\r\n\r\nhello"}, []string{"Content-Length", "chunked", "Connection:"}, false},
		{"HEAD sends no body but keeps the length", "HEAD /sized HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"Content-Length: 5\r\n"}, []string{"hello"}, true},
	}
	addr := startHTTP(t, pathApp(bodyApp), HTTPOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			second := "GET /second HTTP/1.1\r\nHost: h\r\n\r\n"
			out := exchange(t, addr, tt.request+second)
			first := out
			if i := strings.Index(out[1:], "HTTP/1."); i >= 0 {
				first = out[:i+1]
			}
			at := 0
			for _, w := range tt.want {
				i := strings.Index(first[at:], w)
				require.GreaterOrEqual(t, i, 0, "%q not in %q after %d", w, first, at)
				at += i + len(w)
			}
			for _, a := range tt.absent {
				assert.NotContains(t, first, a)
			}
			assert.Equal(t, tt.second, strings.Count(out, "HTTP/1.") == 2, out)
			assert.Contains(t, first, "\r\nServer: gowsgi\r\n")
			assert.Contains(t, first, "\r\nDate: ")
		})
	}
}

// TestHTTP1Refusals covers the answers net/http gave before the
// application for what the framing scanner leaves to the head parser.
func TestHTTP1Refusals(t *testing.T) {
	tests := []struct {
		name, raw, status string
	}{
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", "505"},
		{"HTTP/0.9 version", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", "505"},
		{"malformed version", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", "400"},
		{"unknown expectation", "GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", "417"},
		{"broken percent-escape in the path", "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		{"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "400"},
		{"DEL in a field value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", "400"},
		{"Content-Length not a number", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello", "400"},
		{"Trailer naming Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"head cut short", "GET / HTTP/1.1\r\nHost: h\r\n", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			addr := startHTTP(t, h, HTTPOptions{})
			out := exchange(t, addr, tt.raw)
			assert.Regexp(t, `^HTTP/1\.1 `+tt.status+` `, out)
			assert.Contains(t, out, "\r\nConnection: close\r\n")
			assert.Empty(t, h.requests())
		})
	}
}

// TestHTTP1ExpectContinue: 100 Continue goes out before the body is read,
// and not for a request refused on its head alone.
func TestHTTP1ExpectContinue(t *testing.T) {
	addr := startHTTP(t, &recorder{}, HTTPOptions{LimitPost: 10})
	for _, tt := range []struct {
		length    string
		continued bool
		status    string
	}{
		{"5", true, "200"},
		{"11", false, "413"},
	} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: "+tt.length+"\r\n\r\n")
		require.NoError(t, err)
		r := bufio.NewReader(conn)
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if tt.continued {
			assert.Equal(t, "HTTP/1.1 100 Continue\r\n", line)
			_, err = r.ReadString('\n')
			require.NoError(t, err)
			_, err = io.WriteString(conn, "hello")
			require.NoError(t, err)
			line, err = r.ReadString('\n')
			require.NoError(t, err)
		}
		assert.True(t, strings.HasPrefix(line, "HTTP/1.1 "+tt.status+" "), line)
		conn.Close()
	}
}

// TestHTTP1ClientLeavingCancelsTheRequest: a client that closes its
// connection while its request runs cancels the request's context, which
// is how the server stops the worker and has the app's close() called.
func TestHTTP1ClientLeavingCancelsTheRequest(t *testing.T) {
	canceled := make(chan error, 1)
	app := handlerFunc(func(ctx context.Context, w wsgi.ResponseWriter, _ *wsgi.Request) error {
		select {
		case <-ctx.Done():
			canceled <- context.Cause(ctx)
		case <-time.After(10 * time.Second):
			canceled <- nil
		}
		return w.WriteHead("200 OK", nil)
	})
	addr := startHTTP(t, app, HTTPOptions{})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).SetLinger(0))
	require.NoError(t, conn.Close())
	assert.Error(t, <-canceled, "the request was not canceled when its client left")
}

// TestHTTP1Shutdown: an idle keep-alive connection closes at once; a
// request in flight finishes, its response says Connection: close, and
// its connection closes after it.
func TestHTTP1Shutdown(t *testing.T) {
	running, release := make(chan struct{}), make(chan struct{})
	app := handlerFunc(func(_ context.Context, w wsgi.ResponseWriter, _ *wsgi.Request) error {
		close(running)
		<-release
		return w.WriteHead("200 OK", nil)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := NewHTTP(app, HTTPOptions{})
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	defer g.Close()

	idle, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer idle.Close()
	busy, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer busy.Close()
	_, err = io.WriteString(busy, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	require.NoError(t, err)
	<-running

	stopped := make(chan error, 1)
	go func() { stopped <- g.Shutdown(context.Background()) }()
	require.NoError(t, idle.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = idle.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the idle connection was not closed")
	close(release)

	require.NoError(t, busy.SetDeadline(time.Now().Add(5*time.Second)))
	out, err := io.ReadAll(busy)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(out))), nil)
	require.NoError(t, err, "%q", out)
	assert.Equal(t, 200, resp.StatusCode)
	assert.True(t, resp.Close, "Connection: close expected: %q", out)
	require.NoError(t, <-stopped)
	require.NoError(t, <-served)
}

// TestHTTP1HeaderTimeoutOnEveryRequest: the header timeout bounds every
// request's head on a kept-alive connection, not only the first's, however
// the part of the head came: after the response, or pipelined with the
// request before. The loop sets it only when a head is not read whole, so
// each way of arriving short of a whole head is a case.
func TestHTTP1HeaderTimeoutOnEveryRequest(t *testing.T) {
	const first = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	const partial = "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: "
	tests := []struct {
		name      string
		pipelined bool // partial goes in the first request's write
	}{
		{"head begun after the response", false},
		{"head begun pipelined with the request before", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startHTTP(t, pathApp(bodyApp), HTTPOptions{Timeout: 300 * time.Millisecond, IdleTimeout: time.Minute})
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			r := bufio.NewReader(conn)
			if tt.pipelined {
				_, err = io.WriteString(conn, first+partial)
			} else {
				_, err = io.WriteString(conn, first)
			}
			require.NoError(t, err)
			resp, err := http.ReadResponse(r, nil)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			if !tt.pipelined {
				_, err = io.WriteString(conn, partial)
				require.NoError(t, err)
			}
			// The idle timeout is a minute: a close within seconds is the
			// header timeout's.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			rest, err := io.ReadAll(r)
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection outlived the header timeout")
			if len(rest) > 0 {
				assert.Contains(t, string(rest), "408")
			}
		})
	}
}
