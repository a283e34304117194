package gateways

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// TestRequestHeadUpgrade: which heads ask to upgrade the connection (RFC
// 9110 section 7.8), which the master then never reads while the request
// runs and closes after it, and what the worker is told.
func TestRequestHeadUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name string
		head string
		want bool
	}{
		{"websocket", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true},
		{"token among others, any case", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, UPGRADE\r\nupgrade: h2c\r\n\r\n", true},
		{"Upgrade without Connection", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", false},
		{"Connection without Upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n", false},
		{"HTTP/1.0 (the field is ignored)", "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", false},
		{"plain request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h requestHead
			require.Nil(t, h.parse([]byte(tc.head)))
			assert.Equal(t, tc.want, h.upgrade)
			p := responseParams{http11: h.minor >= 1, upgrade: h.upgrade}
			assert.Equal(t, tc.want, p.httpFlags()&wsgi.HTTPUpgrade != 0, "the worker's flag")
			if tc.want {
				assert.False(t, frameResponse(p, 200, 2, 2, true).keepAlive, "the connection closes after")
			}
		})
	}
}
