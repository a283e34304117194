// The master's half of uWSGI's signal framework (uwsgi.register_signal,
// signal, add_timer, add_rb_timer, add_cron, add_file_monitor): a hub per
// generation keeps which target each of the 256 signals goes to, runs the
// clock and the file watches, and delivers each signal as one byte to the
// processes its target names. No Python runs here: the handlers are the
// processes' own (pyembed/gw_uwsgi_signal.c).
//
// The processes of a generation share one SOCK_SEQPACKET socket with the
// hub, inherited from their zygote. On it they send text messages:
//
//	s<num>                                raise num
//	r<num> <target>                       num goes to target
//	t<num> <milliseconds>                 raise num at that interval
//	b<num> <seconds> <iterations>         the same, iterations times (0: forever)
//	c<num> <min> <hour> <day> <month> <weekday>   raise num when the clock matches
//	f<num> <path>                         raise num when path changes
//
// and on it the hub sends a signal for "any worker": the kernel hands it to
// the one worker that reads it first, as uWSGI's shared worker pipe does.
// Each process that may be named alone (a worker, and later a mule or a
// spooler) has a socket of its own, attached to the hub under its kind and
// number.
package server

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// signalLimit is how many timers, rb timers, crons and file monitors a
// generation may add of each, uWSGI's limit.
const signalLimit = 64

// signalMsgCap bounds one message from a process; a monitored path is at
// most 254 bytes, as in uWSGI.
const signalMsgCap = 512

// Process kinds a signal's target names.
const (
	kindWorker  = "worker"
	kindMule    = "mule"
	kindSpooler = "spooler"
)

// signalRequest is one message from a process.
type signalRequest struct {
	op     byte // 's', 'r', 't', 'b', 'c' or 'f'
	sig    uint8
	target string        // r
	every  time.Duration // t, b
	times  int           // b: how many signals; 0 for no end
	cron   cronSpec      // c
	path   string        // f
}

// parseSignalRequest reads one message.
func parseSignalRequest(msg []byte) (signalRequest, error) {
	if len(msg) < 2 {
		return signalRequest{}, errors.New("signals: empty request")
	}
	req := signalRequest{op: msg[0]}
	head, rest, _ := strings.Cut(string(msg[1:]), " ")
	sig, err := strconv.ParseUint(head, 10, 8)
	if err != nil {
		return req, fmt.Errorf("signals: bad signal number %q", head)
	}
	req.sig = uint8(sig)
	ints := func(want int) ([]int, error) {
		fields := strings.Fields(rest)
		if len(fields) != want {
			return nil, fmt.Errorf("signals: %q wants %d numbers", msg, want)
		}
		n := make([]int, want)
		for i, f := range fields {
			if n[i], err = strconv.Atoi(f); err != nil {
				return nil, fmt.Errorf("signals: %q: %w", msg, err)
			}
		}
		return n, nil
	}
	var n []int
	switch req.op {
	case 's':
	case 'r':
		req.target = rest
	case 't':
		if n, err = ints(1); err == nil && n[0] <= 0 {
			err = fmt.Errorf("signals: timer interval %d ms", n[0])
		}
		if err == nil {
			req.every = time.Duration(n[0]) * time.Millisecond
		}
	case 'b':
		if n, err = ints(2); err == nil && (n[0] <= 0 || n[1] < 0) {
			err = fmt.Errorf("signals: rb timer of %d s, %d iterations", n[0], n[1])
		}
		if err == nil {
			req.every, req.times = time.Duration(n[0])*time.Second, n[1]
		}
	case 'c':
		if n, err = ints(5); err == nil {
			req.cron = cronSpec{minute: n[0], hour: n[1], day: n[2], month: n[3], weekday: n[4]}
		}
	case 'f':
		if rest == "" {
			err = errors.New("signals: file monitor without a path")
		}
		req.path = rest
	default:
		err = fmt.Errorf("signals: unknown request %q", msg)
	}
	return req, err
}

// signalTarget is what a registered target names: every process of a kind,
// process num of it, or (num 0) any one of them.
type signalTarget struct {
	kind string
	num  int
	all  bool
}

