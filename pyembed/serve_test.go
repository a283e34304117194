// Tests of a slot serving requests: the response frames the master would
// receive for each WSGI behaviour, checked byte for byte.
package pyembed

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

var (
	textPlain     = [2]string{"Content-Type", "text/plain"}
	errorHeaders  = [][2]string{textPlain, {"Content-Length", "21"}}
	errorResponse = "Internal Server Error"
)

func TestFrameConstantsMatchWSGI(t *testing.T) {
	for _, c := range frameConstants {
		assert.Equal(t, c.wsgi, c.c, c.name)
	}
	t.Run("vars block limit", func(t *testing.T) {
		var longest, over wsgi.Vars
		longest.Add("K", strings.Repeat("x", cVarLimit))
		over.Add("K", strings.Repeat("x", cVarLimit+1))
		assert.NoError(t, longest.Err(), "wsgi refuses what C reads")
		assert.ErrorIs(t, over.Err(), wsgi.ErrVarTooLong, "wsgi sends what C refuses")
	})
	t.Run("slot record offsets", func(t *testing.T) {
		// Each word the master stores, read where C reads it.
		mem := make([]uint64, wsgi.SlotRecordLen/8) // 8-byte aligned, as an mmap is
		record := unsafe.Slice((*byte)(unsafe.Pointer(&mem[0])), wsgi.SlotRecordLen)
		board, err := wsgi.NewScoreboard(record)
		require.NoError(t, err)
		u32 := func(off int) uint32 { return binary.NativeEndian.Uint32(record[off:]) }
		u64 := func(off int) uint64 { return binary.NativeEndian.Uint64(record[off:]) }
		board.Begin(0, 0x01020304, 0x0a0b0c0d0e0f1011)
		board.Abort(0, 0x05060708)
		assert.Equal(t, uint32(0x01020304), u32(cSlotOffsets.currentID), "current id")
		assert.Equal(t, uint64(0x0a0b0c0d0e0f1011), u64(cSlotOffsets.startedNS), "started")
		assert.Equal(t, uint32(0x05060708), u32(cSlotOffsets.abortID), "abort id")
		board.Finish(0)
		assert.Equal(t, uint64(1), u64(cSlotOffsets.served), "served")
		assert.Equal(t, uint32(0), u32(cSlotOffsets.currentID), "current id once finished")
		// And the word the worker stores, read where the master reads it.
		binary.NativeEndian.PutUint64(record[cSlotOffsets.userHarakiriNS:], 0x1112131415161718)
		assert.Equal(t, int64(0x1112131415161718), board.UserHarakiriNS(0), "user harakiri")
	})
}

func TestServeResponses(t *testing.T) {
	h := newSlotHarness(t)
	tests := []struct {
		name, method, path, query string
		status                    string
		headers                   [][2]string
		body                      string
		bodyFrames                int
		endFlags                  uint8
	}{
		{"hello", "GET", "/hello", "", "200 OK", [][2]string{textPlain, {"Content-Length", "13"}}, "Hello World!\n", 1, 0},
		{"HEAD sends no body", "HEAD", "/hello", "", "200 OK", [][2]string{textPlain, {"Content-Length", "13"}}, "", 0, 0},
		{"not found", "GET", "/nowhere", "", "404 Not Found", [][2]string{textPlain}, "not found", 1, 0},
		{"write then return", "GET", "/write", "", "200 OK", [][2]string{textPlain}, "abc", 3, 0},
		{"exc_info replaces the head", "GET", "/exc-info", "", "503 Service Unavailable", [][2]string{{"Retry-After", "1"}}, "replaced", 1, 0},
		{"exc_info after the head re-raises", "GET", "/exc-info-after-head", "", "200 OK", nil, "partial", 1, wsgi.FlagEndBroken},
		{"str body", "GET", "/str-body", "", "500 Internal Server Error", errorHeaders, errorResponse, 1, 0},
		{"bytes status", "GET", "/bad-status", "", "500 Internal Server Error", errorHeaders, errorResponse, 1, 0},
		{"start_response twice", "GET", "/twice", "", "500 Internal Server Error", errorHeaders, errorResponse, 1, 0},
		{"exception before the head", "GET", "/raise", "", "500 Internal Server Error", errorHeaders, errorResponse, 1, 0},
		{"exception after the head", "GET", "/raise-after-head", "", "200 OK", nil, "x", 1, wsgi.FlagEndBroken},
		{"no start_response", "GET", "/no-start", "", "500 Internal Server Error", errorHeaders, errorResponse, 1, 0},
		{"HEAD error has no body", "HEAD", "/raise", "", "500 Internal Server Error", errorHeaders, "", 0, 0},
		{"file_wrapper of a BytesIO iterates", "GET", "/filelike", "", "200 OK", [][2]string{textPlain}, "in memory", 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.roundTrip(newRequest(tt.method, tt.path, tt.query))
			assert.Equal(t, tt.status, r.status)
			assert.Equal(t, tt.headers, r.headers)
			assert.Equal(t, tt.body, string(r.body))
			assert.Equal(t, tt.bodyFrames, r.bodyFrames)
			assert.Equal(t, tt.endFlags, r.endFlags)
			assert.Empty(t, r.files)
		})
	}
}

