package gateways

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

var errTestBroke = errors.New("test: the response broke")

// breakAfter is a respond func for recorder that writes a bare "200 OK"
// head and body and then reports the response broken, without flushing:
// what it wrote must reach the client all the same (PEP 3333: every block
// an app yields is transmitted).
func breakAfter(body string) func(w wsgi.ResponseWriter) error {
	return func(w wsgi.ResponseWriter) error {
		if err := w.WriteHead("200 OK", nil); err != nil {
			return err
		}
		if err := w.WriteBody([]byte(body)); err != nil {
			return err
		}
		return errTestBroke
	}
}

// brokenGateway serves a handler on a loopback port and is the request a
// web server or client sends it.
type brokenGateway struct {
	name    string
	start   func(t *testing.T, h wsgi.Handler) string
	request string
}

var brokenGateways = []brokenGateway{
	{"http", func(t *testing.T, h wsgi.Handler) string { return startHTTP(t, h, HTTPOptions{}) },
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"uwsgi", func(t *testing.T, h wsgi.Handler) string { return startStream(t, NewUWSGI(h, StreamOptions{})) },
		string(uwsgiRequest("", "REQUEST_METHOD", "GET"))},
	{"scgi", func(t *testing.T, h wsgi.Handler) string { return startStream(t, NewSCGI(h, StreamOptions{})) },
		string(scgiRequest("", "REQUEST_METHOD", "GET"))},
	{"fastcgi", func(t *testing.T, h wsgi.Handler) string { _, addr := startFCGI(t, h, FastCGIOptions{}); return addr },
		fcgiRequestBytes(1, 0, "", fcgiGet("/", "")...)},
}

// readToEnd sends request on conn and returns what came back until the
// connection ended, and whether it ended with a reset.
func readToEnd(t *testing.T, conn net.Conn, request string) (string, bool) {
	t.Helper()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(conn, request)
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = io.Copy(&out, conn)
	if errors.Is(err, syscall.ECONNRESET) {
		return out.String(), true
	}
	require.NoError(t, err, "reading to the end; got %q", out.String())
	return out.String(), false
}

// TestBrokenResponseSendsWhatWasWritten: what a broken response wrote
// reaches the peer, and the connection then ends as its protocol reads as
// incomplete: an HTTP chunked body without its last chunk; a uwsgi or SCGI
// response, whose end is the connection's, with a reset; FastCGI STDOUT
// without END_REQUEST, with a reset (a close without END_REQUEST is a
// whole response to nginx unbuffered).
func TestBrokenResponseSendsWhatWasWritten(t *testing.T) {
	want := map[string]struct {
		out   string // exactly, or for HTTP what the output ends with
		reset bool
	}{
		"http":    {out: "\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n"},
		"uwsgi":   {out: "HTTP/1.1 200 OK\r\n\r\npart", reset: true},
		"scgi":    {out: "Status: 200 OK\r\n\r\npart", reset: true},
		"fastcgi": {out: fcgiAligned(6, 1, "Status: 200 OK\r\n\r\n") + fcgiAligned(6, 1, "part"), reset: true},
	}
	for _, gw := range brokenGateways {
		t.Run(gw.name, func(t *testing.T) {
			addr := gw.start(t, &recorder{respond: breakAfter("part")})
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			out, reset := readToEnd(t, conn, gw.request)
			if gw.name != "http" {
				assert.Equal(t, want[gw.name].out, out)
				assert.Equal(t, want[gw.name].reset, reset, "ended by a reset")
				return
			}
			assert.True(t, strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n"), out)
			assert.True(t, strings.HasSuffix(out, want[gw.name].out), "the chunked body must stop after the last block written; got %q", out)
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
			assert.Equal(t, "part", string(body))
		})
	}
}

// TestBrokenResponseResetsOnlyOnceSent: the reset that ends a broken uwsgi,
// SCGI or FastCGI response waits until the peer has acknowledged every byte
// sent, since a reset discards what the kernel still holds for it; a peer
// that reads slowly through a small window still gets the whole body.
func TestBrokenResponseResetsOnlyOnceSent(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB, more than the socket buffers hold
	for _, gw := range brokenGateways[1:] {
		t.Run(gw.name, func(t *testing.T) {
			addr := gw.start(t, &recorder{respond: breakAfter(body)})
			dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
				return errors.Join(err, serr)
			}}
			conn, err := dialer.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			out, reset := readToEnd(t, conn, gw.request)
			assert.True(t, reset, "ended by a reset")
			if gw.name == "fastcgi" {
				out = fcgiStdoutOf(t, out)
			}
			assert.True(t, strings.HasSuffix(out, "\r\n\r\n"+body), "the body was cut short: %d bytes arrived of %d", len(out), len(body))
		})
	}
}

// fcgiStdoutOf joins the STDOUT records of raw, which holds whole records
// of request 1 and nothing else.
func fcgiStdoutOf(t *testing.T, raw string) string {
	t.Helper()
	var stdout strings.Builder
	for len(raw) > 0 {
		require.GreaterOrEqual(t, len(raw), 8, "a record header cut short")
		length, padding := int(raw[4])<<8|int(raw[5]), int(raw[6])
		require.GreaterOrEqual(t, len(raw), 8+length+padding, "a record cut short")
		require.Equal(t, byte(6), raw[1], "a record other than STDOUT")
		stdout.WriteString(raw[8 : 8+length])
		raw = raw[8+length+padding:]
	}
	return stdout.String()
}
