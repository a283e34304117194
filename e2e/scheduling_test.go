package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// schedulingApp answers with the scheduling policy (sched(7): 0 other, 3
// batch, 5 idle) of the thread running the request, of a thread the app
// starts, and of a process it starts.
const schedulingApp = `import os, subprocess, threading

def policy_of_a_thread():
    seen = []
    t = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))
    t.start()
    t.join()
    return seen[0]

def policy_of_a_process():
    # Field 41 of a process's stat is its policy; cat reads its own.
    stat = subprocess.check_output(["cat", "/proc/self/stat"]).decode()
    return int(stat[stat.rindex(")") + 2:].split()[38])

def application(environ, start_response):
    body = "request=%d thread=%d process=%d" % (
        os.sched_getscheduler(0), policy_of_a_thread(), policy_of_a_process())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
`

// threadPolicies returns the scheduling policy of every thread of pid.
func threadPolicies(t *testing.T, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	require.NoError(t, err)
	var policies []int
	for _, path := range stats {
		stat, err := os.ReadFile(path)
		if err != nil {
			continue // the thread has exited since the glob
		}
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		policy, err := strconv.Atoi(fields[38]) // field 41, proc(5)
		require.NoError(t, err)
		policies = append(policies, policy)
	}
	return policies
}

// TestIdleSlotsWaitAsBatchAndAppsRunAsStarted: an idle worker slot waits
// as SCHED_BATCH, so that the master waking it with a request keeps its
// CPU, and is back to the policy gowsgi started with before it runs the
// app: the request, the threads and the processes the app starts see
// that policy. A policy given from outside (chrt) is left as it is.
func TestIdleSlotsWaitAsBatchAndAppsRunAsStarted(t *testing.T) {
	const other, batch, idle = 0, 3, 5
	tests := []struct {
		name     string
		chrt     []string // the command gowsgi is started under
		started  int      // the policy it starts with
		idleSlot int      // an idle slot's policy
	}{
		{"ordinary start", nil, other, batch},
		{"started under chrt --idle", []string{"chrt", "--idle", "0"}, idle, idle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			harness.WriteFile(t, dir, "sched_app.py", schedulingApp)
			argv := append(append([]string{}, tt.chrt...), harness.GowsgiBin,
				"--http-socket", "127.0.0.1:0", "--wsgi-file", "sched_app.py", "-p", "2")
			inst := launchBinary(t, argv[0], dir, argv[1:]...)
			inst.WaitBanner(t)

			resp, body := harness.Get(t, inst.URL+"/")
			require.Equal(t, 200, resp.StatusCode, "%s", body)
			assert.Equal(t, fmt.Sprintf("request=%d thread=%d process=%d", tt.started, tt.started, tt.started), string(body))

			workers := harness.LiveChildren(t, harness.ZygoteOf(t, inst))
			require.Len(t, workers, 2)
			for _, w := range workers {
				// Each worker's main thread waits for its slots and keeps
				// the start's policy; its slot thread, idle, has idleSlot.
				want := []int{tt.started, tt.idleSlot}
				slices.Sort(want)
				var got []int
				for deadline := time.Now().Add(harness.StartTimeout); ; time.Sleep(harness.PollInterval) {
					got = threadPolicies(t, w)
					slices.Sort(got)
					if slices.Equal(want, got) || time.Now().After(deadline) {
						break
					}
				}
				assert.Equal(t, want, got, "worker %d's threads' policies: the main thread's %d and an idle slot's %d", w, tt.started, tt.idleSlot)
			}
		})
	}
}
