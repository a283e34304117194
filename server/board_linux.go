// The master's side of a worker's scoreboard (wsgi/scoreboard.go): a memfd
// the worker inherits and both map shared, where the worker records each
// slot's current request and served count and the master writes abort
// words; the pool reads it for --harakiri, recycling and the stats, and
// the dispatcher to decide whether a lost worker had begun a request.
package server

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/gowsgi/gowsgi/wsgi"
	"golang.org/x/sys/unix"
)

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
	mem, err := mapShared(fd, size, "scoreboard")
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

// mapShared sizes the memfd fd and maps it shared; what names it in errors.
func mapShared(fd, size int, what string) ([]byte, error) {
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return nil, fmt.Errorf("server: %s: %w", what, err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("server: %s: %w", what, err)
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

// currentID returns the request slot is running, 0 when idle or the board
// released.
func (b *board) currentID(slot int) uint32 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.mem == nil {
		return 0
	}
	return b.sb.CurrentID(slot)
}

// headOutAnywhere reports whether the worker may have written bytes of
// request id's response to its client, on any of its slots (a request
// taken from the shared queue may have run on any), and the head's status
// code (wsgi.Scoreboard.HeadMayHaveLeft). A released board cannot tell, so
// it says yes, with no code.
func (b *board) headOutAnywhere(id uint32) (bool, int) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.mem == nil {
		return true, 0
	}
	for i := range b.sb.Slots() {
		if left, code := b.sb.HeadMayHaveLeft(i, id); left {
			return true, code
		}
	}
	return false, 0
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

// userHarakiri returns the deadline the app set for slot, in Unix
// nanoseconds; 0 when none or the board released.
func (b *board) userHarakiri(slot int) int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.mem == nil {
		return 0
	}
	return b.sb.UserHarakiriNS(slot)
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
