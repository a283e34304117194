// Package server is gowsgi's master: it binds the listening sockets, runs
// the worker pool, dispatches requests to worker slots, and handles the
// signals that stop or reload it. It never runs Python itself: its workers
// are forked by a zygote (zygote_linux.go) and serve in C (pyembed), and
// only CGI mode (cgi.go) runs the app in gowsgi's own process.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gowsgi/gowsgi/gateways"
	"github.com/gowsgi/gowsgi/pyembed"
	"github.com/gowsgi/gowsgi/wsgi"
)

// master is one running master process.
type master struct {
	cfg       Config
	stderr    io.Writer
	log       *slog.Logger
	listeners []*listener
	dispatch  *dispatcher
	pool      *pool
	aux       *auxPool          // the spoolers and mules; nil when none
	gateways  []protocolGateway // each listener's, once
	signals   chan os.Signal
	// handler serves the gateways: the dispatcher, behind the static files
	// when --static-map is given (static.go), inside the access log
	// (accesslog.go).
	handler wsgi.Handler
	stats   *statsServer // nil without --stats
	// appMetrics reads the app's --metric values from the newest
	// generation's shared area (app_metrics.go).
	appMetrics func() []metricValue
	// sampleQueue writes the queue's length where uwsgi.listen_queue()
	// reads it; the pool calls it at each check.
	sampleQueue func()
	metrics     *metrics // nil without --metrics
	health      *health  // nil without --health-socket
	// forwardedAllow are the HTTP peers whose X-Forwarded-* are believed.
	forwardedAllow *gateways.ForwardedAllow
	// draining is set once a stop began: /readyz fails from then on.
	draining atomic.Bool
	notify   notifier    // systemd's NOTIFY_SOCKET, when set
	touched  chan string // a --touch-reload file that changed
	// logTouched is a --touch-logreopen file that changed.
	logTouched chan string
	// zygotes is the pool's launcher, for --master-as-root's credential.
	zygotes *zygoteLauncher
}

// protocolGateway is a gateway and the protocol it serves, for log lines.
type protocolGateway struct {
	protocol Protocol
	gateway
}

