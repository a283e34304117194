package gateways

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// served is what the recording handler saw of one request.
type served struct {
	vars     map[string]string
	body     string
	bodyFile *os.File
	spooled  spooledBody // the spool file while the request ran
}

// recorder is a wsgi.Handler that records requests and answers each with
// the response its respond func writes.
type recorder struct {
	mu      sync.Mutex
	seen    []served
	respond func(w wsgi.ResponseWriter) error
}

func (h *recorder) ServeWSGI(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	s := served{vars: req.Vars.Map(), body: string(req.Body), bodyFile: req.BodyFile}
	if req.BodyFile != nil {
		var err error
		if s.spooled, err = inspectSpooled(req.BodyFile); err != nil {
			return err
		}
	}
	h.mu.Lock()
	h.seen = append(h.seen, s)
	h.mu.Unlock()
	if h.respond != nil {
		return h.respond(w)
	}
	return w.WriteHead("200 OK", nil)
}

func (h *recorder) requests() []served {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]served(nil), h.seen...)
}

// startHTTP serves h on an ephemeral loopback port and returns its address.
func startHTTP(t *testing.T, h wsgi.Handler, opts HTTPOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := NewHTTP(h, opts)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		g.Close()
		<-done
	})
	return ln.Addr().String()
}

// exchange sends raw on a new connection, half-closes it and returns
// everything the server sent back before closing.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	out, err := io.ReadAll(conn)
	require.NoError(t, err)
	return string(out)
}

func TestHTTPVars(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want map[string]string // besides the connection's own addresses
		body string
	}{
		{
			name: "simple get",
			raw:  "GET /hello?a=1&b=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n",
			want: map[string]string{
				"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/hello",
				"QUERY_STRING": "a=1&b=%20", "REQUEST_URI": "/hello?a=1&b=%20",
				"SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
				"HTTP_HOST": "example.com", "HTTP_USER_AGENT": "t",
			},
		},
		{
			name: "percent-decoded path keeps raw bytes",
			raw:  "GET /caf%C3%A9/%ff/%2F/x HTTP/1.1\r\nHost: h\r\n\r\n",
			want: map[string]string{
				"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/caf\xc3\xa9/\xff///x",
				"QUERY_STRING": "", "REQUEST_URI": "/caf%C3%A9/%ff/%2F/x",
				"SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "HTTP_HOST": "h",
			},
		},
		{
			name: "absolute-form target",
			raw:  "GET http://example.org/p/q?x=y HTTP/1.1\r\nHost: example.org\r\n\r\n",
			want: map[string]string{
				"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/p/q",
				"QUERY_STRING": "x=y", "REQUEST_URI": "http://example.org/p/q?x=y",
				"SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "HTTP_HOST": "example.org",
			},
		},
		{
			name: "post with body, repeated header, underscore header dropped",
			raw: "POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n" +
				"Accept: a\r\nAccept: b\r\nX_Forwarded_For: evil\r\nX-Forwarded-For: good\r\n\r\nhello",
			want: map[string]string{
				"REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": "/form",
				"QUERY_STRING": "", "REQUEST_URI": "/form", "SERVER_PROTOCOL": "HTTP/1.1",
				"wsgi.url_scheme": "http", "HTTP_HOST": "h", "CONTENT_TYPE": "text/plain",
				"CONTENT_LENGTH": "5", "HTTP_ACCEPT": "a,b", "HTTP_X_FORWARDED_FOR": "good",
			},
			body: "hello",
		},
		{
			name: "chunked body gets its decoded length",
			raw: "PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
			want: map[string]string{
				"REQUEST_METHOD": "PUT", "SCRIPT_NAME": "", "PATH_INFO": "/up",
				"QUERY_STRING": "", "REQUEST_URI": "/up", "SERVER_PROTOCOL": "HTTP/1.1",
				"wsgi.url_scheme": "http", "HTTP_HOST": "h", "CONTENT_LENGTH": "7",
			},
			body: "abcdefg",
		},
		{
			name: "http/1.0 without host",
			raw:  "GET / HTTP/1.0\r\n\r\n",
			want: map[string]string{
				"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/",
				"QUERY_STRING": "", "REQUEST_URI": "/", "SERVER_PROTOCOL": "HTTP/1.0",
				"wsgi.url_scheme": "http",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			addr := startHTTP(t, h, HTTPOptions{SpoolThreshold: 1 << 20})
			out := exchange(t, addr, tt.raw)
			assert.True(t, strings.HasPrefix(out, "HTTP/1."), out)
			seen := h.requests()
			require.Len(t, seen, 1, out)

			host, port, err := net.SplitHostPort(addr)
			require.NoError(t, err)
			vars := seen[0].vars
			assert.Equal(t, host, vars["SERVER_NAME"])
			assert.Equal(t, port, vars["SERVER_PORT"])
			assert.Equal(t, "127.0.0.1", vars["REMOTE_ADDR"])
			remotePort, err := strconv.Atoi(vars["REMOTE_PORT"])
			require.NoError(t, err)
			assert.Positive(t, remotePort)
			for _, k := range []string{"SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "REMOTE_PORT"} {
				delete(vars, k)
			}
			assert.Equal(t, tt.want, vars)
			assert.Equal(t, tt.body, seen[0].body)
		})
	}
}