// parseSignalTarget reads a target as uWSGI routes it: "" and "worker"
// (and "worker0") for any worker, "workers" and "active-workers" for all,
// "workerN"; "mule", "mules", "muleN", "spooler".
func parseSignalTarget(target string) (signalTarget, error) {
	switch target {
	case "", "worker", "worker0":
		return signalTarget{kind: kindWorker}, nil
	case "workers", "active-workers":
		return signalTarget{kind: kindWorker, all: true}, nil
	case "mule":
		return signalTarget{kind: kindMule}, nil
	case "mules":
		return signalTarget{kind: kindMule, all: true}, nil
	case "spooler":
		return signalTarget{kind: kindSpooler}, nil
	}
	for _, kind := range []string{kindWorker, kindMule} {
		if digits, ok := strings.CutPrefix(target, kind); ok {
			if n, err := strconv.Atoi(digits); err == nil && n > 0 {
				return signalTarget{kind: kind, num: n}, nil
			}
		}
	}
	return signalTarget{}, fmt.Errorf("signals: unsupported target %q", target)
}

// cronSpec is add_cron's five fields: a value to match, -1 for any, -N for
// every value divisible by N.
type cronSpec struct{ minute, hour, day, month, weekday int }

// matches reports whether t's wall clock matches the spec, as uWSGI's
// uwsgi_cron_task_needs_execution decides: when both day and weekday are
// given, either may match, as in crontab(5); weekday 7 is Sunday.
func (c cronSpec) matches(t time.Time) bool {
	field := func(spec, now int) bool {
		if spec < 0 {
			return now%(-spec) == 0
		}
		return spec == now
	}
	weekday := c.weekday
	if weekday == 7 {
		weekday = 0
	}
	minute, hour := field(c.minute, t.Minute()), field(c.hour, t.Hour())
	month := field(c.month, int(t.Month()))
	day, wday := field(c.day, t.Day()), field(weekday, int(t.Weekday()))
	if c.day >= 0 && c.weekday >= 0 {
		return minute && hour && month && (day || wday)
	}
	return minute && hour && month && day && wday
}

// cronEntry is an added cron and when it last fired.
type cronEntry struct {
	sig  uint8
	spec cronSpec
	last time.Time
}

// signalHub is one generation's signal table, clock and watches.
type signalHub struct {
	conn   *net.UnixConn // the master's end of the shared socket
	shared *os.File      // the processes' end, until the zygote has it
	log    *slog.Logger
	done   chan struct{}
	once   sync.Once
	// started is closed once the generation's first worker is attached:
	// until then a signal has no one to go to, so the clock waits, as
	// uWSGI's master starts its timers and crons once it has forked.
	started   chan struct{}
	startOnce sync.Once

	mu         sync.Mutex
	targets    [256]string
	registered [256]bool
	receivers  map[string]map[int][]*net.UnixConn // by kind, then number; the newest last
	timers     int
	crons      []*cronEntry
	watcher    *fsnotify.Watcher
	monitors   map[string][]uint8 // by path
	watched    int
}

// newSignalHub creates a hub and its shared socket.
func newSignalHub(log *slog.Logger) (*signalHub, error) {
	conn, shared, err := unixSocketpair(unix.SOCK_SEQPACKET, "signal hub")
	if err != nil {
		return nil, err
	}
	return &signalHub{conn: conn, shared: shared, log: log, done: make(chan struct{}), started: make(chan struct{}),
		receivers: make(map[string]map[int][]*net.UnixConn), monitors: make(map[string][]uint8)}, nil
}

// run reads the processes' requests until the hub is closed.
func (h *signalHub) run() {
	buf := make([]byte, signalMsgCap)
	for {
		n, err := h.conn.Read(buf)
		if err != nil {
			return
		}
		req, err := parseSignalRequest(buf[:n])
		if err != nil {
			h.log.Error("signal request refused", "error", err)
			continue
		}
		h.handle(req)
	}
}