// gateway is what every protocol's gateway in package gateways offers.
type gateway interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// Run runs the master until it is stopped and returns the process's exit
// status: 0 after a stop by signal, 1 when serving failed, 2 when it could
// not start (a socket would not bind, the app would not load).
func Run(cfg Config) int {
	limitMasterThreads()
	stderr := MasterOutput(cfg.LogJSON)
	if err := openLog(cfg.LogTo); err != nil {
		fmt.Fprintf(stderr, "gowsgi: %v\n", err)
		return 2
	}
	sink, err := newLogSink(cfg.LogRouting, cfg.LogTo)
	if err != nil {
		fmt.Fprintf(stderr, "gowsgi: %v\n", err)
		return 2
	}
	if sink != nil {
		defer sink.close() // after the relay has copied the last lines
		cfg.sink = sink
	}
	relay, err := startLogRelay(cfg.LogTo, cfg.LogJSON, sink)
	if err != nil {
		fmt.Fprintf(stderr, "gowsgi: %v\n", err)
		return 2
	}
	defer relay.close() // last: after the workers have stopped
	cfg.childOutput = relay.output
	if err := setMaxFD(cfg.MaxFD); err != nil {
		fmt.Fprintf(stderr, "gowsgi: %v\n", err)
		return 2
	}
	if err := runStartHooks(cfg.Hooks, PhaseASAP, PhaseAsRoot); err != nil {
		fmt.Fprintf(stderr, "gowsgi: %v\n", err)
		return 2
	}
	m, err := newMaster(cfg)
	if err != nil {
		fmt.Fprintf(m.stderr, "gowsgi: %v\n", err)
		return 2
	}
	pyembed.SetMasterTitle(cfg.Spec.ProcNames)
	if !cfg.HonourStdin {
		if err := stdinFromDevNull(); err != nil {
			fmt.Fprintf(m.stderr, "gowsgi: %v\n", err)
			return 2
		}
	}
	defer closeListeners(m.listeners, cfg.Vacuum)
	defer m.stats.close()
	defer m.metrics.close()
	defer m.health.close()
	// The pidfile is written as root, as uWSGI's --pidfile is.
	if err := writePidFile(cfg.PidFile); err != nil {
		fmt.Fprintf(m.stderr, "gowsgi: %v\n", err)
		return 2
	}
	defer removePidFile(cfg.PidFile)
	if err := m.dropPrivileges(); err != nil {
		fmt.Fprintf(m.stderr, "gowsgi: %v\n", err)
		return 2
	}
	if err := runStartHooks(cfg.Hooks, PhaseAsUser, PhasePreApp); err != nil {
		fmt.Fprintf(m.stderr, "gowsgi: %v\n", err)
		return 2
	}
	// Taken now, so a file touched once the banner is out counts.
	touchTimes, logTouchTimes := modTimes(cfg.TouchReload), modTimes(cfg.TouchLogReopen)
	var fsWatch *fsWatch
	if len(cfg.FSReload) > 0 {
		if fsWatch, err = newFSWatch(cfg.FSReload); err != nil {
			fmt.Fprintf(m.stderr, "gowsgi: %v\n", err)
			return 2
		}
	}
	signal.Notify(m.signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1)
	m.pool.watchResizeSignals()
	defer signal.Stop(m.signals)
	stopWatching := make(chan struct{})
	defer close(stopWatching)
	if err := becomeSubreaper(); err != nil {
		m.log.Warn("cannot become the child subreaper; orphans of the app go to init", "error", err)
	}
	go reapOrphans(m.log, stopWatching)
	m.health.serve()
	m.notify.status("loading the app")
	if code, ok := m.startWorkers(); !ok {
		return code
	}
	if err := runStartHooks(cfg.Hooks, PhasePostApp, PhaseMasterStart); err != nil {
		m.stopNow()
		fmt.Fprintf(m.stderr, "gowsgi: %v\n", err)
		return 2
	}
	if len(cfg.Daemons) > 0 {
		var stdin *os.File
		if cfg.DaemonsHonourStdin {
			stdin = os.Stdin
		}
		defer startDaemons(cfg.Daemons, stdin, m.log).stop()
	}
	if len(cfg.Crons) > 0 {
		go newCronRunner(cfg.Crons, m.stderr, m.log).run(stopWatching)
	}
	m.notify.ready(m.servingStatus())
	if cfg.Ready != nil {
		cfg.Ready()
	}
	if m.stats != nil {
		m.stats.serve(m.statsDocument)
	}
	m.metrics.serve()
	if len(cfg.TouchReload) > 0 {
		go watchTouched(cfg.TouchReload, touchTimes, func(path string) { m.touched <- path }, stopWatching)
	}
	if fsWatch != nil {
		go fsWatch.run(func(path string) { m.touched <- path }, m.log, stopWatching)
	}
	if cfg.LogTo != "" && cfg.LogMaxSize > 0 {
		go watchLogSize(cfg.LogTo, cfg.LogMaxSize, cfg.LogBackupName, m.log, stopWatching)
	}
	if cfg.Cheaper != nil {
		go m.runCheaper(cfg.Cheaper, cfg.Processes, stopWatching)
	}
	if len(cfg.TouchLogReopen) > 0 {
		go watchTouched(cfg.TouchLogReopen, logTouchTimes, func(path string) { m.logTouched <- path }, stopWatching)
	}
	if m.cfg.Spec.ModuleList != "" {
		defer os.Remove(m.cfg.Spec.ModuleList)
		go watchModules(m.cfg.Spec.ModuleList, cfg.PyAutoReload, func(path string) { m.touched <- path }, stopWatching)
	}
	code := m.serve()
	m.aux.stop()
	return code
}

