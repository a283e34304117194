// Fuzz targets for the master/worker framing: FrameReader on streams cut at
// arbitrary points, and the payload parsers of each frame kind. Each checks
// a property against an independent reading of the same bytes, not only
// that nothing panics.
package wsgi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxFuzzFrames bounds the frames read from one input; an input has at most
// len/FrameHeaderLen of them, so this only guards against a reader bug.
const maxFuzzFrames = 1 << 16

// cutReader returns its data in reads of at most step bytes, so that frames
// arrive split at every kind of boundary.
type cutReader struct {
	data []byte
	step int
}

func (r *cutReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.step)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// frameSeeds are streams the package's own encoders write.
func frameSeeds() [][]byte {
	var req Request
	req.Vars.Add("REQUEST_METHOD", "POST")
	req.Vars.Add("PATH_INFO", "/upload")
	req.Body = []byte("hello")
	var headers Vars
	headers.Add("Content-Type", "text/plain")
	stream := AppendRequest(nil, 1, &req)
	stream = AppendHead(stream, 1, "200 OK", headers.Block())
	stream = AppendFrameHeader(stream, FrameBody, 0, 1, 5)
	stream = append(stream, "hello"...)
	stream = AppendFile(stream, 1, 0, -1)
	stream = AppendFrameHeader(stream, FrameEnd, FlagEndBroken, 1, 0)
	spooled := AppendRequest(nil, 7, &Request{BodyFile: os.Stdin})
	return [][]byte{stream, spooled, stream[:FrameHeaderLen+3], {}}
}

// FuzzFrameReader reads a stream cut into reads of step bytes and checks
// that every frame is exactly the bytes the stream held at its place, and
// that the reader stops only at a clean end, a cut frame or an oversized one.
func FuzzFrameReader(f *testing.F) {
	for _, s := range frameSeeds() {
		f.Add(s, uint16(1))
		f.Add(s, uint16(7))
		f.Add(s, uint16(4096))
	}
	f.Fuzz(func(t *testing.T, stream []byte, step uint16) {
		fr := NewFrameReader(&cutReader{data: stream, step: int(step%4096) + 1})
		rest := stream
		for range maxFuzzFrames {
			frame, err := fr.Next()
			if err != nil {
				assertStreamEnd(t, rest, err)
				return
			}
			require.GreaterOrEqual(t, len(rest), FrameHeaderLen+len(frame.Payload), "a frame longer than the stream")
			want := rest[:FrameHeaderLen+len(frame.Payload)]
			got := AppendFrameHeader(nil, frame.Kind, frame.Flags, frame.ID, len(frame.Payload))
			got = append(got, frame.Payload...)
			// Bytes 2 and 3 are reserved: the reader ignores them.
			copy(got[2:4], want[2:4])
			require.Equal(t, want, got, "a frame re-encoded differs from its bytes")
			require.Equal(t, len(frame.Payload), cap(frame.Payload), "a payload's capacity reaches past it")
			rest = rest[len(want):]
		}
		t.Fatalf("more than %d frames from %d bytes", maxFuzzFrames, len(stream))
	})
}

// assertStreamEnd checks the error that ended a read against rest, the
// bytes not yet returned as frames.
func assertStreamEnd(t *testing.T, rest []byte, err error) {
	t.Helper()
	switch {
	case len(rest) == 0:
		assert.ErrorIs(t, err, io.EOF)
	case len(rest) >= FrameHeaderLen && binary.LittleEndian.Uint32(rest[8:]) > MaxFramePayload:
		assert.ErrorIs(t, err, errFrameTooLarge)
	default:
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		if len(rest) >= FrameHeaderLen {
			assert.Less(t, len(rest), FrameHeaderLen+int(binary.LittleEndian.Uint32(rest[8:])), "a whole frame was refused")
		}
	}
}

// FuzzParseRequest checks that ParseRequest either refuses a payload whose
// vars length overruns it or splits it so that AppendRequest rebuilds it.
func FuzzParseRequest(f *testing.F) {
	for _, s := range frameSeeds() {
		if len(s) > FrameHeaderLen && FrameKind(s[0]) == FrameRequest {
			f.Add(s[FrameHeaderLen:])
		}
	}
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'x'})
	f.Fuzz(func(t *testing.T, payload []byte) {
		vars, body, err := ParseRequest(payload)
		if err != nil {
			ok := len(payload) < 4 || uint64(binary.LittleEndian.Uint32(payload)) > uint64(len(payload)-4)
			assert.True(t, ok, "a well-formed payload refused: %v", err)
			return
		}
		require.Equal(t, 4+len(vars)+len(body), len(payload))
		req := Request{Vars: Vars{block: vars}, Body: body}
		rebuilt := AppendRequest(nil, 0, &req)[FrameHeaderLen:]
		assert.True(t, bytes.Equal(payload, rebuilt), "payload %q rebuilt as %q", payload, rebuilt)
	})
}

