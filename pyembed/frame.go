// The numbers gw_frame.h mirrors from the wsgi package, paired up so a test
// can check that the C side agrees with the Go side's wire format; the
// worker's scoreboard stores, one at a time, so a test can check how the
// master reads every state a slot record passes through; and the worker's
// request table operations, so a test can race them against the master's.
package pyembed

/*
#include "gw.h"
*/
import "C"

import (
	"unsafe"

	"github.com/gowsgi/gowsgi/wsgi"
)

// frameConstants pairs each number of gw_frame.h with the wsgi package's.
// The numbers wsgi keeps unexported (cVarLimit, cSlotOffsets) the tests
// check by behaviour, through wsgi.Vars and wsgi.Scoreboard.
var frameConstants = []struct {
	name    string
	c, wsgi int64
}{
	{"FrameHeaderLen", C.GW_FRAME_HEADER_LEN, wsgi.FrameHeaderLen},
	{"MaxFramePayload", C.GW_MAX_FRAME_PAYLOAD, wsgi.MaxFramePayload},
	{"FrameRequest", C.GW_FRAME_REQUEST, int64(wsgi.FrameRequest)},
	{"FrameHead", C.GW_FRAME_HEAD, int64(wsgi.FrameHead)},
	{"FrameBody", C.GW_FRAME_BODY, int64(wsgi.FrameBody)},
	{"FrameFile", C.GW_FRAME_FILE, int64(wsgi.FrameFile)},
	{"FrameEnd", C.GW_FRAME_END, int64(wsgi.FrameEnd)},
	{"FrameHandoff", C.GW_FRAME_HANDOFF, int64(wsgi.FrameHandoff)},
	{"FrameRaw", C.GW_FRAME_RAW, int64(wsgi.FrameRaw)},
	{"FlagDirect", C.GW_FLAG_DIRECT, int64(wsgi.FlagDirect)},
	{"FlagPosted", C.GW_FLAG_POSTED, int64(wsgi.FlagPosted)},
	{"QueueFrameCap", C.GW_QUEUE_FRAME_CAP, wsgi.QueueFrameCap},
	{"FramingHTTPHead", C.GW_FRAMING_HTTP_HEAD, int64(wsgi.FramingHTTPHead)},
	{"FramingCGI", C.GW_FRAMING_CGI, int64(wsgi.FramingCGI)},
	{"FramingHTTP1", C.GW_FRAMING_HTTP1, int64(wsgi.FramingHTTP1)},
	{"HTTP11", C.GW_HTTP_11, int64(wsgi.HTTP11)},
	{"HTTPHead", C.GW_HTTP_HEAD, int64(wsgi.HTTPHead)},
	{"HTTPWantsClose", C.GW_HTTP_WANTS_CLOSE, int64(wsgi.HTTPWantsClose)},
	{"HTTPKeep10", C.GW_HTTP_KEEP10, int64(wsgi.HTTPKeep10)},
	{"HTTPStopping", C.GW_HTTP_STOPPING, int64(wsgi.HTTPStopping)},
	{"HTTPUpgrade", C.GW_HTTP_UPGRADE, int64(wsgi.HTTPUpgrade)},
	{"CompletionLen", C.GW_COMPLETION_LEN, wsgi.CompletionLen},
	{"CompletionKeepAlive", C.GW_COMPLETION_KEEP_ALIVE, wsgi.CompletionKeepAlive},
	{"CompletionFieldsShift", C.GW_COMPLETION_FIELDS_SHIFT, wsgi.CompletionFieldsShift},
	{"FlagBodySpooled", C.GW_FLAG_BODY_SPOOLED, int64(wsgi.FlagBodySpooled)},
	{"FlagEndBroken", C.GW_FLAG_END_BROKEN, int64(wsgi.FlagEndBroken)},
	{"SlotRecordLen", C.GW_SLOT_RECORD_LEN, wsgi.SlotRecordLen},
	{"RequestEntryLen", C.GW_REQUEST_ENTRY_LEN, wsgi.RequestEntryLen},
	{"PhaseQueued", C.GW_PHASE_QUEUED, int64(wsgi.PhaseQueued)},
	{"PhaseTaken", C.GW_PHASE_TAKEN, int64(wsgi.PhaseTaken)},
	{"PhaseDone", C.GW_PHASE_DONE, int64(wsgi.PhaseDone)},
	{"PhaseLost", C.GW_PHASE_LOST, int64(wsgi.PhaseLost)},
}

// cVarLimit is the longest key or value the C side reads from a vars block.
const cVarLimit = int(C.GW_MAX_VAR_LEN)

// The zygote's message limits, shared with gw_zygote.c: how many
// descriptors one message to it carries, and the longest message it sends.
const (
	ZygoteFDsPerMsg = int(C.GW_ZYGOTE_FDS_PER_MSG)
	ZygoteMsgCap    = int(C.GW_ZYGOTE_MSG_CAP)
)

// cSlotOffsets are the byte offsets of a slot record's words in C.
var cSlotOffsets = struct{ currentID, abortID, startedNS, served, userHarakiriNS int }{
	C.GW_SLOT_CURRENT_ID, C.GW_SLOT_ABORT_ID, C.GW_SLOT_STARTED_NS, C.GW_SLOT_SERVED, C.GW_SLOT_USER_HARAKIRI_NS,
}

// claimRequest claims request id in its table entry for worker pid, as a
// slot that read it from the queue does; it reports whether it may run it.
func claimRequest(entry []byte, id uint32, pid int) bool {
	return C.gw_request_claim((*C.uint8_t)(unsafe.Pointer(&entry[0])), C.uint32_t(id), C.pid_t(pid)) == 1
}

// endRequest stores c in request id's entry and marks it done, as a slot
// ending a response does (frameFollows: with log variables to send); it
// returns 1 when the slot sends the FrameEnd, 0 when the master will read
// the entry, -1 when the worker had not claimed the request.
func endRequest(entry []byte, id uint32, c wsgi.Completion, frameFollows bool) int {
	return int(C.gw_request_done((*C.uint8_t)(unsafe.Pointer(&entry[0])), C.uint32_t(id), C.uint32_t(c.Status),
		cBool(c.KeepAlive), cBool(c.Broken), cBool(frameFollows), C.uint32_t(c.HeadFields), C.uint64_t(c.HeadBytes),
		C.uint64_t(c.BodyBytes)))
}

// serveDirectClaimed is Slot.ServeDirect for a request the slot claimed in
// entry (mapped memory, not Go's), as the worker loop serves one: the
// response's end goes into the entry, and a FrameEnd only when the master
// waits for it or must have it.
func (s *Slot) serveDirectClaimed(entry []byte, id uint32, flags uint8, payload []byte, clientFD int) error {
	s.c.request_entry = (*C.uint8_t)(unsafe.Pointer(&entry[0]))
	defer func() { s.c.request_entry = nil }()
	return s.ServeDirect(id, flags, payload, clientFD, -1, true)
}

// The stores a slot makes to its scoreboard record over one request
// (gw_record_stores), and how many of them come before the app is called.
const (
	recordStores          = int(C.GW_STORES)
	recordStoresBeforeApp = int(C.GW_STORES_BEFORE_APP)
)

// storeRecord makes stores [from, to) of request id to record, as a slot
// serving it does.
func storeRecord(record []byte, id uint32, from, to int) {
	C.gw_record_stores((*C.uint8_t)(unsafe.Pointer(&record[0])), C.uint32_t(id), C.int(from), C.int(to))
}
