package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runs counts the lines a cron command appended to path.
func runs(path string) int {
	data, _ := os.ReadFile(path)
	return strings.Count(string(data), "\n")
}

func TestCronRunsOnceAMinuteAndUniqueWaitsForItsLastRun(t *testing.T) {
	tests := []struct {
		name   string
		unique bool
		want   int // runs after three checks a minute apart, the first still going
	}{
		{"a cron runs each minute its fields match", false, 3},
		{"a unique cron is skipped while its last run goes on", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "runs")
			release := filepath.Join(t.TempDir(), "release")
			// Each run notes itself, then waits for the test to let it end.
			cmd := "echo run >> " + out + "; while [ ! -e " + release + " ]; do sleep 0.05; done"
			log := &syncBuffer{}
			r := newCronRunner([]CronJob{{Minute: -1, Hour: -1, Day: -1, Month: -1, Weekday: -1, Command: cmd, Unique: tt.unique}},
				log, slog.New(slog.NewTextHandler(log, nil)))
			start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.Local)
			r.check(start)
			require.Eventually(t, func() bool { return runs(out) == 1 }, 10*time.Second, 10*time.Millisecond, "first run:\n%s", log)
			r.check(start.Add(30 * time.Second)) // the same minute: never again
			r.check(start.Add(time.Minute))
			r.check(start.Add(2 * time.Minute))
			require.NoError(t, os.WriteFile(release, nil, 0o644))
			require.Eventually(t, func() bool { return strings.Count(log.String(), "exited after") == tt.want },
				10*time.Second, 10*time.Millisecond, "runs:\n%s", log)
			assert.Equal(t, tt.want, runs(out))
			assert.Contains(t, log.String(), ` - [uwsgi-cron] running "`+cmd+`" (pid `)
		})
	}
}

func TestCronFieldsMustMatch(t *testing.T) {
	log := &syncBuffer{}
	r := newCronRunner([]CronJob{{Minute: 30, Hour: -1, Day: -1, Month: -1, Weekday: -1, Command: "true"}},
		log, slog.New(slog.NewTextHandler(log, nil)))
	started := func() int { return strings.Count(log.String(), "[uwsgi-cron] running") }
	// A run is logged as it starts, before check returns.
	r.check(time.Date(2026, 12, 3, 10, 29, 0, 0, time.Local))
	assert.Equal(t, 0, started(), "ran at minute 29")
	r.check(time.Date(2026, 12, 3, 10, 30, 0, 0, time.Local))
	assert.Equal(t, 1, started(), "did not run at minute 30")
	r.check(time.Date(2026, 12, 3, 10, 31, 0, 0, time.Local))
	r.check(time.Date(2026, 12, 3, 11, 30, 0, 0, time.Local))
	assert.Equal(t, 2, started(), "minute 31 ran, or 11:30 did not")
}

func TestCronHarakiriKillsALongRun(t *testing.T) {
	log := &syncBuffer{}
	r := newCronRunner([]CronJob{{Minute: -1, Hour: -1, Day: -1, Month: -1, Weekday: -1, Command: "sleep 60", Harakiri: 100 * time.Millisecond}},
		log, slog.New(slog.NewTextHandler(log, nil)))
	r.check(time.Now())
	require.Eventually(t, func() bool { return strings.Contains(log.String(), "exited after 0 second(s)") },
		10*time.Second, 10*time.Millisecond, "the run was not killed:\n%s", log)
	assert.Contains(t, log.String(), `cron command ran past its harakiri, killing it" command="sleep 60"`)
}
