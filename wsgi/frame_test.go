package wsgi

import (
	"bytes"
	"io"
	"os"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrameHeaderBytes(t *testing.T) {
	got := AppendFrameHeader(nil, FrameBody, FlagEndBroken, 0x01020304, 0x0a0b)
	assert.Equal(t, []byte{'B', 1, 0, 0, 4, 3, 2, 1, 0x0b, 0x0a, 0, 0}, got)
	assert.Len(t, got, FrameHeaderLen)
}

func TestRequestFrameRoundTrip(t *testing.T) {
	cases := []struct {
		name      string
		req       Request
		wantFlags uint8
		wantBody  string
	}{
		{"no body", Request{}, 0, ""},
		{"inline body", Request{Body: []byte("a=1&b=2")}, 0, "a=1&b=2"},
		{"spooled body", Request{Body: []byte("ignored"), BodyFile: os.Stdin}, FlagBodySpooled, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Vars.Add("REQUEST_METHOD", "POST")
			tc.req.Vars.Add("PATH_INFO", "/caf\xe9")
			wire := AppendRequest(nil, 7, &tc.req)

			f, err := NewFrameReader(bytes.NewReader(wire)).Next()
			require.NoError(t, err)
			assert.Equal(t, FrameRequest, f.Kind)
			assert.Equal(t, tc.wantFlags, f.Flags)
			assert.Equal(t, uint32(7), f.ID)
			vars, body, err := ParseRequest(f.Payload)
			require.NoError(t, err)
			assert.Equal(t, tc.req.Vars.Block(), vars)
			assert.Equal(t, tc.wantBody, string(body))
		})
	}
}

func TestParseRequestRejectsBadVarsLength(t *testing.T) {
	for _, payload := range [][]byte{nil, {1, 0}, {9, 0, 0, 0, 'x'}} {
		_, _, err := ParseRequest(payload)
		assert.Error(t, err, "payload %v", payload)
	}
}

func TestHeadFrameRoundTrip(t *testing.T) {
	var headers Vars
	headers.Add("Content-Type", "text/plain")
	headers.Add("Set-Cookie", "a=1")
	headers.Add("Set-Cookie", "b=2")
	wire := AppendHead(nil, 3, "404 Not Found", headers.Block())

	f, err := NewFrameReader(bytes.NewReader(wire)).Next()
	require.NoError(t, err)
	assert.Equal(t, FrameHead, f.Kind)
	status, block, err := ParseHead(f.Payload)
	require.NoError(t, err)
	assert.Equal(t, "404 Not Found", status)
	assert.Equal(t, headers.Block(), block)

	_, _, err = ParseHead([]byte{20, 0, 'x'})
	assert.Error(t, err, "a status longer than the payload")
}

func TestFileFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct{ offset, count int64 }{{0, -1}, {4096, 10 << 20}} {
		f, err := NewFrameReader(bytes.NewReader(AppendFile(nil, 1, tc.offset, tc.count))).Next()
		require.NoError(t, err)
		offset, count, err := ParseFile(f.Payload)
		require.NoError(t, err)
		assert.Equal(t, tc.offset, offset)
		assert.Equal(t, tc.count, count)
	}
	_, _, err := ParseFile(make([]byte, 15))
	assert.Error(t, err)
}

// A stream of several frames must decode the same however the reads split it.
func TestFrameReaderAcrossReadBoundaries(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 20000) // larger than the reader's first buffer
	var wire []byte
	wire = AppendHead(wire, 1, "200 OK", nil)
	wire = AppendFrameHeader(wire, FrameBody, 0, 1, len(big))
	wire = append(wire, big...)
	wire = AppendFrameHeader(wire, FrameEnd, 0, 1, 0)

	readers := map[string]io.Reader{
		"whole":        bytes.NewReader(wire),
		"one byte":     iotest.OneByteReader(bytes.NewReader(wire)),
		"half a frame": iotest.HalfReader(bytes.NewReader(wire)),
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			fr := NewFrameReader(r)
			var kinds []FrameKind
			var body []byte
			for {
				f, err := fr.Next()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				kinds = append(kinds, f.Kind)
				if f.Kind == FrameBody {
					body = append(body, f.Payload...)
				}
			}
			assert.Equal(t, []FrameKind{FrameHead, FrameBody, FrameEnd}, kinds)
			assert.Equal(t, big, body)
		})
	}
}

func TestFrameReaderErrors(t *testing.T) {
	cases := []struct {
		name string
		wire []byte
		want error
	}{
		{"clean end", nil, io.EOF},
		{"cut in the header", []byte{'B', 0, 0}, io.ErrUnexpectedEOF},
		{"cut in the payload", append(AppendFrameHeader(nil, FrameBody, 0, 1, 10), "abc"...), io.ErrUnexpectedEOF},
		{"payload over the limit", AppendFrameHeader(nil, FrameBody, 0, 1, MaxFramePayload+1), errFrameTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFrameReader(bytes.NewReader(tc.wire)).Next()
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestFrameReaderBuffered(t *testing.T) {
	wire := AppendFrameHeader(nil, FrameEnd, 0, 1, 0)
	wire = AppendFrameHeader(wire, FrameEnd, 0, 2, 0)
	fr := NewFrameReader(bytes.NewReader(wire))
	assert.False(t, fr.Buffered(), "nothing read yet")
	_, err := fr.Next()
	require.NoError(t, err)
	assert.True(t, fr.Buffered(), "the second frame came in the same read")
	_, err = fr.Next()
	require.NoError(t, err)
	assert.False(t, fr.Buffered())
}

func BenchmarkAppendRequest(b *testing.B) {
	var req Request
	for _, kv := range [][2]string{{"REQUEST_METHOD", "GET"}, {"PATH_INFO", "/"}, {"QUERY_STRING", ""},
		{"SERVER_PROTOCOL", "HTTP/1.1"}, {"HTTP_HOST", "127.0.0.1:8000"}, {"HTTP_USER_AGENT", "wrk"}} {
		req.Vars.Add(kv[0], kv[1])
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequest(buf[:0], 1, &req)
	}
}

// A large frame grows the reader's buffer only while it is read: one big
// response must not pin its size in a slot's reader for good.
func TestFrameReaderShrinksAfterALargeFrame(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4<<20)
	wire := AppendFrameHeader(nil, FrameBody, 0, 1, len(big))
	wire = append(wire, big...)
	wire = AppendFrameHeader(wire, FrameEnd, 0, 1, 0)
	wire = AppendHead(wire, 2, "200 OK", nil)

	fr := NewFrameReader(bytes.NewReader(wire))
	f, err := fr.Next()
	require.NoError(t, err)
	require.Equal(t, big, f.Payload)
	assert.GreaterOrEqual(t, len(fr.buf), len(big), "grown to hold the frame")

	f, err = fr.Next()
	require.NoError(t, err)
	assert.Equal(t, FrameEnd, f.Kind)
	assert.Equal(t, frameReaderBuffer, len(fr.buf), "back to its usual size once the large frame was consumed")
	f, err = fr.Next()
	require.NoError(t, err)
	assert.Equal(t, FrameHead, f.Kind, "frames after the large one are read intact")
	assert.Equal(t, uint32(2), f.ID)
}
