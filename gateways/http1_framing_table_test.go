package gateways

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// framingTable is the table of HTTP/1.x responses that the master's writer
// here and a worker writing the response itself (pyembed/gw_worker_http.c, whose
// test reads the same file) must frame byte for byte alike.
const framingTable = "../wsgi/testdata/http1_framing.json"

type framingCase struct {
	Name       string      `json:"name"`
	Status     string      `json:"status"`
	Headers    [][2]string `json:"headers"`
	Body       []string    `json:"body"`
	Stream     bool        `json:"stream"` // flushed after each chunk, as a generator's are
	HTTP11     bool        `json:"http11"`
	Head       bool        `json:"head"`
	WantsClose bool        `json:"wants_close"`
	Keep10     bool        `json:"keep10"`
	Stopping   bool        `json:"stopping"`
	Want       string      `json:"want"`
	KeepAlive  bool        `json:"keep_alive"`
}

type framingFile struct {
	Comment string        `json:"_comment"`
	Cases   []framingCase `json:"cases"`
}

var dateField = regexp.MustCompile(`(?m)^Date: [^\r]*\r$`)

// frameWithWriter runs one case through http1Response.
func frameWithWriter(t *testing.T, c framingCase) (string, bool) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	var r http1Response
	r.log = func(string, ...any) {}
	r.begin(w, nil, nil, responseParams{http11: c.HTTP11, head: c.Head, wantsClose: c.WantsClose, keep10: c.Keep10, stopping: c.Stopping})
	var headers wsgi.Vars
	for _, h := range c.Headers {
		headers.Add(h[0], h[1])
	}
	require.NoError(t, r.WriteHead(c.Status, headers.Block()))
	for _, chunk := range c.Body {
		require.NoError(t, r.WriteBody([]byte(chunk)))
		if c.Stream {
			require.NoError(t, r.Flush())
		}
	}
	keep, err := r.finish()
	require.NoError(t, err)
	return dateField.ReplaceAllString(out.String(), "Date: *\r"), keep
}

// TestHTTPFramingTable: the master's writer frames every case as the table
// says; pyembed's TestWorkerHTTPFramingTable holds the worker to the same.
func TestHTTPFramingTable(t *testing.T) {
	raw, err := os.ReadFile(framingTable)
	require.NoError(t, err)
	var file framingFile
	require.NoError(t, json.Unmarshal(raw, &file))
	require.NotEmpty(t, file.Cases)
	update := os.Getenv("GOWSGI_UPDATE_FRAMING") != ""
	for i, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			got, keep := frameWithWriter(t, c)
			if update {
				file.Cases[i].Want, file.Cases[i].KeepAlive = got, keep
				return
			}
			assert.Equal(t, c.Want, got)
			assert.Equal(t, c.KeepAlive, keep, "keep-alive")
		})
	}
	if update {
		out, err := json.MarshalIndent(file, "", " ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(framingTable, append(out, '\n'), 0o644))
	}
}
