package gateways

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// fcgiTestTimeout bounds every wait in these tests.
const fcgiTestTimeout = 10 * time.Second

// fcgiSeen is what the fake application saw of one request.
type fcgiSeen struct {
	vars    map[string]string
	body    string
	spooled bool
}

// fcgiApp is a fake wsgi.Handler; its routes are the PATH_INFO:
//
//	/echo          "METHOD SCRIPT_NAME|PATH_INFO?QUERY_STRING\n" then the body
//	/stream        "one", flush, "two", flush
//	/big?n=N       N bytes of 'x'
//	/file?o=&c=    the file at filePath from offset o, c bytes (-1: to the end)
//	/slow          "started", flush, then waits for the context to end
//	/wait?tag=T    "waiting", flush, then waits for release(T)
type fcgiApp struct {
	filePath string

	mu       sync.Mutex
	seen     []fcgiSeen
	releases map[string]chan struct{}
	stopped  chan error // /slow's context cause
}

func newFCGIApp() *fcgiApp {
	return &fcgiApp{releases: make(map[string]chan struct{}), stopped: make(chan error, 4)}
}

func (a *fcgiApp) release(tag string) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, ok := a.releases[tag]
	if !ok {
		ch = make(chan struct{})
		a.releases[tag] = ch
	}
	return ch
}

func (a *fcgiApp) requests() []fcgiSeen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]fcgiSeen(nil), a.seen...)
}

func (a *fcgiApp) ServeWSGI(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	vars := req.Vars.Map()
	body := string(req.Body)
	if req.BodyFile != nil {
		spooled, err := inspectSpooled(req.BodyFile)
		if err != nil {
			return err
		}
		if !spooled.nameless || spooled.offset != 0 {
			return fmt.Errorf("a spool file with a name, or not at its start: %+v", spooled)
		}
		body = spooled.content
	}
	a.mu.Lock()
	a.seen = append(a.seen, fcgiSeen{vars: vars, body: body, spooled: req.BodyFile != nil})
	a.mu.Unlock()
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain")
	if err := w.WriteHead("200 OK", headers.Block()); err != nil {
		return err
	}
	query, _ := url.ParseQuery(vars["QUERY_STRING"])
	switch vars["PATH_INFO"] {
	case "/echo":
		line := fmt.Sprintf("%s %s|%s?%s\n", vars["REQUEST_METHOD"], vars["SCRIPT_NAME"], vars["PATH_INFO"], vars["QUERY_STRING"])
		return w.WriteBody([]byte(line + body))
	case "/stream":
		for _, part := range []string{"one", "two"} {
			if err := w.WriteBody([]byte(part)); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
	case "/big":
		n, _ := strconv.Atoi(query.Get("n"))
		return w.WriteBody([]byte(strings.Repeat("x", n)))
	case "/file":
		f, err := os.Open(a.filePath)
		if err != nil {
			return err
		}
		defer f.Close()
		offset, _ := strconv.ParseInt(query.Get("o"), 10, 64)
		count, _ := strconv.ParseInt(query.Get("c"), 10, 64)
		return w.SendFile(f, offset, count)
	case "/slow":
		if err := w.WriteBody([]byte("started")); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			a.stopped <- context.Cause(ctx)
			return context.Cause(ctx)
		case <-time.After(fcgiTestTimeout):
			a.stopped <- nil
		}
	case "/wait":
		if err := w.WriteBody([]byte("waiting")); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		select {
		case <-a.release(query.Get("tag")):
		case <-time.After(fcgiTestTimeout):
		}
		return w.WriteBody([]byte("released"))
	}
	return nil
}

// startFCGI serves h on an ephemeral loopback port and returns the gateway
// and its address.
func startFCGI(t *testing.T, h wsgi.Handler, opts FastCGIOptions) (*FastCGI, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := NewFastCGI(h, opts)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		g.Close()
		assert.NoError(t, <-done)
	})
	return g, ln.Addr().String()
}