func TestServeBigBodies(t *testing.T) {
	h := newSlotHarness(t)
	const chunk = 300_000 // over the size sent as a memfd
	letters := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(strings.Repeat(string(rune('a'+i%26)), chunk))
		}
		return b.String()
	}
	tests := []struct {
		query      string
		want       string
		files      int // chunks that went as memfds
		bodyFrames bool
	}{
		{"list:10", strings.Repeat("x", 10), 0, true},
		{"list:300000", strings.Repeat("x", chunk), 1, false},
		{"iter:300000", strings.Repeat("x", chunk), 1, false},
		// Over one response's memfd budget (4 MiB): all through the socket.
		{"list:5000000", strings.Repeat("x", 5_000_000), 0, true},
		// 13 chunks fit the budget; the other 7 go through the socket.
		{"chunks:20", letters(20), 13, true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := h.get("/big", tt.query)
			for _, f := range r.files {
				unix.Close(f.fd)
			}
			assert.Equal(t, "200 OK", r.status)
			assert.Equal(t, uint8(0), r.endFlags)
			assert.Len(t, r.files, tt.files)
			assert.Equal(t, tt.bodyFrames, r.bodyFrames > 0, "body frames: %d", r.bodyFrames)
			// Not assert.Equal: a diff of megabytes helps nobody.
			assert.True(t, tt.want == string(r.streamed), "body of %d bytes, want %d", len(r.streamed), len(tt.want))
		})
	}
}

func TestStartResponseValidation(t *testing.T) {
	h := newSlotHarness(t)
	tests := map[string]string{
		"bytes-status":    "TypeError: start_response() status must be a str such as '200 OK', not bytes",
		"no-reason-space": "ValueError: start_response() status must be a three-digit code, a space and a reason phrase, such as '200 OK'; got '200'",
		"tuple-headers":   "TypeError: start_response() headers must be a list of (name, value) tuples, not tuple",
		"bytes-header":    "TypeError: start_response() header names and values must be str, got (b'A', b'b')",
		"hop-by-hop":      "ValueError: hop-by-hop header 'Connection' is not allowed from an application (PEP 3333, Other HTTP Features); leave it to the server (Upgrade and Connection go only with a 101 to a request that asked to upgrade, on a connection the worker holds)",
		"crlf-value":      "ValueError: header 'X-A' has a control character (such as CR or LF) in its value",
		"not-latin1":      "ValueError: header value '\u20ac' is not latin-1 encodable, as PEP 3333 requires (encode other text, e.g. with RFC 2047 or percent-encoding)",
		"bad-name":        "ValueError: header name 'X A' is not a valid HTTP token",
		"bad-length":      "ValueError: Content-Length must be a non-negative decimal number, got 'ten'",
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			r := h.get("/validate", name)
			assert.Equal(t, "200 OK", r.status)
			assert.Equal(t, want, string(r.body))
		})
	}
}

