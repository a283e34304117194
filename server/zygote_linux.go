// Starting workers by fork from a zygote: one process per generation that
// imports the app once and forks workers sharing it copy-on-write, so a
// worker costs little memory and a respawn after a crash is a fork, not a
// fresh import. It forks the spoolers and mules too (auxprocs.go). Each
// generation's zygote also gets the generation's shared area
// (shared_linux.go), created with its first zygote. The
// zygote's side and its message protocol are in package pyembed
// (gw_zygote.c); this is the master's side.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/pyembed"
)

// zygoteFDsPerMsg is how many descriptors one message carries, as many as
// gw_zygote.c accepts.
const zygoteFDsPerMsg = pyembed.ZygoteFDsPerMsg

// zygoteMsgCap bounds one message from the zygote.
const zygoteMsgCap = pyembed.ZygoteMsgCap

// zygoteLauncher starts workers by asking the zygote of their generation
// to fork, starting that zygote first when it is not running (in the
// background with prepare, for a reload). Only the pool goroutine calls
// prepare, launch and release.
type zygoteLauncher struct {
	exe    string
	args   []string
	env    []string // the zygote's environment
	lazy   bool     // each worker imports the app (--lazy-apps)
	shared pyembed.SharedSpec
	output childOutput
	log    *slog.Logger
	// credential, when set, is the user and group the zygote runs as
	// (--master-as-root); nil inherits the master's.
	credential *syscall.Credential
	// stdin, when set, is the zygote's and so its workers' standard input
	// (--honour-stdin); nil gives them /dev/null, as uWSGI's.
	stdin *os.File

	// requests is the request table every zygote maps (requests_linux.go);
	// nil runs workers without one, which take requests on their slot
	// sockets only.
	requests *requestTable

	mu       sync.Mutex          // prepare's goroutines add zygotes
	zygotes  map[int]*zygote     // by generation
	areas    map[int]*sharedArea // by generation: a zygote started again keeps its generation's
	queues   map[int]*genQueue   // by generation, as areas
	starting map[int]bool        // generations whose zygote prepare is starting
	released map[int]bool        // of those, the ones released meanwhile
}

func newZygoteLauncher(exe string, args []string, spec pyembed.AppSpec, log *slog.Logger) *zygoteLauncher {
	return &zygoteLauncher{
		exe:      exe,
		args:     args,
		env:      append(os.Environ(), pyembed.ZygoteEnv(spec)...),
		lazy:     spec.Lazy,
		shared:   sharedSpec(spec.Shared),
		log:      log,
		zygotes:  make(map[int]*zygote),
		areas:    make(map[int]*sharedArea),
		queues:   make(map[int]*genQueue),
		starting: make(map[int]bool),
		released: make(map[int]bool),
	}
}

// prepare starts generation gen's zygote in a goroutine, so the pool goes
// on supervising the running workers while a reload imports the app.
func (l *zygoteLauncher) prepare(gen int, done func(error)) {
	l.mu.Lock()
	l.starting[gen] = true
	l.mu.Unlock()
	go func() {
		z, err := l.startZygote(gen)
		l.mu.Lock()
		gone := l.released[gen] // the reload was given up meanwhile
		delete(l.starting, gen)
		delete(l.released, gen)
		if err == nil && !gone {
			l.zygotes[gen] = z
		}
		l.mu.Unlock()
		if err == nil && gone {
			z.release()
		}
		if gone {
			l.releaseArea(gen)
		}
		done(err)
	}()
}

