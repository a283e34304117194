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
		"[pid: 4242|app: 0|req: 1/1] 127.0.0.1 () {28 vars in 317 bytes} [Thu Dec  3 07:44:22 2026] GET /work => generated 4 bytes in 0 msecs (HTTP/1.1 200) 4 headers in 117 bytes (1 switches on core 0)\n" +
		`", line 84 in abort` + "\n" +
		"time=2026-12-03T07:44:22.137Z level=INFO msg=\"worker exited\" worker=1 pid=4242 status=134\n"
	want := `faults.py", line 84 in abort`
	assert.NotContains(t, logs, want, "the interleaving this test is about")
	got := withoutMasterLines(logs)
	assert.Contains(t, got, want)
	assert.NotContains(t, got, "level=INFO")
	assert.NotContains(t, got, "=> generated")
	assert.Contains(t, got, "Fatal Python error: Aborted\n")
}
