// WebSockets and upgraded connections (e2e/testdata/websocket_app.py):
// uWSGI's websocket_* API and an app's own 101 through gowsgi's plain HTTP
// socket, the same conversations under Debian's uWSGI 2.0, and through
// nginx's proxy_pass, with a real WebSocket client (gorilla/websocket).
package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// wsWait bounds each read and write of a WebSocket conversation.
const wsWait = 10 * time.Second

// wholeFrames is a client write buffer that sends every test message in
// one frame.
const wholeFrames = 2 << 20

// wsServer is one server running websocket_app.py: its address for
// clients, and its log.
type wsServer struct {
	name string
	addr string
	logs func() string
}

// websocketDir is a working directory holding the app and its helpers.
func websocketDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(harness.TestdataPath(t, "websocket_app.py"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "websocket_app.py"), b, 0o644))
	harness.CopyAppHelpers(t, dir)
	return dir
}

// startWebSocketGowsgi runs the app under gowsgi with extra options.
func startWebSocketGowsgi(t *testing.T, extra ...string) wsServer {
	t.Helper()
	dir := websocketDir(t)
	inst := harness.StartIn(t, dir, append([]string{"--wsgi-file", "websocket_app.py", "--master",
		"--processes", "1", "--threads", "2"}, extra...)...)
	return wsServer{name: "gowsgi", addr: inst.Addr, logs: inst.Stderr}
}

// startWebSocketUWSGI runs the app under Debian's uWSGI on --http-socket,
// until the test ends.
func startWebSocketUWSGI(t *testing.T) wsServer {
	t.Helper()
	bin := requireUWSGI(t)
	dir := websocketDir(t)
	addr := freeAddr(t)
	_, out := startUWSGIForTest(t, bin, dir, "--plugin", "python3", "--http-socket", addr, "--wsgi-file",
		"websocket_app.py", "--master", "--processes", "1", "--threads", "2")
	harness.Eventually(t, harness.StartTimeout, func() bool {
		resp, err := http.Get("http://" + addr + "/plain")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "uwsgi did not answer; output:\n%s", out)
	return wsServer{name: "uwsgi", addr: addr, logs: out.String}
}

// dialWebSocket opens a WebSocket to path on addr. Its client sends each
// message in one frame up to frame bytes, in fragments past it.
func dialWebSocket(t *testing.T, addr, path string, frame int) *websocket.Conn {
	t.Helper()
	dialer := websocket.Dialer{HandshakeTimeout: wsWait, WriteBufferSize: frame}
	conn, resp, err := dialer.Dial("ws://"+addr+path, http.Header{"Origin": {"http://" + addr}})
	require.NoError(t, err, "the handshake")
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// wsRoundTrip sends one message and returns the answer.
func wsRoundTrip(t *testing.T, conn *websocket.Conn, kind int, msg []byte) (int, []byte) {
	t.Helper()
	conn.SetWriteDeadline(time.Now().Add(wsWait))
	require.NoError(t, conn.WriteMessage(kind, msg))
	conn.SetReadDeadline(time.Now().Add(wsWait))
	gotKind, got, err := conn.ReadMessage()
	require.NoError(t, err)
	return gotKind, got
}

// wsConversation is what the echo routes are tested with: messages of
// each kind and size, a ping, and the client's close.
func wsConversation(t *testing.T, srv wsServer, path string) {
	ended := strings.Count(srv.logs(), "websocket ended: OSError")
	// Whole frames: uWSGI 2.0 returns b"\0" for each fragment of a
	// fragmented message but the last (TestWebSocketOnlyGowsgi).
	conn := dialWebSocket(t, srv.addr, path, wholeFrames)
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	for _, tc := range []struct {
		name     string
		kind     int
		msg      []byte
		wantKind int
	}{
		{"text", websocket.TextMessage, []byte("hello"), websocket.TextMessage},
		{"binary", websocket.BinaryMessage, []byte{0, 1, 0xfe, 0xff}, websocket.BinaryMessage},
		{"200 KiB", websocket.TextMessage, big, websocket.TextMessage},
		{"126 bytes (16-bit length)", websocket.TextMessage, bytes.Repeat([]byte("x"), 126), websocket.TextMessage},
	} {
		kind, got := wsRoundTrip(t, conn, tc.kind, tc.msg)
		assert.Equal(t, tc.wantKind, kind, "%s: message type", tc.name)
		assert.Equal(t, tc.msg, got, "%s: echoed", tc.name)
	}

	// A ping is answered with a pong, seen before the next message's echo.
	pongs := make(chan string, 1)
	conn.SetPongHandler(func(data string) error { pongs <- data; return nil })
	require.NoError(t, conn.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(wsWait)))
	_, got := wsRoundTrip(t, conn, websocket.TextMessage, []byte("after the ping"))
	assert.Equal(t, "after the ping", string(got))
	select {
	case <-pongs:
	default:
		assert.Fail(t, "no pong came before the next message's echo")
	}

	// The client's close ends the app's recv with OSError (IOError), and
	// the server closes its side.
	require.NoError(t, conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(wsWait)))
	conn.SetReadDeadline(time.Now().Add(wsWait))
	_, _, err := conn.ReadMessage()
	var closeErr *websocket.CloseError
	assert.True(t, errors.As(err, &closeErr), "the server's answer to the close is a close frame: %v", err)
	harness.Eventually(t, wsWait, func() bool { return strings.Count(srv.logs(), "websocket ended: OSError") > ended },
		"the app's websocket_recv did not raise OSError after the close; log:\n%s", srv.logs)
}

