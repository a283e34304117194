package e2e

// Behind proxies: the PROXY protocol as Debian's HAProxy sends it
// (send-proxy, send-proxy-v2), X-Forwarded-For and X-Forwarded-Proto from
// the peers --forwarded-allow-ips names and from no other, and the HTTP
// keep-alive idle timeout (--http-keepalive). The app is
// testdata/proxied_app.py.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// whoami is what /whoami of proxied_app.py answers.
type whoami struct {
	RemoteAddr string  `json:"REMOTE_ADDR"`
	RemotePort string  `json:"REMOTE_PORT"`
	Scheme     string  `json:"wsgi.url_scheme"`
	RequestID  *string `json:"gowsgi.request_id"`
	XRequestID *string `json:"HTTP_X_REQUEST_ID"`
	Host       string  `json:"host"`
}

// startProxied runs proxied_app.py with args.
func startProxied(t *testing.T, args ...string) *harness.Instance {
	t.Helper()
	return harness.Start(t, append([]string{"--wsgi-file", harness.TestdataPath(t, "proxied_app.py")}, args...)...)
}

// clientFrom returns a client whose connections leave from localIP and
// are never reused, and the channel that tells each one's local port.
func clientFrom(localIP string) (*http.Client, <-chan int) {
	ports := make(chan int, 16)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				ports <- conn.LocalAddr().(*net.TCPAddr).Port
			}
			return conn, err
		},
	}}, ports
}

// askWhoami GETs /whoami at base with headers and decodes the answer.
func askWhoami(t *testing.T, c *http.Client, base string, headers map[string]string) whoami {
	t.Helper()
	req := harness.MustRequest(t, http.MethodGet, base+"/whoami", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, body := harness.Do(t, c, req)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var w whoami
	require.NoError(t, json.Unmarshal(body, &w), "%s", body)
	return w
}

// writeConfig writes a configuration file for a balancer into dir.
func writeConfig(t *testing.T, dir, name, content string) string {
	t.Helper()
	return harness.WriteFile(t, dir, name, content)
}

// TestProxyProtocolFromHAProxy: HAProxy in TCP mode sends a PROXY header,
// version 1 or 2, on each connection to a --proxy-protocol-socket; the app
// sees the client's own address and port, which only the header carries.
func TestProxyProtocolFromHAProxy(t *testing.T) {
	for _, send := range []string{"send-proxy", "send-proxy-v2"} {
		t.Run(send, func(t *testing.T) {
			proxied := harness.FreeAddr(t)
			inst := startProxied(t, "--proxy-protocol-socket", proxied)
			front := harness.FreeAddr(t)
			dir := t.TempDir()
			cfg := writeConfig(t, dir, "haproxy.cfg", fmt.Sprintf(`defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend front
    bind %s
    default_backend app
backend app
    server gowsgi %s %s
`, front, proxied, send))
			harness.StartHAProxy(t, front, cfg)
			c, ports := clientFrom("127.0.0.5")
			for range 3 {
				w := askWhoami(t, c, "http://"+front, nil)
				assert.Equal(t, "127.0.0.5", w.RemoteAddr)
				assert.Equal(t, strconv.Itoa(<-ports), w.RemotePort, "the client's own port, from the header")
			}
			// The plain socket beside it takes no header.
			assert.Equal(t, "127.0.0.1", askWhoami(t, harness.Client(false), inst.URL, nil).RemoteAddr)
		})
	}
}

// TestProxyHeaderWhereNoneIsExpected: a PROXY header sent to a plain HTTP
// socket, and a request without one sent to a PROXY socket, are refused
// with 400 and the connection closed.
func TestProxyHeaderWhereNoneIsExpected(t *testing.T) {
	proxied := harness.FreeAddr(t)
	inst := startProxied(t, "--proxy-protocol-socket", proxied)
	const get = "GET /whoami HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name, addr, send string
	}{
		{"v1 header to a plain socket", inst.Addr, "PROXY TCP4 192.0.2.7 127.0.0.1 4711 80\r\n" + get},
		{"v2 header to a plain socket", inst.Addr, "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x12\x67\x00\x50" + get},
		{"no header to a PROXY socket", proxied, get},
		{"a garbled header to a PROXY socket", proxied, "PROXY TCP4 192.0.2.7\r\n" + get},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := harness.Dial(t, tt.addr)
			defer conn.Close()
			_, err := io.WriteString(conn, tt.send)
			require.NoError(t, err)
			r := bufio.NewReader(conn)
			resp, err := http.ReadResponse(r, nil)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			closed, _ := harness.WaitEOF(conn, r, 5*time.Second)
			assert.True(t, closed, "the connection is closed after the 400")
		})
	}
	// And a well-formed one is served.
	conn := harness.Dial(t, proxied)
	defer conn.Close()
	_, err := io.WriteString(conn, "PROXY TCP4 192.0.2.7 127.0.0.1 4711 80\r\n"+get)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Contains(t, string(body), `"REMOTE_ADDR": "192.0.2.7", "REMOTE_PORT": "4711"`)
}