// Record builders for the test's own client, written from the
// specification rather than from the gateway's code.

// fcgiRec is one record with padding bytes of padding.
func fcgiRec(kind byte, id uint16, content string, padding int) string {
	h := []byte{1, kind, byte(id >> 8), byte(id), byte(len(content) >> 8), byte(len(content)), byte(padding), 0}
	return string(h) + content + strings.Repeat("\x00", padding)
}

// fcgiAligned is fcgiRec padded to a multiple of 8, as the gateway sends.
func fcgiAligned(kind byte, id uint16, content string) string {
	return fcgiRec(kind, id, content, -len(content)&7)
}

func fcgiBegin(id uint16, role uint16, flags byte) string {
	return fcgiRec(1, id, string([]byte{byte(role >> 8), byte(role), flags, 0, 0, 0, 0, 0}), 0)
}

func fcgiEnd(id uint16, appStatus uint32, protocolStatus byte) string {
	b := binary.BigEndian.AppendUint32(nil, appStatus)
	return fcgiRec(3, id, string(append(b, protocolStatus, 0, 0, 0)), 0)
}

func fcgiLen(n int) string {
	if n < 128 {
		return string([]byte{byte(n)})
	}
	return string(binary.BigEndian.AppendUint32(nil, uint32(n)|1<<31))
}

// fcgiPairs encodes name, value, name, value….
func fcgiPairs(kv ...string) string {
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		b.WriteString(fcgiLen(len(kv[i])) + fcgiLen(len(kv[i+1])) + kv[i] + kv[i+1])
	}
	return b.String()
}

// fcgiStream cuts data into records of the given sizes in turn (each with
// padding bytes of padding), then ends the stream with an empty record.
func fcgiStream(kind byte, id uint16, data string, padding int, sizes ...int) string {
	var b strings.Builder
	for i := 0; len(data) > 0; i++ {
		n := min(len(data), sizes[i%len(sizes)])
		b.WriteString(fcgiRec(kind, id, data[:n], padding))
		data = data[n:]
	}
	b.WriteString(fcgiRec(kind, id, "", 0))
	return b.String()
}

// fcgiRequest is a whole responder request with its streams unsplit.
func fcgiRequestBytes(id uint16, flags byte, body string, kv ...string) string {
	return fcgiBegin(id, 1, flags) + fcgiStream(4, id, fcgiPairs(kv...), 0, 65535) + fcgiStream(5, id, body, 0, 65535)
}

// fcgiGet is the params of a GET of path.
func fcgiGet(path, query string) []string {
	return []string{"REQUEST_METHOD", "GET", "SCRIPT_NAME", "", "PATH_INFO", path, "QUERY_STRING", query,
		"SERVER_NAME", "localhost", "SERVER_PORT", "80", "SERVER_PROTOCOL", "HTTP/1.1"}
}

// fcgiRecord is one record as the test client read it.
type fcgiRecord struct {
	kind    byte
	id      uint16
	content string
}