// launch forks worker num from generation gen's zygote. A zygote that has
// died is replaced, which imports the app again; one that cannot load the
// app returns its one-line summary as the error.
func (l *zygoteLauncher) launch(num, gen, threads int) (*launched, error) {
	l.mu.Lock()
	z := l.zygotes[gen]
	l.mu.Unlock()
	if z == nil || z.isDead() {
		var err error
		if z, err = l.startZygote(gen); err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.zygotes[gen] = z
		l.mu.Unlock()
	}
	files, err := newWorkerFiles(threads)
	if err != nil {
		return nil, err
	}
	defer files.closeChild()
	w, err := z.fork(num, threads, files.child)
	if err != nil {
		files.closeMaster()
		return nil, fmt.Errorf("server: starting worker %d: %w", num, err)
	}
	z.attachSignals(w, kindWorker, num, files.signal)
	if a, _ := l.area(gen); a != nil {
		a.workerSpawned(num, w.pid())
	}
	started := files.launched(w)
	l.mu.Lock()
	started.queue = l.queues[gen]
	l.mu.Unlock()
	return started, nil
}

// launchAux forks spooler or mule num from generation gen's zygote, which
// must be running: the pool starts and restarts the zygotes.
func (l *zygoteLauncher) launchAux(kind auxKind, num, gen int) (process, error) {
	l.mu.Lock()
	z := l.zygotes[gen]
	l.mu.Unlock()
	if z == nil || z.isDead() {
		return nil, fmt.Errorf("server: starting %s %d: generation %d has no zygote", kind, num, gen)
	}
	// Its own signal socket, as a worker has, for signals to "mule",
	// "muleN", "mules" and "spooler".
	signals, theirs, err := unixSocketpair(unix.SOCK_SEQPACKET, "signal")
	if err != nil {
		return nil, fmt.Errorf("server: starting %s %d: %w", kind, num, err)
	}
	defer theirs.Close()
	w, err := z.forkCommand([]byte(string(kind)+strconv.Itoa(num)), []int{int(theirs.Fd())})
	if err != nil {
		signals.Close()
		return nil, fmt.Errorf("server: starting %s %d: %w", kind, num, err)
	}
	z.attachSignals(w, kind.String(), num, signals)
	return w, nil
}

// release ends generation gen's zygote once its last worker has exited.
func (l *zygoteLauncher) release(gen int) {
	l.mu.Lock()
	z := l.zygotes[gen]
	delete(l.zygotes, gen)
	starting := z == nil && l.starting[gen]
	if starting {
		l.released[gen] = true // prepare releases it, and its area
	}
	l.mu.Unlock()
	if z != nil {
		z.release()
	}
	if !starting {
		l.releaseArea(gen)
	}
}