func TestHTTPRefusesBeforeTheApp(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		status string
	}{
		{"asterisk target on GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
		{"authority target on GET", "GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
		{"two content types", "GET / HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n", "400"},
		{"content-length in trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nContent-Length: 5\r\n\r\n", "400"},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"},
		{"missing host on 1.1", "GET / HTTP/1.1\r\n\r\n", "400"},
		{"header block over the limit", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("x", 8000) + "\r\n\r\n", "431"},
		// What net/http would repair or answer otherwise (httpframing.go).
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nLong: one\r\n two\r\n\r\n", "400"},
		{"content-length with chunked", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"chunked on http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", "400"},
		{"final coding not chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n1\r\na\r\n0\r\n\r\n", "400"},
		{"chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", "400"},
		{"obs-fold in the trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nA: b\r\n c\r\n\r\n", "400"},
		{"unknown coding before chunked keeps net/http's 501", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			addr := startHTTP(t, h, HTTPOptions{MaxHeaderBytes: 1024, SpoolThreshold: 1 << 20})
			out := exchange(t, addr, tt.raw+"GET /second HTTP/1.1\r\nHost: h\r\n\r\n")
			assert.Regexp(t, `^HTTP/1\.[01] `+tt.status+` `, out)
			assert.Equal(t, 1, strings.Count(out, "HTTP/1."), "the connection must close after the refusal: %s", out)
			assert.Empty(t, h.requests())
		})
	}
}

// MaxHeaderBytes (--buffer-size) bounds the head to the byte, as it does
// through the other gateways, not to net/http's limit plus 4 KiB of slack.
func TestHTTPHeadLimitIsExact(t *testing.T) {
	h := &recorder{}
	addr := startHTTP(t, h, HTTPOptions{MaxHeaderBytes: 8192, SpoolThreshold: 1 << 20})
	headOf := func(size int) string {
		prefix := "GET / HTTP/1.1\r\nHost: h\r\nX-Big: "
		return prefix + strings.Repeat("x", size-len(prefix)-len("\r\n\r\n")) + "\r\n\r\n"
	}
	for _, tt := range []struct {
		size   int
		status string
	}{
		{8192, "200"},
		{8193, "431"},
	} {
		t.Run(strconv.Itoa(tt.size), func(t *testing.T) {
			head := headOf(tt.size)
			require.Len(t, head, tt.size)
			assert.Regexp(t, `^HTTP/1\.1 `+tt.status+` `, exchange(t, addr, head))
		})
	}
}