// newMaster binds every listener before any worker starts, so a socket that
// will not bind costs nothing.
func newMaster(cfg Config) (*master, error) {
	if cfg.PyAutoReload > 0 {
		// Each zygote lists its app's modules here after the import.
		cfg.Spec.ModuleList = filepath.Join(os.TempDir(), fmt.Sprintf("gowsgi-modules-%d", os.Getpid()))
	}
	m := &master{cfg: cfg, stderr: MasterOutput(cfg.LogJSON), signals: make(chan os.Signal, 4), touched: make(chan string),
		logTouched: make(chan string)}
	if cfg.sink != nil {
		m.stderr = cfg.sink.writer(false)
	}
	if cfg.LogDate && !cfg.LogJSON { // cmd/gowsgi refuses both together
		dated, err := newDatedWriter(m.stderr, cfg.LogDateFormat)
		if err != nil {
			return m, err
		}
		m.stderr = dated
	}
	if cfg.LogJSON {
		// "source" as on the lines logjson.go wraps: master or app.
		m.log = slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("source", "master")
	} else {
		m.log = slog.New(slog.NewTextHandler(m.stderr, nil))
	}
	exe, err := os.Executable()
	if err != nil {
		return m, fmt.Errorf("cannot find the gowsgi binary to start workers: %w", err)
	}
	// The zygote is started with the master's own arguments, which only ps
	// shows: it never reaches main nor parses them, and takes the app from
	// the GOWSGI_APP_* environment instead (pyembed/gw_zygote.c).
	args := os.Args[1:]
	if m.cfg.Spec.Spooler.Dirs, err = spoolerDirs(cfg.Spec.Spooler.Dirs); err != nil {
		return m, err
	}
	if m.listeners, err = bindSockets(cfg); err != nil {
		return m, err
	}
	for _, l := range m.listeners {
		if l.unnamed {
			m.log.Info("serving a socket systemd passed that no option names with the uwsgi protocol, as uWSGI does",
				"address", l.Addr().String(), "socket", l.socket.Address)
		}
	}
	if m.dispatch, err = newDispatcher(m.log); err != nil {
		return m, err
	}
	m.dispatch.maxWaiting = int64(cfg.Listen)
	m.dispatch.spoolLimit = cfg.ResponseSpoolLimit
	l := m.launcher(exe, args)
	m.pool = newPool(startProcesses(cfg), cfg.Threads, l, m.dispatch, m.log)
	m.pool.limits = cfg.Limits
	m.pool.onCheck = m.sampleQueue
	if al, ok := l.(auxLauncher); ok {
		m.aux = newAuxPool(m.cfg.Spec, al, m.log)
		m.pool.tookOver = m.aux.serveGeneration
	}
	if err := m.prepareAccessStaticStats(); err != nil {
		return m, err
	}
	if m.metrics, err = listenMetrics(cfg.Metrics, m.dispatch.notBegun, m.pool.snapshot, m.log); err != nil {
		return m, err
	}
	m.dispatch.metrics = m.metrics
	m.metrics.addAppMetrics(m.appMetrics)
	if m.health, err = listenHealth(cfg.HealthSockets); err != nil {
		return m, err
	}
	if m.health != nil {
		m.health.snapshot, m.health.waiting, m.health.draining, m.health.log = m.pool.snapshotWithin, m.dispatch.notBegun, &m.draining, m.log
	}
	m.notify = notifier{log: m.log}
	m.pool.reloadBegan = m.notify.reloading
	m.pool.reloadEnded = func(failure string) {
		if failure != "" {
			m.notify.ready("reload failed, serving the previous workers: " + failure)
			return
		}
		m.notify.ready(m.servingStatus())
	}
	if m.forwardedAllow, err = gateways.ParseForwardedAllow(cfg.ForwardedAllowIPs); err != nil {
		return m, err
	}
	// Sockets of one protocol share a gateway, but for HTTPS ones (each
	// has its certificate) and PROXY protocol ones (each kind has its own).
	type kind struct {
		protocol Protocol
		proxy    bool
	}
	shared := make(map[kind]gateway)
	for _, l := range m.listeners {
		k := kind{l.socket.Protocol, l.socket.ProxyProtocol}
		if l.gateway = shared[k]; l.gateway != nil {
			continue
		}
		l.gateway = m.newGateway(l.socket, l.tls)
		m.gateways = append(m.gateways, protocolGateway{k.protocol, l.gateway})
		if l.tls == nil {
			shared[k] = l.gateway
		}
	}
	return m, nil
}

