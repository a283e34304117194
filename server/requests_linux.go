// The request table and the generations' queues: how requests reach the
// workers without the master choosing a slot, and how a worker ends a
// response without waking the master (wsgi/requests.go has the word's
// protocol). The table is one memfd for the master's life, mapped by every
// zygote and inherited by its workers; its entries are handed out here,
// and an id names its entry, so a frame from any worker finds its job.
// Each generation has its own queue, a SOCK_SEQPACKET socketpair whose
// receiving end its zygote and workers inherit: the master sends a request
// frame as one message, the kernel hands it to one waiting slot, and a
// reload sends to the new generation's queue while the old one drains.
package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/internal/rawsock"
	"github.com/gowsgi/gowsgi/wsgi"
)

// requestEntries is the table's size: the most requests in flight at once,
// a request waits for an entry past it. Its power of two is also how many
// of an id's low bits name the entry.
const (
	requestEntryBits = 14
	requestEntries   = 1 << requestEntryBits
)

// requestTable is the master's side of the table.
type requestTable struct {
	file  *os.File // for the zygotes to inherit
	mem   []byte
	table wsgi.RequestTable
	jobs  []atomic.Pointer[job] // by entry index: the job whose request holds it
	free  chan uint32           // entry indexes not in use; 0 is the header, never handed out
	seq   []uint32              // by entry index: how often it was handed out, the id's high bits
	sent  atomic.Int64          // posted requests sent
	gone  atomic.Int64          // of those, withdrawn before any worker claimed them
}

func newRequestTable() (*requestTable, error) {
	fd, err := unix.MemfdCreate("gowsgi-requests", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("server: request table: %w", err)
	}
	f := os.NewFile(uintptr(fd), "requests")
	mem, err := mapShared(fd, requestEntries*wsgi.RequestEntryLen, "request table")
	if err != nil {
		f.Close()
		return nil, err
	}
	table, err := wsgi.NewRequestTable(mem)
	if err != nil {
		unix.Munmap(mem)
		f.Close()
		return nil, fmt.Errorf("server: request table: %w", err)
	}
	t := &requestTable{file: f, mem: mem, table: table, jobs: make([]atomic.Pointer[job], requestEntries),
		free: make(chan uint32, requestEntries), seq: make([]uint32, requestEntries)}
	for i := uint32(1); i < requestEntries; i++ {
		t.free <- i
	}
	return t, nil
}

// take gives j an entry and the id that names it, waiting while every
// entry is in use; it fails only when ctx is done or stop is closed.
func (t *requestTable) take(ctx context.Context, stop <-chan struct{}, j *job) error {
	var i uint32
	select {
	case i = <-t.free:
	default:
		select {
		case i = <-t.free:
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-stop:
			return errStopped
		}
	}
	// The entry is this goroutine's until put back, so its count needs no
	// lock. The id's high bits change each time, so a stale copy of an
	// earlier request in the queue never claims a later one; they start at
	// 1, so no id is 0, the scoreboard's "idle".
	t.seq[i]++
	if t.seq[i] >= 1<<(32-requestEntryBits) {
		t.seq[i] = 1
	}
	j.mu.Lock()
	j.id = t.seq[i]<<requestEntryBits | i
	j.mu.Unlock()
	t.jobs[i].Store(j)
	return nil
}

// put gives j's entry back once no frame and no worker can refer to its
// request any more: its response is over, or it was withdrawn.
func (t *requestTable) put(j *job) {
	i := j.id & (requestEntries - 1)
	t.jobs[i].Store(nil)
	t.table.Free(j.id)
	t.free <- i
}

// job returns the job whose request is id, or nil.
func (t *requestTable) job(id uint32) *job {
	j := t.holder(id)
	if j == nil || j.currentID() != id {
		return nil
	}
	return j
}

// holder returns the job holding id's entry, whichever request it serves.
func (t *requestTable) holder(id uint32) *job { return t.jobs[id&(requestEntries-1)].Load() }

// each calls f for every job holding an entry.
func (t *requestTable) each(f func(j *job)) {
	for i := range t.jobs {
		if j := t.jobs[i].Load(); j != nil {
			f(j)
		}
	}
}

