package gateways

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scgiHeaders encodes pairs (name, value, …) as an SCGI header netstring,
// with no header added.
func scgiHeaders(pairs ...string) string {
	var b strings.Builder
	for _, s := range pairs {
		b.WriteString(s)
		b.WriteByte(0)
	}
	return strconv.Itoa(b.Len()) + ":" + b.String() + ","
}

// scgiRequest is a well-formed SCGI request: CONTENT_LENGTH, SCGI, pairs
// and body.
func scgiRequest(body string, pairs ...string) []byte {
	all := append([]string{"CONTENT_LENGTH", strconv.Itoa(len(body)), "SCGI", "1"}, pairs...)
	return []byte(scgiHeaders(all...) + body)
}

func TestSCGIRequests(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want map[string]string
		body string
	}{
		{
			name: "exact bytes: the protocol's own example shape",
			raw:  "61:CONTENT_LENGTH\x005\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/x?y\x00,hello",
			want: with(defaultsFor("POST", "/x", "y"), "CONTENT_LENGTH", "5", "SCGI", "1", "REQUEST_URI", "/x?y"),
			body: "hello",
		},
		{
			name: "nginx scgi_params: no PATH_INFO, decoded from DOCUMENT_URI",
			raw: string(scgiRequest("", "REQUEST_METHOD", "GET", "REQUEST_URI", "/caf%C3%A9?a=%20", "QUERY_STRING", "a=%20",
				"DOCUMENT_URI", "/caf\xc3\xa9", "HTTPS", "on", "HTTP_X_PROBE", "1")),
			want: with(defaultsFor("GET", "/caf\xc3\xa9", "a=%20"), "CONTENT_LENGTH", "0", "SCGI", "1",
				"REQUEST_URI", "/caf%C3%A9?a=%20", "DOCUMENT_URI", "/caf\xc3\xa9", "HTTPS", "on", "HTTP_X_PROBE", "1",
				"wsgi.url_scheme", "https"),
		},
		{
			name: "a value may be empty and contain ':' and ','",
			raw:  string(scgiRequest("a,b", "REQUEST_METHOD", "PUT", "PATH_INFO", "/", "HTTP_X", "", "HTTP_Y", "1:2,3")),
			want: with(defaultsFor("PUT", "/", ""), "CONTENT_LENGTH", "3", "SCGI", "1", "HTTP_X", "", "HTTP_Y", "1:2,3"),
			body: "a,b",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{respond: answerText("hi")}
			addr := startStream(t, NewSCGI(h, StreamOptions{SpoolThreshold: 1 << 20}))
			out := streamExchange(t, addr, []byte(tt.raw))
			assert.Equal(t, "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nhi", string(out))
			seen := h.requests()
			require.Len(t, seen, 1)
			assert.Equal(t, tt.want, seen[0].vars)
			assert.Equal(t, tt.body, seen[0].body)
		})
	}
}

func TestSCGIRefusesMalformedRequests(t *testing.T) {
	get := []string{"REQUEST_METHOD", "GET", "PATH_INFO", "/"}
	good := scgiHeaders(append([]string{"CONTENT_LENGTH", "0", "SCGI", "1"}, get...)...)
	tests := []struct {
		name string
		raw  string
		opts StreamOptions
	}{
		{name: "no comma after the headers", raw: strings.TrimSuffix(good, ",") + ";"},
		{name: "CONTENT_LENGTH not first", raw: scgiHeaders(append([]string{"SCGI", "1", "CONTENT_LENGTH", "0"}, get...)...)},
		{name: "no SCGI header", raw: scgiHeaders(append([]string{"CONTENT_LENGTH", "0"}, get...)...)},
		{name: "SCGI version 2", raw: scgiHeaders(append([]string{"CONTENT_LENGTH", "0", "SCGI", "2"}, get...)...)},
		{name: "value not NUL-terminated", raw: "30:CONTENT_LENGTH\x000\x00SCGI\x001\x00ABCD,"},
		{name: "empty header block", raw: "0:,"},
		{name: "leading zero in the length", raw: "0" + good},
		{name: "length is not a number", raw: "x" + good},
		{name: "no length at all", raw: ":" + good},
		{name: "length over the buffer size", raw: "1025:" + strings.Repeat("x", 1025) + ",", opts: StreamOptions{MaxHeadSize: 1024}},
		{name: "length of ten digits", raw: "1000000000:"},
		{name: "headers cut short", raw: good[:20]},
		{name: "CONTENT_LENGTH that is not a number", raw: scgiHeaders(append([]string{"CONTENT_LENGTH", "x", "SCGI", "1"}, get...)...)},
		{name: "body shorter than CONTENT_LENGTH", raw: scgiHeaders(append([]string{"CONTENT_LENGTH", "4", "SCGI", "1"}, get...)...) + "abc"},
		{name: "no REQUEST_METHOD", raw: scgiHeaders("CONTENT_LENGTH", "0", "SCGI", "1")},
		{name: "empty header name", raw: scgiHeaders(append([]string{"CONTENT_LENGTH", "0", "SCGI", "1", "", "x"}, get...)...)},
		{name: "second CONTENT_LENGTH that differs",
			raw: scgiHeaders(append([]string{"CONTENT_LENGTH", "0", "SCGI", "1", "CONTENT_LENGTH", "3"}, get...)...) + "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			addr := startStream(t, NewSCGI(h, tt.opts))
			out := streamExchange(t, addr, []byte(tt.raw))
			assert.Empty(t, out)
			assert.Empty(t, h.requests(), "a malformed request reached the handler")
		})
	}
}
