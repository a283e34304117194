// Fuzz targets for FastCGI: record and name-value pair parsing at function
// level, and the connection's read loop through the real gateway on a
// loopback connection, its answer checked record by record.
package gateways

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fcgiSeeds are whole conversations a web server could open with.
func fcgiSeeds() []string {
	get := fcgiGet("/a%20b", "x=1")
	return []string{
		fcgiRequestBytes(1, fcgiKeepConn, "", get...),
		fcgiRequestBytes(1, fcgiKeepConn, "hello", append(get, "CONTENT_LENGTH", "5")...) +
			fcgiRequestBytes(2, 0, "", get...),
		fcgiBegin(3, 1, 0) + fcgiStream(4, 3, fcgiPairs(get...), 3, 7, 1) + fcgiStream(5, 3, "", 0, 1),
		fcgiBegin(4, 2, 0) + fcgiRec(9, 0, fcgiPairs(fcgiMaxConnsName, "", fcgiMpxsConnName, ""), 0),
		fcgiBegin(5, 1, 1) + fcgiRec(2, 5, "", 0) + fcgiRec(42, 0, "", 0),
		fcgiBegin(6, 1, 1) + fcgiRec(5, 6, "early", 0),
		fcgiBegin(7, 1, 1) + fcgiStream(4, 7, fcgiPairs("REQUEST_METHOD", "GET", "CONTENT_LENGTH", "x"), 0, 100) + fcgiStream(5, 7, "", 0, 1),
		"\x02" + fcgiBegin(8, 1, 0)[1:],
	}
}

// FuzzFCGIRecords reads records until the input runs out: each must be the
// bytes its header describes, and encoding it again must read back the same.
func FuzzFCGIRecords(f *testing.F) {
	for _, s := range fcgiSeeds() {
		f.Add([]byte(s))
	}
	buf := make([]byte, fcgiMaxContent+255)
	f.Fuzz(func(t *testing.T, input []byte) {
		rest := input
		for len(rest) > 0 {
			h, content, err := readFCGIRecord(bytes.NewReader(rest), buf)
			if err != nil {
				assertRecordRefused(t, rest, err)
				return
			}
			size := fcgiHeaderLen + h.contentLn + h.paddingLn
			require.LessOrEqual(t, size, len(rest))
			require.Equal(t, rest[fcgiHeaderLen:fcgiHeaderLen+h.contentLn], content)
			again, content2, err := readFCGIRecord(bytes.NewReader(appendFCGIRecord(nil, h.kind, h.id, content)), buf)
			require.NoError(t, err)
			assert.Equal(t, [3]int{int(h.kind), int(h.id), h.contentLn}, [3]int{int(again.kind), int(again.id), again.contentLn})
			assert.Equal(t, rest[fcgiHeaderLen:fcgiHeaderLen+h.contentLn], content2)
			rest = rest[size:]
		}
	})
}

func assertRecordRefused(t *testing.T, rest []byte, err error) {
	t.Helper()
	switch {
	case len(rest) < fcgiHeaderLen:
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	case rest[0] != fcgiVersion:
		assert.ErrorIs(t, err, errFCGIVersion)
	default:
		want := fcgiHeaderLen + int(binary.BigEndian.Uint16(rest[4:])) + int(rest[6])
		assert.Less(t, len(rest), want, "a whole record refused: %v", err)
		assert.True(t, errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF), "%v", err)
	}
}

// FuzzFCGIPairs checks that pairs read from a stream, encoded again in the
// shortest lengths, read back the same and take no more bytes than before;
// a stream refused has a length that overruns it.
func FuzzFCGIPairs(f *testing.F) {
	f.Add([]byte(fcgiPairs(fcgiGet("/", "q")...)))
	f.Add([]byte(fcgiPairs("HTTP_COOKIE", string(make([]byte, 200)), "", "")))
	f.Add([]byte("\x80\x00\x00\x01\x01ab"))
	f.Add([]byte("\xff\xff\xff\xff\x00"))
	f.Add([]byte("\x05"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var pairs [][2]string
		var encoded []byte
		err := eachFCGIPair(stream, func(name, value []byte) error {
			pairs = append(pairs, [2]string{string(name), string(value)})
			encoded = appendFCGIPair(encoded, string(name), string(value))
			return nil
		})
		if err != nil {
			assert.ErrorIs(t, err, errFCGIPairs)
			return
		}
		assert.LessOrEqual(t, len(encoded), len(stream))
		var again [][2]string
		require.NoError(t, eachFCGIPair(encoded, func(name, value []byte) error {
			again = append(again, [2]string{string(name), string(value)})
			return nil
		}))
		assert.Equal(t, pairs, again)
	})
}