// FuzzParseHead checks ParseHead against AppendHead the same way.
func FuzzParseHead(f *testing.F) {
	var headers Vars
	headers.Add("Content-Type", "text/html; charset=utf-8")
	headers.Add("Set-Cookie", "a=b")
	f.Add(AppendHead(nil, 1, "404 Not Found", headers.Block())[FrameHeaderLen:])
	f.Add(AppendHead(nil, 1, "", nil)[FrameHeaderLen:])
	f.Add([]byte{9, 0, '2', '0', '0'})
	f.Fuzz(func(t *testing.T, payload []byte) {
		status, headers, err := ParseHead(payload)
		if err != nil {
			assert.True(t, len(payload) < 2 || len(payload) < 2+int(binary.LittleEndian.Uint16(payload)), "a well-formed payload refused")
			return
		}
		rebuilt := AppendHead(nil, 0, status, headers)[FrameHeaderLen:]
		assert.Equal(t, payload, rebuilt)
	})
}

// FuzzParseFile checks ParseFile against AppendFile.
func FuzzParseFile(f *testing.F) {
	f.Add(AppendFile(nil, 1, 0, -1)[FrameHeaderLen:])
	f.Add(AppendFile(nil, 1, 1<<40, 12)[FrameHeaderLen:])
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, payload []byte) {
		offset, count, err := ParseFile(payload)
		if len(payload) != 16 {
			assert.Error(t, err)
			return
		}
		require.NoError(t, err)
		assert.Equal(t, payload, AppendFile(nil, 0, offset, count)[FrameHeaderLen:])
	})
}

// FuzzEachVar checks that a block EachVar accepts is exactly the pairs it
// yields, encoded again with Vars, and that a block it refuses has a length
// that overruns it.
func FuzzEachVar(f *testing.F) {
	var v Vars
	v.Add("REQUEST_METHOD", "GET")
	v.Add("", "")
	v.Add("HTTP_X", string(make([]byte, 300)))
	f.Add(v.Block())
	f.Add(v.Block()[:len(v.Block())-1])
	f.Add([]byte{5, 0, 'a'})
	f.Fuzz(func(t *testing.T, block []byte) {
		var again Vars
		err := EachVar(block, func(key, value []byte) bool {
			require.True(t, within(block, key) && within(block, value), "a pair outside the block")
			again.AddBytes(key, value)
			return true
		})
		require.NoError(t, again.Err())
		if err != nil {
			assert.ErrorIs(t, err, ErrBadVarsBlock)
			assert.True(t, bytes.HasPrefix(block, again.Block()), "pairs before the overrun are not the block's prefix")
			assert.Less(t, len(again.Block()), len(block))
			return
		}
		assert.True(t, bytes.Equal(block, again.Block()), "a block re-encoded differs: %q, %q", block, again.Block())
	})
}

// FuzzVarsAdd checks that what Add stores, Get and EachVar give back.
func FuzzVarsAdd(f *testing.F) {
	f.Add("PATH_INFO", "/caf\xe9", "QUERY_STRING", "")
	f.Add("", "", "", "x")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		var v Vars
		v.Add(k1, v1)
		v.Add(k2, v2)
		if len(k1) > maxVarLen || len(v1) > maxVarLen || len(k2) > maxVarLen || len(v2) > maxVarLen {
			require.True(t, errors.Is(v.Err(), ErrVarTooLong))
			return
		}
		require.NoError(t, v.Err())
		got, ok := v.Get(k1)
		assert.True(t, ok)
		assert.Equal(t, v1, got)
		var pairs []string
		require.NoError(t, EachVar(v.Block(), func(key, value []byte) bool {
			pairs = append(pairs, string(key), string(value))
			return true
		}))
		assert.Equal(t, []string{k1, v1, k2, v2}, pairs)
	})
}

// within reports whether sub lies inside buf's memory (an empty sub always
// does).
func within(buf, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	start := cap(buf) - cap(sub)
	return start >= 0 && start+len(sub) <= len(buf) && &buf[start] == &sub[0]
}
