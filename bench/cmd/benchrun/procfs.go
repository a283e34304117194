// What the benchmark reads from /proc: a server's process tree, its CPU time
// (proc(5) /proc/PID/stat), its processes' names (/proc/PID/cmdline) and its
// memory (/proc/PID/smaps_rollup).
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// procStat is the part of /proc/PID/stat the benchmark uses.
type procStat struct {
	ppid int
	// ticks is utime+stime+cutime+cstime: a worker that died and was reaped
	// still counts, through its parent's cutime/cstime.
	ticks int64
}

// readStat parses /proc/PID/stat; the command name is in parentheses and may
// hold spaces, so fields are counted after the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("benchrun: stat %d: %w", pid, err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// fields[0] is field 3 (state) of proc(5).
	if len(fields) < 15 {
		return procStat{}, fmt.Errorf("benchrun: stat %d: %d fields", pid, len(fields))
	}
	ppid, _ := strconv.Atoi(fields[1])
	var ticks int64
	for _, f := range fields[11:15] {
		n, _ := strconv.ParseInt(f, 10, 64)
		ticks += n
	}
	return procStat{ppid: ppid, ticks: ticks}, nil
}

// processTree is root and all its descendants, root first.
func processTree(root int) []int {
	children := map[int][]int{}
	entries, _ := filepath.Glob("/proc/[0-9]*")
	for _, e := range entries {
		pid, err := strconv.Atoi(filepath.Base(e))
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// readCmdline is /proc/PID/cmdline with its NULs as spaces: the name a
// process gave itself by rewriting its argv, as uWSGI's --auto-procname
// does (proc(5)).
func readCmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// clockTicks is sysconf(_SC_CLK_TCK), the unit of /proc/PID/stat times.
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if n, perr := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && perr == nil && n > 0 {
		return n
	}
	return 100
}

// memory is RSS and PSS in KiB.
type memory struct{ rss, pss float64 }

// readMemory reads Rss and Pss from /proc/PID/smaps_rollup.
func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return memory{}, fmt.Errorf("benchrun: smaps_rollup %d: %w", pid, err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "Rss:":
			m.rss = n
		case "Pss:":
			m.pss = n
		}
	}
	return m, sc.Err()
}

// treeMemory is the mean RSS/PSS of a worker (the root's descendants, or
// the root itself when it has none, as with waitress) and the PSS of every
// process in the tree together.
func treeMemory(root int) (perWorker memory, totalPSS float64) {
	tree := processTree(root)
	workers := tree[1:]
	if len(workers) == 0 {
		workers = tree
	}
	for _, pid := range tree {
		if m, err := readMemory(pid); err == nil {
			totalPSS += m.pss
		}
	}
	var n float64
	for _, pid := range workers {
		if m, err := readMemory(pid); err == nil {
			perWorker.rss += m.rss
			perWorker.pss += m.pss
			n++
		}
	}
	if n > 0 {
		perWorker.rss /= n
		perWorker.pss /= n
	}
	return perWorker, totalPSS
}

// acceptQueue returns how many connections wait in the accept queue of
// the server listening on 127.0.0.1:port: connections a client has opened
// and the server has not taken, so not served.
func acceptQueue(port int) (int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, fmt.Errorf("benchrun: %w", err)
	}
	return parseAcceptQueue(string(b), port)
}

// parseAcceptQueue reads a /proc/net/tcp table (proc(5)): for a socket in
// state 0A (LISTEN) the rx_queue field is its accept queue's length.
func parseAcceptQueue(table string, port int) (int, error) {
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(table, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || f[3] != "0A" || !strings.HasSuffix(f[1], want) {
			continue
		}
		_, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			return 0, fmt.Errorf("benchrun: /proc/net/tcp queues %q", f[4])
		}
		n, err := strconv.ParseInt(rx, 16, 64)
		return int(n), err
	}
	return 0, fmt.Errorf("benchrun: no listening socket on port %d in /proc/net/tcp", port)
}
