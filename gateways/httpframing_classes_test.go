package gateways

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// framingClass is one request of a framing class and the gateway's
// answer: the status it is refused with, after a "200 " for each
// well-formed request raw begins with, or "" for a request served.
type framingClass struct {
	name   string
	raw    string
	status string
}

const (
	chunkedHead = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	lengthHead  = "POST / HTTP/1.1\r\nHost: h\r\n"
)

// framingClasses walks every place where the HTTP gateway reads a line
// ending, a separator or a token that may be empty (RFC 9112 sections 2.2,
// 3, 5, 6 and 7.1; RFC 9110 section 5.6), with a well-formed request of each
// class beside the malformed ones.
var framingClasses = []framingClass{
	// Between requests: net/http skips empty lines after a POST only, as
	// old clients send them (RFC 9112 section 2.2), and they must be CRLF.
	{"empty line after a POST body", lengthHead + "Content-Length: 5\r\n\r\nhello\r\n", ""},
	{"bare LF after a POST body", lengthHead + "Content-Length: 5\r\n\r\nhello\n", "200 400"},
	{"bare CR after a POST body", lengthHead + "Content-Length: 5\r\n\r\nhello\r", "200 400"},
	{"empty line before the first request line", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "400"},

	// The request line (RFC 9112 section 3): method SP target SP version CRLF.
	{"request line ending in a bare LF", "GET / HTTP/1.1\nHost: h\r\n\r\n", "400"},
	{"bare CR inside the request line", "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
	{"bare CR before the request line's CRLF", "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", "400"},
	{"two spaces after the method", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
	{"two spaces before the version", "GET /  HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
	{"HTAB as a separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
	{"empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
	{"empty target", "GET  HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
	{"empty version", "GET / \r\nHost: h\r\n\r\n", "400"},
	{"no version", "GET /\r\nHost: h\r\n\r\n", "400"},
	{"space after the version", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", "400"},
	{"lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", "400"},
	{"NUL in the target", "GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
	{"NUL in the method", "G\x00T / HTTP/1.1\r\nHost: h\r\n\r\n", "400"},

	// Field lines (RFC 9112 section 5, RFC 9110 section 5.5).
	{"field line ending in a bare LF before Content-Length", lengthHead + "X: a\nContent-Length: 5\r\n\r\nhello", "400"},
	{"last field line ending in a bare LF", "GET / HTTP/1.1\r\nHost: h\n\r\n", "400"},
	{"empty line of a bare LF ending the head", "GET / HTTP/1.1\r\nHost: h\r\n\n", "400"},
	{"bare CR inside a field value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", "400"},
	{"bare CR before a field line's CRLF", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n", "400"},
	{"bare CR ending the head", "GET / HTTP/1.1\r\nHost: h\r\n\rX", "400"},
	{"NUL in a field value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", "400"},
	{"control byte in a field value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", "400"},
	{"DEL in a field value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", "400"},
	{"HTAB and obs-text in a field value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\xe9\r\n\r\n", ""},
	{"NUL in a field name", "GET / HTTP/1.1\r\nHost: h\r\nX\x00Y: a\r\n\r\n", "400"},
	{"control byte in a field name", "GET / HTTP/1.1\r\nHost: h\r\nX\x01: a\r\n\r\n", "400"},
	{"empty field name", "GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n", "400"},
	{"space before the colon", "GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n", "400"},
	{"HTAB before the colon", "GET / HTTP/1.1\r\nHost: h\r\nX\t: a\r\n\r\n", "400"},
	{"field line without a colon", "GET / HTTP/1.1\r\nHost: h\r\nX\r\n\r\n", "400"},
	{"empty field value", "GET / HTTP/1.1\r\nHost: h\r\nX:\r\n\r\n", ""},

	// Content-Length (RFC 9110 section 8.6, RFC 9112 section 6.3).
	{"Content-Length", lengthHead + "Content-Length: 5\r\n\r\nhello", ""},
	{"same Content-Length twice", lengthHead + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", ""},
	{"empty Content-Length", lengthHead + "Content-Length: \r\n\r\n", "400"},
	{"Content-Length with a plus sign", lengthHead + "Content-Length: +5\r\n\r\nhello", "400"},
	{"Content-Length with a minus sign", lengthHead + "Content-Length: -5\r\n\r\nhello", "400"},
	{"Content-Lengths that differ", lengthHead + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "400"},
	{"Content-Length list", lengthHead + "Content-Length: 5, 5\r\n\r\nhello", "400"},
	{"Content-Length with an empty list element", lengthHead + "Content-Length: 5,\r\n\r\nhello", "400"},
	{"Content-Length in hex", lengthHead + "Content-Length: 0x5\r\n\r\nhello", "400"},
	{"space inside Content-Length", lengthHead + "Content-Length: 5 5\r\n\r\nhello", "400"},
	{"bare CR inside Content-Length", lengthHead + "Content-Length: 5\r5\r\n\r\nhello", "400"},
	{"Content-Length ending in a bare LF", lengthHead + "Content-Length: 5\n\r\nhello", "400"},

	// Transfer-Encoding lists (RFC 9110 sections 5.6.1 and 10.1.4).
	{"Transfer-Encoding of empty elements only", lengthHead + "Transfer-Encoding: ,\r\n\r\n0\r\n\r\n", "400"},
	{"bare CR inside Transfer-Encoding", lengthHead + "Transfer-Encoding: chunked\rx\r\n\r\n0\r\n\r\n", "400"},
	{"Transfer-Encoding ending in a bare LF", lengthHead + "Transfer-Encoding: chunked\n\r\n0\r\n\r\n", "400"},
	// An empty element beside chunked is allowed (section 5.6.1), but
	// net/http takes only "chunked" alone and answers 501 Not
	// Implemented: refused and closed all the same.
	{"empty element after chunked", lengthHead + "Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", "501"},

	// Chunk-size lines (RFC 9112 section 7.1, 7.1.1).
	{"chunk extensions of every form", chunkedHead + "2;a;b=c;d=\"e\\\"f\";g = \"\" ; h\r\nab\r\n0;z\r\n\r\n", ""},
	{"chunk-size line ending in a bare LF", chunkedHead + "2\nab\r\n0\r\n\r\n", "400"},
	{"bare CR after a chunk size", chunkedHead + "2\rab\r\n0\r\n\r\n", "400"},
	{"empty chunk size", chunkedHead + "\r\nab\r\n0\r\n\r\n", "400"},
	{"empty chunk size before an extension", chunkedHead + ";a\r\nab\r\n0\r\n\r\n", "400"},
	{"space before a chunk size", chunkedHead + " 2\r\nab\r\n0\r\n\r\n", "400"},
	{"signed chunk size", chunkedHead + "+2\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk size with a 0x prefix", chunkedHead + "0x2\r\nab\r\n0\r\n\r\n", "400"},
	{"junk after a chunk size", chunkedHead + "2x\r\nab\r\n0\r\n\r\n", "400"},
	{"space after a chunk size", chunkedHead + "2 \r\nab\r\n0\r\n\r\n", "400"},
	{"space between a chunk size and its extension", chunkedHead + "2 ;a\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk extension with an empty name", chunkedHead + "2;\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk extension with only a value", chunkedHead + "2;=b\r\nab\r\n0\r\n\r\n", "400"},
	{"two semicolons in the chunk extensions", chunkedHead + "2;a;;b\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk extension with an empty value", chunkedHead + "2;a=\r\nab\r\n0\r\n\r\n", "400"},
	{"space after a chunk extension's name", chunkedHead + "2;a \r\nab\r\n0\r\n\r\n", "400"},
	{"space after a chunk extension's value", chunkedHead + "2;a=b \r\nab\r\n0\r\n\r\n", "400"},
	{"chunk extension name that is not a token", chunkedHead + "2;a@b\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk extension value that is not a token", chunkedHead + "2;a=b@c\r\nab\r\n0\r\n\r\n", "400"},
	{"unterminated quoted chunk extension", chunkedHead + "2;a=\"b\r\nab\r\n0\r\n\r\n", "400"},
	{"control byte in a quoted chunk extension", chunkedHead + "2;a=\"\x01\"\r\nab\r\n0\r\n\r\n", "400"},
	{"quoted chunk extension followed by junk", chunkedHead + "2;a=\"b\"c\r\nab\r\n0\r\n\r\n", "400"},
	{"bare CR in a chunk extension", chunkedHead + "2;a\rb\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk extension on the last chunk ending in a bare LF", chunkedHead + "2\r\nab\r\n0;a\n\r\n", "400"},

	// Chunk data is followed by CRLF exactly (RFC 9112 section 7.1).
	{"chunk data longer than its size", chunkedHead + "2\r\nabc\r\n0\r\n\r\n", "400"},
	{"chunk data ending in a bare LF", chunkedHead + "2\r\nab\n0\r\n\r\n", "400"},
	{"chunk data ending in a bare CR", chunkedHead + "2\r\nab\r0\r\n\r\n", "400"},

	// The trailer section (RFC 9112 section 7.1.2): field lines as in the
	// head.
	{"trailer field", chunkedHead + "0\r\nX-Sum: 1\r\n\r\n", ""},
	{"trailer line ending in a bare LF", chunkedHead + "0\r\nX-Sum: 1\n\r\n", "400"},
	{"bare LF ending the trailer section", chunkedHead + "0\r\nX-Sum: 1\r\n\n", "400"},
	{"bare CR in a trailer value", chunkedHead + "0\r\nX-Sum: 1\r2\r\n\r\n", "400"},
	{"space before a trailer field's colon", chunkedHead + "0\r\nX-Sum : 1\r\n\r\n", "400"},
	{"empty trailer field name", chunkedHead + "0\r\n: 1\r\n\r\n", "400"},
	{"trailer line without a colon", chunkedHead + "0\r\nX-Sum\r\n\r\n", "400"},
	{"space inside a trailer field name", chunkedHead + "0\r\nX Sum: 1\r\n\r\n", "400"},
	{"control byte in a trailer value", chunkedHead + "0\r\nX-Sum: \x01\r\n\r\n", "400"},
	{"obs-fold in the trailer section", chunkedHead + "0\r\nX-Sum: 1\r\n 2\r\n\r\n", "400"},
}

// TestHTTPFramingClasses sends each case followed by a well-formed request
// on one connection: a refused case must be answered with its status alone
// and the connection closed, so the request after it is never read, and no
// application sees either; a served case must leave the connection usable.
func TestHTTPFramingClasses(t *testing.T) {
	const second = "GET /second HTTP/1.1\r\nHost: h\r\n\r\n"
	for _, tt := range framingClasses {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			addr := startHTTP(t, h, HTTPOptions{SpoolThreshold: 1 << 20})
			out := exchange(t, addr, tt.raw+second)
			if tt.status == "" {
				assert.Equal(t, []string{"200", "200"}, statusCodes(out), "both requests served: %q", out)
				assert.Len(t, h.requests(), 2)
				return
			}
			statuses := strings.Fields(tt.status)
			assert.Equal(t, statuses, statusCodes(out), "the connection must close after the refusal: %q", out)
			assert.Len(t, h.requests(), len(statuses)-1, "no application may see a refused request or what follows it")
		})
	}
}

// statusLine matches a status line's code in a stream of responses.
var statusLine = regexp.MustCompile(`(?m)^HTTP/1\.1 (\d{3}) `)

// statusCodes returns the codes of the status lines in out, in order.
func statusCodes(out string) []string {
	var codes []string
	for _, m := range statusLine.FindAllStringSubmatch(out, -1) {
		codes = append(codes, m[1])
	}
	return codes
}