// fcgiClient is the test's FastCGI client over one connection.
type fcgiClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialFCGI(t *testing.T, addr string) *fcgiClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, fcgiTestTimeout)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(fcgiTestTimeout)))
	t.Cleanup(func() { conn.Close() })
	return &fcgiClient{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (c *fcgiClient) send(raw string) {
	c.t.Helper()
	_, err := io.WriteString(c.conn, raw)
	require.NoError(c.t, err)
}

// read reads one record; it fails the test on EOF.
func (c *fcgiClient) read() fcgiRecord {
	c.t.Helper()
	var h [8]byte
	_, err := io.ReadFull(c.br, h[:])
	require.NoError(c.t, err, "reading a record header")
	require.Equal(c.t, byte(1), h[0], "version")
	content := make([]byte, int(binary.BigEndian.Uint16(h[4:]))+int(h[6]))
	_, err = io.ReadFull(c.br, content)
	require.NoError(c.t, err, "reading a record's content")
	return fcgiRecord{kind: h[1], id: binary.BigEndian.Uint16(h[2:]), content: string(content[:len(content)-int(h[6])])}
}

// fcgiResult is one request's answer.
type fcgiResult struct {
	stdout string
	end    string // the END_REQUEST record's content
}

// collect reads records until every id in ids has ended; it returns each
// one's result and the records in the order they came.
func (c *fcgiClient) collect(ids ...uint16) (map[uint16]*fcgiResult, []fcgiRecord) {
	c.t.Helper()
	results := make(map[uint16]*fcgiResult)
	for _, id := range ids {
		results[id] = &fcgiResult{}
	}
	var order []fcgiRecord
	for pending := len(ids); pending > 0; {
		rec := c.read()
		order = append(order, rec)
		res := results[rec.id]
		require.NotNil(c.t, res, "record for id %d", rec.id)
		switch rec.kind {
		case 6:
			res.stdout += rec.content
		case 3:
			res.end = rec.content
			pending--
		default:
			require.Failf(c.t, "unexpected record", "type %d", rec.kind)
		}
	}
	return results, order
}

// closed reports whether the gateway closes the connection without
// sending anything more; a reset counts, as the gateway may close with
// our bytes unread.
func (c *fcgiClient) closed() bool {
	rest, err := io.ReadAll(c.br)
	return (err == nil || errors.Is(err, syscall.ECONNRESET)) && len(rest) == 0
}

const (
	fcgiEndOK      = "\x00\x00\x00\x00\x00\x00\x00\x00"
	fcgiEndAborted = "\x00\x00\x00\x01\x00\x00\x00\x00"
)

func TestFastCGIExactBytes(t *testing.T) {
	head := "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n"
	cases := []struct {
		name  string
		send  string
		want  string
		close bool // the gateway closes the connection after want
	}{
		{
			name: "GET_VALUES answers what it knows, in the order asked",
			send: fcgiRec(9, 0, fcgiPairs("FCGI_MPXS_CONNS", "", "FCGI_UNKNOWN", "", "FCGI_MAX_REQS", "", "FCGI_MAX_CONNS", ""), 0),
			want: "\x01\x0a\x00\x00\x00\x34\x04\x00" +
				"\x0f\x01FCGI_MPXS_CONNS1" + "\x0d\x01FCGI_MAX_REQS4" + "\x0e\x02FCGI_MAX_CONNS10" + "\x00\x00\x00\x00",
		},
		{
			name: "unknown management type",
			send: fcgiRec(0x42, 0, "whatever", 3),
			want: "\x01\x0b\x00\x00\x00\x08\x00\x00" + "\x42\x00\x00\x00\x00\x00\x00\x00",
		},
		{
			name: "unknown type on a request id",
			send: fcgiRec(0, 7, "", 0),
			want: "\x01\x0b\x00\x00\x00\x08\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00",
		},
		{
			name: "authorizer role refused",
			send: fcgiBegin(1, 2, 1),
			want: "\x01\x03\x00\x01\x00\x08\x00\x00" + "\x00\x00\x00\x00\x03\x00\x00\x00",
		},
		{
			name: "filter role refused",
			send: fcgiBegin(258, 3, 0),
			want: "\x01\x03\x01\x02\x00\x08\x00\x00" + "\x00\x00\x00\x00\x03\x00\x00\x00",
		},
		{
			name:  "a GET without FCGI_KEEP_CONN, then the close",
			send:  fcgiRequestBytes(1, 0, "", fcgiGet("/echo", "a=1")...),
			want:  fcgiAligned(6, 1, head) + fcgiAligned(6, 1, "GET |/echo?a=1\n") + fcgiRec(6, 1, "", 0) + fcgiEnd(1, 0, 0),
			close: true,
		},
		{
			name:  "a POST with FCGI_KEEP_CONN",
			send:  fcgiRequestBytes(9, 1, "hi", append(fcgiGet("/echo", ""), "REQUEST_METHOD", "POST", "CONTENT_LENGTH", "2")...),
			want:  fcgiAligned(6, 9, head) + fcgiAligned(6, 9, "POST |/echo?\nhi") + fcgiRec(6, 9, "", 0) + fcgiEnd(9, 0, 0),
			close: false,
		},
	}
	_, addr := startFCGI(t, newFCGIApp(), FastCGIOptions{MaxConns: 10, MaxReqs: 4})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFCGI(t, addr)
			c.send(tc.send)
			got := make([]byte, len(tc.want))
			_, err := io.ReadFull(c.br, got)
			require.NoError(t, err, "got %q", got)
			assert.Equal(t, tc.want, string(got))
			if tc.close {
				assert.True(t, c.closed(), "connection closed")
			}
		})
	}
}

