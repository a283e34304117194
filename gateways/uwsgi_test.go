package gateways

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// uwsgiPacket encodes pairs (key, value, …) as a uwsgi packet with modifier1.
func uwsgiPacket(modifier1 byte, pairs ...string) []byte {
	var block []byte
	for _, s := range pairs {
		block = binary.LittleEndian.AppendUint16(block, uint16(len(s)))
		block = append(block, s...)
	}
	packet := []byte{modifier1, 0, 0, 0}
	binary.LittleEndian.PutUint16(packet[1:3], uint16(len(block)))
	return append(packet, block...)
}

// uwsgiRequest is a modifier1 0 packet of CONTENT_LENGTH and pairs,
// followed by body.
func uwsgiRequest(body string, pairs ...string) []byte {
	all := append([]string{"CONTENT_LENGTH", strconv.Itoa(len(body))}, pairs...)
	return append(uwsgiPacket(0, all...), body...)
}

// defaultsFor is what params.finish adds to a bare request.
func defaultsFor(method, path, query string) map[string]string {
	return map[string]string{"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": query,
		"SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.0", "wsgi.url_scheme": "http"}
}

func with(m map[string]string, pairs ...string) map[string]string {
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

func TestUWSGIRequests(t *testing.T) {
	nginx := []string{"QUERY_STRING", "a=1", "REQUEST_METHOD", "POST", "CONTENT_TYPE", "text/plain", "CONTENT_LENGTH", "5",
		"REQUEST_URI", "/app/x%2Fy?a=1", "PATH_INFO", "/x/y", "SCRIPT_NAME", "/app", "SERVER_PROTOCOL", "HTTP/1.1",
		"REQUEST_SCHEME", "http", "HTTPS", "", "REMOTE_ADDR", "10.0.0.1", "REMOTE_PORT", "5555",
		"SERVER_PORT", "8080", "SERVER_NAME", "example.org", "HTTP_HOST", "example.org:8080"}
	tests := []struct {
		name string
		raw  []byte
		want map[string]string
		body string
	}{
		{
			name: "exact bytes: a minimal GET",
			raw:  []byte("\x00\x26\x00\x00\x0e\x00REQUEST_METHOD\x03\x00GET\x09\x00PATH_INFO\x04\x00/a b"),
			want: defaultsFor("GET", "/a b", ""),
		},
		{
			name: "nginx uwsgi_params with a body",
			raw:  append(uwsgiPacket(0, nginx...), "hello"...),
			want: with(map[string]string{"wsgi.url_scheme": "http"}, nginx...),
			body: "hello",
		},
		{
			name: "modifier1 5 is served the same",
			raw:  append(uwsgiPacket(5, "REQUEST_METHOD", "GET", "REQUEST_URI", "/p?q"), "ignored after the request"...),
			want: with(defaultsFor("GET", "/p", "q"), "REQUEST_URI", "/p?q"),
		},
		{
			name: "HTTPS=on makes the scheme https",
			raw:  uwsgiPacket(0, "REQUEST_METHOD", "GET", "PATH_INFO", "/", "HTTPS", "on"),
			want: with(defaultsFor("GET", "/", ""), "HTTPS", "on", "wsgi.url_scheme", "https"),
		},
		{
			name: "UWSGI_SCHEME names the scheme",
			raw:  uwsgiPacket(0, "REQUEST_METHOD", "GET", "PATH_INFO", "/", "UWSGI_SCHEME", "https"),
			want: with(defaultsFor("GET", "/", ""), "wsgi.url_scheme", "https"),
		},
		{
			name: "an empty CONTENT_LENGTH is no body",
			raw:  uwsgiPacket(0, "REQUEST_METHOD", "GET", "PATH_INFO", "/", "CONTENT_LENGTH", ""),
			want: defaultsFor("GET", "/", ""),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{respond: answerText("hi")}
			addr := startStream(t, NewUWSGI(h, StreamOptions{SpoolThreshold: 1 << 20}))
			out := streamExchange(t, addr, tt.raw)
			assert.Equal(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhi", string(out))
			seen := h.requests()
			require.Len(t, seen, 1)
			assert.Equal(t, tt.want, seen[0].vars)
			assert.Equal(t, tt.body, seen[0].body)
		})
	}
}

func TestUWSGIRefusesMalformedPackets(t *testing.T) {
	get := []string{"REQUEST_METHOD", "GET", "PATH_INFO", "/"}
	overrun := uwsgiPacket(0, get...)
	overrun[len(overrun)-3] = 9 // PATH_INFO's value length, past the packet's end
	tests := []struct {
		name string
		raw  []byte
		opts StreamOptions
	}{
		{name: "modifier1 that is not a request", raw: uwsgiPacket(1, get...)},
		{name: "vars block overruns its packet", raw: overrun},
		{name: "datasize over the buffer size", raw: uwsgiPacket(0, "REQUEST_METHOD", "GET", "X", strings.Repeat("x", 1100)),
			opts: StreamOptions{MaxHeadSize: 1024}},
		{name: "packet shorter than its datasize", raw: uwsgiPacket(0, get...)[:10]},
		{name: "header cut short", raw: []byte{0, 1}},
		{name: "no REQUEST_METHOD", raw: uwsgiPacket(0, "PATH_INFO", "/")},
		{name: "empty packet", raw: uwsgiPacket(0)},
		{name: "CONTENT_LENGTH that is not a number", raw: uwsgiPacket(0, append(get, "CONTENT_LENGTH", "-1")...)},
		{name: "body shorter than CONTENT_LENGTH", raw: append(uwsgiPacket(0, append(get, "CONTENT_LENGTH", "4")...), "abc"...)},
		{name: "empty variable name", raw: uwsgiPacket(0, append(get, "", "x")...)},
		{name: "two CONTENT_LENGTHs that differ", raw: append(uwsgiPacket(0, append(get, "CONTENT_LENGTH", "3", "CONTENT_LENGTH", "0")...), "abc"...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			addr := startStream(t, NewUWSGI(h, tt.opts))
			out := streamExchange(t, addr, tt.raw)
			assert.Empty(t, out)
			assert.Empty(t, h.requests(), "a malformed request reached the handler")
		})
	}
}