func TestEnviron(t *testing.T) {
	h := newSlotHarness(t)
	req := newRequest("POST", "/environ", "a=1")
	req.Vars.Add("CONTENT_LENGTH", "5")
	req.Vars.Add("HTTP_X_LATIN1", "caf\xe9")
	req.Vars.Add("HTTP_X_RARE_HEADER_NAME", "rare")
	req.Body = []byte("hello")
	r := h.roundTrip(req)
	require.Equal(t, "200 OK", r.status, string(r.body))
	var environ map[string][2]any
	require.NoError(t, json.Unmarshal(r.body, &environ))

	want := map[string][2]any{
		"REQUEST_METHOD":          {"str", "POST"},
		"PATH_INFO":               {"str", "/environ"},
		"QUERY_STRING":            {"str", "a=1"},
		"SCRIPT_NAME":             {"str", ""},
		"CONTENT_LENGTH":          {"str", "5"},
		"SERVER_PORT":             {"str", "8000"},
		"HTTP_X_LATIN1":           {"str", "caf\u00e9"},
		"HTTP_X_RARE_HEADER_NAME": {"str", "rare"},
		"wsgi.url_scheme":         {"str", "http"},
		"wsgi.version":            {"tuple", "(1, 0)"},
		"wsgi.multithread":        {"bool", true},
		"wsgi.multiprocess":       {"bool", false},
		"wsgi.run_once":           {"bool", false},
		"wsgi.input_terminated":   {"bool", true},
		"uwsgi.version":           {"bytes", "b'2.0.21-gowsgi'"},
	}
	for key, value := range want {
		assert.Equal(t, value, environ[key], key)
	}
	assert.Equal(t, "BytesIO", environ["wsgi.input"][0])
	assert.Equal(t, "TextIOWrapper", environ["wsgi.errors"][0])
	assert.Equal(t, "<class 'gowsgi.file_wrapper'>", environ["wsgi.file_wrapper"][1])
	assert.Equal(t, "bytes", environ["uwsgi.node"][0])
	// 12 request vars, SCRIPT_NAME, the 8 wsgi.* keys and uWSGI's two
	// (uwsgi.version, uwsgi.node); nothing else.
	assert.Len(t, environ, 12+1+8+2)
}

func TestEnvironScriptNameFromVars(t *testing.T) {
	h := newSlotHarness(t)
	req := newRequest("GET", "/environ", "")
	req.Vars.Add("SCRIPT_NAME", "/mounted")
	r := h.roundTrip(req)
	var environ map[string][2]any
	require.NoError(t, json.Unmarshal(r.body, &environ))
	assert.Equal(t, [2]any{"str", "/mounted"}, environ["SCRIPT_NAME"])
}

func TestInput(t *testing.T) {
	h := newSlotHarness(t)
	body := "line one\nline two\nend"
	spool := filepath.Join(t.TempDir(), "body")
	require.NoError(t, os.WriteFile(spool, []byte(body), 0o600))
	spooledFile, err := os.Open(spool)
	require.NoError(t, err)
	defer spooledFile.Close()
	tests := map[string][]string{
		"read":      {body, ""},
		"read3":     {"lin", "e one\nline two\nend"},
		"readline":  {"line one\n", "line two\n"},
		"readlines": {"line one\n", "line two\n", "end"},
		"iter":      {"line one\n", "line two\n", "end"},
	}
	for how, want := range tests {
		for _, spooled := range []bool{false, true} {
			t.Run(how+"/spooled="+strconv.FormatBool(spooled), func(t *testing.T) {
				req := newRequest("POST", "/input", how)
				if spooled {
					// Read from its start, wherever an earlier request left it.
					req.BodyFile = spooledFile
				} else {
					req.Body = []byte(body)
				}
				r := h.roundTrip(req)
				require.Equal(t, "200 OK", r.status, string(r.body))
				var got []string
				require.NoError(t, json.Unmarshal(r.body, &got))
				assert.Equal(t, want, got)
			})
		}
	}
	t.Run("empty body", func(t *testing.T) {
		r := h.get("/input", "read")
		assert.Equal(t, `["", ""]`, string(r.body))
	})
}

// A request frame that says its body is spooled but came without the
// file's descriptor is a fault of the master's: 500, never a hang.
func TestSpooledBodyWithoutItsDescriptor(t *testing.T) {
	h := newSlotHarness(t)
	h.nextID++
	frame := wsgi.AppendRequest(nil, h.nextID, newRequest("POST", "/input", "read"))
	require.NoError(t, h.slot.Serve(h.nextID, wsgi.FlagBodySpooled, frame[wsgi.FrameHeaderLen:], -1, true))
	r, err := h.collect(h.nextID, response{})
	require.NoError(t, err)
	assert.Equal(t, "500 Internal Server Error", r.status)
}

