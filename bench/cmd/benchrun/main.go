// Command benchrun is gowsgi's side-by-side benchmark: it starts gowsgi,
// Gunicorn (sync and gthread), uWSGI (--http11-socket and the --http
// router), waitress, and gowsgi and uWSGI behind nginx's uwsgi_pass on
// bench/apps.py, drives each app at each load with wrk, the servers taking
// turns inside every round, and writes a Markdown report (the req/s ratios
// the performance goals are stated in, CPU per request split into master,
// workers and nginx) and a gnuplot chart. `make bench` and `make
// bench-quick` run it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// options are benchrun's flags.
type options struct {
	quick    bool
	gowsgi   string
	benchDir string
	out      string
	png      string
	python   string
	duration time.Duration
	rounds   int
}

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "hello, Flask JSON and 10 MiB file_wrapper at 1 and 32 connections only; no memory scenario")
	flag.StringVar(&o.gowsgi, "gowsgi", "bin/gowsgi", "the gowsgi binary under test")
	flag.StringVar(&o.benchDir, "bench", "bench", "the directory holding apps.py and the wrk scripts")
	flag.StringVar(&o.out, "out", "", "write the Markdown report here (default: standard output)")
	flag.StringVar(&o.png, "png", "", "write the chart here with gnuplot (default: no chart)")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "the Python the other servers run on, for versions and the wsgiref CGI row")
	flag.DurationVar(&o.duration, "d", 2*time.Second, "wrk duration per cell (whole seconds)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per cell; each cell reports the median")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(o options) error {
	started := time.Now()
	gowsgi, err := filepath.Abs(o.gowsgi)
	if err != nil {
		return fmt.Errorf("benchrun: %w", err)
	}
	benchDir, err := filepath.Abs(o.benchDir)
	if err != nil {
		return fmt.Errorf("benchrun: %w", err)
	}
	tmp, err := os.MkdirTemp("", "gowsgi-bench-")
	if err != nil {
		return fmt.Errorf("benchrun: %w", err)
	}
	defer os.RemoveAll(tmp)
	bigFile := filepath.Join(tmp, "10mib.bin")
	if err := writeBigFile(bigFile, 10<<20); err != nil {
		return err
	}
	b := &bench{
		opts: o, benchDir: benchDir, tmp: tmp, env: []string{"BENCH_FILE=" + bigFile, "PYTHONDONTWRITEBYTECODE=1"},
		apps: allApps, loads: allLoads, servers: servers(gowsgi), clk: clockTicks(), loadStart: loadAverage(),
	}
	if o.quick {
		b.apps = selectApps(appHello, appFlask, appFile10M)
		b.loads = selectLoads(loadOne, loadThirtyTwo)
	}
	if err := b.runCells(); err != nil {
		return err
	}
	if !o.quick {
		if b.memoryRows, err = memoryScenario(gowsgi, benchDir, tmp, b.env); err != nil {
			return err
		}
	}
	b.cgi = cgiStartup(gowsgi, o.python, filepath.Join(filepath.Dir(benchDir), "examples"), 20)
	b.elapsed = time.Since(started)
	if err := b.writeReport(); err != nil {
		return err
	}
	if o.png != "" {
		return b.plot(o.png)
	}
	return nil
}

// writeBigFile writes the file /file10m serves, generated per run so that
// nothing large is committed.
func writeBigFile(path string, size int) error {
	block := make([]byte, 1<<16)
	for i := range block {
		block[i] = byte('a' + i%26)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("benchrun: %w", err)
	}
	for written := 0; written < size; written += len(block) {
		if _, err := f.Write(block); err != nil {
			f.Close()
			return fmt.Errorf("benchrun: %w", err)
		}
	}
	return f.Close()
}

// selectApps is the apps named, in allApps' order.
func selectApps(names ...string) []app {
	var out []app
	for _, a := range allApps {
		if contains(names, a.name) {
			out = append(out, a)
		}
	}
	return out
}

// selectLoads is the loads named, in allLoads' order.
func selectLoads(names ...string) []load {
	var out []load
	for _, l := range allLoads {
		if contains(names, l.name) {
			out = append(out, l)
		}
	}
	return out
}
