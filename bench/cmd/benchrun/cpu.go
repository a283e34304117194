// CPU per request split by role: a server's master (its first process; with
// uWSGI's --http, its router too), its workers (every other process: gowsgi's
// zygote and workers), and the nginx in front of it, each from the
// utime+stime of /proc/PID/stat read before and after a cell.
package main

import (
	"fmt"
	"strings"
)

// role is the part of a server a process plays.
type role int

const (
	roleMaster role = iota
	roleWorkers
	roleNginx
	roleCount
)

// routerCmdline is how uWSGI's HTTP router names itself under
// --auto-procname; the router, like the master, sits in front of the
// workers, so it counts with the master.
const routerCmdline = "uWSGI http"

// roleOf places a process of the server tree rooted at root.
func roleOf(pid, root int, cmdline string) role {
	if pid == root || strings.HasPrefix(cmdline, routerCmdline) {
		return roleMaster
	}
	return roleWorkers
}

// treeCPU is the CPU ticks each role has used so far, and how many
// processes play it.
type treeCPU struct {
	ticks     [roleCount]int64
	processes [roleCount]int
}

// add counts one process.
func (t *treeCPU) add(r role, ticks int64) {
	t.ticks[r] += ticks
	t.processes[r]++
}

// cpuSplit is CPU microseconds per request by role.
type cpuSplit [roleCount]float64

// total is the sum over the roles.
func (c cpuSplit) total() float64 {
	var t float64
	for _, v := range c {
		t += v
	}
	return t
}

// perRequest turns two readings, in clock ticks of which clk make a
// second, into microseconds per request for each role. A worker that dies in between
// moves its ticks to its parent (cutime), so a role can come out negative;
// no run of the benchmark kills workers.
func perRequest(before, after treeCPU, clk float64, requests int64) cpuSplit {
	var c cpuSplit
	if requests <= 0 || clk <= 0 {
		return c
	}
	for r := range c {
		c[r] = float64(after.ticks[r]-before.ticks[r]) / clk * 1e6 / float64(requests)
	}
	return c
}

// readTreeCPU reads the CPU of r's process tree and of its nginx's, if any.
func readTreeCPU(r *running) treeCPU {
	var t treeCPU
	root := r.cmd.Process.Pid
	for _, pid := range processTree(root) {
		if st, err := readStat(pid); err == nil {
			t.add(roleOf(pid, root, readCmdline(pid)), st.ticks)
		}
	}
	if r.nginx != nil {
		for _, pid := range processTree(r.nginx.cmd.Process.Pid) {
			if st, err := readStat(pid); err == nil {
				t.add(roleNginx, st.ticks)
			}
		}
	}
	return t
}

// String shows the split for the progress lines: master, workers, nginx.
func (c cpuSplit) String() string {
	return fmt.Sprintf("%.1f/%.1f/%.1f", c[roleMaster], c[roleWorkers], c[roleNginx])
}
