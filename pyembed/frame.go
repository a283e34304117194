// The numbers gw_frame.h mirrors from the wsgi package, paired up so a test
// can check that the C side agrees with the Go side's wire format.
package pyembed

/*
#include "gw_frame.h"
*/
import "C"

import "github.com/gowsgi/gowsgi/wsgi"

// frameConstants pairs each number of gw_frame.h with the wsgi package's.
// The scoreboard offsets are unexported there; the tests check them by
// behaviour, through wsgi.Scoreboard.
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
	{"FlagBodySpooled", C.GW_FLAG_BODY_SPOOLED, int64(wsgi.FlagBodySpooled)},
	{"FlagEndBroken", C.GW_FLAG_END_BROKEN, int64(wsgi.FlagEndBroken)},
	{"SlotRecordLen", C.GW_SLOT_RECORD_LEN, wsgi.SlotRecordLen},
}