func TestCloseCalledOnEveryPath(t *testing.T) {
	h := newSlotHarness(t)
	tests := []struct {
		mode, status, body string
		endFlags           uint8
	}{
		{"ok", "200 OK", "ab", 0},
		{"raise", "200 OK", "a", wsgi.FlagEndBroken},
		{"str", "500 Internal Server Error", errorResponse, 0},
		{"close-raises", "200 OK", "ab", 0}, // logged; the response already ended
		// Only an exact list, tuple or bytes goes without the look-up.
		{"list-subclass", "200 OK", "ab", 0},
		{"tuple-subclass", "200 OK", "ab", 0},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			token := "close-" + tt.mode
			r := h.get("/close", tt.mode+"&"+token)
			assert.Equal(t, tt.status, r.status)
			assert.Equal(t, tt.body, string(r.body))
			assert.Equal(t, tt.endFlags, r.endFlags)
			assert.Equal(t, "1", string(h.get("/closed", token).body))
		})
	}
}

// A slot hands the same start_response and write to request after request,
// but one an app kept from an earlier request must not touch a later one
// (PEP 3333: start_response belongs to its request).
func TestStartResponseReusedUnlessKept(t *testing.T) {
	h := newSlotHarness(t)
	const (
		staleStart = "start_response: RuntimeError: start_response() called after the response ended"
		staleWrite = "write: RuntimeError: write() called after the response ended"
	)
	h.get("/hello", "")
	made := h.slot.respondersMade()
	for range 3 {
		assert.Equal(t, "Hello World!\n", string(h.get("/hello", "").body))
	}
	assert.Equal(t, made, h.slot.respondersMade(), "nobody kept it: no new start_response")

	for _, tt := range []struct{ kept, body string }{
		{"start_response", staleStart},
		{"write", staleWrite},
		{"both", staleStart + "\n" + staleWrite},
	} {
		t.Run(tt.kept, func(t *testing.T) {
			made := h.slot.respondersMade()
			r := h.get("/keep", tt.kept)
			require.Equal(t, "kept", string(r.body))
			r = h.get("/use-kept", "")
			assert.Equal(t, "200 OK", r.status)
			assert.Equal(t, [][2]string{textPlain}, r.headers, "the stale calls left this request's head alone")
			assert.Equal(t, tt.body, string(r.body))
			assert.Equal(t, made+1, h.slot.respondersMade(), "a new start_response once the app kept the last")
			h.get("/hello", "")
			assert.Equal(t, made+1, h.slot.respondersMade(), "and that one is reused once nobody keeps it")
		})
	}
}

// streamObservation is what a helper goroutine saw while the app was blocked
// in the middle of a streamed response.
type streamObservation struct {
	token     string // what /closed takes to tell whether close() ran
	early     response
	err       error
	currentID uint32
	startedNS int64
}

// serveStream runs /stream, which sends "first" and then waits for a byte on
// a pipe; while it waits, during runs on another goroutine with the frames
// received so far, then the app is released.
func serveStream(t *testing.T, h *slotHarness, during func(id uint32)) (streamObservation, response) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	id := h.nextID + 1
	seen := make(chan streamObservation, 1)
	go func() {
		var obs streamObservation
		defer func() { seen <- obs }()
		defer w.Write([]byte{1}) // release the app whatever happened
		for len(obs.early.body) < len("first") && obs.err == nil {
			var f wsgi.Frame
			if f, obs.err = h.nextFrame(); obs.err == nil {
				_, obs.err = h.add(&obs.early, f)
			}
		}
		obs.currentID = h.board.CurrentID(0)
		obs.startedNS = h.board.StartedNS(0)
		during(id)
	}()
	require.Equal(t, id, h.start(newRequest("GET", "/stream", strconv.Itoa(int(r.Fd())))))
	obs := <-seen
	require.NoError(t, obs.err)
	obs.token = "stream:" + strconv.Itoa(int(r.Fd()))
	rest, err := h.collect(id, obs.early)
	require.NoError(t, err)
	return obs, rest
}