func TestFastCGISplitStreams(t *testing.T) {
	long := strings.Repeat("v", 300)                 // a 4-byte value length
	longName := "HTTP_X_" + strings.Repeat("N", 130) // a 4-byte name length
	params := fcgiPairs("REQUEST_METHOD", "POST", "REQUEST_URI", "/caf%C3%A9/x?q=1", "QUERY_STRING", "q=1",
		"SCRIPT_NAME", "/caf\xc3\xa9/x", "CONTENT_LENGTH", "1000", "HTTP_X_LONG", long, longName, "n", "HTTPS", "on")
	body := strings.Repeat("0123456789", 100)
	for _, split := range [][]int{{1}, {3, 5}, {7}, {127, 1}, {1000}, {65535}} {
		for _, padding := range []int{0, 7, 255} {
			t.Run(fmt.Sprintf("split %v padding %d", split, padding), func(t *testing.T) {
				app := newFCGIApp()
				_, addr := startFCGI(t, app, FastCGIOptions{SpoolThreshold: 4096})
				c := dialFCGI(t, addr)
				c.send(fcgiBegin(3, 1, 0) + fcgiStream(4, 3, params, padding, split...) + fcgiStream(5, 3, body, padding, split...))
				res, _ := c.collect(3)
				assert.Equal(t, fcgiEndOK, res[3].end)
				assert.True(t, strings.HasPrefix(res[3].stdout, "Status: 200 OK\r\n"), "%q", res[3].stdout)
				seen := app.requests()
				require.Len(t, seen, 1)
				assert.Equal(t, body, seen[0].body)
				v := seen[0].vars
				assert.Equal(t, long, v["HTTP_X_LONG"])
				assert.Equal(t, "n", v[longName])
				// nginx's stock fastcgi_params: SCRIPT_NAME is the whole path
				// and no PATH_INFO, so the app is taken to be mounted at /.
				assert.Equal(t, "", v["SCRIPT_NAME"])
				assert.Equal(t, "/caf\xc3\xa9/x", v["PATH_INFO"])
				assert.Equal(t, "https", v["wsgi.url_scheme"])
				assert.True(t, c.closed())
			})
		}
	}
}

func TestFastCGIBodies(t *testing.T) {
	big := strings.Repeat("abcdefgh", 40000) // 320000 bytes: spooled
	cases := []struct {
		name    string
		length  string // CONTENT_LENGTH sent, "-" for none
		body    string
		spooled bool
		wantLen string
	}{
		{name: "none", length: "-", body: "", wantLen: ""},
		{name: "empty CONTENT_LENGTH, as nginx sends for a GET", length: "", body: "", wantLen: ""},
		{name: "inline", length: "5", body: "hello", wantLen: "5"},
		{name: "spooled", length: strconv.Itoa(len(big)), body: big, spooled: true, wantLen: strconv.Itoa(len(big))},
		{name: "no CONTENT_LENGTH: the stream's end", length: "-", body: big, spooled: true, wantLen: strconv.Itoa(len(big))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := newFCGIApp()
			_, addr := startFCGI(t, app, FastCGIOptions{SpoolThreshold: 65536})
			kv := append(fcgiGet("/echo", ""), "REQUEST_METHOD", "PUT")
			if tc.length != "-" {
				kv = append(kv, "CONTENT_LENGTH", tc.length)
			}
			c := dialFCGI(t, addr)
			c.send(fcgiBegin(1, 1, 0) + fcgiStream(4, 1, fcgiPairs(kv...), 0, 100) + fcgiStream(5, 1, tc.body, 0, 8192, 65535, 13))
			res, _ := c.collect(1)
			assert.Equal(t, fcgiEndOK, res[1].end)
			seen := app.requests()
			require.Len(t, seen, 1)
			assert.Equal(t, tc.body, seen[0].body)
			assert.Equal(t, tc.spooled, seen[0].spooled)
			assert.Equal(t, tc.wantLen, seen[0].vars["CONTENT_LENGTH"])
		})
	}
}