// TestWebSocketEcho: a WebSocket client talks to an app built on
// uwsgi.websocket_handshake, websocket_recv (and recv_nb),
// websocket_send and websocket_send_binary, through gowsgi and through
// Debian's uWSGI, with the same results.
func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	servers := []func(*testing.T) wsServer{
		func(t *testing.T) wsServer {
			// uWSGI's --http router needs --http-websockets; gowsgi
			// accepts it, and its HTTP socket always carries them.
			srv := startWebSocketGowsgi(t, "--http-websockets")
			assert.NotContains(t, srv.logs(), "http-websockets", "a warning about --http-websockets")
			return srv
		},
		startWebSocketUWSGI,
	}
	for _, start := range servers {
		srv := start(t)
		t.Run(srv.name, func(t *testing.T) {
			for _, path := range []string{"/echo", "/echo_nb", "/echo_late"} {
				t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) { wsConversation(t, srv, path) })
			}
		})
	}
}

// TestWebSocketOnlyGowsgi: what gowsgi adds to uWSGI's behaviour, or
// where uWSGI has no equivalent: the close code is echoed, a message over
// --websockets-max-size (1024 KiB) ends the WebSocket with 1009, a
// request that did not ask to upgrade gets an error naming what it lacks,
// and the connection of an upgrade request never carries another request.
func TestWebSocketOnlyGowsgi(t *testing.T) {
	t.Parallel()
	srv := startWebSocketGowsgi(t)

	t.Run("close code echoed", func(t *testing.T) {
		conn := dialWebSocket(t, srv.addr, "/echo", wholeFrames)
		require.NoError(t, conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(wsWait)))
		conn.SetReadDeadline(time.Now().Add(wsWait))
		_, _, err := conn.ReadMessage()
		assert.True(t, websocket.IsCloseError(err, websocket.CloseGoingAway), "got %v", err)
	})

	t.Run("fragmented message whole", func(t *testing.T) {
		conn := dialWebSocket(t, srv.addr, "/echo", 4096) // 200 KiB in fragments of 4 KiB
		big := bytes.Repeat([]byte("fragment"), 200<<10/8)
		kind, got := wsRoundTrip(t, conn, websocket.TextMessage, big)
		assert.Equal(t, websocket.TextMessage, kind)
		assert.Equal(t, big, got)
	})

	t.Run("too big", func(t *testing.T) {
		conn := dialWebSocket(t, srv.addr, "/echo", wholeFrames)
		conn.SetWriteDeadline(time.Now().Add(wsWait))
		// The server drains what follows the too-big frame's head, so the
		// write ends and the close frame is not lost to a reset.
		require.NoError(t, conn.WriteMessage(websocket.BinaryMessage, make([]byte, 1024<<10+1)))
		conn.SetReadDeadline(time.Now().Add(wsWait))
		_, _, err := conn.ReadMessage()
		assert.True(t, websocket.IsCloseError(err, websocket.CloseMessageTooBig), "got %v", err)
	})

	t.Run("not an upgrade request", func(t *testing.T) {
		status, body := harness.GetText(t, "http://"+srv.addr+"/plain")
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, `OSError: uwsgi.websocket_handshake(): the request did not ask to upgrade the connection `+
			`(it needs "Upgrade: websocket" and "Connection: Upgrade")`, body)
	})

	t.Run("upgrade request answered 200 closes", func(t *testing.T) {
		conn := harness.Dial(t, srv.addr)
		fmt.Fprintf(conn, "GET /plain HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"+
			"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		assert.True(t, resp.Close, "the answer says Connection: close: %s", body)
		eof, rest := harness.WaitEOF(conn, r, wsWait)
		assert.True(t, eof, "the connection carried on: %q", rest)
	})
}

