// Tests for the summary's rows: the ratios the goals are stated in and the
// CPU split, from the medians of the rounds.
package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

// measured is one round of a cell: req/s, p99 ms and CPU µs per request
// for master, workers and nginx; a negative CPU figure means no process
// plays that role.
func measured(rps, p99, master, workers, nginx float64) sample {
	s := sample{wrkResult: wrkResult{rps: rps, p99: p99}}
	for r, v := range []float64{master, workers, nginx} {
		if v >= 0 {
			s.cpu[r], s.processes[r] = v, 1
		}
	}
	return s
}

// summaryBench is a run with hello at 32 connections measured for every
// server (two rounds for gowsgi, to show the median), hello at 1
// connection for gowsgi and Gunicorn only, and Flask behind nginx.
func summaryBench() *bench {
	hello32, hello1, flask32 := cellRef{appHello, loadThirtyTwo}, cellRef{appHello, loadOne}, cellRef{appFlask, loadThirtyTwo}
	key := func(server string, c cellRef) cellKey { return cellKey{server, c.app, c.load} }
	return &bench{samples: map[cellKey][]sample{
		key(serverGowsgi, hello32):      {measured(60000, 2, 7, 20, -1), measured(64000, 4, 9, 22, -1)},
		key(serverUWSGI, hello32):       {measured(40000, 0.5, 1, 25, -1)},
		key(serverUWSGIHTTP, hello32):   {measured(31000, 1.5, 12, 30, -1)},
		key(serverGunicorn, hello32):    {measured(15500, 3, 2, 60, -1)},
		key(serverGowsgi, hello1):       {measured(16000, 0.1, 8, 21, -1)},
		key(serverGunicorn, hello1):     {measured(8000, 0.2, 2, 61, -1)},
		key(serverNginxGowsgi, flask32): {measured(17000, 3, 5, 75, 30)},
		key(serverNginxUWSGI, flask32):  {measured(17000, 2.5, 1, 76, 31)},
	}}
}

func TestDirectRow(t *testing.T) {
	b := summaryBench()
	tests := []struct {
		cell cellRef
		want string
	}{
		{cellRef{appHello, loadThirtyTwo},
			"| hello · 32 connections | 62000 | 40000 | 31000 | 15500 | 1.55× | 2.00× | 4.00× | 3.00 / 0.50 / 1.50 |"},
		{cellRef{appHello, loadOne},
			"| hello · 1 connection | 16000 | — | — | 8000 | — | — | 2.00× | 0.10 / — / — |"},
		{cellRef{appFlask, loadThirtyTwo}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.cell.label(), func(t *testing.T) {
			assert.Equal(t, tt.want, b.directRow(tt.cell))
		})
	}
}

func TestDirectCPURow(t *testing.T) {
	b := summaryBench()
	tests := []struct {
		cell cellRef
		want string
	}{
		{cellRef{appHello, loadThirtyTwo}, "| hello · 32 connections | 8.0 · 21.0 | 1.0 · 25.0 | 12.0 · 30.0 | 2.0 · 60.0 |"},
		{cellRef{appHello, loadOne}, "| hello · 1 connection | 8.0 · 21.0 | — · — | — · — | 2.0 · 61.0 |"},
		{cellRef{appFile10M, loadThirtyTwo}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.cell.label(), func(t *testing.T) {
			assert.Equal(t, tt.want, b.directCPURow(tt.cell))
		})
	}
}

func TestNginxRow(t *testing.T) {
	b := summaryBench()
	tests := []struct {
		cell cellRef
		want string
	}{
		{cellRef{appFlask, loadThirtyTwo},
			"| Flask JSON · 32 connections | 17000 | 17000 | 1.00× | 3.00 / 2.50 | 5.0 · 75.0 · 30.0 | 1.0 · 76.0 · 31.0 |"},
		{cellRef{appHello, loadThirtyTwo}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.cell.label(), func(t *testing.T) {
			assert.Equal(t, tt.want, b.nginxRow(tt.cell))
		})
	}
}

func TestCPUText(t *testing.T) {
	single := summarise([]sample{measured(100, 1, 40, -1, -1)})
	tests := []struct {
		name  string
		c     cell
		roles []role
		want  string
	}{
		{"one process plays every part (waitress)", single, []role{roleMaster, roleWorkers, roleNginx}, "40.0 · — · —"},
		{"cell not run", cell{}, []role{roleMaster, roleWorkers}, "— · —"},
		{"median of the rounds, by role", summarise([]sample{measured(1, 1, 3, 30, -1), measured(1, 1, 1, 10, -1), measured(1, 1, 2, 50, -1)}),
			[]role{roleMaster, roleWorkers}, "2.0 · 30.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, cpuText(tt.c, tt.roles...))
		})
	}
}

func TestWriteSummaryLeavesOutCellsNotRun(t *testing.T) {
	var out bytes.Buffer
	summaryBench().writeSummary(&out)
	assert.Contains(t, out.String(), "| hello · 1 connection | 16000 |")
	assert.Contains(t, out.String(), "| Flask JSON · 32 connections | 17000 | 17000 | 1.00× |")
	assert.NotContains(t, out.String(), "1 MiB response")
	assert.NotContains(t, out.String(), "| Flask JSON · 1 connection")
}