// TestForwardedHeadersFromTrustedPeersOnly: HAProxy in HTTP mode, leaving
// from 127.0.0.2, appends the client's address to X-Forwarded-For and sets
// X-Forwarded-Proto. With --forwarded-allow-ips naming 127.0.0.2 the app
// sees the client (127.0.0.3) and https, past what the client itself
// claimed; without it, or from the client directly, the headers change
// nothing.
func TestForwardedHeadersFromTrustedPeersOnly(t *testing.T) {
	tests := []struct {
		name   string
		allow  []string
		remote string
		scheme string
	}{
		{"trusted balancer", []string{"--forwarded-allow-ips", "127.0.0.2"}, "127.0.0.3", "https"},
		{"trust by prefix", []string{"--forwarded-allow-ips", "127.0.0.2/32,10.0.0.0/8"}, "127.0.0.3", "https"},
		{"no trust list", nil, "127.0.0.2", "http"},
		{"another peer trusted", []string{"--forwarded-allow-ips", "127.0.0.9"}, "127.0.0.2", "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := startProxied(t, tt.allow...)
			front := harness.FreeAddr(t)
			cfg := writeConfig(t, t.TempDir(), "haproxy.cfg", fmt.Sprintf(`defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend front
    bind %s
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    default_backend app
backend app
    server gowsgi %s source 127.0.0.2
`, front, inst.Addr))
			harness.StartHAProxy(t, front, cfg)
			c, _ := clientFrom("127.0.0.3")
			spoofed := map[string]string{"X-Forwarded-For": "203.0.113.66"}
			w := askWhoami(t, c, "http://"+front, spoofed)
			assert.Equal(t, tt.remote, w.RemoteAddr)
			assert.Equal(t, tt.scheme, w.Scheme)
			// Straight from the client, whatever it claims is only a header.
			direct := askWhoami(t, c, inst.URL, map[string]string{"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "https"})
			assert.Equal(t, "127.0.0.3", direct.RemoteAddr)
			assert.Equal(t, "http", direct.Scheme)
		})
	}
}

// TestKeepaliveIdleTimeout: an idle keep-alive connection is closed after
// --http-keepalive seconds, and by default it is kept longer than that
// (the default, 90 s, outlasts a load balancer's 60 s; the gateways' unit
// test pins it).
func TestKeepaliveIdleTimeout(t *testing.T) {
	short := startProxied(t, "--http-keepalive=2")
	usual := startProxied(t)
	ask := func(conn net.Conn, r *bufio.Reader) error {
		if _, err := io.WriteString(conn, "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	shortConn, usualConn := harness.Dial(t, short.Addr), harness.Dial(t, usual.Addr)
	defer shortConn.Close()
	defer usualConn.Close()
	shortR, usualR := bufio.NewReader(shortConn), bufio.NewReader(usualConn)
	require.NoError(t, ask(shortConn, shortR))
	require.NoError(t, ask(usualConn, usualR))
	closed, _ := harness.WaitEOF(shortConn, shortR, 20*time.Second)
	require.True(t, closed, "--http-keepalive=2 closes an idle connection")
	assert.NoError(t, ask(usualConn, usualR), "the default keeps a connection idle for longer")
}

// TestProxyProtocolOnHTTPSFromHAProxy: HAProxy passes TLS through in TCP
// mode with a PROXY header before it; --enable-proxy-protocol reads it on
// the HTTPS socket before the handshake.
func TestProxyProtocolOnHTTPSFromHAProxy(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := writeCertificate(t, dir)
	httpsAddr := harness.FreeAddr(t)
	// The harness's own HTTP socket expects a header too, so the banner
	// has no plain http:// to wait for: wait for the HTTPS socket's.
	inst := harness.Launch(t, t.TempDir(), "--wsgi-file", harness.TestdataPath(t, "proxied_app.py"),
		"--https-socket", httpsAddr+","+certFile+","+keyFile, "--enable-proxy-protocol")
	harness.WaitLine(t, inst, "https+proxy://"+httpsAddr)
	front := harness.FreeAddr(t)
	cfg := writeConfig(t, dir, "haproxy.cfg", fmt.Sprintf(`defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend front
    bind %s
    default_backend app
backend app
    server gowsgi %s send-proxy-v2
`, front, httpsAddr))
	harness.StartHAProxy(t, front, cfg)
	c, ports := clientFrom("127.0.0.6")
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots}
	w := askWhoami(t, c, "https://"+front, nil)
	assert.Equal(t, "127.0.0.6", w.RemoteAddr)
	assert.Equal(t, strconv.Itoa(<-ports), w.RemotePort)
	assert.Equal(t, "https", w.Scheme)
}