// upgradeRequest asks /upgrade to switch to the app's line-echo protocol.
const upgradeRequest = "GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: line-echo\r\nConnection: Upgrade\r\n\r\n"

// TestAppAnswers101Itself: an app that answers 101 with Upgrade and
// Connection itself gets the connection, which it reads and writes
// through uwsgi.connection_fd(), under gowsgi as under uWSGI.
func TestAppAnswers101Itself(t *testing.T) {
	t.Parallel()
	servers := []func(*testing.T) wsServer{
		func(t *testing.T) wsServer { return startWebSocketGowsgi(t) },
		startWebSocketUWSGI,
	}
	for _, start := range servers {
		srv := start(t)
		t.Run(srv.name, func(t *testing.T) {
			conn := harness.Dial(t, srv.addr)
			conn.SetDeadline(time.Now().Add(wsWait))
			_, err := conn.Write([]byte(upgradeRequest))
			require.NoError(t, err)
			r := bufio.NewReader(conn)
			// The head comes before the client sends anything more.
			resp, err := http.ReadResponse(r, nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
			assert.Equal(t, "line-echo", resp.Header.Get("Upgrade"))
			assert.Equal(t, "Upgrade", resp.Header.Get("Connection"))
			_, err = conn.Write([]byte("hello there\n"))
			require.NoError(t, err)
			rest, err := io.ReadAll(r)
			require.NoError(t, err, "the connection ends after the app's answer")
			assert.Equal(t, "echo: hello there\n", string(rest))
		})
	}
}

// nginxWebSocketSite proxies to gowsgi's HTTP socket as nginx's own
// documentation for WebSockets says: HTTP/1.1, and the client's Upgrade
// passed on with Connection: upgrade.
const nginxWebSocketSite = `
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}
server {
    listen {{front}};
    location / {
        proxy_pass http://{{backend}};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $host;
        proxy_read_timeout 60s;
    }
}
`

// TestWebSocketBehindNginx: the same conversations through nginx's
// proxy_pass to gowsgi's HTTP socket.
func TestWebSocketBehindNginx(t *testing.T) {
	t.Parallel()
	nginx := harness.WebServerKinds[0]
	require.Equal(t, "nginx", nginx.Name)
	backend := startWebSocketGowsgi(t)
	front := harness.FreeAddr(t)
	site := strings.NewReplacer("{{front}}", front, "{{backend}}", backend.addr).Replace(nginxWebSocketSite)
	harness.StartWebServerSite(t, nginx, site, []string{front})
	srv := wsServer{name: "nginx", addr: front, logs: backend.logs}
	for _, path := range []string{"/echo", "/echo_nb"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) { wsConversation(t, srv, path) })
	}
	t.Run("app's own 101", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", front, wsWait)
		require.NoError(t, err)
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wsWait))
		_, err = conn.Write([]byte(upgradeRequest))
		require.NoError(t, err)
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		_, err = conn.Write([]byte("through nginx\n"))
		require.NoError(t, err)
		rest, _ := io.ReadAll(r)
		assert.Equal(t, "echo: through nginx\n", string(rest))
	})
}

// wsAwaitCut waits for the server to end conn: a read fails, or the client
// sees a close frame.
func wsAwaitCut(t *testing.T, conn *websocket.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wsWait))
	_, _, err := conn.ReadMessage()
	require.Error(t, err)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection was still open after %s", wsWait)
}

// startWebSocketInstance runs the app under gowsgi, returning the instance.
func startWebSocketInstance(t *testing.T, extra ...string) *harness.Instance {
	t.Helper()
	return harness.StartIn(t, websocketDir(t), append([]string{"--wsgi-file", "websocket_app.py", "--master",
		"--processes", "1"}, extra...)...)
}

