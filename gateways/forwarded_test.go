package gateways

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseForwardedAllow(t *testing.T) {
	tests := []struct {
		values  []string
		trusted []string
		not     []string
		bad     bool
	}{
		{values: nil, not: []string{"127.0.0.1", ""}},
		{values: []string{"127.0.0.1, ::1"}, trusted: []string{"127.0.0.1", "::1"}, not: []string{"127.0.0.2", ""}},
		{values: []string{"198.18.0.0/15", "10.1.2.3"}, trusted: []string{"198.19.255.1", "10.1.2.3"}, not: []string{"198.20.0.1", "10.1.2.4"}},
		{values: []string{"2001:db8::/32"}, trusted: []string{"2001:db8::5"}, not: []string{"2001:db9::5"}},
		{values: []string{"unix"}, trusted: []string{""}, not: []string{"127.0.0.1"}},
		{values: []string{"*"}, trusted: []string{"203.0.113.9", "", "::1"}},
		{values: []string{"localhost"}, bad: true},
		{values: []string{"10.0.0.0/33"}, bad: true},
	}
	for _, tt := range tests {
		f, err := ParseForwardedAllow(tt.values)
		if tt.bad {
			assert.ErrorIs(t, err, errForwardedAllow, "%q", tt.values)
			continue
		}
		require.NoError(t, err, "%q", tt.values)
		for _, peer := range tt.trusted {
			assert.True(t, f.trustsPeer(peer), "%q should trust %q", tt.values, peer)
		}
		for _, peer := range tt.not {
			assert.False(t, f.trustsPeer(peer), "%q should not trust %q", tt.values, peer)
		}
	}
}

// TestHTTPForwardedHeaders: X-Forwarded-For and X-Forwarded-Proto make
// REMOTE_ADDR and wsgi.url_scheme only when the peer (here 127.0.0.1) is
// trusted, and X-Forwarded-For is read from the right, past trusted hops.
func TestHTTPForwardedHeaders(t *testing.T) {
	tests := []struct {
		name    string
		allow   []string
		headers string
		addr    string
		port    string // "" for the connection's own
		scheme  string
	}{
		{"untrusted peer", []string{"10.0.0.1"}, "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n", "127.0.0.1", "", "http"},
		{"no list", nil, "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n", "127.0.0.1", "", "http"},
		{"trusted peer", []string{"127.0.0.1"}, "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n", "203.0.113.9", "0", "https"},
		{"rightmost untrusted hop", []string{"127.0.0.0/8"}, "X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n", "203.0.113.9", "0", "http"},
		{"trusted hops are passed", []string{"127.0.0.1", "203.0.113.0/24"}, "X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n", "198.51.100.1", "0", "http"},
		{"star takes the leftmost", []string{"*"}, "X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n", "198.51.100.1", "0", "http"},
		{"two field lines join", []string{"127.0.0.1"}, "X-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 203.0.113.9\r\n", "203.0.113.9", "0", "http"},
		{"a hop with a port", []string{"127.0.0.1"}, "X-Forwarded-For: 203.0.113.9:4711\r\n", "203.0.113.9", "0", "http"},
		{"a garbage hop ends the walk", []string{"*"}, "X-Forwarded-For: 198.51.100.1, nonsense, 203.0.113.9\r\n", "203.0.113.9", "0", "http"},
		{"garbage only", []string{"127.0.0.1"}, "X-Forwarded-For: nonsense\r\n", "127.0.0.1", "", "http"},
		{"proto list takes the first", []string{"127.0.0.1"}, "X-Forwarded-Proto: HTTPS, http\r\n", "127.0.0.1", "", "https"},
		{"unknown proto is ignored", []string{"127.0.0.1"}, "X-Forwarded-Proto: gopher\r\n", "127.0.0.1", "", "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allow, err := ParseForwardedAllow(tt.allow)
			require.NoError(t, err)
			rec := &recorder{}
			addr := startHTTP(t, rec, HTTPOptions{ForwardedAllow: allow})
			exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n"+tt.headers+"\r\n")
			seen := rec.requests()
			require.Len(t, seen, 1)
			v := seen[0].vars
			assert.Equal(t, tt.addr, v["REMOTE_ADDR"])
			if tt.port != "" {
				assert.Equal(t, tt.port, v["REMOTE_PORT"])
			} else {
				assert.NotEqual(t, "0", v["REMOTE_PORT"])
			}
			assert.Equal(t, tt.scheme, v["wsgi.url_scheme"])
			assert.NotEmpty(t, v["HTTP_X_FORWARDED_FOR"]+v["HTTP_X_FORWARDED_PROTO"], "the headers stay for the app")
		})
	}
}