// launcher starts workers by fork from a zygote of the app.
func (m *master) launcher(exe string, args []string) launcher {
	l := newZygoteLauncher(exe, args, m.cfg.Spec, m.log)
	l.output = m.cfg.childOutput
	l.requests = m.dispatch.requests
	if m.cfg.HonourStdin {
		l.stdin = os.Stdin
	}
	m.appMetrics = func() []metricValue {
		if a := l.newestArea(); a != nil {
			return a.metrics()
		}
		return nil
	}
	m.sampleQueue = func() {
		if a := l.newestArea(); a != nil {
			a.setListenQueue(m.dispatch.notBegun())
		}
	}
	m.zygotes = l
	return l
}

// dropPrivileges makes the master --uid/--gid, or, with --master-as-root,
// leaves it as it is and starts the zygote, and so every worker, as them.
func (m *master) dropPrivileges() error {
	if !m.cfg.MasterAsRoot {
		return dropPrivileges(m.cfg.UID, m.cfg.GID)
	}
	cred, err := workerCredential(m.cfg.UID, m.cfg.GID)
	m.zygotes.credential = cred
	return err
}

// newGateway builds the gateway for protocol, serving through the
// dispatcher. Each HTTPS socket gets its own, with its certificate.
func (m *master) newGateway(socket Socket, tlsConfig *tls.Config) gateway {
	handler := m.metrics.wrap(socket.Protocol, m.handler)
	switch socket.Protocol {
	case ProtocolUWSGI:
		return gateways.NewUWSGI(handler, m.streamOptions())
	case ProtocolSCGI:
		return gateways.NewSCGI(handler, m.streamOptions())
	case ProtocolFastCGI:
		return gateways.NewFastCGI(handler, gateways.FastCGIOptions{
			MaxParamsSize:  m.cfg.BufferSize,
			SpoolThreshold: m.cfg.SpoolThreshold,
			LimitPost:      m.cfg.LimitPost,
			// Requests beyond the slots wait in the queue, so this is how
			// many run at once, not a limit.
			MaxReqs: m.cfg.Processes * m.cfg.Threads,
			Timeout: m.cfg.SocketTimeout,
			Logger:  m.log,
		})
	}
	return gateways.NewHTTP(handler, gateways.HTTPOptions{
		MaxHeaderBytes: m.cfg.BufferSize,
		SpoolThreshold: m.cfg.SpoolThreshold,
		LimitPost:      m.cfg.LimitPost,
		TLSConfig:      tlsConfig,
		Timeout:        m.cfg.HTTPTimeout,
		IdleTimeout:    m.cfg.HTTPKeepalive,
		ProxyProtocol:  socket.ProxyProtocol,
		ForwardedAllow: m.forwardedAllow,
		Logger:         m.log,
	})
}

