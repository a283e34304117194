package gateways

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanCase is a byte stream and what the scanner must make of it.
type scanCase struct {
	name      string
	raw       string
	requests  int64 // requests begun
	malformed int64 // 0: none
	why       error
}

const (
	getHead     = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	postLength  = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
	postChunked = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;name=\"a,b;c\\\"\"\r\nhello\r\n1A\r\n" + "abcdefghijklmnopqrstuvwxyz" + "\r\n0\r\nX-Sum: 1\r\n\r\n"
)

var scanCases = []scanCase{
	{name: "one get", raw: getHead, requests: 1},
	{name: "pipelined length and chunked bodies", raw: getHead + postLength + postChunked + getHead, requests: 4},
	{name: "body bytes that look like a head are skipped",
		raw:      "POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\nX: y\r\n folded\r\n\r\n\r\n" + getHead,
		requests: 2},
	{name: "stray CRLF before a request line", raw: postLength + "\r\n" + getHead, requests: 2},
	{name: "same Content-Length twice", raw: "POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length:  2 \r\n\r\nab" + getHead, requests: 2},
	{name: "framing names in other fields", raw: "GET / HTTP/1.1\r\nContent-Lengths: x\r\nX-Transfer-Encoding: gzip\r\nTransfer_Encoding: gzip\r\n\r\n", requests: 1},
	{name: "case-insensitive chunked with OWS", raw: "POST / HTTP/1.1\r\ntransfer-encoding:  ChunKed \r\n\r\n0\r\n\r\n" + getHead, requests: 2},
	{name: "codings ending in one chunked are net/http's to judge",
		raw: "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, ,chunked\r\n\r\n0\r\n\r\n" + getHead, requests: 2},
	{name: "HTTP/1.1 minor versions above 1 allow chunked", raw: "POST / HTTP/1.2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", requests: 1},
	{name: "chunk extensions of every form",
		raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a;b=c;d=\"e\\\"f\";g = \"\" ; h\t;i\r\nab\r\n0;z=\"\"\r\n\r\n" + getHead, requests: 2},
	{name: "sixteen-digit chunk size", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000001\r\nx\r\n0\r\n\r\n", requests: 1},

	{name: "obs-fold", raw: "GET / HTTP/1.1\r\nLong: one\r\n two\r\nHost: h\r\n\r\n", requests: 1, malformed: 1, why: errObsFold},
	{name: "obs-fold with HTAB", raw: "GET / HTTP/1.1\r\nLong: one\r\n\ttwo\r\n\r\n", requests: 1, malformed: 1, why: errObsFold},
	{name: "whitespace before the first field", raw: "GET / HTTP/1.1\r\n Host: h\r\n\r\n", requests: 1, malformed: 1, why: errObsFold},
	{name: "whitespace before a colon", raw: "GET / HTTP/1.1\r\nHost : h\r\n\r\n", requests: 1, malformed: 1, why: errFieldName},
	{name: "field without a colon", raw: "GET / HTTP/1.1\r\nHost\r\n\r\n", requests: 1, malformed: 1, why: errFieldName},
	{name: "bare CR ending the head", raw: "GET / HTTP/1.1\r\nHost: h\r\n\rX", requests: 1, malformed: 1, why: errBareCR},
	{name: "bare LF ending the request line", raw: "GET / HTTP/1.1\nHost: h\r\n\r\n", requests: 1, malformed: 1, why: errBareLF},
	{name: "bare LF ending a field line before Content-Length",
		raw: "POST / HTTP/1.1\r\nX: a\nContent-Length: 5\r\n\r\nhello", requests: 1, malformed: 1, why: errBareLF},
	{name: "bare LF ending Content-Length", raw: "POST / HTTP/1.1\r\nContent-Length: 5\n\r\nhello", requests: 1, malformed: 1, why: errBareLF},
	{name: "bare LF ending Transfer-Encoding", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\n\r\n0\r\n\r\n", requests: 1, malformed: 1, why: errBareLF},
	{name: "bare LF as the empty line", raw: "GET / HTTP/1.1\r\nHost: h\r\n\n", requests: 1, malformed: 1, why: errBareLF},
	{name: "bare CR in the request line", raw: "GET /\r HTTP/1.1\r\n\r\n", requests: 1, malformed: 1, why: errBareCR},
	{name: "bare CR in a field value", raw: "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", requests: 1, malformed: 1, why: errBareCR},
	{name: "CR CR LF ending a field line", raw: "GET / HTTP/1.1\r\nX: a\r\r\n\r\n", requests: 1, malformed: 1, why: errBareCR},
	{name: "bare CR in Content-Length", raw: "POST / HTTP/1.1\r\nContent-Length: 5\r5\r\n\r\n", requests: 1, malformed: 1, why: errBareCR},
	{name: "bare LF after a body is laid to the next request",
		raw: postLength + "\n" + getHead, requests: 2, malformed: 2, why: errBareLF},
	{name: "bare CR after a body is laid to the next request",
		raw: postLength + "\rGET", requests: 2, malformed: 2, why: errBareCR},
	{name: "empty field name", raw: "GET / HTTP/1.1\r\n: a\r\n\r\n", requests: 1, malformed: 1, why: errFieldName},
	{name: "control byte in a field name", raw: "GET / HTTP/1.1\r\nX\x00: a\r\n\r\n", requests: 1, malformed: 1, why: errFieldName},
	{name: "Content-Length with Transfer-Encoding",
		raw: "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", requests: 1, malformed: 1, why: errLengthWithTransfer},
	{name: "Transfer-Encoding before Content-Length",
		raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", requests: 1, malformed: 1, why: errLengthWithTransfer},
	{name: "Transfer-Encoding on HTTP/1.0",
		raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", requests: 1, malformed: 1, why: errTransferOnHTTP10},
	{name: "final coding not chunked",
		raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", requests: 1, malformed: 1, why: errChunkedNotFinal},
	{name: "identity after chunked", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", requests: 1, malformed: 1, why: errChunkedNotFinal},
	{name: "chunked with trailing garbage", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked x\r\n\r\n", requests: 1, malformed: 1, why: errChunkedNotFinal},
	{name: "empty Transfer-Encoding", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", requests: 1, malformed: 1, why: errChunkedNotFinal},
	{name: "chunked twice in one field",
		raw: "POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked, identity, chunked\r\n\r\n", requests: 1, malformed: 1, why: errChunkedTwice},
	{name: "chunked twice across fields",
		raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", requests: 1, malformed: 1, why: errChunkedTwice},
	{name: "two Content-Lengths", raw: "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", requests: 1, malformed: 1, why: errContentLength},
	{name: "signed Content-Length", raw: "POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n", requests: 1, malformed: 1, why: errContentLength},
	{name: "Content-Length list", raw: "POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n", requests: 1, malformed: 1, why: errContentLength},
	{name: "empty Content-Length", raw: "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", requests: 1, malformed: 1, why: errContentLength},
	{name: "Content-Length over 63 bits", raw: "POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n", requests: 1, malformed: 1, why: errContentLength},
	{name: "seventeen-digit chunk size",
		raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n", requests: 1, malformed: 1, why: errChunkLine},
	{name: "signed chunk size", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", requests: 1, malformed: 1, why: errChunkLine},
	{name: "chunk extension with an empty name", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\nab\r\n0\r\n\r\n", requests: 1, malformed: 1, why: errChunkLine},
	{name: "chunk extension with an empty value", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\r\n", requests: 1, malformed: 1, why: errChunkLine},
	{name: "space after a chunk extension", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b \r\n", requests: 1, malformed: 1, why: errChunkLine},
	{name: "quoted chunk extension left open", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\"b\r\n", requests: 1, malformed: 1, why: errChunkLine},
	{name: "space after a chunk size", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 ;a\r\n", requests: 1, malformed: 1, why: errChunkLine},
	{name: "space before a trailer colon", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA : b\r\n\r\n", requests: 1, malformed: 1, why: errTrailerLine},
	{name: "empty trailer name", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n: b\r\n\r\n", requests: 1, malformed: 1, why: errTrailerLine},
	{name: "control byte in a trailer value", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: \x00\r\n\r\n", requests: 1, malformed: 1, why: errTrailerLine},
	{name: "bare CR in a chunk extension",
		raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\rc\r\nhello\r\n0\r\n\r\n", requests: 1, malformed: 1, why: errChunkLine},
	{name: "bare LF after a chunk size", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n", requests: 1, malformed: 1, why: errChunkLine},
	{name: "chunk longer than its size", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", requests: 1, malformed: 1, why: errChunkDataEnd},
	{name: "obs-fold in the trailer",
		raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n", requests: 1, malformed: 1, why: errTrailerLine},
	{name: "bare LF in the trailer", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\n\r\n", requests: 1, malformed: 1, why: errTrailerLine},
	{name: "third pipelined request malformed, scanning stops",
		raw:      getHead + postLength + "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n" + getHead,
		requests: 3, malformed: 3, why: errObsFold},
}

func scanAll(pieces ...string) framingScanner {
	var s framingScanner
	for _, p := range pieces {
		s.scan([]byte(p))
	}
	return s
}

func assertVerdict(t *testing.T, tt scanCase, s framingScanner, how string) {
	t.Helper()
	assert.Equal(t, tt.requests, s.request, "requests begun, %s", how)
	assert.Equal(t, tt.malformed, s.malformed, "malformed request, %s", how)
	assert.Equal(t, tt.why, s.why, how)
	if tt.malformed == 0 {
		assert.Contains(t, []scanState{stRequestStart, stFieldStart}, s.state, "a whole stream ends between requests, %s", how)
	}
}

func TestFramingScanner(t *testing.T) {
	for _, tt := range scanCases {
		t.Run(tt.name, func(t *testing.T) {
			assertVerdict(t, tt, scanAll(tt.raw), "whole")
		})
	}
}

// TestFramingScannerSplits feeds every case cut in two at every byte, and
// one byte at a time: where reads split the stream must not matter.
func TestFramingScannerSplits(t *testing.T) {
	for _, tt := range scanCases {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i <= len(tt.raw); i++ {
				assertVerdict(t, tt, scanAll(tt.raw[:i], tt.raw[i:]), fmt.Sprintf("split at %d", i))
			}
			bytewise := make([]string, len(tt.raw))
			for i := range tt.raw {
				bytewise[i] = tt.raw[i : i+1]
			}
			assertVerdict(t, tt, scanAll(bytewise...), "byte at a time")
		})
	}
}

func TestFramingScannerLongBody(t *testing.T) {
	body := strings.Repeat("GET / HTTP/1.1\r\n \r\n", 1000)
	s := scanAll("POST / HTTP/1.1\r\nContent-Length: 19000\r\n\r\n", body[:7000], body[7000:], getHead)
	require.Zero(t, s.malformed, "a body is skipped, never read as a head")
	assert.Equal(t, int64(2), s.request)
}

// BenchmarkFramingScanner scans a typical pipelined stream: browser-like
// GETs, a form POST and a chunked upload.
func BenchmarkFramingScanner(b *testing.B) {
	get := "GET /static/app.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: */*\r\nAccept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Referer: https://www.example.com/\r\nCookie: session=0123456789abcdef0123456789abcdef\r\n" +
		"Connection: keep-alive\r\n\r\n"
	form := "POST /login HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Content-Length: 38\r\n\r\nuser=someone&password=correct+horse+b"
	upload := "POST /upload HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"400\r\n" + strings.Repeat("x", 0x400) + "\r\n0\r\n\r\n"
	stream := []byte(strings.Repeat(get, 8) + form + upload)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	var s framingScanner
	for b.Loop() {
		s.scan(stream)
	}
	require.Zero(b, s.malformed)
}