// queue returns generation gen's queue, creating it for the generation's
// first zygote; nil without a request table.
func (l *zygoteLauncher) queue(gen int) (*genQueue, error) {
	if l.requests == nil {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if q := l.queues[gen]; q != nil {
		return q, nil
	}
	q, err := newGenQueue(gen)
	if err != nil {
		return nil, err
	}
	l.queues[gen] = q
	return q, nil
}

// area returns generation gen's shared area, creating it for the
// generation's first zygote.
func (l *zygoteLauncher) area(gen int) (*sharedArea, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.areas[gen]; a != nil {
		return a, nil
	}
	a, err := newSharedArea(l.shared)
	if err != nil {
		return nil, err
	}
	l.areas[gen] = a
	return a, nil
}

// sharedSpec is spec with a worker line for every worker number the pool
// may grow to.
func sharedSpec(spec pyembed.SharedSpec) pyembed.SharedSpec {
	spec.Workers = maxProcesses
	return spec
}

// releaseArea releases generation gen's shared area, if it has one.
func (l *zygoteLauncher) releaseArea(gen int) {
	l.mu.Lock()
	a, q := l.areas[gen], l.queues[gen]
	delete(l.areas, gen)
	delete(l.queues, gen)
	l.mu.Unlock()
	if a != nil {
		a.release()
	}
	if q != nil && !q.served.Load() {
		q.close() // it never took requests; one that did the dispatcher closes when it is replaced
	}
}

// newestArea returns the shared area of the newest generation, whose
// metrics the stats show, or nil.
func (l *zygoteLauncher) newestArea() *sharedArea {
	l.mu.Lock()
	defer l.mu.Unlock()
	newest := -1
	for gen := range l.areas {
		newest = max(newest, gen)
	}
	return l.areas[newest]
}

// zygote is one running zygote process.
type zygote struct {
	proc    *os.Process
	conn    *net.UnixConn // SOCK_SEQPACKET
	replies chan any      // to a fork: *zygoteWorker or error
	log     *slog.Logger
	// forking is held from a fork command to its reply: the pool and the
	// spoolers' and mules' supervisor (auxprocs.go) both fork.
	forking sync.Mutex
	signals *signalHub // uWSGI's signals among the zygote's processes

	mu       sync.Mutex
	workers  map[int]*zygoteWorker // by pid, until they exit
	dead     bool                  // its socket reached EOF
	released bool
}

// zygoteRequests are the request table and the generation's queue a
// zygote inherits for its workers.
type zygoteRequests struct {
	table, queue *os.File
}

// startZygote execs the zygote, with stdin (nil: /dev/null) as its standard
// input, and waits for it to load the app. requests may be nil: its workers
// then take requests on their slot sockets only.
func startZygote(exe string, args, env []string, stdin, shared *os.File, requests *zygoteRequests, output childOutput, cred *syscall.Credential, log *slog.Logger) (*zygote, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("server: zygote socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "zygote"), os.NewFile(uintptr(fds[1]), "zygote")
	defer theirs.Close()
	c, err := net.FileConn(mine) // dups the descriptor
	mine.Close()
	if err != nil {
		return nil, fmt.Errorf("server: zygote socketpair: %w", err)
	}
	conn := c.(*net.UnixConn)
	hub, err := newSignalHub(log)
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer hub.shared.Close()
	cmd := exec.Command(exe, args...)
	// The master's own argv[0], so that ps shows the zygote and the
	// workers with the master's command line, as uWSGI's forks show theirs.
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(slices.Clip(env), pyembed.ZygoteSignalFDEnv)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	output.attach(cmd)
	cmd.ExtraFiles = []*os.File{theirs, hub.shared} // fds 3 and 4: pyembed.ZygoteSignalFDEnv
	if shared != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, shared) // fd 5: pyembed.SharedFDEnv
		cmd.Env = append(cmd.Env, pyembed.SharedFDEnv)
	}
	if requests != nil {
		// The child's descriptor n is ExtraFiles[n-3].
		cmd.ExtraFiles = append(cmd.ExtraFiles, requests.table, requests.queue)
		n := len(cmd.ExtraFiles) + 2
		cmd.Env = append(cmd.Env, pyembed.RequestsFDEnv+"="+strconv.Itoa(n-1), pyembed.QueueFDEnv+"="+strconv.Itoa(n))
	}
	// Pdeathsig fires when the thread that started the zygote exits
	// (prctl(2), PR_SET_PDEATHSIG), and no thread of the master exits
	// before the master: Go ends a thread only when a goroutine locked to
	// it returns, and the one goroutine that locks (the pool's) does so for
	// life.
	// Go sets Pdeathsig after the credential, which would clear it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := startChild(cmd); err != nil {
		conn.Close()
		hub.close()
		return nil, fmt.Errorf("server: starting the zygote: %w", err)
	}
	theirs.Close()
	hub.shared.Close()
	// The hub reads while the zygote imports the app, which registers
	// signals and adds timers.
	go hub.run()
	z := &zygote{proc: cmd.Process, conn: conn, replies: make(chan any, 1), log: log, signals: hub,
		workers: make(map[int]*zygoteWorker)}
	if err := z.awaitLoaded(); err != nil {
		conn.Close()
		hub.close()
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	go z.read()
	return z, nil
}