func TestFastCGIResponses(t *testing.T) {
	dir := t.TempDir()
	file := strings.Repeat("0123456789abcdef", 9000) // 144000 bytes: three records
	app := newFCGIApp()
	app.filePath = filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(app.filePath, []byte(file), 0o644))
	_, addr := startFCGI(t, app, FastCGIOptions{})
	head := "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n"
	cases := []struct {
		path, query string
		body        string
		records     int // STDOUT records carrying the body
	}{
		{path: "/stream", body: "onetwo", records: 2},
		{path: "/big", query: "n=70000", body: strings.Repeat("x", 70000), records: 2},
		{path: "/file", query: "o=0&c=-1", body: file, records: 3},
		{path: "/file", query: "o=10&c=5", body: file[10:15], records: 1},
		{path: "/file", query: "o=100&c=70000", body: file[100:70100], records: 2},
	}
	for _, tc := range cases {
		t.Run(tc.path+"?"+tc.query, func(t *testing.T) {
			c := dialFCGI(t, addr)
			c.send(fcgiRequestBytes(1, 0, "", fcgiGet(tc.path, tc.query)...))
			res, order := c.collect(1)
			assert.Equal(t, fcgiEndOK, res[1].end)
			assert.Equal(t, head+tc.body, res[1].stdout)
			// The head's record, the body's, the empty one ending STDOUT and
			// END_REQUEST; none longer than a record can be.
			assert.Len(t, order, 1+tc.records+2)
			assert.Equal(t, "", order[len(order)-2].content)
		})
	}
}

func TestFastCGIKeepConn(t *testing.T) {
	_, addr := startFCGI(t, newFCGIApp(), FastCGIOptions{})
	c := dialFCGI(t, addr)
	for i, flags := range []byte{1, 1, 0} {
		id := uint16(1 + i%2) // ids are reused once ended
		c.send(fcgiRequestBytes(id, flags, "", fcgiGet("/echo", strconv.Itoa(i))...))
		res, _ := c.collect(id)
		assert.Equal(t, fcgiEndOK, res[id].end)
		assert.Contains(t, res[id].stdout, fmt.Sprintf("GET |/echo?%d\n", i))
	}
	assert.True(t, c.closed(), "closed after the request without FCGI_KEEP_CONN")
}

func TestFastCGIMultiplexed(t *testing.T) {
	app := newFCGIApp()
	_, addr := startFCGI(t, app, FastCGIOptions{})
	c := dialFCGI(t, addr)
	c.send(fcgiRequestBytes(1, 1, "", fcgiGet("/wait", "tag=a")...))
	assert.Equal(t, fcgiRecord{kind: 6, id: 1, content: "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n"}, c.read())
	assert.Equal(t, fcgiRecord{kind: 6, id: 1, content: "waiting"}, c.read())
	// Request 2 is served in full while request 1 waits on the same connection.
	c.send(fcgiRequestBytes(2, 1, "", fcgiGet("/echo", "b")...))
	res, _ := c.collect(2)
	assert.Equal(t, fcgiEndOK, res[2].end)
	close(app.release("a"))
	res, _ = c.collect(1)
	assert.Equal(t, "released", res[1].stdout, "request 1's last records came after request 2's")
	assert.Equal(t, fcgiEndOK, res[1].end)
}