// TestWebSocketHarakiri: --harakiri ends a WebSocket that runs too long,
// as uWSGI's does, and the worker that served it is replaced.
func TestWebSocketHarakiri(t *testing.T) {
	t.Parallel()
	inst := startWebSocketInstance(t, "--harakiri", "1")
	conn := dialWebSocket(t, inst.Addr, "/echo", wholeFrames)
	_, got := wsRoundTrip(t, conn, websocket.TextMessage, []byte("before"))
	assert.Equal(t, "before", string(got))
	wsAwaitCut(t, conn)
	inst.AwaitLogged(t, "harakiri: request ran too long")
	again := dialWebSocket(t, inst.Addr, "/echo", wholeFrames)
	_, got = wsRoundTrip(t, again, websocket.TextMessage, []byte("after"))
	assert.Equal(t, "after", string(got))
}

// TestWebSocketGracefulStop: a stop lets an open WebSocket carry on for
// --graceful-timeout, then cuts it and exits.
func TestWebSocketGracefulStop(t *testing.T) {
	t.Parallel()
	inst := startWebSocketInstance(t, "--graceful-timeout", "2")
	conn := dialWebSocket(t, inst.Addr, "/echo", wholeFrames)
	inst.Signal(t, syscall.SIGTERM)
	// The listener closing shows the stop has begun.
	harness.Eventually(t, wsWait, func() bool {
		c, err := net.DialTimeout("tcp", inst.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "gowsgi still accepts connections after SIGTERM")
	_, got := wsRoundTrip(t, conn, websocket.TextMessage, []byte("while stopping"))
	assert.Equal(t, "while stopping", string(got))
	wsAwaitCut(t, conn)
	inst.AwaitLogged(t, "graceful timeout passed, request cut")
	inst.Wait(t, wsWait)
}

// TestWebSocketsMaxSizeOption: --websockets-max-size (KiB), on the command
// line and in an ini file, bounds the messages websocket_recv takes.
func TestWebSocketsMaxSizeOption(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args func(dir string) []string
	}{
		{"command line", func(string) []string { return []string{"--websockets-max-size", "64"} }},
		{"ini", func(dir string) []string {
			return []string{"--ini", harness.WriteFile(t, dir, "ws.ini", "[uwsgi]\nwebsocket-max-size = 64\n")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := websocketDir(t)
			inst := harness.StartIn(t, dir, append([]string{"--wsgi-file", "websocket_app.py"}, tc.args(dir)...)...)
			conn := dialWebSocket(t, inst.Addr, "/echo", wholeFrames)
			limit := bytes.Repeat([]byte("m"), 64<<10)
			_, got := wsRoundTrip(t, conn, websocket.TextMessage, limit)
			assert.Equal(t, limit, got, "a message of the limit")
			conn.SetWriteDeadline(time.Now().Add(wsWait))
			require.NoError(t, conn.WriteMessage(websocket.TextMessage, append(limit, 'm')))
			conn.SetReadDeadline(time.Now().Add(wsWait))
			_, _, err := conn.ReadMessage()
			assert.True(t, websocket.IsCloseError(err, websocket.CloseMessageTooBig), "one byte over: %v", err)
		})
	}
}

// TestWebSocketNeedsTheHTTPSocket: over HTTPS the master relays the
// response, so the worker does not hold the connection: the handshake
// raises an error saying what to use instead, and an app's own 101 with
// Upgrade is the app's error (500) as any hop-by-hop header.
func TestWebSocketNeedsTheHTTPSocket(t *testing.T) {
	t.Parallel()
	dir := websocketDir(t)
	certFile, keyFile, roots := writeCertificate(t, dir)
	inst := harness.StartIn(t, dir, "--wsgi-file", "websocket_app.py", "--https-socket", "127.0.0.1:0,"+certFile+","+keyFile)
	addr := bannerSockets(t, inst.Stderr())["https"]
	require.NotEmpty(t, addr, "no https:// in the banner:\n%s", inst.Stderr())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: wsWait}

	req := harness.MustRequest(t, http.MethodGet, "https://"+addr+"/plain", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	_, body := harness.Do(t, client, req)
	assert.Equal(t, "OSError: uwsgi.websocket_handshake(): the worker does not hold this request's connection, "+
		"so it cannot upgrade it; serve WebSockets from the plain HTTP socket (--http-socket, directly or "+
		"behind nginx's proxy_pass) or a uwsgi socket on TCP (nginx's uwsgi_pass), not over HTTPS/HTTP/2, "+
		"FastCGI, SCGI or a unix socket", string(body))

	resp, _ := harness.Do(t, client, harness.MustRequest(t, http.MethodGet, "https://"+addr+"/upgrade", nil))
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	inst.AwaitLogged(t, "hop-by-hop header 'Upgrade' is not allowed",
		"Upgrade and Connection go only with a 101 to a request that asked to upgrade")
}

// rfcKey and rfcAccept are RFC 6455 section 1.3's example handshake.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// rawWebSocket opens path's WebSocket with a raw socket, checks the 101's
// exact bytes, and returns the connection for frames.
func rawWebSocket(t *testing.T, addr, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn := harness.Dial(t, addr)
	conn.SetDeadline(time.Now().Add(wsWait))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, rfcKey)
	r := bufio.NewReader(conn)
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n"
	head := make([]byte, len(want))
	_, err := io.ReadFull(r, head)
	require.NoError(t, err)
	require.Equal(t, want, string(head))
	return conn, r
}

// masked is a client frame: first byte b0, masked payload (RFC 6455
// section 5.3) with a fixed key.
func masked(b0 byte, payload string) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	f = append(f, key[:]...)
	for i := range len(payload) {
		f = append(f, payload[i]^key[i%4])
	}
	return f
}