// startZygote starts a zygote of generation gen for the launcher's app and
// logs it. A generation after the first is a reload's, which the app can
// tell (uwsgi.is_a_reload).
func (l *zygoteLauncher) startZygote(gen int) (*zygote, error) {
	env := l.env
	if gen > 1 {
		env = append(slices.Clip(env), pyembed.ZygoteReloadEnv)
	}
	area, err := l.area(gen)
	if err != nil {
		return nil, err
	}
	q, err := l.queue(gen)
	if err != nil {
		return nil, err
	}
	var requests *zygoteRequests
	if q != nil {
		requests = &zygoteRequests{table: l.requests.file, queue: q.theirs}
	}
	z, err := startZygote(l.exe, l.args, env, l.stdin, area.file, requests, l.output, l.credential, l.log)
	switch {
	case err != nil:
	case l.lazy:
		l.log.Info("zygote started; each worker imports the app (--lazy-apps)", "pid", z.proc.Pid)
	default:
		l.log.Info("zygote loaded the app", "pid", z.proc.Pid)
	}
	return z, err
}

// awaitLoaded reads the zygote's first message: R once the app is
// imported, or E with the load failure's summary.
func (z *zygote) awaitLoaded() error {
	buf := make([]byte, zygoteMsgCap)
	n, _, _, _, err := z.conn.ReadMsgUnix(buf, nil)
	msg := string(buf[:n])
	switch {
	case err == nil && strings.HasPrefix(msg, "R"):
		return nil
	case err == nil && strings.HasPrefix(msg, "E"):
		return errors.New(msg[1:])
	}
	state, _ := z.proc.Wait()
	return fmt.Errorf("the zygote exited before loading the app (%v)", state)
}

// fork asks the zygote for worker num, handing it the worker's files.
func (z *zygote) fork(num, threads int, files []*os.File) (*zygoteWorker, error) {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return z.forkCommand([]byte("F"+strconv.Itoa(num)+" "+strconv.Itoa(threads)), fds)
}

// forkCommand sends a fork command, with fds over as many messages as
// they need, and returns the process forked.
func (z *zygote) forkCommand(head []byte, fds []int) (*zygoteWorker, error) {
	z.forking.Lock()
	defer z.forking.Unlock()
	if len(fds) == 0 {
		if _, _, err := z.conn.WriteMsgUnix(head, nil, nil); err != nil {
			return nil, fmt.Errorf("asking the zygote to fork: %w", err)
		}
	}
	for len(fds) > 0 {
		batch := fds[:min(len(fds), zygoteFDsPerMsg)]
		if _, _, err := z.conn.WriteMsgUnix(head, unix.UnixRights(batch...), nil); err != nil {
			return nil, fmt.Errorf("asking the zygote to fork: %w", err)
		}
		fds, head = fds[len(batch):], []byte("+")
	}
	switch reply := (<-z.replies).(type) {
	case *zygoteWorker:
		return reply, nil
	case error:
		return nil, reply
	}
	return nil, errors.New("unreachable")
}

// read handles the zygote's messages until its socket closes.
func (z *zygote) read() {
	buf := make([]byte, zygoteMsgCap)
	for {
		n, _, _, _, err := z.conn.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			z.died()
			return
		}
		msg := string(buf[:n])
		switch msg[0] {
		case 'P':
			z.replies <- z.forked(msg[1:])
		case 'N':
			z.replies <- fmt.Errorf("the zygote could not fork: %s", msg[1:])
		case 'X':
			z.exited(msg[1:])
		default:
			z.log.Error("zygote sent an unknown message", "pid", z.proc.Pid, "message", msg)
		}
	}
}

// forked registers a new worker, before any X message can name it.
func (z *zygote) forked(text string) any {
	pid, err := strconv.Atoi(text)
	if err != nil {
		return fmt.Errorf("the zygote sent a bad pid %q", text)
	}
	w := &zygoteWorker{id: pid, exited: make(chan struct{})}
	z.mu.Lock()
	z.workers[pid] = w
	z.mu.Unlock()
	return w
}