// close stops the clock and the watches and closes every socket.
func (h *signalHub) close() {
	h.once.Do(func() {
		close(h.done)
		h.conn.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.watcher != nil {
			h.watcher.Close()
		}
		for _, byNum := range h.receivers {
			for _, conns := range byNum {
				for _, c := range conns {
					c.Close()
				}
			}
		}
		h.receivers = nil
	})
}

func (h *signalHub) handle(req signalRequest) {
	switch req.op {
	case 's':
		h.route(req.sig)
	case 'r':
		h.register(req.sig, req.target)
	case 't', 'b':
		h.addTimer(req.sig, req.every, req.times)
	case 'c':
		h.addCron(req.sig, req.cron)
	case 'f':
		h.addFileMonitor(req.sig, req.path)
	}
}

// register records sig's target. The first registration stands, as
// uWSGI's master refuses a second: the zygote's, made as it imports the
// app, or with --lazy-apps the first worker's.
func (h *signalHub) register(sig uint8, target string) {
	if _, err := parseSignalTarget(target); err != nil {
		h.log.Error("signal registration refused", "signal", sig, "error", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.registered[sig] {
		return
	}
	h.targets[sig], h.registered[sig] = target, true
	h.log.Info("signal registered", "signal", sig, "target", cmp.Or(target, "any worker"))
}

// addTimer raises sig every interval, times times (0: until the hub
// closes).
func (h *signalHub) addTimer(sig uint8, every time.Duration, times int) {
	h.mu.Lock()
	full := h.timers >= signalLimit
	if !full {
		h.timers++
	}
	h.mu.Unlock()
	if full {
		h.log.Error("signal timer refused: a generation may add at most 64 timers", "signal", sig)
		return
	}
	h.log.Info("signal timer added", "signal", sig, "every", every, "iterations", times)
	go func() {
		if !h.awaitStart() {
			return
		}
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for n := 0; times == 0 || n < times; n++ {
			select {
			case <-ticker.C:
				h.route(sig)
			case <-h.done:
				return
			}
		}
	}()
}

// addCron adds a cron; the first one starts the clock that checks them
// every second.
func (h *signalHub) addCron(sig uint8, spec cronSpec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.crons) >= signalLimit {
		h.log.Error("signal cron refused: a generation may add at most 64 crons", "signal", sig)
		return
	}
	h.crons = append(h.crons, &cronEntry{sig: sig, spec: spec})
	h.log.Info("signal cron added", "signal", sig, "minute", spec.minute, "hour", spec.hour, "day", spec.day,
		"month", spec.month, "weekday", spec.weekday)
	if len(h.crons) == 1 {
		go h.runCrons()
	}
}

// awaitStart waits for the first worker; false when the hub closed first.
func (h *signalHub) awaitStart() bool {
	select {
	case <-h.started:
		return true
	case <-h.done:
		return false
	}
}

// runCrons checks the crons at every second of the wall clock.
func (h *signalHub) runCrons() {
	if !h.awaitStart() {
		return
	}
	for {
		now := time.Now()
		select {
		case now = <-time.After(now.Truncate(time.Second).Add(time.Second).Sub(now)):
			h.checkCrons(now)
		case <-h.done:
			return
		}
	}
}

// checkCrons raises the signal of every cron that matches now and has not
// fired in the last minute.
func (h *signalHub) checkCrons(now time.Time) {
	var due []uint8
	h.mu.Lock()
	for _, c := range h.crons {
		if c.spec.matches(now) && now.Sub(c.last) >= time.Minute {
			c.last = now
			due = append(due, c.sig)
		}
	}
	h.mu.Unlock()
	for _, sig := range due {
		h.log.Info("cron raises a signal", "signal", sig)
		h.route(sig)
	}
}

// addFileMonitor raises sig whenever path changes (inotify through
// fsnotify, which uWSGI's mask of events matches: attributes, writes,
// creation, removal, renames).
func (h *signalHub) addFileMonitor(sig uint8, path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watched >= signalLimit {
		h.log.Error("file monitor refused: a generation may add at most 64 file monitors", "signal", sig, "path", path)
		return
	}
	if h.watcher == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			h.log.Error("file monitor refused", "signal", sig, "path", path, "error", err)
			return
		}
		h.watcher = w
		go h.watchFiles(w)
	}
	if err := h.watcher.Add(path); err != nil {
		h.log.Error("file monitor refused", "signal", sig, "path", path, "error", err)
		return
	}
	h.watched++
	path = filepath.Clean(path)
	h.monitors[path] = append(h.monitors[path], sig)
	h.log.Info("file monitor added", "signal", sig, "path", path)
}

