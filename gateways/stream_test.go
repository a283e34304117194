package gateways

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// streamGateway is a uwsgi or SCGI gateway as the tests start it.
type streamGateway interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// startStream serves g on an ephemeral loopback port and returns its address.
func startStream(t *testing.T, g streamGateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		g.Close()
		require.NoError(t, <-done)
	})
	return ln.Addr().String()
}

// streamExchange sends raw on a new connection, half-closes it, and returns
// everything that came back before the gateway closed the connection; a
// reset counts as a close.
func streamExchange(t *testing.T, addr string, raw []byte) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = conn.Write(raw)
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	out, err := io.ReadAll(conn)
	if !errors.Is(err, syscall.ECONNRESET) {
		require.NoError(t, err)
	}
	return out
}

// answerText is a respond func for recorder: "200 OK", a content type and body.
func answerText(body string) func(w wsgi.ResponseWriter) error {
	return func(w wsgi.ResponseWriter) error {
		var headers wsgi.Vars
		headers.Add("Content-Type", "text/plain")
		if err := w.WriteHead("200 OK", headers.Block()); err != nil {
			return err
		}
		return w.WriteBody([]byte(body))
	}
}

// streamGateways builds each stream gateway with its request encoder, so a
// behaviour shared through stream.go is tested through both protocols.
var streamGateways = []struct {
	name    string
	new     func(wsgi.Handler, StreamOptions) streamGateway
	request func(body string, pairs ...string) []byte
	head    string // the response head answerText gives
	bare    string // the head of "200 OK" with no headers
}{
	{"uwsgi", func(h wsgi.Handler, o StreamOptions) streamGateway { return NewUWSGI(h, o) },
		uwsgiRequest, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"},
	{"scgi", func(h wsgi.Handler, o StreamOptions) streamGateway { return NewSCGI(h, o) },
		scgiRequest, "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n", "Status: 200 OK\r\n\r\n"},
}

func TestStreamSendFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, []byte("0123456789"), 0o644))
	for _, gw := range streamGateways {
		for _, tc := range []struct {
			offset, count int64
			want          string
		}{{2, 3, "234"}, {4, -1, "456789"}} {
			t.Run(gw.name, func(t *testing.T) {
				respond := func(w wsgi.ResponseWriter) error {
					f, err := os.Open(path)
					require.NoError(t, err)
					defer f.Close()
					require.NoError(t, w.WriteHead("200 OK", nil))
					require.NoError(t, w.WriteBody([]byte("<")))
					return w.SendFile(f, tc.offset, tc.count)
				}
				addr := startStream(t, gw.new(&recorder{respond: respond}, StreamOptions{}))
				out := streamExchange(t, addr, gw.request("", "REQUEST_METHOD", "GET"))
				assert.Equal(t, gw.bare+"<"+tc.want, string(out))
			})
		}
	}
}

func TestStreamSpoolsLargeBodies(t *testing.T) {
	for _, gw := range streamGateways {
		t.Run(gw.name, func(t *testing.T) {
			h := &recorder{}
			addr := startStream(t, gw.new(h, StreamOptions{SpoolThreshold: 4}))
			streamExchange(t, addr, gw.request("0123456789", "REQUEST_METHOD", "PUT"))
			seen := h.requests()
			require.Len(t, seen, 1)
			assert.Equal(t, spooledBody{content: "0123456789", nameless: true}, seen[0].spooled)
			assertClosed(t, seen[0].bodyFile)
		})
	}
}

// TestStreamPeerResetCancels checks that a web server giving up on a
// request (its client left) reaches the handler as a done context.
func TestStreamPeerResetCancels(t *testing.T) {
	for _, gw := range streamGateways {
		t.Run(gw.name, func(t *testing.T) {
			started, cancelled := make(chan struct{}), make(chan error, 1)
			h := handlerFunc(func(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
				close(started)
				select {
				case <-ctx.Done():
					cancelled <- nil
				case <-time.After(5 * time.Second):
					cancelled <- errors.New("the context was not cancelled")
				}
				return ctx.Err()
			})
			addr := startStream(t, gw.new(h, StreamOptions{}))
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			_, err = conn.Write(gw.request("", "REQUEST_METHOD", "GET"))
			require.NoError(t, err)
			<-started
			require.NoError(t, conn.(*net.TCPConn).SetLinger(0))
			require.NoError(t, conn.Close())
			assert.NoError(t, <-cancelled)
		})
	}
}

func TestStreamShutdownWaitsForRequestsInFlight(t *testing.T) {
	for _, gw := range streamGateways {
		t.Run(gw.name, func(t *testing.T) {
			started, release := make(chan struct{}), make(chan struct{})
			h := handlerFunc(func(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
				close(started)
				<-release
				return answerText("done")(w)
			})
			g := gw.new(h, StreamOptions{})
			addr := startStream(t, g)
			idle, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer idle.Close()
			busy := make(chan []byte, 1)
			go func() {
				defer close(busy) // even when the exchange fails, so the test never hangs
				busy <- streamExchange(t, addr, gw.request("", "REQUEST_METHOD", "GET"))
			}()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				require.FailNow(t, "the request never reached the handler")
			}

			stopped := make(chan error, 1)
			go func() { stopped <- g.Shutdown(context.Background()) }()
			require.NoError(t, idle.SetReadDeadline(time.Now().Add(5*time.Second)))
			n, err := idle.Read(make([]byte, 1))
			assert.Zero(t, n)
			assert.ErrorIs(t, err, io.EOF, "a connection with no request is closed at once")
			select {
			case err := <-stopped:
				require.FailNow(t, "Shutdown returned with a request in flight", "error: %v", err)
			default:
			}
			close(release)
			assert.Equal(t, gw.head+"done", string(<-busy))
			select {
			case err := <-stopped:
				assert.NoError(t, err)
			case <-time.After(10 * time.Second):
				require.FailNow(t, "Shutdown did not return once the request ended")
			}
		})
	}
}

func TestStreamBrokenResponseResets(t *testing.T) {
	respond := func(w wsgi.ResponseWriter) error {
		require.NoError(t, w.WriteHead("200 OK", nil))
		require.NoError(t, w.WriteBody([]byte("part")))
		require.NoError(t, w.Flush())
		return io.ErrUnexpectedEOF
	}
	for _, gw := range streamGateways {
		t.Run(gw.name, func(t *testing.T) {
			addr := startStream(t, gw.new(&recorder{respond: respond}, StreamOptions{}))
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
			_, err = conn.Write(gw.request("", "REQUEST_METHOD", "GET"))
			require.NoError(t, err)
			_, err = io.ReadAll(conn)
			assert.ErrorIs(t, err, syscall.ECONNRESET, "a broken response must not end like a whole one")
		})
	}
}

// handlerFunc adapts a function to wsgi.Handler.
type handlerFunc func(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error

func (f handlerFunc) ServeWSGI(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	return f(ctx, w, req)
}