func (m *master) streamOptions() gateways.StreamOptions {
	return gateways.StreamOptions{
		MaxHeadSize:    m.cfg.BufferSize,
		SpoolThreshold: m.cfg.SpoolThreshold,
		LimitPost:      m.cfg.LimitPost,
		Timeout:        m.cfg.SocketTimeout,
		Logger:         m.log,
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
	m.aux.stop()
	if failure != nil {
		// Last, after the workers' own messages, so it is what the user sees.
		fmt.Fprintf(m.stderr, "gowsgi: %v\n", failure)
	}
	return code, false
}

// banner is the one line that says gowsgi is up and where.
func (m *master) banner() string {
	workers := m.workersText()
	if m.cfg.ProcessesFrom != "" {
		workers += " (" + m.cfg.ProcessesFrom + ")"
	}
	return fmt.Sprintf("gowsgi %s · Python %s · %s · %s · %s",
		Version, m.pool.version, m.cfg.App, workers, m.urlsText())
}

// workersText says how many workers and threads serve.
func (m *master) workersText() string {
	workers := plural(m.cfg.Processes, "worker")
	if c := m.cfg.Cheaper; c != nil {
		workers = plural(c.Initial, "worker") + fmt.Sprintf(" (cheaper %s: %d to %d)", c.Algo, c.Min, m.cfg.Processes)
	}
	if m.cfg.Threads > 1 {
		workers += " × " + plural(m.cfg.Threads, "thread")
	}
	return workers
}

// urlsText lists the sockets served.
func (m *master) urlsText() string {
	urls := make([]string, len(m.listeners))
	for i, l := range m.listeners {
		urls[i] = socketURL(l)
	}
	return strings.Join(urls, " ")
}

// servingStatus is systemd's STATUS= line while serving.
func (m *master) servingStatus() string {
	return fmt.Sprintf("serving %s with %s on %s", m.cfg.App, m.workersText(), m.urlsText())
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// displayAddr shows a bound address, with the port the kernel picked; a
// wildcard address is shown as 0.0.0.0 since that is what users type.
func displayAddr(tcp *net.TCPAddr) string {
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// serve runs the gateways until a signal or a failure stops the master.
func (m *master) serve() int {
	served := make(chan error, len(m.listeners))
	for _, l := range m.listeners {
		go func() { served <- l.gateway.Serve(l.Listener) }()
	}
	for {
		select {
		case sig := <-m.signals:
			switch sig {
			case syscall.SIGHUP:
				m.log.Info("reload requested", "signal", sig.String())
				m.reloadLog()
				m.pool.reload()
				continue
			case syscall.SIGUSR1:
				m.reopenLog()
				continue
			case syscall.SIGINT, syscall.SIGQUIT:
				// uWSGI's meaning: kill the whole stack now, no draining.
				m.draining.Store(true)
				m.notify.stopping("stopping now")
				m.log.Info("stopping now", "signal", sig.String())
				m.stopNow()
				return 0
			}
			return m.stopGracefully(sig)
		case path := <-m.touched:
			m.log.Info("reload requested", "touched", path)
			m.reloadLog()
			m.pool.reload()
		case path := <-m.logTouched:
			m.reopenLogFile()
			m.log.Info("log reopened", "touched", path)
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

// stopGracefully handles SIGTERM: /readyz fails at once; with
// --shutdown-delay the master goes on accepting and serving that long, so
// load balancers see the failing probe and stop sending, then it stops
// accepting and lets requests in flight finish (shutdown). A second
// SIGTERM, or SIGINT or SIGQUIT, during the delay stops at once.
func (m *master) stopGracefully(sig os.Signal) int {
	m.draining.Store(true)
	m.notify.stopping("draining")
	if delay := m.cfg.ShutdownDelay; delay > 0 {
		m.log.Info("draining: /readyz fails, serving until the shutdown delay passes", "signal", sig.String(), "delay", delay.String())
		if next, cut := m.awaitShutdownDelay(delay); cut {
			m.log.Warn("stopping now", "signal", next.String())
			m.stopNow()
			return 0
		}
	}
	m.log.Info("stopping", "signal", sig.String())
	m.shutdown()
	return 0
}

// awaitShutdownDelay serves on for delay; cut is true when a signal
// (next) asked to stop at once meanwhile. SIGUSR1 still reopens the log; a
// reload is moot. The delay ends early when no worker is left.
func (m *master) awaitShutdownDelay(delay time.Duration) (next os.Signal, cut bool) {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return nil, false
		case <-m.pool.lost:
			return nil, false
		case sig := <-m.signals:
			switch sig {
			case syscall.SIGUSR1:
				m.reopenLog()
			case syscall.SIGHUP:
			default:
				return sig, true
			}
		}
	}
}

// cutShort ends a graceful stop early on a second SIGTERM, or a SIGINT or
// SIGQUIT; SIGUSR1 still reopens the log and a reload is moot.
func (m *master) cutShort(ctx context.Context, cancel context.CancelFunc) {
	for {
		select {
		case sig := <-m.signals:
			switch sig {
			case syscall.SIGUSR1:
				m.reopenLog()
			case syscall.SIGHUP:
			default:
				m.log.Warn("stopping now", "signal", sig.String())
				cancel()
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// stopNow closes every connection and kills the workers.
func (m *master) stopNow() {
	for _, g := range m.gateways {
		g.Close()
	}
	m.pool.kill()
	<-m.pool.done
}

// reopenLog reopens the --logto file (after logrotate moved it) and writes
// the stats line, for SIGUSR1.
func (m *master) reopenLog() {
	m.reopenLogFile()
	m.logStats()
}

// reloadLog reopens the --logto file at a reload when --log-reopen asks.
func (m *master) reloadLog() {
	if m.cfg.LogReopen {
		m.reopenLogFile()
	}
}

// reopenLogFile reopens the --logto file, for SIGUSR1 and
// --touch-logreopen.
func (m *master) reopenLogFile() {
	if err := openLog(m.cfg.LogTo); err != nil {
		m.log.Error("cannot reopen the log", "error", err)
	}
}

// cutAnswerTimeout bounds how long the requests cut at the graceful timeout
// have to send their answers before their connections are closed.
const cutAnswerTimeout = 2 * time.Second

// shutdown stops accepting and lets requests in flight finish within the
// graceful timeout (a second signal cuts it short), cuts those still
// running then (cutInFlight), and retires the workers.
func (m *master) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.GracefulTimeout)
	defer cancel()
	go m.cutShort(ctx, cancel)
	drained, closeNow := m.drainGateways()
	defer closeNow()
	select {
	case <-drained:
	case <-ctx.Done():
		m.cutInFlight(drained, closeNow)
	}
	m.pool.stop()
	select {
	case <-m.pool.done:
	case <-ctx.Done():
		m.pool.kill()
		<-m.pool.done
	}
}

// drainGateways starts shutdownGateways: drained is closed once every
// gateway's requests have ended, and closeNow closes the connections of
// those still busy.
func (m *master) drainGateways() (drained <-chan struct{}, closeNow context.CancelFunc) {
	closing, closeNow := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.shutdownGateways(closing)
		close(done)
	}()
	return done, closeNow
}

// cutInFlight ends the requests still in flight when the graceful timeout
// has passed: the dispatcher answers 503 to those still queued, and once
// the workers are killed each request that lost its worker gets 503 if
// nothing of its response was sent, else its connection is cut
// (relay.cut). Their gateways have cutAnswerTimeout to send that before
// the connections still open are closed.
func (m *master) cutInFlight(drained <-chan struct{}, closeNow context.CancelFunc) {
	m.dispatch.cut()
	m.pool.kill()
	answered := time.NewTimer(cutAnswerTimeout)
	defer answered.Stop()
	select {
	case <-drained:
	case <-answered.C:
		closeNow()
		<-drained
	}
}

// shutdownGateways stops every gateway at once, so none accepts new requests
// while another drains, and closes the connections of those still busy
// when ctx is done.
func (m *master) shutdownGateways(ctx context.Context) {
	var wg sync.WaitGroup
	for _, g := range m.gateways {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Shutdown(ctx); err != nil {
				m.log.Warn("graceful timeout passed, closing connections", "protocol", string(g.protocol), "error", err)
				g.Close()
			}
		}()
	}
	wg.Wait()
}
