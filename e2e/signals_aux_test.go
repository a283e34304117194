package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// TestSignalsReachMulesAndTheSpooler: a signal registered for 'mule' runs
// in one mule, for 'mules' in each, for 'mule2' in mule 2, for 'spooler'
// in the spooler, each raised from a request; the master routes them on
// the socket each of those processes gets with its fork.
func TestSignalsReachMulesAndTheSpooler(t *testing.T) {
	s, _ := gowsgiSignals(t, "signals_aux_app.py", "--master", "-p", "1", "--mules", "2",
		"--spooler", t.TempDir())
	cases := []struct {
		sig  string
		name string
		want []string // "<mule id> <spooler flag>" of each process that ran it
	}{
		{"30", "mule", []string{"1 0"}},
		{"31", "mules", []string{"1 0", "2 0"}},
		{"32", "mule2", []string{"2 0"}},
		{"33", "spooler", []string{"0 1"}},
	}
	for _, c := range cases {
		// A signal raised before the mules and the spooler run is lost,
		// as in uWSGI: raise it again until it arrives.
		harness.Eventually(t, 20*time.Second, func() bool {
			status, _ := harness.GetText(t, s.url+"/?sig="+c.sig)
			require.Equal(t, 200, status)
			deadline := time.Now().Add(500 * time.Millisecond)
			for time.Now().Before(deadline) {
				if len(dedupe(auxEvents(t, s.dir, c.name))) >= len(c.want) {
					return true
				}
				time.Sleep(harness.PollInterval)
			}
			return false
		}, "signal %s (%s) never ran", c.sig, c.name)
		got := auxEvents(t, s.dir, c.name)
		assert.ElementsMatch(t, c.want, dedupe(got), c.name)
	}
}

// auxEvents returns "<mule id> <spooler flag>" of each run of the handler
// name, from the app's events file.
func auxEvents(t *testing.T, dir, name string) []string {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(dir, "events"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var runs []string
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == name {
			runs = append(runs, f[1]+" "+f[3])
		}
	}
	return runs
}

// dedupe keeps the first of each value: a signal raised again until it
// arrived may have arrived more than once.
func dedupe(values []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range values {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
