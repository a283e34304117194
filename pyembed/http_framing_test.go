package pyembed

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// framingCase is a case of wsgi/testdata/http1_framing.json, the table
// gateways' TestHTTPFramingTable holds the master's HTTP writer to.
type framingCase struct {
	Name       string `json:"name"`
	HTTP11     bool   `json:"http11"`
	Head       bool   `json:"head"`
	WantsClose bool   `json:"wants_close"`
	Keep10     bool   `json:"keep10"`
	Stopping   bool   `json:"stopping"`
	Want       string `json:"want"`
	KeepAlive  bool   `json:"keep_alive"`
}

func (c framingCase) flags() wsgi.HTTPFlags {
	var f wsgi.HTTPFlags
	for _, b := range []struct {
		on   bool
		flag wsgi.HTTPFlags
	}{{c.HTTP11, wsgi.HTTP11}, {c.Head, wsgi.HTTPHead}, {c.WantsClose, wsgi.HTTPWantsClose},
		{c.Keep10, wsgi.HTTPKeep10}, {c.Stopping, wsgi.HTTPStopping}} {
		if b.on {
			f |= b.flag
		}
	}
	return f
}

var dateField = regexp.MustCompile(`(?m)^Date: [^\r]*\r$`)

// TestWorkerHTTPFramingTable: a worker writing an HTTP/1.x response itself
// frames every case of the shared table byte for byte as the master's own
// writer does, and says keep-alive exactly when that writer would.
func TestWorkerHTTPFramingTable(t *testing.T) {
	raw, err := os.ReadFile("../wsgi/testdata/http1_framing.json")
	require.NoError(t, err)
	var file struct {
		Cases []framingCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &file))
	require.NotEmpty(t, file.Cases)
	h := newSlotHarness(t)
	for i, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			require.NoError(t, err)
			client := os.NewFile(uintptr(pair[1]), "client")
			defer client.Close()
			method := "GET"
			if c.Head {
				method = "HEAD"
			}
			req := newRequest(method, "/framing", strconv.Itoa(i))
			req.Framing, req.HTTPFlags = wsgi.FramingHTTP1, c.flags()
			h.nextID++
			frame := wsgi.AppendRequest(nil, h.nextID, req)
			require.NoError(t, h.slot.ServeDirect(h.nextID, frame[1], frame[wsgi.FrameHeaderLen:], pair[0], -1, true))

			got, err := io.ReadAll(client) // the worker closed its copy: EOF
			require.NoError(t, err)
			assert.Equal(t, c.Want, dateField.ReplaceAllString(string(got), "Date: *\r"))
			select {
			case f := <-h.frames:
				require.Equal(t, wsgi.FrameEnd, f.Kind, "only the end comes back")
				comp, err := wsgi.ParseCompletion(f.Flags, f.Payload)
				require.NoError(t, err)
				assert.Equal(t, c.KeepAlive, comp.KeepAlive, "keep-alive")
				assert.False(t, comp.Broken)
			case <-time.After(frameWait):
				require.FailNow(t, "no FrameEnd")
			}
		})
	}
}