// fcgiCounter is a handler that counts requests and checks each has the
// REQUEST_METHOD params.finish requires.
type fcgiCounter struct {
	mu       sync.Mutex
	calls    int
	noMethod int
}

func (h *fcgiCounter) ServeWSGI(_ context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	_, ok := req.Vars.Get("REQUEST_METHOD")
	h.mu.Lock()
	h.calls++
	if !ok {
		h.noMethod++
	}
	h.mu.Unlock()
	if err := w.WriteHead("200 OK", nil); err != nil {
		return err
	}
	return w.WriteBody(req.Body)
}

func (h *fcgiCounter) counts() (calls, noMethod int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, h.noMethod
}

// FuzzFastCGIConn sends each input on a fresh connection to the FastCGI
// gateway, half-closes it and reads the answer until the gateway closes,
// within a deadline. The answer must be whole version-1 records, each
// END_REQUEST for a request the input began and no more of them than it
// began, and the application must be called only for begun responder
// requests that had a method.
func FuzzFastCGIConn(f *testing.F) {
	for _, s := range fcgiSeeds() {
		f.Add([]byte(s))
	}
	h := &fcgiCounter{}
	g := NewFastCGI(h, FastCGIOptions{SpoolThreshold: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(f, err)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	f.Cleanup(func() {
		g.Close()
		<-done
	})
	addr := ln.Addr().String()

	f.Fuzz(func(t *testing.T, input []byte) {
		callsBefore, noMethodBefore := h.counts()
		answer := fcgiExchange(t, addr, input)
		calls, noMethod := h.counts()
		assert.Equal(t, noMethodBefore, noMethod, "the application got a request without REQUEST_METHOD")

		begun := begunRequests(input)
		responders := 0
		for _, n := range begun {
			responders += n
		}
		assert.LessOrEqual(t, calls-callsBefore, responders, "more calls than responder requests begun")
		ended := map[uint16]int{}
		buf := make([]byte, fcgiMaxContent+255)
		for rest := bytes.NewReader(answer); rest.Len() > 0; {
			rec, _, err := readFCGIRecord(rest, buf)
			require.NoError(t, err, "the answer is not whole records")
			if rec.kind == fcgiEndRequest {
				ended[rec.id]++
			}
		}
		for id, n := range ended {
			assert.LessOrEqual(t, n, begun[id]+beginsRefused(input, id), "END_REQUEST for request %d more often than it began", id)
		}
	})
}

// fcgiExchange sends input, half-closes and returns all the gateway wrote
// until it closed the connection.
func fcgiExchange(t *testing.T, addr string, input []byte) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	written := make(chan struct{})
	go func() {
		defer close(written)
		// The gateway may close before reading everything: a protocol
		// error ends the connection, so a failed write is no failure here.
		if _, err := conn.Write(input); err == nil {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	answer, err := io.ReadAll(conn)
	<-written
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the gateway neither finished nor closed within the deadline")
	}
	return answer
}

// fcgiInputRecords walks the well-formed records at the start of input.
func fcgiInputRecords(input []byte, fn func(h fcgiHeader, content []byte)) {
	buf := make([]byte, fcgiMaxContent+255)
	r := bytes.NewReader(input)
	for {
		h, content, err := readFCGIRecord(r, buf)
		if err != nil {
			return
		}
		fn(h, content)
	}
}

// begunRequests counts, by id, the BEGIN_REQUEST records of input that ask
// for a responder.
func begunRequests(input []byte) map[uint16]int {
	begun := map[uint16]int{}
	fcgiInputRecords(input, func(h fcgiHeader, content []byte) {
		if b, err := parseFCGIBegin(content); h.kind == fcgiBeginRequest && err == nil && b.role == fcgiResponder && h.id != 0 {
			begun[h.id]++
		}
	})
	return begun
}

// beginsRefused counts the BEGIN_REQUEST records for id with another role,
// which are answered with END_REQUEST at once.
func beginsRefused(input []byte, id uint16) int {
	n := 0
	fcgiInputRecords(input, func(h fcgiHeader, content []byte) {
		if b, err := parseFCGIBegin(content); h.kind == fcgiBeginRequest && err == nil && b.role != fcgiResponder && h.id == id {
			n++
		}
	})
	return n
}