func TestFastCGIAbort(t *testing.T) {
	app := newFCGIApp()
	_, addr := startFCGI(t, app, FastCGIOptions{})
	c := dialFCGI(t, addr)

	// A request being served: its context ends, then END_REQUEST.
	c.send(fcgiRequestBytes(1, 1, "", fcgiGet("/slow", "")...))
	c.read() // the head
	assert.Equal(t, "started", c.read().content)
	c.send(fcgiRec(2, 1, "", 0))
	select {
	case cause := <-app.stopped:
		assert.ErrorIs(t, cause, errFCGIAborted)
	case <-time.After(fcgiTestTimeout):
		require.FailNow(t, "the application's context did not end")
	}
	res, _ := c.collect(1)
	assert.Equal(t, fcgiEndAborted, res[1].end)

	// A request still sending PARAMS ends at once; the connection serves on.
	c.send(fcgiBegin(2, 1, 1) + fcgiRec(4, 2, fcgiPairs("REQUEST_METHOD", "GET"), 0) + fcgiRec(2, 2, "", 0))
	assert.Equal(t, fcgiRecord{kind: 3, id: 2, content: fcgiEndAborted}, c.read())
	c.send(fcgiRequestBytes(3, 1, "", fcgiGet("/echo", "")...))
	res, _ = c.collect(3)
	assert.Equal(t, fcgiEndOK, res[3].end)
}

func TestFastCGIIgnoresStrayRecords(t *testing.T) {
	app := newFCGIApp()
	_, addr := startFCGI(t, app, FastCGIOptions{})
	c := dialFCGI(t, addr)
	c.send(fcgiRec(5, 9, "stdin for no request", 0) + fcgiRec(4, 9, "", 0) + fcgiRec(2, 9, "", 0) +
		fcgiRec(8, 9, "data", 0) + fcgiRec(9, 4, fcgiPairs("FCGI_MAX_REQS", ""), 0))
	c.send(fcgiBegin(1, 1, 1) + fcgiBegin(1, 1, 0)) // the second BEGIN is ignored: 1 keeps the connection
	c.send(fcgiStream(4, 1, fcgiPairs(fcgiGet("/echo", "")...), 0, 65535) + fcgiRec(5, 1, "", 0))
	res, _ := c.collect(1)
	assert.Equal(t, fcgiEndOK, res[1].end)
	c.send(fcgiRequestBytes(1, 0, "", fcgiGet("/echo", "")...))
	res, _ = c.collect(1)
	assert.Equal(t, fcgiEndOK, res[1].end)
	assert.Len(t, app.requests(), 2)
}

