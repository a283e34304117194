// The request table: one entry per request in flight in a generation of
// workers, in memory the master and every worker of the generation share.
// It lets requests go to the workers on one queue that every slot reads
// (the kernel hands each message to one reader) and still be run at most
// once, and lets a worker end a response without waking the master: the
// worker writes the completion into the entry, and sends a frame only when
// the master said it waits for one. pyembed/gw_frame.h mirrors the layout;
// the worker's side is pyembed/gw_worker_requests.c.
//
// Everything the two sides decide together is in one 64-bit word per
// entry, changed only by compare-and-swap or atomic or, so each decision
// has exactly one winner:
//
//	bits 0-31   the request id (its low bits are the entry's index)
//	bits 32-35  the phase: PhaseQueued, PhaseTaken, PhaseDone, PhaseLost
//	bit  36     waiting: the master waits for the response's FrameEnd
//	bits 37-63  the pid of the worker that took it
//
// A pid, not a worker number and slot: numbers are reused by a respawn and
// by a reload's generation while the old one still runs, and the master
// must tell a dead worker's requests from its successor's. Which slot runs
// a request the worker's scoreboard says (its current id).
//
// The master posts a request (QUEUED) before sending it; a worker that reads
// it claims it (QUEUED -> TAKEN, its own slot in the word) before it runs
// anything, and drops a message whose claim fails: a copy of a request the
// master has since given up (LOST) and sent again under a new id. When its
// response has ended the worker stores the completion fields, then moves
// the word TAKEN -> DONE; if the word it replaced had waiting set, it sends
// the FrameEnd. A master that wants the completion sets waiting with an
// atomic or: if the phase it replaced was DONE, the completion is in the
// entry and no frame will come; otherwise the worker's swap will see
// waiting and the frame will come. Either way exactly one of the two
// happens, so the master finalizes a response exactly once.
package wsgi

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"unsafe"
)

// QueueFrameCap is the largest request frame the master sends on a
// generation's shared queue, as one message (SOCK_SEQPACKET); a bigger one
// goes on a slot socket.
const QueueFrameCap = 64 << 10

// Request table entry layout, in bytes from the start of an entry. The
// completion fields are written by the worker before it moves the word to
// PhaseDone, and read by the master only after it saw PhaseDone.
const (
	RequestEntryLen = 64 // one cache line per entry

	reqWord      = 0  // uint64: the word described above
	reqStatus    = 8  // uint32: the status code sent, 0 when no head was
	reqFlags     = 12 // uint32: CompletionKeepAlive, reqFlagBroken, reqFlagFrameFollows; from bit CompletionFieldsShift up, the head's header fields
	reqHeadBytes = 16 // uint64: the head's size as sent
	reqBodyBytes = 24 // uint64: the body's size as sent
	reqTakenNS   = 32 // int64: CLOCK_REALTIME nanoseconds the worker claimed it

	// reqFlagBroken in the flags word: the response did not end cleanly.
	reqFlagBroken = 2
	// reqFlagFrameFollows: the worker sends the FrameEnd whether or not
	// the master waits, because it carries what the entry cannot (the log
	// variables the app set, uwsgi.set_logvar), or because the HTTP
	// connection closes after the response, which the client sees only
	// once the master closes its copy too.
	reqFlagFrameFollows = 4
)

// Phase is where a request is in its entry's word.
type Phase uint8

// The phases; pyembed/gw_frame.h mirrors the numbers.
const (
	PhaseFree   Phase = 0 // no request in the entry
	PhaseQueued Phase = 1 // sent on the queue, no worker has claimed it
	PhaseTaken  Phase = 2 // a worker claimed it and may have run it
	PhaseDone   Phase = 3 // its response ended; the completion is in the entry
	PhaseLost   Phase = 4 // the master gave it up before any worker claimed it
)

// The word's fields.
const (
	wordPhaseShift = 32
	wordPhaseMask  = 0xf << wordPhaseShift
	wordWaiting    = 1 << 36
	wordPIDShift   = 37
	maxTakerPID    = 1<<(64-wordPIDShift) - 1
	requestIDMask  = 1<<32 - 1
)

// RequestWord is a decoded word of an entry.
type RequestWord struct {
	ID      uint32
	Phase   Phase
	Waiting bool
	PID     int // the pid of the worker that took it; 0 unless taken or done
}

// DecodeRequestWord splits a word into its fields.
func DecodeRequestWord(w uint64) RequestWord {
	return RequestWord{
		ID:      uint32(w & requestIDMask),
		Phase:   Phase((w & wordPhaseMask) >> wordPhaseShift),
		Waiting: w&wordWaiting != 0,
		PID:     int(w >> wordPIDShift),
	}
}

// EncodeRequestWord is DecodeRequestWord's inverse.
func EncodeRequestWord(r RequestWord) uint64 {
	w := uint64(r.ID) | uint64(r.Phase)<<wordPhaseShift
	if r.Waiting {
		w |= wordWaiting
	}
	return w | uint64(r.PID)<<wordPIDShift
}

