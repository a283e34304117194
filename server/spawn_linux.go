// Starting a worker process: the OS side of the pool, kept behind the
// launcher interface so tests can start something else in its place. The
// fds a worker inherits are listed in docs/internals.md.
package server

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// launcher starts worker processes.
type launcher interface {
	// prepare readies generation gen for launching without holding up the
	// caller, which a zygote's import of the app would, and calls done from
	// another goroutine with nil or why the generation cannot start.
	prepare(gen int, done func(error))
	// launch starts worker number num of generation gen with threads slots.
	launch(num, gen, threads int) (*launched, error)
	// release says generation gen will start no more workers.
	release(gen int)
}

// process is a started worker process.
type process interface {
	pid() int
	kill()
	// wait returns once the process has exited, with its wait status.
	wait() (*syscall.WaitStatus, error)
}

// launched is a started worker as the pool receives it.
type launched struct {
	proc    process
	control *os.File // read end of the worker's control pipe
	conns   []*net.UnixConn
	board   *board
}

// workerFiles are the master's and the worker's ends of what a worker
// inherits: the control pipe, the scoreboard and one socketpair per slot.
type workerFiles struct {
	control *os.File
	board   *board
	conns   []*net.UnixConn
	child   []*os.File // the worker's ends, in the order of docs/internals.md
}

// newWorkerFiles creates a worker's files for threads slots.
func newWorkerFiles(threads int) (_ *workerFiles, err error) {
	f := &workerFiles{}
	defer func() {
		if err != nil {
			f.closeChild()
			f.closeMaster()
		}
	}()
	controlR, controlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("server: control pipe: %w", err)
	}
	f.control, f.child = controlR, append(f.child, controlW)
	b, boardFile, err := newBoard(threads)
	if err != nil {
		return nil, err
	}
	f.board, f.child = b, append(f.child, boardFile)
	for range threads {
		conn, theirs, err := slotSocketpair()
		if err != nil {
			return nil, err
		}
		f.conns, f.child = append(f.conns, conn), append(f.child, theirs)
	}
	return f, nil
}

// closeChild closes the worker's ends, once it has them or has failed to
// start.
func (f *workerFiles) closeChild() {
	for _, c := range f.child {
		c.Close()
	}
	f.child = nil
}

// closeMaster closes the master's ends of a worker that failed to start.
func (f *workerFiles) closeMaster() {
	if f.control != nil {
		f.control.Close()
	}
	if f.board != nil {
		f.board.release()
	}
	for _, c := range f.conns {
		c.Close()
	}
}

// launched hands the master's ends over to the pool.
func (f *workerFiles) launched(proc process) *launched {
	return &launched{proc: proc, control: f.control, conns: f.conns, board: f.board}
}

// exitAttrs describes how a process ended as log attributes.
func exitAttrs(status *syscall.WaitStatus) []any {
	switch {
	case status == nil:
		return []any{"status", -1}
	case status.Signaled():
		return []any{"signal", status.Signal().String()}
	}
	return []any{"status", status.ExitStatus()}
}

// describeExit describes how a process ended, for a one-line message, in
// the words of os.ProcessState.String.
func describeExit(status *syscall.WaitStatus) string {
	switch {
	case status == nil:
		return "unknown status"
	case status.Signaled():
		return "signal: " + status.Signal().String()
	}
	return "exit status " + strconv.Itoa(status.ExitStatus())
}

// slotSocketpair returns the master's end of a new slot socketpair as a
// connection and the worker's end as a file to inherit.
func slotSocketpair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("server: slot socketpair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "slot")
	theirs := os.NewFile(uintptr(fds[1]), "slot")
	c, err := net.FileConn(mine) // dups the descriptor
	mine.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("server: slot socketpair: %w", err)
	}
	return c.(*net.UnixConn), theirs, nil
}

// board is the master's mapping of one worker's scoreboard. Relays write
// abort words into it from their own goroutines while the pool may unmap it
// when the worker exits, hence the lock.
type board struct {
	mu  sync.RWMutex
	sb  wsgi.Scoreboard
	mem []byte // nil once released

	// ended counts the responses relayed in full, for --max-requests; from
	// recycleAt on, each one kicks the pool to look (0: never).
	ended     atomic.Uint64
	recycleAt uint64
	kick      chan<- struct{}
}

// newBoard creates a scoreboard memfd for slots records and maps it; the
// returned file is for the worker to inherit.
func newBoard(slots int) (*board, *os.File, error) {
	fd, err := unix.MemfdCreate("gowsgi-scoreboard", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("server: scoreboard: %w", err)
	}
	f := os.NewFile(uintptr(fd), "scoreboard")
	size := slots * wsgi.SlotRecordLen
	mem, err := mapShared(fd, size)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	sb, err := wsgi.NewScoreboard(mem)
	if err != nil {
		unix.Munmap(mem)
		f.Close()
		return nil, nil, err
	}
	return &board{sb: sb, mem: mem}, f, nil
}

func mapShared(fd, size int) ([]byte, error) {
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return nil, fmt.Errorf("server: scoreboard: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("server: scoreboard: %w", err)
	}
	return mem, nil
}

// abort stores id in slot's abort word, unless the board is released.
func (b *board) abort(slot int, id uint32) {
	b.mu.RLock()
	if b.mem != nil {
		b.sb.Abort(slot, id)
	}
	b.mu.RUnlock()
}

// served returns slot's served count, or 0 once the board is released.
func (b *board) served(slot int) uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.mem == nil {
		return 0
	}
	return b.sb.Served(slot)
}

// servedTotal returns the requests the worker has served on all its slots,
// or 0 once the board is released.
func (b *board) servedTotal() uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var n uint64
	for i := range b.sb.Slots() {
		n += b.sb.Served(i)
	}
	return n
}

// begun reports whether the worker may have begun request id on slot (see
// wsgi.Scoreboard.Begun). A released board cannot tell, so it says yes.
func (b *board) begun(slot int, id uint32, servedBefore uint64) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.mem == nil {
		return true
	}
	return b.sb.Begun(slot, id, servedBefore)
}

// running returns the request slot is running and when it started, in
// Unix nanoseconds; id is 0 when the slot is idle or the board released.
// The id is read again after the start time so the two belong together.
func (b *board) running(slot int) (id uint32, startedNS int64) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.mem == nil {
		return 0, 0
	}
	id = b.sb.CurrentID(slot)
	startedNS = b.sb.StartedNS(slot)
	if id == 0 || b.sb.CurrentID(slot) != id {
		return 0, 0
	}
	return id, startedNS
}

// responseEnded counts a response relayed in full and, near the worker's
// request limit, tells the pool without waiting for it.
func (b *board) responseEnded() {
	if n := b.ended.Add(1); b.recycleAt != 0 && n >= b.recycleAt {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// release unmaps the board.
func (b *board) release() {
	b.mu.Lock()
	if b.mem != nil {
		unix.Munmap(b.mem)
		b.mem, b.sb = nil, wsgi.Scoreboard{}
	}
	b.mu.Unlock()
}