func TestHTTPSpoolsLargeBodies(t *testing.T) {
	h := &recorder{}
	addr := startHTTP(t, h, HTTPOptions{SpoolThreshold: 10})
	tests := []struct {
		name, raw, inline, spooled string
	}{
		{"at the threshold stays inline", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", "0123456789", ""},
		{"over the threshold spools", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n0123456789a", "", "0123456789a"},
		{"chunked over the threshold spools", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n6789ab\r\n0\r\n\r\n", "", "0123456789ab"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exchange(t, addr, tt.raw)
			seen := h.requests()
			require.Len(t, seen, i+1)
			got := seen[i]
			assert.Equal(t, tt.inline, got.body)
			if tt.spooled == "" {
				assert.Nil(t, got.bodyFile)
				return
			}
			assert.Equal(t, spooledBody{content: tt.spooled, nameless: true}, got.spooled)
			assertClosed(t, got.bodyFile)
		})
	}
}

func TestHTTPResponse(t *testing.T) {
	file, err := os.CreateTemp(t.TempDir(), "sendfile")
	require.NoError(t, err)
	_, err = file.WriteString("0123456789")
	require.NoError(t, err)
	defer file.Close()

	headers := func(pairs ...string) []byte {
		var v wsgi.Vars
		for i := 0; i < len(pairs); i += 2 {
			v.Add(pairs[i], pairs[i+1])
		}
		return v.Block()
	}
	tests := []struct {
		name    string
		respond func(w wsgi.ResponseWriter) error
		status  int
		header  http.Header // checked values
		body    string
	}{
		{
			name: "body and default server",
			respond: func(w wsgi.ResponseWriter) error {
				require.NoError(t, w.WriteHead("201 Created", headers("Content-Type", "text/plain", "X-A", "1", "X-A", "2")))
				return w.WriteBody([]byte("made"))
			},
			status: 201,
			header: http.Header{"Content-Type": {"text/plain"}, "X-A": {"1", "2"}, "Server": {"gowsgi"}, "Content-Length": {"4"}},
			body:   "made",
		},
		{
			name: "app's own server header wins",
			respond: func(w wsgi.ResponseWriter) error {
				return w.WriteHead("200 OK", headers("server", "mine"))
			},
			status: 200,
			header: http.Header{"Server": {"mine"}},
		},
		{
			name: "sendfile range",
			respond: func(w wsgi.ResponseWriter) error {
				require.NoError(t, w.WriteHead("200 OK", headers("Content-Length", "4")))
				return w.SendFile(file, 3, 4)
			},
			status: 200,
			header: http.Header{"Content-Length": {"4"}},
			body:   "3456",
		},
		{
			name: "sendfile to end after a flush",
			respond: func(w wsgi.ResponseWriter) error {
				require.NoError(t, w.WriteHead("200 OK", nil))
				require.NoError(t, w.WriteBody([]byte("<")))
				require.NoError(t, w.Flush())
				return w.SendFile(file, 8, -1)
			},
			status: 200,
			header: http.Header{"Transfer-Encoding": nil},
			body:   "<89",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startHTTP(t, &recorder{respond: tt.respond}, HTTPOptions{})
			out := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
			require.NoError(t, err, out)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.status, resp.StatusCode)
			for k, v := range tt.header {
				assert.Equal(t, v, resp.Header[k], k)
			}
			assert.NotEmpty(t, resp.Header.Get("Date"))
			assert.Equal(t, tt.body, string(body))
		})
	}
}

func TestHTTPBrokenResponseClosesTheConnection(t *testing.T) {
	respond := func(w wsgi.ResponseWriter) error {
		require.NoError(t, w.WriteHead("200 OK", nil))
		require.NoError(t, w.WriteBody([]byte("part")))
		require.NoError(t, w.Flush())
		return io.ErrUnexpectedEOF
	}
	addr := startHTTP(t, &recorder{respond: respond}, HTTPOptions{})
	out := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
	assert.Equal(t, 1, strings.Count(out, "HTTP/1.1 200"), out)
	assert.NotContains(t, out, "\r\n0\r\n\r\n", "a broken chunked response must not end cleanly")
}

// statusApp answers each request with the status its path spells
// ("/200%20Fine" is "200 Fine") and a body of the length in ?n=.
type statusApp struct{}

func (statusApp) ServeWSGI(_ context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	path, _ := req.Vars.Get("PATH_INFO")
	query, _ := req.Vars.Get("QUERY_STRING")
	n, _ := strconv.Atoi(strings.TrimPrefix(query, "n="))
	var headers wsgi.Vars
	headers.Add("Content-Length", strconv.Itoa(n))
	if err := w.WriteHead(path[1:], headers.Block()); err != nil {
		return err
	}
	return w.WriteBody([]byte(strings.Repeat("b", n)))
}

// The application's reason phrase reaches the client as it wrote it, as
// under uWSGI and Gunicorn, though net/http writes its own.
func TestHTTPKeepsTheReasonPhrase(t *testing.T) {
	addr := startHTTP(t, statusApp{}, HTTPOptions{})
	requests := []struct{ target, line string }{
		{"/200%20Fine?n=2", "HTTP/1.1 200 Fine"},
		{"/200%20OK?n=2", "HTTP/1.1 200 OK"},
		{"/404%20Not%20Here?n=2", "HTTP/1.1 404 Not Here"},
		{"/299%20Custom?n=2", "HTTP/1.1 299 Custom"},
		{"/201%20Made%20It?n=10000", "HTTP/1.1 201 Made It"}, // the head and a body larger than net/http's buffer
		{"/500%20Internal%20Server%20Error?n=2", "HTTP/1.1 500 Internal Server Error"},
	}
	var raw strings.Builder
	for _, r := range requests {
		raw.WriteString("GET " + r.target + " HTTP/1.1\r\nHost: h\r\n\r\n")
	}
	out := bufio.NewReader(strings.NewReader(exchange(t, addr, raw.String()))) // pipelined on one connection
	for _, r := range requests {
		resp, err := http.ReadResponse(out, nil)
		require.NoError(t, err, r.target)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err, r.target)
		assert.Equal(t, r.line, resp.Proto+" "+resp.Status, r.target)
		assert.Equal(t, resp.ContentLength, int64(len(body)), r.target)
	}
	_, err := out.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "nothing after the last response")
}