// exited records a worker's exit from "pid status".
func (z *zygote) exited(text string) {
	pidText, statusText, _ := strings.Cut(text, " ")
	pid, err1 := strconv.Atoi(pidText)
	status, err2 := strconv.Atoi(statusText)
	if err1 != nil || err2 != nil {
		z.log.Error("zygote sent a bad exit message", "pid", z.proc.Pid, "message", text)
		return
	}
	z.mu.Lock()
	w := z.workers[pid]
	delete(z.workers, pid)
	z.mu.Unlock()
	if w != nil {
		w.end(syscall.WaitStatus(status))
		z.detachSignals(w)
	}
	z.endIfDone()
}

// died handles the zygote's end: its workers die with it (their death
// signal), and as they are its children, not the master's, their exit is
// taken to be that signal.
func (z *zygote) died() {
	z.conn.Close()
	z.signals.close()
	z.mu.Lock()
	z.dead = true
	workers := z.workers
	z.workers = nil
	z.mu.Unlock()
	killed := syscall.WaitStatus(syscall.SIGKILL) // as wait(2) encodes a SIGKILL death
	for _, w := range workers {
		w.end(killed)
	}
	// A fork waiting for its reply gets one.
	select {
	case z.replies <- errors.New("the zygote exited"):
	default:
	}
	state, _ := z.proc.Wait()
	z.mu.Lock()
	expected := z.released
	z.mu.Unlock()
	if !expected {
		z.log.Error("zygote exited", append([]any{"pid", z.proc.Pid}, exitAttrs(processStatus(state))...)...)
	}
}

func (z *zygote) isDead() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.dead
}

// release marks the zygote as forking no more workers.
func (z *zygote) release() {
	z.mu.Lock()
	z.released = true
	z.mu.Unlock()
	z.endIfDone()
}

// endIfDone kills a released zygote once its last worker has exited.
func (z *zygote) endIfDone() {
	z.mu.Lock()
	done := z.released && len(z.workers) == 0 && !z.dead
	z.mu.Unlock()
	if done {
		z.proc.Kill()
	}
}

// processStatus is state's wait status, or nil.
func processStatus(state *os.ProcessState) *syscall.WaitStatus {
	if state == nil {
		return nil
	}
	status, ok := state.Sys().(syscall.WaitStatus)
	if !ok {
		return nil
	}
	return &status
}

// attachSignals gives the signal hub the signal socket of process num of
// kind (a worker, a mule, a spooler), until the process exits.
func (z *zygote) attachSignals(w *zygoteWorker, kind string, num int, conn *net.UnixConn) {
	z.mu.Lock()
	w.kind, w.num, w.signals = kind, num, conn
	z.mu.Unlock()
	z.signals.attach(kind, num, conn)
	select {
	case <-w.exited: // before it was attached
		z.detachSignals(w)
	default:
	}
}

// detachSignals takes an exited process's signal socket from the hub.
func (z *zygote) detachSignals(w *zygoteWorker) {
	z.mu.Lock()
	conn := w.signals
	w.signals = nil
	z.mu.Unlock()
	if conn != nil {
		z.signals.detach(w.kind, w.num, conn)
	}
}

// zygoteWorker is a worker the zygote forked: its child, not the master's,
// so its exit arrives as the zygote's X message.
type zygoteWorker struct {
	id     int
	once   sync.Once
	exited chan struct{}
	status syscall.WaitStatus
	// kind, num and signals: what it is (a worker, a mule, a spooler), its
	// number and the master's end of its signal socket, attached to the
	// zygote's hub; guarded by the zygote's mu.
	kind    string
	num     int
	signals *net.UnixConn
}

func (w *zygoteWorker) pid() int { return w.id }

// kill SIGKILLs the worker unless it has been reaped, when its pid may be
// someone else's.
func (w *zygoteWorker) kill() {
	select {
	case <-w.exited:
	default:
		unix.Kill(w.id, unix.SIGKILL)
	}
}

func (w *zygoteWorker) wait() (*syscall.WaitStatus, error) {
	<-w.exited
	return &w.status, nil
}

func (w *zygoteWorker) end(status syscall.WaitStatus) {
	w.once.Do(func() {
		w.status = status
		close(w.exited)
	})
}
