package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/server"
)

func TestAuxOptions(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		mules    []string
		farms    []string
		spoolers int
		warnings []string
	}{
		{name: "bare mules and --mules add in order", args: []string{"--mule", "--mules", "2", "--mule"},
			mules: []string{"", "", "", ""}},
		{name: "a mule whose value is neither a file nor MODULE:CALLABLE is bare, as under uWSGI",
			args: []string{"--mule=true", "--mule=1"}, mules: []string{"", ""}},
		{name: "a farm of mules", args: []string{"--mules=2", "--farm", "f:1,2,2"}, mules: []string{"", ""},
			farms: []string{"f:1,2,2"}},
		{name: "spooler options without a spooler are warned about",
			args:     []string{"--spooler-processes", "2", "--spooler-ordered"},
			warnings: []string{"gowsgi: warning: spooler-processes, spooler-ordered: " + idleSpoolerWarning}},
		{name: "with a spooler they are not", args: []string{"-Q", "/tmp/q", "--spooler-processes", "2"}, spoolers: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseConfig(nil, append([]string{"-w", "m"}, tt.args...), t.TempDir())
			require.NoError(t, err)
			require.NoError(t, o.check())
			assert.Equal(t, tt.mules, o.Mules)
			assert.Equal(t, tt.farms, o.Farms)
			assert.Len(t, o.Spoolers, tt.spoolers)
			assert.Equal(t, tt.warnings, o.warnings())
		})
	}
}

func TestMuleModuleCallableIsRefused(t *testing.T) {
	_, err := parseConfig(nil, []string{"-w", "m", "--mule=tasks:run"}, t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--mule: "tasks:run": gowsgi runs a Python file as a mule's program`)
}

func TestCronOptions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []server.CronJob
	}{
		{"cron keeps the command whole", []string{"--cron", "0  3 -1 -1 -1 ./manage.py prune  --skip-checks"},
			[]server.CronJob{{Minute: 0, Hour: 3, Day: -1, Month: -1, Weekday: -1, Command: "./manage.py prune  --skip-checks"}}},
		{"unique-cron", []string{"--unique-cron", "-5 -1 -1 -1 1 x"},
			[]server.CronJob{{Minute: -5, Hour: -1, Day: -1, Month: -1, Weekday: 1, Command: "x", Unique: true}}},
		{"cron2 leaves out fields as any; cron-harakiri is the default harakiri",
			[]string{"--cron2", "minute=17,hour=3,unique=1 ./manage.py prune", "--cron2", "week=0,harakiri=5 y", "--cron-harakiri", "900"},
			[]server.CronJob{
				{Minute: 17, Hour: 3, Day: -1, Month: -1, Weekday: -1, Command: "./manage.py prune", Unique: true, Harakiri: 900 * time.Second},
				{Minute: -1, Hour: -1, Day: -1, Month: -1, Weekday: 0, Command: "y", Harakiri: 5 * time.Second},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseConfig(nil, append([]string{"-w", "m"}, tt.args...), t.TempDir())
			require.NoError(t, err)
			assert.Equal(t, tt.want, o.crons())
		})
	}
}