// TestWebSocketFrames: the exact bytes gowsgi's worker answers RFC 6455
// frames with, and which frames end the WebSocket (with the close code of
// section 7.4.1, then the connection's end).
func TestWebSocketFrames(t *testing.T) {
	t.Parallel()
	srv := startWebSocketGowsgi(t)
	long := strings.Repeat("L", 70000)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		send []byte
		want []byte
		ends bool
	}{
		{"text echoed unmasked", masked(0x81, "abc"), []byte("\x81\x03abc"), false},
		{"binary echoed", masked(0x82, "\x00\x01"), []byte("\x82\x02\x00\x01"), false},
		{"empty message ignored, the next echoed", cat(masked(0x81, ""), masked(0x81, "z")), []byte("\x81\x01z"), false},
		{"ping answered with its payload", masked(0x89, "hi"), []byte("\x8a\x02hi"), false},
		{"pong ignored", cat(masked(0x8a, "x"), masked(0x81, "y")), []byte("\x81\x01y"), false},
		{"fragments with a ping between", cat(masked(0x01, "ab"), masked(0x89, "p"), masked(0x80, "cd")),
			[]byte("\x8a\x01p\x81\x04abcd"), false},
		{"64-bit length", masked(0x81, long), cat([]byte("\x81\x7f\x00\x00\x00\x00\x00\x01\x11\x70"), []byte(long)), false},
		{"close with a code: echoed", masked(0x88, "\x03\xe8bye"), []byte("\x88\x02\x03\xe8"), true},
		{"close without a code", masked(0x88, ""), []byte("\x88\x00"), true},
		{"close of one byte", masked(0x88, "x"), []byte("\x88\x02\x03\xea"), true},
		{"unmasked frame", []byte("\x81\x01x"), []byte("\x88\x02\x03\xea"), true},
		{"reserved bit", masked(0xc1, "x"), []byte("\x88\x02\x03\xea"), true},
		{"unknown opcode", masked(0x83, "x"), []byte("\x88\x02\x03\xea"), true},
		{"continuation without a start", masked(0x80, "x"), []byte("\x88\x02\x03\xea"), true},
		{"new message inside a fragmented one", cat(masked(0x01, "a"), masked(0x81, "b")), []byte("\x88\x02\x03\xea"), true},
		{"fragmented ping", masked(0x09, "x"), []byte("\x88\x02\x03\xea"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, r := rawWebSocket(t, srv.addr, "/echo")
			_, err := conn.Write(tc.send)
			require.NoError(t, err)
			got := make([]byte, len(tc.want))
			_, err = io.ReadFull(r, got)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			if tc.ends {
				eof, rest := harness.WaitEOF(conn, r, wsWait)
				assert.True(t, eof, "the connection carried on: %q", rest)
			}
		})
	}
}

// nginxUWSGIWebSocketSite passes requests to gowsgi's uwsgi socket: nginx
// carries a WebSocket over uwsgi_pass too once the backend answers 101
// (checked with nginx 1.22 and Debian's uWSGI).
const nginxUWSGIWebSocketSite = `
server {
    listen {{front}};
    location / {
        include {{params}};
        uwsgi_pass {{backend}};
        uwsgi_buffering off;
        uwsgi_read_timeout 60s;
    }
}
`