func TestFastCGIRefusesBadParams(t *testing.T) {
	const roomy = 1 << 20 // a --buffer-size that leaves the var limit to act
	cases := []struct {
		name      string
		maxParams int // FastCGIOptions.MaxParamsSize
		params    string
		status    string
	}{
		{"no REQUEST_METHOD", 0, fcgiPairs("PATH_INFO", "/"), "400 Bad Request"},
		{"bad CONTENT_LENGTH", 0, fcgiPairs("REQUEST_METHOD", "POST", "CONTENT_LENGTH", "x"), "400 Bad Request"},
		{"pair overruns the stream", 0, fcgiPairs("REQUEST_METHOD", "GET") + "\x05\x05abc", "400 Bad Request"},
		{"empty name", 0, fcgiPairs("REQUEST_METHOD", "GET", "", "x"), "400 Bad Request"},
		{"two CONTENT_LENGTHs that differ", 0, fcgiPairs("REQUEST_METHOD", "POST", "CONTENT_LENGTH", "0", "CONTENT_LENGTH", "1"), "400 Bad Request"},
		{"value over 64 KiB", roomy, fcgiPairs("REQUEST_METHOD", "GET", "HTTP_X", strings.Repeat("v", 70000)), "431 Request Header Fields Too Large"},
		{"PARAMS over the default 64 KiB", 0, fcgiPairs("REQUEST_METHOD", "GET") + strings.Repeat(fcgiPairs("HTTP_X", strings.Repeat("v", 30000)), 3), "431 Request Header Fields Too Large"},
		{"PARAMS over --buffer-size", 4096, fcgiPairs("REQUEST_METHOD", "GET") + strings.Repeat(fcgiPairs("HTTP_X", strings.Repeat("v", 3000)), 2), "431 Request Header Fields Too Large"},
	}
	app := newFCGIApp()
	addrs := map[int]string{}
	for _, tc := range cases {
		if _, ok := addrs[tc.maxParams]; !ok {
			_, addrs[tc.maxParams] = startFCGI(t, app, FastCGIOptions{MaxParamsSize: tc.maxParams})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFCGI(t, addrs[tc.maxParams])
			c.send(fcgiBegin(1, 1, 0) + fcgiStream(4, 1, tc.params, 0, 65535) + fcgiStream(5, 1, "", 0, 1))
			res, _ := c.collect(1)
			assert.Equal(t, "Status: "+tc.status+"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+tc.status+"\n", res[1].stdout)
			assert.Equal(t, fcgiEndOK, res[1].end)
		})
	}
	assert.Empty(t, app.requests(), "no refused request reaches the application")
}

func TestFastCGIMalformedClosesTheConnection(t *testing.T) {
	cases := []struct {
		name string
		send string
	}{
		{"version 2", "\x02\x01\x00\x01\x00\x08\x00\x00" + "\x00\x01\x01\x00\x00\x00\x00\x00"},
		{"BEGIN_REQUEST body too short", fcgiRec(1, 1, "\x00\x01\x01", 0)},
		{"STDIN before PARAMS ended", fcgiBegin(1, 1, 1) + fcgiRec(5, 1, "x", 0)},
		{"GET_VALUES pair overruns", fcgiRec(9, 0, "\x20\x00FCGI", 0)},
		{"record cut short", "\x01\x09\x00\x00\x00\x10\x00\x00FCGI"},
	}
	app := newFCGIApp()
	_, addr := startFCGI(t, app, FastCGIOptions{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFCGI(t, addr)
			c.send(tc.send)
			if tc.name == "record cut short" {
				require.NoError(t, c.conn.(*net.TCPConn).CloseWrite())
			}
			assert.True(t, c.closed(), "closed without a reply")
		})
	}
}

func TestFastCGIShutdown(t *testing.T) {
	app := newFCGIApp()
	g, addr := startFCGI(t, app, FastCGIOptions{})
	idle := dialFCGI(t, addr)
	busy := dialFCGI(t, addr)
	busy.send(fcgiRequestBytes(1, 1, "", fcgiGet("/wait", "tag=s")...))
	busy.read() // the head
	assert.Equal(t, "waiting", busy.read().content)

	stopped := make(chan error, 1)
	go func() { stopped <- g.Shutdown(context.Background()) }()
	assert.True(t, idle.closed(), "an idle connection is closed at once")
	select {
	case err := <-stopped:
		require.FailNow(t, "Shutdown returned with a request in flight", "%v", err)
	default:
	}
	// A new request on the busy connection is refused as overloaded.
	busy.send(fcgiBegin(2, 1, 1))
	assert.Equal(t, fcgiRecord{kind: 3, id: 2, content: "\x00\x00\x00\x00\x02\x00\x00\x00"}, busy.read())
	close(app.release("s"))
	res, _ := busy.collect(1)
	assert.Equal(t, fcgiEndOK, res[1].end)
	assert.True(t, busy.closed(), "closed once its last request ended")
	select {
	case err := <-stopped:
		assert.NoError(t, err)
	case <-time.After(fcgiTestTimeout):
		require.FailNow(t, "Shutdown did not return")
	}
}
