// Slots: each is one OS thread with its own Python thread state that serves
// the requests of one slot socket. A worker serves its slots in C without
// Go (gw_worker_loop.c, from the zygote); Slot serves one request at a time from
// Go, for CGI mode and for tests and benchmarks of the per-request path.
package pyembed

/*
#include "gw.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/gowsgi/gowsgi/wsgi"
)

// Slot serves requests on one slot socket. It must be used only from the
// goroutine that created it, which has called runtime.LockOSThread for the
// rest of its life: the Python thread state belongs to that OS thread.
type Slot struct {
	c *C.gw_slot
}

var (
	errShortRecord = errors.New("pyembed: scoreboard record shorter than wsgi.SlotRecordLen")
	errNoMemory    = errors.New("pyembed: out of memory creating a slot")
	errEmptyFrame  = errors.New("pyembed: empty request frame")
)

// NewSlot creates a slot writing response frames to fd and keeping record,
// its scoreboard record, up to date. record must outlive the slot and must
// not be Go heap memory, since C keeps it: pass a record of the mmap'd
// scoreboard. Init must have succeeded.
func NewSlot(fd int, record []byte) (*Slot, error) {
	if len(record) < wsgi.SlotRecordLen {
		return nil, errShortRecord
	}
	c := C.gw_slot_new(C.int(fd), (*C.uint8_t)(unsafe.Pointer(&record[0])))
	if c == nil {
		return nil, errNoMemory
	}
	return &Slot{c: c}, nil
}

// Serve runs one request: payload is a FrameRequest's payload, id and flags
// its header's, and bodyFD the descriptor that came with it (the spooled
// body's, with wsgi.FlagBodySpooled), or -1; the slot takes bodyFD over and
// closes it. The response's frames are written to the slot socket when
// flush is set (pass true when no further request is already waiting) or
// when the response streams. It returns an error only when the slot socket
// is broken, which means the master has gone.
func (s *Slot) Serve(id uint32, flags uint8, payload []byte, bodyFD int, flush bool) error {
	return s.ServeDirect(id, flags, payload, -1, bodyFD, flush)
}

// ServeDirect is Serve for a request the worker answers on the client's
// connection itself (wsgi.FlagDirect): clientFD is the connection's
// descriptor, which the slot takes over and closes once the response has
// been written or handed to the slot socket; only the response's FrameEnd,
// with its completion record, or a hand-off goes to the slot socket.
func (s *Slot) ServeDirect(id uint32, flags uint8, payload []byte, clientFD, bodyFD int, flush bool) error {
	if len(payload) == 0 {
		for _, fd := range []int{clientFD, bodyFD} {
			if fd >= 0 {
				syscall.Close(fd)
			}
		}
		return errEmptyFrame
	}
	rc, err := C.gw_slot_serve(s.c, C.uint32_t(id), C.uint8_t(flags), (*C.char)(unsafe.Pointer(&payload[0])),
		C.size_t(len(payload)), C.int(clientFD), C.int(bodyFD), cBool(flush))
	if rc != 0 {
		return fmt.Errorf("pyembed: writing to the slot socket: %w", err)
	}
	return nil
}

// Close writes out any response still buffered and frees the slot and its
// thread state. It must run on the slot's goroutine.
func (s *Slot) Close() {
	C.gw_slot_close(s.c)
	s.c = nil
}

// respondersMade returns how many start_response callables the slot has
// made: one serves request after request while no app keeps it.
func (s *Slot) respondersMade() uint64 { return uint64(s.c.responders_made) }
