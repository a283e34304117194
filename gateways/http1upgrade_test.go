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

// TestParamsAskToUpgrade: a uwsgi request asks to upgrade when the web
// server passed on the client's Upgrade and Connection: upgrade.
func TestParamsAskToUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars [][2]string
		want bool
	}{
		{"both", [][2]string{{"HTTP_UPGRADE", "websocket"}, {"HTTP_CONNECTION", "keep-alive, Upgrade"}}, true},
		{"no Connection", [][2]string{{"HTTP_UPGRADE", "websocket"}}, false},
		{"empty Upgrade", [][2]string{{"HTTP_UPGRADE", ""}, {"HTTP_CONNECTION", "upgrade"}}, false},
		{"Connection without the token", [][2]string{{"HTTP_UPGRADE", "websocket"}, {"HTTP_CONNECTION", "close"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vars wsgi.Vars
			p := newParams(&vars)
			for _, kv := range tc.vars {
				require.NoError(t, p.add([]byte(kv[0]), []byte(kv[1])))
			}
			assert.Equal(t, tc.want, p.asksToUpgrade())
			_, kept := vars.Get("HTTP_UPGRADE")
			assert.True(t, kept, "the app still sees HTTP_UPGRADE")
		})
	}
}
