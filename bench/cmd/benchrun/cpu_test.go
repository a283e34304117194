// Tests for splitting a server's CPU into master, workers and nginx.
package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRoleOf(t *testing.T) {
	tests := []struct {
		name    string
		pid     int
		cmdline string
		want    role
	}{
		{"gowsgi master", 100, "/usr/local/bin/gowsgi --module apps", roleMaster},
		{"gowsgi zygote or worker", 101, "/usr/local/bin/gowsgi --module apps", roleWorkers},
		{"uWSGI router under --auto-procname", 102, "uWSGI http 1", roleMaster},
		{"uWSGI worker under --auto-procname", 103, "uWSGI worker 1", roleWorkers},
		{"uWSGI master under --auto-procname", 100, "uWSGI master", roleMaster},
		{"process named like a router only later in its arguments", 104, "uwsgi --name uWSGI http", roleWorkers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, roleOf(tt.pid, 100, tt.cmdline))
		})
	}
}

// ticks builds a treeCPU from master, workers and nginx ticks, one process
// each where ticks are given.
func ticks(master, workers, nginx int64) treeCPU {
	var t treeCPU
	for r, v := range []int64{master, workers, nginx} {
		if v >= 0 {
			t.add(role(r), v)
		}
	}
	return t
}

func TestPerRequest(t *testing.T) {
	tests := []struct {
		name          string
		before, after treeCPU
		clk           float64
		requests      int64
		want          cpuSplit
	}{
		{name: "master and workers", before: ticks(100, 200, -1), after: ticks(127, 280, -1), clk: 100, requests: 10000,
			want: cpuSplit{27, 80, 0}},
		{name: "behind nginx", before: ticks(0, 0, 0), after: ticks(10, 40, 25), clk: 100, requests: 5000,
			want: cpuSplit{20, 80, 50}},
		{name: "other clock rate", before: ticks(0, 0, -1), after: ticks(250, 1000, -1), clk: 250, requests: 1000000,
			want: cpuSplit{1, 4, 0}},
		{name: "no requests", before: ticks(0, 0, -1), after: ticks(5, 5, -1), clk: 100, requests: 0,
			want: cpuSplit{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := perRequest(tt.before, tt.after, tt.clk, tt.requests)
			for r := range got {
				assert.InDelta(t, tt.want[r], got[r], 1e-9, "role %d", r)
			}
			assert.InDelta(t, tt.want.total(), got.total(), 1e-9)
		})
	}
}

func TestTreeCPUCountsProcesses(t *testing.T) {
	var tc treeCPU
	tc.add(roleMaster, 5)
	tc.add(roleWorkers, 7)
	tc.add(roleWorkers, 11)
	assert.Equal(t, [roleCount]int64{5, 18, 0}, tc.ticks)
	assert.Equal(t, [roleCount]int{1, 2, 0}, tc.processes)
}