// TestWebSocketBehindNginxUWSGIPass: the same conversations through
// nginx's uwsgi_pass to a uwsgi socket on TCP, whose connection the worker
// holds; on a unix socket, which goes through the master, the handshake
// says what to use instead.
func TestWebSocketBehindNginxUWSGIPass(t *testing.T) {
	t.Parallel()
	nginx := harness.WebServerKinds[0]
	dir := websocketDir(t)
	tcp := harness.FreeAddr(t)
	unix := filepath.Join(harness.SharedDir(t, "", "gowsgi-ws-"), "uwsgi.sock")
	inst := harness.StartIn(t, dir, "--wsgi-file", "websocket_app.py", "--master", "--processes", "1",
		"--socket", tcp, "--socket", unix, "--chmod-socket", "666")
	params := "/etc/nginx/uwsgi_params"
	if _, err := os.Stat(params); err != nil {
		t.Skipf("nginx's uwsgi_params is not installed: %v", err)
	}
	front, frontUnix := harness.FreeAddr(t), harness.FreeAddr(t)
	site := strings.NewReplacer("{{front}}", front, "{{backend}}", tcp, "{{params}}", params).Replace(nginxUWSGIWebSocketSite) +
		strings.NewReplacer("{{front}}", frontUnix, "{{backend}}", "unix:"+unix, "{{params}}", params).Replace(nginxUWSGIWebSocketSite)
	harness.StartWebServerSite(t, nginx, site, []string{front, frontUnix})
	srv := wsServer{name: "nginx uwsgi_pass", addr: front, logs: inst.Stderr}
	for _, path := range []string{"/echo", "/echo_nb", "/echo_late"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) { wsConversation(t, srv, path) })
	}
	t.Run("unix socket", func(t *testing.T) {
		req := harness.MustRequest(t, http.MethodGet, "http://"+frontUnix+"/plain", nil)
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Sec-WebSocket-Key", rfcKey)
		_, body := harness.Do(t, harness.Client(true), req)
		assert.Contains(t, string(body), "OSError: uwsgi.websocket_handshake(): the worker does not hold this "+
			"request's connection")
	})
}

// TestWebSocketKeepalive: websocket_recv pings a client quiet for
// --websockets-ping-freq seconds and, as uWSGI's does, gives up on one
// whose pong is more than --websockets-pong-tolerance seconds late; on the
// command line and in an ini file.
func TestWebSocketKeepalive(t *testing.T) {
	t.Parallel()
	t.Run("answered pings keep it open", func(t *testing.T) {
		t.Parallel()
		srv := startWebSocketGowsgi(t, "--websockets-ping-freq", "1", "--websockets-pong-tolerance", "1")
		conn := dialWebSocket(t, srv.addr, "/echo", wholeFrames)
		var pings atomic.Int32
		conn.SetPingHandler(func(data string) error {
			pings.Add(1)
			return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wsWait))
		})
		type answer struct {
			msg []byte
			err error
		}
		answers := make(chan answer, 1)
		conn.SetReadDeadline(time.Now().Add(3 * wsWait))
		go func() {
			_, msg, err := conn.ReadMessage() // answers the pings meanwhile
			answers <- answer{msg, err}
		}()
		harness.Eventually(t, 3*wsWait, func() bool { return pings.Load() >= 3 },
			"the server sent %d pings", &pings)
		conn.SetWriteDeadline(time.Now().Add(wsWait))
		require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte("still here")))
		got := <-answers
		require.NoError(t, got.err)
		assert.Equal(t, "still here", string(got.msg))
	})
	t.Run("an unanswered ping ends it", func(t *testing.T) {
		t.Parallel()
		dir := websocketDir(t)
		ini := harness.WriteFile(t, dir, "ws.ini", "[uwsgi]\nwebsockets-ping-freq = 1\nwebsocket-pong-tolerance = 1\n")
		inst := harness.StartIn(t, dir, "--wsgi-file", "websocket_app.py", "--ini", ini)
		conn, r := rawWebSocket(t, inst.Addr, "/echo")
		conn.SetDeadline(time.Now().Add(wsWait))
		ping := make([]byte, 2)
		_, err := io.ReadFull(r, ping)
		require.NoError(t, err)
		assert.Equal(t, []byte("\x89\x00"), ping)
		eof, rest := harness.WaitEOF(conn, r, wsWait)
		assert.True(t, eof, "the connection carried on: %q", rest)
		assert.Empty(t, rest)
		inst.AwaitLogged(t, "websocket ended: OSError")
	})
}