func TestStreamingFlushesEachChunk(t *testing.T) {
	h := newSlotHarness(t)
	before := time.Now().UnixNano()
	obs, r := serveStream(t, h, func(uint32) {})
	// "first" reached us while the app was still blocked before "second".
	assert.Equal(t, "first", string(obs.early.body))
	assert.Equal(t, "200 OK", r.status)
	assert.Equal(t, "firstsecond", string(r.body))
	assert.Equal(t, 2, r.bodyFrames)
	assert.Equal(t, uint8(0), r.endFlags)

	assert.Equal(t, h.nextID, obs.currentID, "scoreboard names the running request")
	assert.GreaterOrEqual(t, obs.startedNS, before)
	assert.LessOrEqual(t, obs.startedNS, time.Now().UnixNano())
	assert.Equal(t, uint32(0), h.board.CurrentID(0), "idle after the request")
	assert.Equal(t, uint64(1), h.board.Served(0))
}

func TestAbortStopsIteration(t *testing.T) {
	h := newSlotHarness(t)
	obs, r := serveStream(t, h, func(id uint32) { h.board.Abort(0, id) })
	assert.Equal(t, "first", string(r.body), "nothing is sent after the abort")
	assert.Equal(t, wsgi.FlagEndBroken, r.endFlags)
	assert.Equal(t, "1", string(h.get("/closed", obs.token).body), "close() called after the abort")
}

func TestFileWrapperSendsFile(t *testing.T) {
	h := newSlotHarness(t)
	path, err := filepath.Abs("testdata/file.txt")
	require.NoError(t, err)
	content, err := os.ReadFile(path)
	require.NoError(t, err)
	length := strconv.Itoa(len(content) - 5)

	r := h.get("/file", path)
	assert.Equal(t, "200 OK", r.status)
	assert.Equal(t, [][2]string{textPlain, {"Content-Length", length}}, r.headers)
	assert.Empty(t, r.body)
	require.Len(t, r.files, 1)
	defer unix.Close(r.files[0].fd)
	assert.Equal(t, int64(5), r.files[0].offset)
	assert.Equal(t, int64(len(content)-5), r.files[0].count)
	got := make([]byte, r.files[0].count)
	n, err := unix.Pread(r.files[0].fd, got, r.files[0].offset)
	require.NoError(t, err)
	assert.Equal(t, string(content[5:]), string(got[:n]), "the descriptor is the app's file")

	head := h.roundTrip(newRequest("HEAD", "/file", path))
	assert.Equal(t, [][2]string{textPlain, {"Content-Length", length}}, head.headers)
	assert.Empty(t, head.files)
	assert.Empty(t, head.body)
}

func TestAppUsingGILStateAPI(t *testing.T) {
	h := newSlotHarness(t)
	r := h.get("/gilstate", "")
	if string(r.body) == "no ctypes" {
		t.Skip("this Python has no ctypes")
	}
	assert.Equal(t, "gilstate ok", string(r.body))
}

func TestMalformedRequestFrame(t *testing.T) {
	h := newSlotHarness(t)
	h.nextID++
	// The vars length claims more bytes than the payload holds.
	require.NoError(t, h.slot.Serve(h.nextID, 0, []byte{0xff, 0, 0, 0, 'x'}, -1, true))
	r, err := h.collect(h.nextID, response{})
	require.NoError(t, err)
	assert.Equal(t, "500 Internal Server Error", r.status)
}

func TestServeReportsBrokenSocket(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(pair[0])
	mem, err := unix.Mmap(-1, 0, wsgi.SlotRecordLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(mem)
	slot, err := NewSlot(pair[0], mem)
	require.NoError(t, err)
	defer slot.Close()
	require.NoError(t, unix.Close(pair[1])) // the master is gone

	frame := wsgi.AppendRequest(nil, 1, newRequest("GET", "/hello", ""))
	err = slot.Serve(1, 0, frame[wsgi.FrameHeaderLen:], -1, true)
	assert.ErrorIs(t, err, unix.EPIPE)
}

// TestEndFrameCarriesLogvars: the end frame carries the log variables the
// app set with uwsgi.set_logvar as a vars block, for the master's access
// log, and nothing when it set none.
func TestEndFrameCarriesLogvars(t *testing.T) {
	h := newSlotHarness(t)
	var want wsgi.Vars
	want.Add("a", "1")
	want.Add("b", "two")
	r := h.roundTrip(newRequest("GET", "/logvar", ""))
	require.Equal(t, "200 OK", r.status)
	assert.Equal(t, want.Block(), r.endPayload)
	r = h.roundTrip(newRequest("GET", "/hello", ""))
	assert.Empty(t, r.endPayload)
}
