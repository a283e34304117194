// Package server is gowsgi's master: it binds the listening sockets, runs
// the worker pool, dispatches requests to worker slots, and handles the
// signals that stop or reload it. It never runs Python itself; the worker
// role lives in this package too but runs in its own exec'd process.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gowsgi/gowsgi/gateways"
)

// Version is gowsgi's version.
const Version = "0.1.0"

// Config is what the master needs from the command line.
type Config struct {
	// HTTPSockets are the addresses to serve HTTP on ("HOST:PORT", ":PORT",
	// "[::1]:PORT").
	HTTPSockets []string
	// App names the application in the banner ("hello_world_app:application").
	App string
	// Processes and Threads are the number of workers and of slots in each.
	Processes, Threads int
	// GracefulTimeout bounds how long a stop waits for requests in flight.
	GracefulTimeout time.Duration
	// AccessLog logs one line per request.
	AccessLog bool
	// SpoolThreshold is the largest request body kept in memory.
	SpoolThreshold int64
	// BufferSize bounds a request's header block.
	BufferSize int
}

// master is one running master process.
type master struct {
	cfg       Config
	stderr    io.Writer
	log       *slog.Logger
	listeners []net.Listener
	dispatch  *dispatcher
	pool      *pool
	http      *gateways.HTTP
	signals   chan os.Signal
}

// Run runs the master until it is stopped and returns the process's exit
// status: 0 after a stop by signal, 1 when serving failed, 2 when it could
// not start (a socket would not bind, the app would not load).
func Run(cfg Config) int {
	m, err := newMaster(cfg)
	if err != nil {
		fmt.Fprintf(m.stderr, "gowsgi: %v\n", err)
		return 2
	}
	signal.Notify(m.signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(m.signals)
	if code, ok := m.startWorkers(); !ok {
		return code
	}
	return m.serve()
}

// newMaster binds every listener before any worker starts, so a socket that
// will not bind costs nothing.
func newMaster(cfg Config) (*master, error) {
	m := &master{cfg: cfg, stderr: os.Stderr, signals: make(chan os.Signal, 4)}
	m.log = slog.New(slog.NewTextHandler(m.stderr, nil))
	exe, err := os.Executable()
	if err != nil {
		return m, fmt.Errorf("cannot find the gowsgi binary to start workers: %w", err)
	}
	// Workers get the master's own arguments, so both roles parse the same
	// options (docs/internals.md).
	args := os.Args[1:]
	for _, addr := range cfg.HTTPSockets {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			m.closeListeners()
			return m, fmt.Errorf("--http-socket %s: %w", addr, unwrapOpError(err))
		}
		m.listeners = append(m.listeners, ln)
	}
	m.dispatch = newDispatcher(m.log, cfg.AccessLog)
	m.pool = newPool(cfg.Processes, cfg.Threads, execLauncher{exe: exe, args: args}, m.dispatch.queue, m.log)
	m.http = gateways.NewHTTP(m.dispatch, gateways.HTTPOptions{
		MaxHeaderBytes: cfg.BufferSize,
		SpoolThreshold: cfg.SpoolThreshold,
		Logger:         m.log,
	})
	return m, nil
}

// unwrapOpError drops the "listen tcp ADDR:" prefix the address already says.
func unwrapOpError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

func (m *master) closeListeners() {
	for _, ln := range m.listeners {
		ln.Close()
	}
}

// startWorkers waits for the first generation and prints the banner. ok is
// false when the master must exit with code instead of serving.
func (m *master) startWorkers() (code int, ok bool) {
	m.pool.start()
	var failure error
	select {
	case failure = <-m.pool.ready:
		if failure == nil {
			fmt.Fprintln(m.stderr, m.banner())
			return 0, true
		}
		code = 2
	case sig := <-m.signals:
		m.log.Info("stopping before the app loaded", "signal", sig.String())
	}
	m.pool.kill()
	<-m.pool.done
	m.closeListeners()
	if failure != nil {
		// Last, after the workers' own messages, so it is what the user sees.
		fmt.Fprintf(m.stderr, "gowsgi: %v\n", failure)
	}
	return code, false
}

// banner is the one line that says gowsgi is up and where.
func (m *master) banner() string {
	workers := plural(m.cfg.Processes, "worker")
	if m.cfg.Threads > 1 {
		workers += " × " + plural(m.cfg.Threads, "thread")
	}
	urls := make([]string, len(m.listeners))
	for i, ln := range m.listeners {
		urls[i] = "http://" + displayAddr(ln.Addr())
	}
	return fmt.Sprintf("gowsgi %s · Python %s · %s · %s · %s",
		Version, m.pool.version, m.cfg.App, workers, strings.Join(urls, " "))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// displayAddr shows a bound address, with the port the kernel picked; a
// wildcard address is shown as 0.0.0.0 since that is what users type.
func displayAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// serve runs the gateways until a signal or a failure stops the master.
func (m *master) serve() int {
	served := make(chan error, len(m.listeners))
	for _, ln := range m.listeners {
		go func() { served <- m.http.Serve(ln) }()
	}
	for {
		select {
		case sig := <-m.signals:
			if sig == syscall.SIGHUP {
				m.log.Info("reload requested", "signal", sig.String())
				m.pool.reload()
				continue
			}
			m.log.Info("stopping", "signal", sig.String())
			m.shutdown()
			return 0
		case err := <-served:
			m.log.Error("listener failed", "error", err)
			m.shutdown()
			return 1
		case <-m.pool.lost:
			m.log.Error("no worker left to serve requests, stopping")
			m.dispatch.stop()
			m.shutdown()
			return 1
		}
	}
}

// shutdown stops accepting, lets requests in flight finish within the
// graceful timeout (a second signal cuts it short), then retires the
// workers, killing those still busy when the time is up.
func (m *master) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.GracefulTimeout)
	defer cancel()
	go func() {
		select {
		case sig := <-m.signals:
			m.log.Warn("stopping now", "signal", sig.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := m.http.Shutdown(ctx); err != nil {
		m.log.Warn("graceful timeout passed, closing connections", "error", err)
		m.http.Close()
	}
	m.pool.stop()
	select {
	case <-m.pool.done:
	case <-ctx.Done():
		m.pool.kill()
		<-m.pool.done
	}
}
