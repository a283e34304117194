// uWSGI's cheaper subsystem through the real binary, from an ini file
// (testdata/ini/cheaper.ini): one worker at first; a request that keeps
// every worker busy brings one more, up to --processes; once the requests
// end the extra workers stop, down to --cheaper. Debian's uWSGI starts the
// same file with the same first worker count.
package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// holdStream starts GET /stream?tag=tag on probe.py, which keeps its worker
// busy until the tag is released; the returned channel yields the body.
func holdStream(t *testing.T, addr, tag string) <-chan string {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/stream?tag=" + tag)
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		done <- string(body)
	}()
	return done
}

// idleWorker says whether the stats server at addr reports worker id idle.
func idleWorker(addr string, id int) bool {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	var doc struct {
		Workers []struct {
			ID     int    `json:"id"`
			Status string `json:"status"`
		} `json:"workers"`
	}
	if json.NewDecoder(conn).Decode(&doc) != nil {
		return false
	}
	for _, w := range doc.Workers {
		if w.ID == id && w.Status == "idle" {
			return true
		}
	}
	return false
}

// countLines counts the lines of s that contain want.
func countLines(s, want string) int {
	return strings.Count(s, want)
}

func TestCheaperSpare(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "cheaper.ini"))
	addr, stats := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	inst := harness.LaunchConfigured(t, dir, []string{"ADDR=" + addr, "STATS=" + stats, "APP=" + harness.TestdataPath(t, "probe.py")}, ini)
	assert.Contains(t, inst.Stderr(), "1 worker (cheaper spare: 1 to 3)")

	first := holdStream(t, addr, "a")
	harness.Eventually(t, 20*time.Second, func() bool { return countLines(inst.Stderr(), `msg="adding a worker"`) == 1 },
		"no worker added while the only one was busy; stderr:\n%s", inst.Stderr())
	// A request sent before the new worker serves would wait behind the
	// busy one: the stats say when it is idle.
	harness.Eventually(t, 20*time.Second, func() bool { return idleWorker(stats, 2) },
		"worker 2 is not idle; stderr:\n%s", inst.Stderr())
	second := holdStream(t, addr, "b")
	harness.Eventually(t, 20*time.Second, func() bool { return countLines(inst.Stderr(), `msg="adding a worker"`) == 2 },
		"no third worker while two were busy; stderr:\n%s", inst.Stderr())

	inst.Release(t, "a")
	inst.Release(t, "b")
	assert.Equal(t, "first\nsecond\n", <-first)
	assert.Equal(t, "first\nsecond\n", <-second)
	harness.Eventually(t, 30*time.Second, func() bool { return countLines(inst.Stderr(), `msg="removing a worker"`) == 2 },
		"the extra workers did not stop once idle; stderr:\n%s", inst.Stderr())
	assert.Equal(t, 2, countLines(inst.Stderr(), `msg="adding a worker"`), "never more than --processes")
	status, body := harness.GetText(t, "http://"+addr+"/hello")
	assert.Equal(t, 200, status, body)
}

func TestCheaperINIUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	ini := harness.TestdataPath(t, filepath.Join("ini", "cheaper.ini"))
	addr := freeAddr(t)
	t.Setenv("ADDR", addr)
	t.Setenv("STATS", freeAddr(t))
	t.Setenv("APP", harness.TestdataPath(t, "probe.py"))
	out := startUWSGI(t, bin, addr, "--plugin", "python3,http", "--ini", ini)
	harness.Eventually(t, harness.StartTimeout, func() bool { return strings.Contains(out.String(), "spawned uWSGI worker 1") },
		"no worker; output:\n%s", out)
	require.NotContains(t, out.String(), "spawned uWSGI worker 2", "uWSGI starts cheaper-initial workers")
}

// TestCheaperRefusals: a --cheaper that leaves no room stops the start.
func TestCheaperRefusals(t *testing.T) {
	code, out := harness.RunToExit(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--processes", "2", "--cheaper", "2")
	assert.Equal(t, 2, code)
	assert.Equal(t, "gowsgi: --cheaper 2: must be lower than --processes (2), the most workers it may start\n", out)
}
