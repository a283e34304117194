// Fuzz targets for the uwsgi and SCGI head parsers, reached at function
// level through their readHead functions: a head parsed, encoded again and
// parsed once more gives the same variables; malformed input is an error;
// nothing reads or allocates past the head limit whatever length is claimed.
package gateways

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/gowsgi/gowsgi/wsgi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzHeadLimit is the head limit the parsers get: small, so the fuzzer
// meets it often.
const fuzzHeadLimit = 4 << 10

// readHeadFunc is a protocol's streamProtocol.readHead.
type readHeadFunc func(r *bufio.Reader, buf []byte, limit int, p *params) ([]byte, error)

// parsedHead is what a readHead made of an input.
type parsedHead struct {
	vars     []byte // the params' vars block
	consumed int    // bytes taken from the input
	capacity int    // of the buffer the parser returned
	err      error
}

func parseHead(read readHeadFunc, input []byte) parsedHead {
	src := bytes.NewReader(input)
	var vars wsgi.Vars
	p := newParams(&vars)
	buf, err := read(bufio.NewReaderSize(src, 16), nil, fuzzHeadLimit, &p)
	// The 16-byte bufio.Reader reads ahead by at most its size.
	consumed := len(input) - src.Len()
	return parsedHead{vars: bytes.Clone(vars.Block()), consumed: consumed, capacity: cap(buf), err: err}
}

// varPairs lists a vars block's pairs as strings, key then value.
func varPairs(t *testing.T, block []byte) []string {
	t.Helper()
	var pairs []string
	require.NoError(t, wsgi.EachVar(block, func(k, v []byte) bool {
		pairs = append(pairs, string(k), string(v))
		return true
	}))
	return pairs
}

// FuzzUWSGIHead parses a packet, then a packet built from the variables
// parsed: they must be the same variables.
func FuzzUWSGIHead(f *testing.F) {
	f.Add(uwsgiRequest("hello", "REQUEST_METHOD", "POST", "REQUEST_URI", "/p?q=1", "HTTP_HOST", "h"))
	f.Add(uwsgiPacket(5, "REQUEST_METHOD", "GET", "UWSGI_SCHEME", "https", "PATH_INFO", "/x"))
	f.Add(uwsgiPacket(0, "CONTENT_LENGTH", "", "HTTP_CONTENT_TYPE", "a"))
	f.Add(uwsgiPacket(1, "REQUEST_METHOD", "GET"))
	f.Add([]byte{0, 0xff, 0xff, 0})
	f.Add(uwsgiPacket(0, "CONTENT_LENGTH", "-1")[:9])
	f.Fuzz(func(t *testing.T, input []byte) {
		first := parseHead(readUWSGIHead, input)
		assert.LessOrEqual(t, first.capacity, max(fuzzHeadLimit, uwsgiHeaderLen), "a buffer beyond the head limit")
		if len(input) >= uwsgiHeaderLen {
			claimed := int(binary.LittleEndian.Uint16(input[1:3]))
			if claimed > fuzzHeadLimit || input[0] != uwsgiModifierWSGI && input[0] != uwsgiModifierPSGI {
				require.Error(t, first.err)
				assert.LessOrEqual(t, first.consumed, uwsgiHeaderLen+16, "read on past a refused header")
				return
			}
		}
		if first.err != nil {
			return
		}
		size := int(binary.LittleEndian.Uint16(input[1:3]))
		assert.NoError(t, wsgi.EachVar(input[uwsgiHeaderLen:uwsgiHeaderLen+size], func(_, _ []byte) bool { return true }),
			"a packet accepted whose vars block overruns it")
		again := parseHead(readUWSGIHead, uwsgiPacket(0, varPairs(t, first.vars)...))
		require.NoError(t, again.err)
		assert.Equal(t, first.vars, again.vars)
	})
}

// FuzzSCGIHead does the same for SCGI's header netstring, and checks that
// an accepted one really was "length:headers," with CONTENT_LENGTH first.
func FuzzSCGIHead(f *testing.F) {
	f.Add(scgiRequest("hello", "REQUEST_METHOD", "POST", "REQUEST_URI", "/p?q=1", "HTTP_HOST", "h"))
	f.Add([]byte(scgiHeaders("CONTENT_LENGTH", "", "SCGI", "1", "REQUEST_METHOD", "GET")))
	f.Add([]byte(scgiHeaders("SCGI", "1", "CONTENT_LENGTH", "0")))
	f.Add([]byte("999999999:"))
	f.Add([]byte("0012:CONTENT_LENGTH\x000\x00,"))
	f.Add([]byte(scgiHeaders("CONTENT_LENGTH", "0", "SCGI", "2", "REQUEST_METHOD", "GET")))
	f.Fuzz(func(t *testing.T, input []byte) {
		first := parseHead(readSCGIHead, input)
		assert.LessOrEqual(t, first.capacity, fuzzHeadLimit+1, "a buffer beyond the head limit")
		if first.err != nil {
			return
		}
		digits, _, ok := bytes.Cut(input, []byte(":"))
		require.True(t, ok)
		n, err := strconv.Atoi(string(digits))
		require.NoError(t, err, "an accepted length %q", digits)
		require.Equal(t, strconv.Itoa(n), string(digits), "an accepted length with a leading zero or sign")
		end := len(digits) + 1 + n
		require.Less(t, end, len(input))
		assert.Equal(t, byte(','), input[end])
		assert.True(t, bytes.HasPrefix(input[len(digits)+1:], []byte("CONTENT_LENGTH\x00")))

		again := parseHead(readSCGIHead, scgiRequestFromVars(t, first.vars))
		require.NoError(t, again.err)
		assert.Equal(t, first.vars, again.vars)
	})
}

// scgiRequestFromVars encodes a parsed SCGI head's variables as a header
// netstring again. params keeps no empty CONTENT_LENGTH, which must come
// first, so one is put back when missing.
func scgiRequestFromVars(t *testing.T, block []byte) []byte {
	t.Helper()
	pairs := varPairs(t, block)
	if len(pairs) == 0 || pairs[0] != "CONTENT_LENGTH" {
		pairs = append([]string{"CONTENT_LENGTH", ""}, pairs...)
	}
	return []byte(scgiHeaders(pairs...))
}
