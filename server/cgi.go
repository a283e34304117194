// The CGI role: gowsgi started by a web server as a CGI program (RFC 3875)
// runs the app once, in-process, with no master, workers or listeners. The
// request still takes the path every request takes: the CGI gateway hands
// it to a dispatcher, whose one slot is served by an embedded Python slot
// in this same process over a socketpair, so environ, start_response,
// file_wrapper and the response checks are the ones the workers use.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/gateways"
	"github.com/gowsgi/gowsgi/pyembed"
	"github.com/gowsgi/gowsgi/wsgi"
)

// Exit statuses of the CGI role. A web server reads the response, not the
// status, so each of them comes with a response on stdout.
const (
	cgiExitOK         = 0 // a whole response, an app exception's 500 included
	cgiExitFailed     = 1 // the request was refused or its response broke
	cgiExitLoadFailed = 2 // the app could not be imported: a 500 went out
)

// CGIConfig is what the CGI role needs from the command line.
type CGIConfig struct {
	// App is the application to run once; RunCGI sets its wsgi.run_once,
	// wsgi.multiprocess and wsgi.multithread as CGIHandler sets them.
	App pyembed.AppSpec
	// SpoolThreshold is the largest request body kept in memory.
	SpoolThreshold int64
}

// RunCGI serves the request the environment and stdin describe, writes the
// response to stdout and returns the process's exit status. environ holds
// every environment variable, as under wsgiref.handlers.CGIHandler.
func RunCGI(cfg CGIConfig) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	stdout, err := takeStdout()
	if err != nil {
		log.Error("cgi request failed", "error", err)
		return cgiExitFailed
	}
	defer stdout.Close()
	gateway := cgiGateway(cfg.SpoolThreshold, os.Environ(), os.Stdin, stdout)
	if err := initCGI(cfg.App); err != nil {
		log.Error("cgi app cannot be loaded", "error", err)
		// The traceback is on stderr, where web servers log it; the client
		// gets a 500 rather than the web server's "malformed header".
		if err := gateway(context.Background(), unavailable{}); err != nil {
			log.Error("cgi request failed", "error", err)
		}
		return cgiExitLoadFailed
	}
	if err := serveCGI(gateway, log); err != nil {
		log.Error("cgi request failed", "error", err)
		return cgiExitFailed
	}
	return cgiExitOK
}

// cgiGateway returns a function that serves the CGI request of env and
// stdin with a handler, writing the response to stdout.
func cgiGateway(threshold int64, env []string, stdin io.Reader, stdout io.Writer) func(context.Context, wsgi.Handler) error {
	return func(ctx context.Context, h wsgi.Handler) error {
		g := gateways.NewCGI(h, gateways.CGIOptions{SpoolThreshold: threshold})
		return g.Serve(ctx, env, stdin, stdout)
	}
}

// initCGI starts Python and imports the app, which serves one request in
// one process (PEP 3333, "environ Variables": wsgi.run_once; and
// CGIHandler's multithread=False, multiprocess=True).
func initCGI(app pyembed.AppSpec) error {
	app.RunOnce, app.Multiprocess, app.Multithread = true, true, false
	return pyembed.Init(app)
}

// takeStdout returns a new descriptor for stdout and points descriptor 1 at
// stderr. Only gowsgi then writes the response: an app's print(), or a C
// library writing to descriptor 1, goes to the web server's error log
// instead of into the CGI response, and a web server that closes the pipe
// early is an error on a write rather than a SIGPIPE on descriptor 1.
func takeStdout() (*os.File, error) {
	fd, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("server: keeping stdout: %w", err)
	}
	if err := unix.Dup3(2, 1, 0); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("server: moving stdout to stderr: %w", err)
	}
	return os.NewFile(uintptr(fd), "stdout"), nil
}

// serveCGI runs the gateway against a dispatcher with one slot, which an
// embedded slot in this process serves.
func serveCGI(gateway func(context.Context, wsgi.Handler) error, log *slog.Logger) error {
	b, boardFile, err := newBoard(1)
	if err != nil {
		return err
	}
	boardFile.Close() // the mapping is all either side needs
	defer b.release()
	conn, theirs, err := slotSocketpair()
	if err != nil {
		return err
	}
	defer conn.Close()

	// ctx ends if the in-process slot fails, so a request still queued for
	// it is not left waiting.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ready := make(chan error, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := serveOnce(theirs, b.sb.Record(0), ready); err != nil {
			cancel(err)
		}
	}()
	if err := <-ready; err != nil {
		return err
	}

	d, err := newDispatcher(log)
	if err != nil {
		return err
	}
	s := newSlot(0, 0, os.Getpid(), conn, b, nil)
	d.adopt(s)
	go s.read(func(err error) { log.Error("cgi: bad response frames", "error", err) })
	d.register(s)
	go s.serve(d, nil)
	err = gateway(ctx, d)
	if cause := context.Cause(ctx); cause != nil && err != nil {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	// A request refused by the gateway never reached the slot: EOF tells
	// it none will.
	conn.CloseWrite()
	<-served
	return err
}

// serveOnce serves the one request frame that arrives on conn with an
// embedded Python slot, reporting on ready whether the slot could start.
// The goroutine stays locked to its OS thread, which owns the slot's Python
// thread state, as a worker's slot goroutine does.
func serveOnce(conn *os.File, record []byte, ready chan<- error) error {
	runtime.LockOSThread()
	defer conn.Close() // after slot.Close, which writes what is still buffered
	slot, err := pyembed.NewSlot(int(conn.Fd()), record)
	ready <- err
	if err != nil {
		return err
	}
	defer slot.Close()
	nc, err := net.FileConn(conn) // a dup: conn still closes last
	if err != nil {
		return fmt.Errorf("server: reading the request frame: %w", err)
	}
	defer nc.Close()
	// The spooled body's descriptor comes with the frame, as to a worker.
	rx := newFDReader(nc.(*net.UnixConn))
	defer rx.closeFiles()
	f, err := wsgi.NewFrameReader(&rx).Next()
	switch {
	case errors.Is(err, io.EOF):
		return nil // no request came
	case err != nil:
		return fmt.Errorf("server: reading the request frame: %w", err)
	case f.Kind != wsgi.FrameRequest:
		return fmt.Errorf("server: got a %q frame, want a request", f.Kind)
	}
	return slot.Serve(f.ID, f.Flags, f.Payload, rx.nextFD(), true)
}

// unavailable answers every request with 500, for an app that could not be
// imported.
type unavailable struct{}

func (unavailable) ServeWSGI(_ context.Context, w wsgi.ResponseWriter, _ *wsgi.Request) error {
	r := relay{w: w}
	return r.answer(500, "Internal Server Error")
}
