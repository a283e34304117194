package gateways

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// failingListener returns its errors from Accept, one a call, before it
// accepts from the listener it wraps: the accept failures a real one gives
// when the process or the system runs short.
type failingListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// acceptError is err as accept(2) on a TCP listener reports it.
func acceptError(err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError("accept4", errno)
	}
	return &net.OpError{Op: "accept", Net: "tcp", Err: err}
}

// servingGateway is any gateway as these tests drive it.
type servingGateway interface {
	Serve(net.Listener) error
	Close() error
}

// acceptGateways builds every gateway, with a request that shows it
// answering on a new connection.
var acceptGateways = []struct {
	name    string
	new     func(wsgi.Handler) servingGateway
	answers func(t *testing.T, addr string)
}{
	{"uwsgi", func(h wsgi.Handler) servingGateway { return NewUWSGI(h, StreamOptions{Logger: quietLog}) },
		func(t *testing.T, addr string) {
			out := streamExchange(t, addr, uwsgiRequest("", "REQUEST_METHOD", "GET"))
			assert.Equal(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhi", string(out))
		}},
	{"scgi", func(h wsgi.Handler) servingGateway { return NewSCGI(h, StreamOptions{Logger: quietLog}) },
		func(t *testing.T, addr string) {
			out := streamExchange(t, addr, scgiRequest("", "REQUEST_METHOD", "GET"))
			assert.Equal(t, "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nhi", string(out))
		}},
	{"fastcgi", func(h wsgi.Handler) servingGateway { return NewFastCGI(h, FastCGIOptions{Logger: quietLog}) },
		func(t *testing.T, addr string) {
			c := dialFCGI(t, addr)
			c.send(fcgiRequestBytes(1, 0, "", fcgiGet("/", "")...))
			res, _ := c.collect(1)
			assert.Equal(t, "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nhi", res[1].stdout)
		}},
	{"http", func(h wsgi.Handler) servingGateway { return NewHTTP(h, HTTPOptions{Logger: quietLog}) },
		func(t *testing.T, addr string) {
			out := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
			assert.Regexp(t, "^HTTP/1.1 200 OK\r\n(?s:.*)\r\n\r\nhi$", out)
		}},
}

var quietLog = slog.New(slog.DiscardHandler)

// TestAcceptErrorsThatPass: every gateway waits out the accept errors that
// pass and serves the next connection, where an ended listener would stop
// the whole server.
func TestAcceptErrorsThatPass(t *testing.T) {
	transient := []struct {
		name string
		err  error
	}{
		{"EMFILE", acceptError(syscall.EMFILE)},
		{"ENFILE", acceptError(syscall.ENFILE)},
		{"ENOBUFS", acceptError(syscall.ENOBUFS)},
		{"ENOMEM", acceptError(syscall.ENOMEM)},
		{"ECONNABORTED", acceptError(syscall.ECONNABORTED)},
		{"timeout", acceptError(os.ErrDeadlineExceeded)},
	}
	for _, gw := range acceptGateways {
		for _, tc := range transient {
			t.Run(gw.name+"/"+tc.name, func(t *testing.T) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				failing := &failingListener{Listener: ln, errs: []error{tc.err, tc.err, tc.err}}
				g := gw.new(&recorder{respond: answerText("hi")})
				served := make(chan error, 1)
				go func() { served <- g.Serve(failing) }()

				gw.answers(t, ln.Addr().String())
				require.NoError(t, g.Close())
				select {
				case err := <-served:
					assert.NoError(t, err, "Serve ends cleanly on Close")
				case <-time.After(10 * time.Second):
					require.FailNow(t, "Serve did not return after Close")
				}
			})
		}
	}
}

// TestAcceptErrorsThatLast: an accept error that does not pass ends Serve
// with it, so the server can say which listener failed.
func TestAcceptErrorsThatLast(t *testing.T) {
	lasting := acceptError(errors.New("listener gone"))
	for _, gw := range acceptGateways {
		t.Run(gw.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			g := gw.new(&recorder{})
			defer g.Close()
			err = g.Serve(&failingListener{Listener: ln, errs: []error{lasting}})
			assert.ErrorIs(t, err, lasting)
		})
	}
}

// TestCloseEndsAnAcceptPause: Close does not wait out the pause after an
// accept error.
func TestCloseEndsAnAcceptPause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// More failures than the test's deadline holds pauses.
	errs := slices.Repeat([]error{acceptError(syscall.EMFILE)}, 100)
	pl := newPatientListener(&failingListener{Listener: ln, errs: errs}, quietLog, "test")
	accepted := make(chan error, 1)
	go func() {
		_, err := pl.Accept()
		accepted <- err
	}()
	require.NoError(t, pl.Close())
	select {
	case err := <-accepted:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Accept still pausing after Close")
	}
}

// TestShutdownWithNoConnections returns at once for every gateway with
// nothing in flight, and Serve then returns nil.
func TestShutdownWithNoConnections(t *testing.T) {
	for _, gw := range acceptGateways {
		t.Run(gw.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			g := gw.new(&recorder{respond: answerText("hi")})
			served := make(chan error, 1)
			go func() { served <- g.Serve(ln) }()
			gw.answers(t, ln.Addr().String()) // Serve is running
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, g.(interface{ Shutdown(context.Context) error }).Shutdown(ctx))
			assert.NoError(t, <-served)
		})
	}
}
