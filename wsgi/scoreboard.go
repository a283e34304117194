// The scoreboard: a small shared-memory table, one record per worker slot,
// that the master creates (a memfd) and every worker maps. It lets the two
// sides exchange a word without a frame on the socketpair, which is busy
// carrying requests: the worker says what it is running and since when, the
// master says which request's client has gone away. pyembed/gw_frame.h
// mirrors the offsets.
package wsgi

import (
	"errors"
	"sync/atomic"
	"unsafe"
)

// Slot record layout, in bytes from the start of a slot's record. Each field
// is naturally aligned and accessed atomically by both processes. Over one
// request the worker stores, in this order (pyembed/gw_wsgi_serve.c,
// gw_record_stores, and Begin and Finish below): started, the id, then after
// the app's response the served count, and only then the id back to 0, so
// harakiri and the stats never see a request counted before it ran. A worker writing a response to the client itself
// (FlagDirect) also stores the request's id in headOut before its first
// write to the client, so a master that finds the worker dead knows whether
// any byte of the head may have left (HeadMayHaveLeft).
const (
	SlotRecordLen = 64 // one cache line per slot, so slots do not false-share

	slotCurrentID = 0  // uint32: id of the request running, 0 when idle (worker writes)
	slotAbortID   = 4  // uint32: id of a request whose client left (master writes)
	slotStartedNS = 8  // int64: CLOCK_REALTIME nanoseconds the request started (worker writes)
	slotServed    = 16 // uint64: requests completed by this slot (worker writes)
	slotHeadOut   = 24 // uint32: id of the last request the worker began writing to its client (worker writes)
	slotHeadCode  = 28 // uint32: that response's status code, stored before the id (worker writes)
	// int64: CLOCK_REALTIME nanoseconds by which what the slot runs must
	// have ended, set by uwsgi.set_user_harakiri; 0 for none (worker writes)
	slotUserHarakiriNS = 32
)

// Scoreboard is a view of the shared table. The zero Scoreboard has no slots.
type Scoreboard struct {
	mem []byte
}

var errScoreboardSize = errors.New("wsgi: scoreboard memory is not a whole number of slot records")

// NewScoreboard returns a view of mem, which must hold whole slot records and
// be 8-byte aligned (an mmap'd region is).
func NewScoreboard(mem []byte) (Scoreboard, error) {
	if len(mem)%SlotRecordLen != 0 {
		return Scoreboard{}, errScoreboardSize
	}
	return Scoreboard{mem: mem}, nil
}

// Slots returns the number of slot records.
func (s Scoreboard) Slots() int { return len(s.mem) / SlotRecordLen }

// Record returns slot i's record, for handing to C.
func (s Scoreboard) Record(i int) []byte { return s.mem[i*SlotRecordLen : (i+1)*SlotRecordLen] }

func (s Scoreboard) u32(slot, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&s.mem[slot*SlotRecordLen+off]))
}

func (s Scoreboard) u64(slot, off int) *uint64 {
	return (*uint64)(unsafe.Pointer(&s.mem[slot*SlotRecordLen+off]))
}

// CurrentID returns the id of the request slot is running, 0 when idle.
func (s Scoreboard) CurrentID(slot int) uint32 { return atomic.LoadUint32(s.u32(slot, slotCurrentID)) }

// StartedNS returns when slot's current request started, in Unix nanoseconds.
func (s Scoreboard) StartedNS(slot int) int64 {
	return int64(atomic.LoadUint64(s.u64(slot, slotStartedNS)))
}

// UserHarakiriNS returns the deadline the app set for what slot runs
// (uwsgi.set_user_harakiri), in Unix nanoseconds; 0 when none.
func (s Scoreboard) UserHarakiriNS(slot int) int64 {
	return int64(atomic.LoadUint64(s.u64(slot, slotUserHarakiriNS)))
}

// Served returns how many requests slot has completed.
func (s Scoreboard) Served(slot int) uint64 { return atomic.LoadUint64(s.u64(slot, slotServed)) }

// Abort tells slot that the client of request id has gone, so the worker stops
// producing its body and closes the app's iterable.
func (s Scoreboard) Abort(slot int, id uint32) { atomic.StoreUint32(s.u32(slot, slotAbortID), id) }

// Begin records that slot started request id at startedNS, as the worker's
// C side does: the start time first, so a reader who sees the id sees when
// it started.
func (s Scoreboard) Begin(slot int, id uint32, startedNS int64) {
	atomic.StoreUint64(s.u64(slot, slotStartedNS), uint64(startedNS))
	atomic.StoreUint32(s.u32(slot, slotCurrentID), id)
}

// Finish records that slot completed its current request, as the worker's C
// side does: counted before the id is cleared.
func (s Scoreboard) Finish(slot int) {
	atomic.AddUint64(s.u64(slot, slotServed), 1)
	atomic.StoreUint32(s.u32(slot, slotCurrentID), 0)
}

// MarkHeadOut records, as the worker's C side does before its first write
// to the client of request id, that a head with status code may be
// leaving: the code first, so a reader who sees the id sees its code.
func (s Scoreboard) MarkHeadOut(slot int, id uint32, code int) {
	atomic.StoreUint32(s.u32(slot, slotHeadCode), uint32(code))
	atomic.StoreUint32(s.u32(slot, slotHeadOut), id)
}

// HeadMayHaveLeft reports whether any byte of request id's response may have
// reached its client from the worker, and then the head's status code. The
// id, not a flag, is stored, so a value left by an earlier request never
// answers for this one, and nothing needs clearing between requests.
func (s Scoreboard) HeadMayHaveLeft(slot int, id uint32) (left bool, code int) {
	if atomic.LoadUint32(s.u32(slot, slotHeadOut)) != id {
		return false, 0
	}
	return true, int(atomic.LoadUint32(s.u32(slot, slotHeadCode)))
}
