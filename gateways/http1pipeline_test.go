package gateways

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const secondGet = "GET /second HTTP/1.1\r\nHost: h\r\n\r\n"

// TestHTTPPipelinedMalformedRequest checks that the requests before a
// malformed one on a connection are served, however the bytes arrive, and
// that the malformed one and what follows it are not.
func TestHTTPPipelinedMalformedRequest(t *testing.T) {
	tests := []struct {
		name   string
		before string // served requests
		served int
		bad    string
	}{
		{
			name:   "obs-fold after a get (the handler refuses)",
			before: "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n",
			served: 1,
			bad:    "GET /2 HTTP/1.1\r\nHost: h\r\nA: b\r\n c\r\n\r\n",
		},
		{
			name:   "coding not ending in chunked after two bodies (net/http refuses, answered 400)",
			before: "POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcPOST /2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			served: 2,
			bad:    "POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		},
		{
			name:   "smuggling attempt after a get",
			before: "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n",
			served: 1,
			bad:    "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
		},
		{
			// net/http looks for the trailer's end as CRLF CRLF and finds
			// it in the next request; the scanner refuses the bare LF.
			name:   "trailer line ending in a bare LF",
			before: "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n",
			served: 1,
			bad:    "POST /2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nA: b\n\r\n",
		},
	}
	for _, tt := range tests {
		for _, how := range []string{"whole", "byte at a time", "after each answer"} {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				h := &recorder{}
				addr := startHTTP(t, h, HTTPOptions{SpoolThreshold: 1 << 20})
				out := converse(t, addr, how, tt.before, tt.bad+secondGet)
				assert.Equal(t, tt.served, strings.Count(out, "HTTP/1.1 200 OK"), out)
				assert.Equal(t, tt.served+1, strings.Count(out, "HTTP/1.1 "), "nothing after the refusal: %s", out)
				assert.True(t, strings.HasSuffix(out, "Bad Request\n"), "the last answer is a 400: %s", out)
				assert.Contains(t, out, "HTTP/1.1 400 Bad Request\r\n")
				assert.Len(t, h.requests(), tt.served)
			})
		}
	}
}

// converse sends good then bad on one connection: together in one write,
// one byte per write, or bad only once good's answers have all arrived. It
// returns everything the server sent before closing. A goroutine reads all
// along, and writing stops at the first error: the server may refuse and
// close before the last bytes are sent.
func converse(t *testing.T, addr, how, good, bad string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, conn)
		pw.CloseWithError(err)
	}()
	var answered strings.Builder
	r := bufio.NewReader(io.TeeReader(pr, &answered))
	switch how {
	case "whole":
		_, _ = io.WriteString(conn, good+bad)
	case "byte at a time":
		for i := range len(good + bad) {
			if _, err := io.WriteString(conn, (good + bad)[i:i+1]); err != nil {
				break
			}
		}
	default:
		_, err = io.WriteString(conn, good)
		require.NoError(t, err)
		for range strings.Count(good, " HTTP/1.1\r\n") {
			resp, err := http.ReadResponse(r, nil)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
		}
		require.Zero(t, r.Buffered(), "no answer beyond the served requests")
		_, _ = io.WriteString(conn, bad)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	_, err = io.ReadAll(r)
	var netErr net.Error
	require.False(t, errors.As(err, &netErr) && netErr.Timeout(), "the server neither answered nor closed")
	return answered.String()
}
