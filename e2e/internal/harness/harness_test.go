package harness

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestWithoutMasterLinesJoinsAWorkersPieces replays an interleaving seen in
// a run: faulthandler's traceback line cut by a master log line.
func TestWithoutMasterLinesJoinsAWorkersPieces(t *testing.T) {
	logs := "Fatal Python error: Aborted\n\n" +
		`  File "/srv/e2e/testdata/faults.py` +
		"time=2026-12-03T07:44:22.133Z level=INFO msg=request method=GET path=/work status=200 bytes=4 worker=2\n" +
		`", line 84 in abort` + "\n" +
		"time=2026-12-03T07:44:22.137Z level=INFO msg=request method=GET path=/abort status=502 bytes=16 worker=1\n"
	want := `faults.py", line 84 in abort`
	assert.NotContains(t, logs, want, "the interleaving this test is about")
	got := withoutMasterLines(logs)
	assert.Contains(t, got, want)
	assert.NotContains(t, got, "level=INFO")
	assert.Contains(t, got, "Fatal Python error: Aborted\n")
}