// RequestTable is the master's view of a generation's table. The zero
// RequestTable has no entries.
type RequestTable struct {
	mem []byte
}

var (
	errRequestTableSize = errors.New("wsgi: request table memory is not a power of two of whole entries")
	errNotThisRequest   = errors.New("wsgi: the request table entry holds another request")
)

// NewRequestTable returns a view of mem, which must hold a power of two of
// entries (so an id's low bits name its entry) and be 8-byte aligned (an
// mmap'd region is).
func NewRequestTable(mem []byte) (RequestTable, error) {
	n := len(mem) / RequestEntryLen
	if n == 0 || len(mem)%RequestEntryLen != 0 || n&(n-1) != 0 {
		return RequestTable{}, errRequestTableSize
	}
	return RequestTable{mem: mem}, nil
}

// Claims returns how many requests workers have claimed since the table
// was made: a count in entry 0, which no request uses (ids whose low bits
// are 0 are never handed out).
func (t RequestTable) Claims() uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&t.mem[reqWord])))
}

// Entries returns the number of entries.
func (t RequestTable) Entries() int { return len(t.mem) / RequestEntryLen }

// Entry returns request id's entry, for handing to C.
func (t RequestTable) Entry(id uint32) []byte {
	i := t.index(id)
	return t.mem[i*RequestEntryLen : (i+1)*RequestEntryLen]
}

func (t RequestTable) index(id uint32) int { return int(id) & (t.Entries() - 1) }

func (t RequestTable) word(id uint32) *uint64 {
	return (*uint64)(unsafe.Pointer(&t.mem[t.index(id)*RequestEntryLen+reqWord]))
}

// Load returns request id's entry's word as it is now.
func (t RequestTable) Load(id uint32) RequestWord {
	return DecodeRequestWord(atomic.LoadUint64(t.word(id)))
}

// Post readies id's entry for the request before it is sent: queued, and
// waiting already when the master wants the FrameEnd in any case (eager).
// The entry must be free: the caller owns the ids whose entries are in use.
func (t RequestTable) Post(id uint32, eager bool) {
	atomic.StoreUint64(t.word(id), EncodeRequestWord(RequestWord{ID: id, Phase: PhaseQueued, Waiting: eager}))
}

// Free marks id's entry unused, once its request is over.
func (t RequestTable) Free(id uint32) { atomic.StoreUint64(t.word(id), 0) }

// Await says the master waits for request id's FrameEnd and returns the
// word as it was just before: PhaseDone means the completion is already in
// the entry (Completion) and no FrameEnd will come; any other phase means
// the worker, if it ends the response, will send it.
func (t RequestTable) Await(id uint32) (RequestWord, error) {
	w := DecodeRequestWord(atomic.OrUint64(t.word(id), wordWaiting))
	if w.ID != id {
		return w, errNotThisRequest
	}
	return w, nil
}

// Withdraw gives up request id if no worker has claimed it, so that a copy
// still in the queue is dropped by whichever worker reads it; it reports
// whether it did. Then the request may be sent again under a new id.
func (t RequestTable) Withdraw(id uint32) bool {
	p := t.word(id)
	for {
		old := atomic.LoadUint64(p)
		w := DecodeRequestWord(old)
		if w.ID != id || w.Phase != PhaseQueued {
			return false
		}
		lost := old&^wordPhaseMask | uint64(PhaseLost)<<wordPhaseShift
		if atomic.CompareAndSwapUint64(p, old, lost) {
			return true
		}
	}
}

// Completion returns the completion the worker stored in request id's
// entry; call it only once the word showed PhaseDone, and FrameFollows
// said no.
func (t RequestTable) Completion(id uint32) Completion {
	e := t.Entry(id)
	flags := binary.LittleEndian.Uint32(e[reqFlags:])
	return Completion{
		Status:     int(binary.LittleEndian.Uint32(e[reqStatus:])),
		KeepAlive:  flags&CompletionKeepAlive != 0,
		HeadBytes:  int64(binary.LittleEndian.Uint64(e[reqHeadBytes:])),
		BodyBytes:  int64(binary.LittleEndian.Uint64(e[reqBodyBytes:])),
		HeadFields: int(flags >> CompletionFieldsShift),
		Broken:     flags&reqFlagBroken != 0,
	}
}

// FrameFollows reports whether the worker sends request id's FrameEnd
// even though the master did not wait for it; call it only once the word
// showed PhaseDone. The master then finalizes from the frame, not the entry.
func (t RequestTable) FrameFollows(id uint32) bool {
	return binary.LittleEndian.Uint32(t.Entry(id)[reqFlags:])&reqFlagFrameFollows != 0
}

// TakenNS returns when a worker claimed request id, in Unix nanoseconds,
// for the queue-wait metric; call it only once the word left PhaseQueued.
func (t RequestTable) TakenNS(id uint32) int64 {
	return int64(atomic.LoadUint64((*uint64)(unsafe.Pointer(&t.Entry(id)[reqTakenNS]))))
}
