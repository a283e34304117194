// PEP 3333 through the real binary: testdata/probe.py, wrapped in
// wsgiref.validate, checks one rule per route, and these tests drive it over
// real sockets the way HTTP clients do. An application that breaks PEP 3333
// (testdata/misbehave.py) must get a clean 500 and a log line saying what to
// fix, never a malformed response.
package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

func TestMisbehavingApp(t *testing.T) {
	t.Parallel()
	app := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "misbehave.py"), "-p", "1", "--threads", "2")

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
			resp, body := harness.Get(t, app.URL+tt.path)
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "body: %s", body)
			assert.Empty(t, resp.Header.Values("Set-Cookie"), "a header the app smuggled reached the client")
			harness.Eventually(t, 10*time.Second, func() bool {
				return strings.Contains(problemLines(app.Stderr()[since:]), tt.wantLog)
			}, "stderr says nothing with %q after the request; stderr:\n%s", tt.wantLog, app.Stderr()[since:])
		})
	}

	t.Run("the worker survives and still answers", func(t *testing.T) {
		resp, _ := harness.Get(t, app.URL+"/pid")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("raise mid-stream closes the connection before the terminator", func(t *testing.T) {
		conn := harness.Dial(t, app.Addr)
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
		app.Release(t, "m1")
		rest, err := io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the chunked body ended cleanly after the app raised; rest %q", rest)
	})
}

// problemLines drops the access log lines from a piece of stderr, leaving
// the tracebacks and error messages.
func problemLines(log string) string {
	var kept []string
	for _, line := range strings.Split(log, "\n") {
		if _, access := harness.ParseRequestLine(line); !access {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// probeEnviron is what /environ answers.
type probeEnviron struct {
	Vars  map[string]string `json:"vars"`
	Types map[string]string `json:"types"`
	WSGI  struct {
		Version         []int  `json:"version"`
		URLScheme       string `json:"url_scheme"`
		Multithread     bool   `json:"multithread"`
		Multiprocess    bool   `json:"multiprocess"`
		RunOnce         bool   `json:"run_once"`
		InputTerminated *bool  `json:"input_terminated"`
	} `json:"wsgi"`
	Latin1 bool `json:"latin1"`
}

func decodeEnviron(t *testing.T, body []byte) probeEnviron {
	t.Helper()
	var env probeEnviron
	require.NoError(t, json.Unmarshal(body, &env), "environ JSON: %s", body)
	return env
}

// latin1 turns bytes into the string PEP 3333 calls native: one code point
// per byte.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// exchange writes raw on a fresh connection and reads n responses.
func exchange(t *testing.T, addr, raw string, n int, method string) (*bufio.Reader, []*harness.RawResponse) {
	t.Helper()
	conn := harness.Dial(t, addr)
	_, err := io.WriteString(conn, raw)
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	return r, harness.ReadResponses(t, r, n, method)
}

func TestPEP3333(t *testing.T) {
	t.Parallel()
	probe := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "-p", "2", "--threads", "4",
		"--spool-threshold", "1048576")
	t.Run("rules", func(t *testing.T) { probeRules(t, probe) })
	// wsgiref.validate reports what it catches as AssertionError (a breach
	// in a finished response only reaches stderr) and WSGIWarning.
	assert.NotContains(t, probe.Stderr(), "AssertionError")
	assert.NotContains(t, probe.Stderr(), "WSGIWarning")
}

// probeRules runs one parallel subtest per rule against the probe.
func probeRules(t *testing.T, probe *harness.Instance) {
	t.Run("environ", func(t *testing.T) {
		t.Parallel()
		conn := harness.Dial(t, probe.Addr)
		raw := "GET /environ/caf%C3%A9/%2Fx?q=%20a&b=1 HTTP/1.1\r\nHost: example.test\r\n" +
			"X-Custom: value\r\nX-Multi: a\r\nX-Multi: b\r\nX_Custom: forged\r\nX_Only_Underscore: forged\r\n\r\n"
		_, err := io.WriteString(conn, raw)
		require.NoError(t, err)
		resp := harness.ReadResponses(t, bufio.NewReader(conn), 1, http.MethodGet)[0]
		require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", resp.Body)
		env := decodeEnviron(t, resp.Body)
		_, port, _ := strings.Cut(probe.Addr, ":")
		_, localPort, _ := strings.Cut(conn.LocalAddr().String(), ":")
		want := map[string]string{
			"REQUEST_METHOD":  "GET",
			"SCRIPT_NAME":     "",
			"PATH_INFO":       latin1([]byte("/environ/café//x")),
			"QUERY_STRING":    "q=%20a&b=1",
			"REQUEST_URI":     "/environ/caf%C3%A9/%2Fx?q=%20a&b=1",
			"SERVER_PROTOCOL": "HTTP/1.1",
			"SERVER_PORT":     port,
			"REMOTE_ADDR":     "127.0.0.1",
			"REMOTE_PORT":     localPort,
			"HTTP_HOST":       "example.test",
			"HTTP_X_CUSTOM":   "value",
			"HTTP_X_MULTI":    "a,b",
		}
		for key, value := range want {
			assert.Equal(t, value, env.Vars[key], key)
		}
		assert.NotEmpty(t, env.Vars["SERVER_NAME"])
		assert.NotContains(t, env.Vars, "HTTP_X_ONLY_UNDERSCORE", "a header named with _ must never reach the app")
		assert.True(t, env.Latin1, "every environ str must be latin-1")
		assert.Equal(t, []int{1, 0}, env.WSGI.Version)
		assert.Equal(t, "http", env.WSGI.URLScheme)
		assert.True(t, env.WSGI.Multithread, "--threads 4")
		assert.True(t, env.WSGI.Multiprocess, "-p 2")
		assert.False(t, env.WSGI.RunOnce)
		for key, typ := range map[string]string{"wsgi.version": "tuple", "wsgi.multithread": "bool",
			"wsgi.multiprocess": "bool", "wsgi.run_once": "bool", "wsgi.url_scheme": "str"} {
			assert.Equal(t, typ, env.Types[key], key)
		}
		for _, key := range []string{"wsgi.input", "wsgi.errors", "wsgi.file_wrapper"} {
			assert.Contains(t, env.Types, key)
		}
	})

	t.Run("input", func(t *testing.T) {
		t.Parallel()
		allBytes := make([]byte, 256)
		for i := range allBytes {
			allBytes[i] = byte(i)
		}
		lines := "one\ntwo\n\nthree"
		wantLines := []string{"one\n", "two\n", "\n", "three"}
		tests := []struct {
			path      string
			body      []byte
			wantBody  []byte
			wantLines []string
		}{
			{path: "/input/read", body: allBytes, wantBody: allBytes},
			{path: "/input/read", body: nil, wantBody: []byte{}},
			{path: "/input/read-n?n=7", body: bytes.Repeat(allBytes, 4), wantBody: bytes.Repeat(allBytes, 4)},
			{path: "/input/read-n?n=1", body: []byte("abc"), wantBody: []byte("abc")},
			{path: "/input/readline", body: []byte(lines), wantLines: wantLines},
			{path: "/input/readlines", body: []byte(lines), wantLines: wantLines},
			{path: "/input/iter", body: []byte(lines), wantLines: wantLines},
			{path: "/input/readline", body: []byte{}, wantLines: []string{}},
		}
		for _, tt := range tests {
			resp, body := harness.Do(t, harness.Client(false), harness.MustRequest(t, http.MethodPost, probe.URL+tt.path, bytes.NewReader(tt.body)))
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", tt.path, body)
			if tt.wantLines != nil {
				var got []string
				require.NoError(t, json.Unmarshal(body, &got), "%s: %s", tt.path, body)
				assert.Equal(t, tt.wantLines, got, tt.path)
				continue
			}
			assert.Equal(t, tt.wantBody, body, tt.path)
		}
	})

	t.Run("write", func(t *testing.T) {
		t.Parallel()
		resp, body := harness.Get(t, probe.URL+"/write")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, "written;returned", string(body))
	})

	t.Run("head has no body", func(t *testing.T) {
		t.Parallel()
		// A HEAD then a GET on one connection: a body leaking after the HEAD
		// would be read as the start of the second response.
		raw := "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
		conn := harness.Dial(t, probe.Addr)
		_, err := io.WriteString(conn, raw)
		require.NoError(t, err)
		r := bufio.NewReader(conn)
		head := harness.ReadResponses(t, r, 1, http.MethodHead)[0]
		next := harness.ReadResponses(t, r, 1, http.MethodGet)[0]
		assert.Equal(t, http.StatusOK, head.StatusCode)
		assert.Empty(t, head.Body)
		assert.Equal(t, "13", head.Header.Get("Content-Length"))
		assert.Equal(t, "Hello World!\n", string(next.Body))
	})

	t.Run("date and server headers", func(t *testing.T) {
		t.Parallel()
		resp, _ := harness.Get(t, probe.URL+"/hello")
		date, err := http.ParseTime(resp.Header.Get("Date"))
		require.NoError(t, err, "Date header %q", resp.Header.Get("Date"))
		assert.WithinDuration(t, time.Now(), date, time.Minute)
		assert.NotEmpty(t, resp.Header.Get("Server"))
	})

	t.Run("keep-alive", func(t *testing.T) {
		t.Parallel()
		conn := harness.Dial(t, probe.Addr)
		r := bufio.NewReader(conn)
		for i := 0; i < 5; i++ {
			_, err := fmt.Fprintf(conn, "GET /environ/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
			require.NoError(t, err, "request %d on the same connection", i)
			resp := harness.ReadResponses(t, r, 1, http.MethodGet)[0]
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, fmt.Sprintf("/environ/%d", i), decodeEnviron(t, resp.Body).Vars["PATH_INFO"])
		}
	})

	t.Run("pipelined requests are answered in order", func(t *testing.T) {
		t.Parallel()
		var raw strings.Builder
		const n = 8
		for i := 0; i < n; i++ {
			fmt.Fprintf(&raw, "GET /environ/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		}
		_, resps := exchange(t, probe.Addr, raw.String(), n, http.MethodGet)
		for i, resp := range resps {
			assert.Equal(t, fmt.Sprintf("/environ/%d", i), decodeEnviron(t, resp.Body).Vars["PATH_INFO"])
		}
	})

	t.Run("http/1.0 and connection close end the connection", func(t *testing.T) {
		t.Parallel()
		for _, raw := range []string{
			"GET /environ/ HTTP/1.0\r\n\r\n",
			"GET /environ/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		} {
			conn := harness.Dial(t, probe.Addr)
			_, err := io.WriteString(conn, raw)
			require.NoError(t, err)
			r := bufio.NewReader(conn)
			resp := harness.ReadResponses(t, r, 1, http.MethodGet)[0]
			proto := strings.Fields(raw)[2]
			assert.Equal(t, proto, decodeEnviron(t, resp.Body).Vars["SERVER_PROTOCOL"], raw)
			closed, rest := harness.WaitEOF(conn, r, 10*time.Second)
			assert.True(t, closed, "%q: connection left open; then got %q", raw, rest)
		}
	})

	t.Run("chunked request body", func(t *testing.T) {
		t.Parallel()
		head := "POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		body := "5\r\nhello\r\n7; ext=1\r\n, world\r\n0\r\n\r\n"
		_, resps := exchange(t, probe.Addr, fmt.Sprintf(head, "/input/read")+body+fmt.Sprintf(head, "/environ/")+body,
			2, http.MethodPost)
		assert.Equal(t, "hello, world", string(resps[0].Body))
		env := decodeEnviron(t, resps[1].Body)
		require.NotNil(t, env.WSGI.InputTerminated, "wsgi.input_terminated missing")
		assert.True(t, *env.WSGI.InputTerminated)
		if cl, ok := env.Vars["CONTENT_LENGTH"]; ok && cl != "" {
			assert.Equal(t, "12", cl, "a CONTENT_LENGTH for a chunked body must be its decoded size")
		}
	})

	t.Run("expect 100-continue", func(t *testing.T) {
		t.Parallel()
		conn := harness.Dial(t, probe.Addr)
		_, err := io.WriteString(conn, "POST /input/read HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
		require.NoError(t, err)
		r := bufio.NewReader(conn)
		status, err := r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "HTTP/1.1 100 Continue\r\n", status)
		blank, err := r.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "\r\n", blank)
		_, err = io.WriteString(conn, "hello there")
		require.NoError(t, err)
		resp := harness.ReadResponses(t, r, 1, http.MethodPost)[0]
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "hello there", string(resp.Body))
	})

	t.Run("body above the spool threshold arrives intact", func(t *testing.T) {
		t.Parallel()
		body := make([]byte, 3<<20)
		_, err := rand.Read(body)
		require.NoError(t, err)
		sum := sha256.Sum256(body)
		resp, got := harness.Do(t, harness.Client(false), harness.MustRequest(t, http.MethodPost, probe.URL+"/input/sha256", bytes.NewReader(body)))
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", got)
		var digest struct {
			Size   int    `json:"size"`
			SHA256 string `json:"sha256"`
		}
		require.NoError(t, json.Unmarshal(got, &digest))
		assert.Equal(t, len(body), digest.Size)
		assert.Equal(t, hex.EncodeToString(sum[:]), digest.SHA256)
	})

	t.Run("large response without content-length is chunked", func(t *testing.T) {
		t.Parallel()
		const size = 3<<20 + 5
		resp, body := harness.Get(t, probe.URL+"/big?size="+strconv.Itoa(size))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
		assert.Len(t, body, size)
	})

	t.Run("http/1.0 response without content-length ends with the connection", func(t *testing.T) {
		t.Parallel()
		_, resps := exchange(t, probe.Addr, "GET /big?size=100000 HTTP/1.0\r\n\r\n", 1, http.MethodGet)
		assert.Empty(t, resps[0].TransferEncoding, "HTTP/1.0 has no chunked coding")
		assert.Len(t, resps[0].Body, 100000)
	})

	t.Run("streamed chunk by chunk", func(t *testing.T) {
		t.Parallel()
		resp, err := harness.Client(false).Get(probe.URL + "/stream?tag=s1")
		require.NoError(t, err)
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		first, err := r.ReadString('\n')
		require.NoError(t, err)
		// "first" arrived while the app still waits for the release file: the
		// server did not hold the body back.
		assert.Equal(t, "first\n", first)
		probe.Release(t, "s1")
		rest, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.Equal(t, "second\n", string(rest))
	})

	t.Run("file_wrapper", func(t *testing.T) {
		t.Parallel()
		want, err := os.ReadFile(harness.TestdataPath(t, "probe.py"))
		require.NoError(t, err)
		resp, body := harness.Get(t, probe.URL+"/file")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, strconv.Itoa(len(want)), resp.Header.Get("Content-Length"))
		assert.Equal(t, want, body)
	})

	t.Run("exc_info before the head replaces it", func(t *testing.T) {
		t.Parallel()
		resp, body := harness.Get(t, probe.URL+"/exc-info/before")
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		assert.Equal(t, "handled", string(body))
	})

	t.Run("exc_info after the head closes the connection", func(t *testing.T) {
		t.Parallel()
		resp, err := harness.Client(false).Get(probe.URL + "/exc-info/after?tag=x1")
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		partial := make([]byte, len("partial"))
		_, err = io.ReadFull(resp.Body, partial)
		require.NoError(t, err)
		assert.Equal(t, "partial", string(partial))
		probe.Release(t, "x1")
		rest, err := io.ReadAll(resp.Body)
		assert.Error(t, err, "the response ended cleanly after an error; got %q", rest)
	})

	t.Run("close is called", func(t *testing.T) {
		t.Parallel()
		_, body := harness.Get(t, probe.URL+"/close?tag=c1")
		assert.Equal(t, "closing", string(body))
		harness.Eventually(t, 10*time.Second, func() bool {
			_, closed := harness.Get(t, probe.URL+"/closed?tag=c1")
			return string(closed) == "yes"
		}, "close() of the iterable was not called")
	})

	t.Run("close is called when the client leaves mid-stream", func(t *testing.T) {
		t.Parallel()
		conn := harness.Dial(t, probe.Addr)
		_, err := io.WriteString(conn, "GET /forever?tag=d1 HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		r := bufio.NewReader(conn)
		head, err := http.ReadResponse(r, &http.Request{Method: http.MethodGet})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, head.StatusCode)
		_, err = io.ReadFull(head.Body, make([]byte, 1000))
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		// The app would stream for 100 s; only the server noticing the
		// client has gone makes close() run sooner.
		harness.Eventually(t, 20*time.Second, func() bool {
			_, closed := harness.Get(t, probe.URL+"/closed?tag=d1")
			return string(closed) == "yes"
		}, "close() not called after the client disconnected")
	})
}

// TestPEP3333EmbeddedPython checks, when `make test-pythons` names the
// version it built against, that the binary under test really embeds it.
func TestPEP3333EmbeddedPython(t *testing.T) {
	want := os.Getenv("GOWSGI_EXPECT_PYTHON")
	if want == "" {
		t.Skip("GOWSGI_EXPECT_PYTHON not set: only make test-pythons names a version")
	}
	t.Parallel()
	app := harness.StartIn(t, harness.ExamplesDir(t), "--module", "hello_world_app")
	assert.Contains(t, app.Stderr(), "· Python "+want+".", "the banner names the embedded Python")
}
