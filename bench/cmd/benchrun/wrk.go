// Running wrk for one cell and reading its report (req/s, the --latency
// percentiles, socket errors and non-2xx responses).
package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkTimeout is how long wrk waits for one response before it counts a
// timeout; above wrk's 2 s default so a 10 MiB body at 256 connections is
// measured, not dropped.
const wrkTimeout = "5s"

// wrkResult is one wrk run.
type wrkResult struct {
	requests int64
	rps      float64
	p50, p99 float64 // milliseconds
	errors   int64   // socket errors (connect, read, write, timeout) + non-2xx/3xx
}

// wrkArgs is the wrk command line for a cell.
func wrkArgs(a app, l load, port int, d time.Duration, benchDir string) []string {
	args := []string{"wrk", "-t1", "-c", strconv.Itoa(l.connections), "-d", fmt.Sprintf("%gs", d.Seconds()),
		"--latency", "--timeout", wrkTimeout}
	if l.close {
		args = append(args, "-H", "Connection: close")
	}
	if a.script != "" {
		args = append(args, "-s", filepath.Join(benchDir, a.script))
	}
	return append(args, fmt.Sprintf("http://127.0.0.1:%d%s", port, a.path))
}

// runWrk runs wrk and parses what it prints.
func runWrk(argv []string, d time.Duration) (wrkResult, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	// Bounded: wrk stops itself after d; the margin covers its start-up and
	// the responses it is still waiting for.
	timer := time.AfterFunc(d+30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("benchrun: wrk: %w: %s", err, out)
	}
	return parseWrk(string(out))
}

var (
	reRequests = regexp.MustCompile(`(\d+) requests in`)
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	rePercent  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$`)
)

// parseWrk reads wrk 4's text report.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := reRequests.FindStringSubmatch(out)
	rps := reRPS.FindStringSubmatch(out)
	if m == nil || rps == nil {
		return r, fmt.Errorf("benchrun: wrk report not understood: %s", out)
	}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.rps, _ = strconv.ParseFloat(rps[1], 64)
	if s := reSocket.FindStringSubmatch(out); s != nil {
		for _, f := range s[1:] {
			n, _ := strconv.ParseInt(f, 10, 64)
			r.errors += n
		}
	}
	if s := reNon2xx.FindStringSubmatch(out); s != nil {
		n, _ := strconv.ParseInt(s[1], 10, 64)
		r.errors += n
	}
	for _, p := range rePercent.FindAllStringSubmatch(out, -1) {
		ms := toMilliseconds(p[2], p[3])
		if p[1] == "50" {
			r.p50 = ms
		} else {
			r.p99 = ms
		}
	}
	return r, nil
}

// toMilliseconds converts one of wrk's latency figures.
func toMilliseconds(value, unit string) float64 {
	v, _ := strconv.ParseFloat(value, 64)
	scale := map[string]float64{"us": 1e-3, "ms": 1, "s": 1e3, "m": 60e3, "h": 3600e3}
	return v * scale[unit]
}

// wrkVersion is the first line wrk -v prints (it exits 1 doing so).
func wrkVersion() string {
	out, _ := exec.Command("wrk", "-v").CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