// withdraw gives up j's request if no worker claimed it; see
// wsgi.RequestTable.Withdraw.
func (t *requestTable) withdraw(j *job) bool {
	if !t.table.Withdraw(j.id) {
		return false
	}
	t.gone.Add(1)
	return true
}

// queued returns how many requests sent wait in a queue, claimed by no
// worker yet (--listen, readiness, listen_queue).
func (t *requestTable) queued() int64 {
	return max(t.sent.Load()-t.gone.Load()-int64(t.table.Claims()), 0)
}

// genQueue is one generation's queue: the master's sending end, and the
// receiving end its zygotes inherit.
//
// The sending end stays out of Go's netpoller, which watches every
// descriptor for writability too: a unix datagram socket reports itself
// writable each time its peer takes a message, so every request a worker
// took woke the master's thread for nothing (one wake-up a request,
// measured with perf on the workers' recvmsg path). It is sent on with
// raw calls that do not block, and a full queue is waited out with poll.
type genQueue struct {
	gen    int
	out    *os.File // blocking mode, so os.File leaves it unpolled
	outRaw syscall.RawConn
	theirs *os.File

	// served is set once the dispatcher sent requests on it; from then on
	// the dispatcher closes it, when a newer generation's replaces it.
	served atomic.Bool

	closing atomic.Bool // set first, so a sender waiting on a full queue gives up
	mu      sync.Mutex
	closed  bool

	senders sync.Pool // *queueSender
}

func newGenQueue(gen int) (*genQueue, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("server: request queue: %w", err)
	}
	// The send buffer bounds what waits in the queue (a small request
	// costs about 1.3 KB of it); the kernel caps it at wmem_max.
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	out, theirs := os.NewFile(uintptr(fds[0]), "queue"), os.NewFile(uintptr(fds[1]), "queue")
	raw, err := out.SyscallConn()
	if err != nil {
		out.Close()
		theirs.Close()
		return nil, fmt.Errorf("server: request queue: %w", err)
	}
	q := &genQueue{gen: gen, out: out, outRaw: raw, theirs: theirs}
	q.senders.New = func() any { return newQueueSender(q) }
	return q, nil
}

// send writes one request frame as one message, with the descriptors it
// calls for. While the queue is full it waits, until the queue is closed.
func (q *genQueue) send(frame []byte, client syscall.RawConn, body *os.File) error {
	s := q.senders.Get().(*queueSender)
	defer q.senders.Put(s)
	switch {
	case body != nil: // a spooled body: rare enough for the general way
		return withRights(client, body, func(rights []byte) error {
			return s.sock.SendMsgUnpolled(frame, rights, s.stop)
		})
	case client == nil:
		return s.sock.SendMsgUnpolled(frame, nil, s.stop)
	}
	s.frame = frame
	if err := client.Control(s.withClient); err != nil {
		return fmt.Errorf("server: sending a descriptor with a request: %w", err)
	}
	err := s.err
	s.frame, s.err = nil, nil
	return err
}

// queueSender sends on a queue for one goroutine at a time. Its callbacks
// are bound once and its SCM_RIGHTS message is filled in place, so sending
// a request with its client's descriptor, a few times per request at
// most, allocates nothing.
type queueSender struct {
	sock       *rawsock.Socket
	stop       func() bool
	rights     []byte // SCM_RIGHTS for one descriptor
	frame      []byte
	err        error
	withClient func(fd uintptr)
}

func newQueueSender(q *genQueue) *queueSender {
	s := &queueSender{sock: rawsock.NewSocket(q.outRaw), stop: q.closing.Load, rights: unix.UnixRights(0)}
	s.withClient = s.sendWithClient
	return s
}

// sendWithClient sends the frame with fd, the client's descriptor, which
// its Control keeps open meanwhile.
func (s *queueSender) sendWithClient(fd uintptr) {
	binary.NativeEndian.PutUint32(s.rights[unix.CmsgLen(0):], uint32(fd))
	s.err = s.sock.SendMsgUnpolled(s.frame, s.rights, s.stop)
}

// close ends the queue: its workers read what is left, then its end.
func (q *genQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closing.Store(true)
	if !q.closed {
		q.closed = true
		q.out.Close()
		q.theirs.Close()
	}
}
