// The memory scenario: total PSS of every process of gowsgi and of uWSGI
// (--master, which imports the app once and forks its workers) serving the
// Flask route, at 2 and at 8 workers.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// memoryRow is one server at one worker count.
type memoryRow struct {
	server    string
	workers   int
	processes int
	totalPSS  float64 // KiB
	command   string
}

var memoryWorkers = []int{2, 8}

// memoryScenario starts each server fresh, warms the Flask route with wrk
// (so every worker has served it), reads smaps_rollup of the whole process
// tree and stops the server.
func memoryScenario(gowsgi, benchDir, tmp string, env []string) ([]memoryRow, error) {
	var rows []memoryRow
	for _, workers := range memoryWorkers {
		for _, name := range []string{"gowsgi", "uwsgi"} {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			argv := uwsgiCommand("--http11-socket", listenAddr(port), workers)
			if name == "gowsgi" {
				argv = gowsgiCommand(gowsgi, "--http-socket", listenAddr(port), workers)
			}
			row, err := measureMemory(name, argv, port, workers, benchDir, tmp, env)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

func measureMemory(name string, argv []string, port, workers int, benchDir, tmp string, env []string) (memoryRow, error) {
	label := fmt.Sprintf("%s-memory-%d", name, workers)
	r, err := start(label, argv, port, benchDir, tmp, env)
	if err != nil {
		return memoryRow{}, err
	}
	defer r.stop()
	warm := 2 * time.Second
	l := load{connections: 4 * workers}
	if _, err := runWrk(wrkArgs(selectApps(appFlask)[0], l, port, warm, benchDir), warm); err != nil {
		return memoryRow{}, fmt.Errorf("%s: %w", label, err)
	}
	tree := processTree(r.cmd.Process.Pid)
	row := memoryRow{server: name, workers: workers, processes: len(tree), command: strings.Join(argv, " ")}
	for _, pid := range tree {
		if m, err := readMemory(pid); err == nil {
			row.totalPSS += m.pss
		}
	}
	fmt.Fprintf(os.Stderr, "memory  %-8s %d workers  %d processes  total PSS %.1f MiB\n",
		name, workers, row.processes, row.totalPSS/1024)
	return row, nil
}