// watchFiles raises the signals of each changed file, and of the
// monitored directory a changed file is in.
func (h *signalHub) watchFiles(w *fsnotify.Watcher) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			name := filepath.Clean(ev.Name)
			h.mu.Lock()
			sigs := slices.Clone(h.monitors[name])
			if dir := filepath.Dir(name); dir != name {
				sigs = append(sigs, h.monitors[dir]...)
			}
			h.mu.Unlock()
			for _, sig := range sigs {
				h.route(sig)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			h.log.Error("file monitor failed", "error", err)
		}
	}
}

// attach lets the hub send signals to process num of kind on conn, until
// detach. The hub closes conn.
func (h *signalHub) attach(kind string, num int, conn *net.UnixConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.receivers == nil { // closed
		conn.Close()
		return
	}
	if h.receivers[kind] == nil {
		h.receivers[kind] = make(map[int][]*net.UnixConn)
	}
	h.receivers[kind][num] = append(h.receivers[kind][num], conn)
	if kind == kindWorker {
		h.startOnce.Do(func() { close(h.started) })
	}
}

// detach forgets and closes conn, attached for process num of kind.
func (h *signalHub) detach(kind string, num int, conn *net.UnixConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	conn.Close()
	if h.receivers == nil {
		return
	}
	conns := slices.DeleteFunc(h.receivers[kind][num], func(c *net.UnixConn) bool { return c == conn })
	if len(conns) == 0 {
		delete(h.receivers[kind], num)
	} else {
		h.receivers[kind][num] = conns
	}
}

// route delivers sig to the target its registration named; an
// unregistered signal goes to any worker, as in uWSGI. A signal raised
// before the first worker runs (as the zygote imports the app) waits for
// it.
func (h *signalHub) route(sig uint8) {
	if !h.awaitStart() {
		return
	}
	h.mu.Lock()
	target, _ := parseSignalTarget(h.targets[sig])
	var to []*net.UnixConn
	switch byNum := h.receivers[target.kind]; {
	case target.kind == kindWorker && target.num == 0 && !target.all:
		to = []*net.UnixConn{h.conn}
	case target.all:
		for _, num := range slices.Sorted(maps.Keys(byNum)) {
			to = append(to, byNum[num][len(byNum[num])-1]) // a successor, not the worker it replaces
		}
	case target.num == 0 && len(byNum) > 0:
		first := slices.Min(slices.Collect(maps.Keys(byNum)))
		to = append(to, byNum[first][len(byNum[first])-1])
	case len(byNum[target.num]) > 0:
		to = append(to, byNum[target.num][len(byNum[target.num])-1])
	}
	h.mu.Unlock()
	if len(to) == 0 {
		h.log.Error("signal not delivered: no process of its target runs", "signal", sig,
			"target", cmp.Or(h.targetName(sig), "any worker"))
		return
	}
	for _, c := range to {
		if err := sendSignal(c, sig); err != nil {
			h.log.Error("signal not delivered", "signal", sig, "error", err)
		}
	}
}

func (h *signalHub) targetName(sig uint8) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.targets[sig]
}

// sendSignal writes sig to c without waiting: a process that does not take
// its signals fills its socket, and then loses the new ones, as in uWSGI
// ("signal queue is full").
func sendSignal(c *net.UnixConn, sig uint8) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var sendErr error
	err = raw.Write(func(fd uintptr) bool {
		sendErr = unix.Send(int(fd), []byte{sig}, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		return true
	})
	if errors.Is(sendErr, unix.EAGAIN) {
		return errors.New("signals: the receiver's signal queue is full")
	}
	return cmp.Or(sendErr, err)
}
