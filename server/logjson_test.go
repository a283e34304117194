package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRelayJSONLines: each line a child writes becomes one object whose
// msg is the line, escaped, without its line end; a line longer than
// maxLogLine is split, and a last line without a line end still counts.
func TestRelayJSONLines(t *testing.T) {
	long := strings.Repeat("x", maxLogLine+10)
	in := "plain\r\n" + `quote " backslash \ tab` + "\t\x00\xff\n" + long + "\nlast"
	var out bytes.Buffer
	relayJSONLines(strings.NewReader(in), &out, "stderr")
	var msgs []string
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var obj logObject
		require.NoError(t, json.Unmarshal([]byte(line), &obj), line)
		assert.Equal(t, "app", obj.Source)
		assert.Equal(t, "stderr", obj.Stream)
		assert.Equal(t, "INFO", obj.Level)
		assert.NotEmpty(t, obj.Time)
		msgs = append(msgs, obj.Msg)
	}
	assert.Equal(t, []string{"plain", "quote \" backslash \\ tab\t\x00\ufffd", long[:maxLogLine], long[maxLogLine:], "last"}, msgs)
}

func TestMasterOutputLevels(t *testing.T) {
	var out bytes.Buffer
	w := &jsonLines{out: &out}
	_, err := w.Write([]byte("gowsgi 0.1.0 · http://127.0.0.1:8000\ngowsgi: warning: --cheaper: …\ngowsgi: --wsgi-file: no such file\n"))
	require.NoError(t, err)
	var levels []string
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var obj logObject
		require.NoError(t, json.Unmarshal([]byte(line), &obj))
		assert.Equal(t, "master", obj.Source)
		levels = append(levels, obj.Level)
	}
	assert.Equal(t, []string{"INFO", "WARN", "ERROR"}, levels)
}

func TestRequestIDs(t *testing.T) {
	tests := []struct {
		id   string
		sane bool
	}{
		{"trace-42", true},
		{"0af7651916cd43dd8448eb211c80319c", true},
		{"", false},
		{`with "quotes"`, false},
		{"back\\slash", false},
		{"tab\there", false},
		{"non-ascii-é", false},
		{strings.Repeat("a", maxRequestID+1), false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.sane, saneRequestID(tt.id), "%q", tt.id)
	}
	a, b := newRequestID(), newRequestID()
	assert.Regexp(t, "^[0-9a-f]{32}$", a)
	assert.NotEqual(t, a, b)
}
