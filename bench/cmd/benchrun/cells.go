// The benchmark's main loop: every server started once, then for each round
// every cell (app × load) run by every server in turn, the starting server
// rotating from round to round so drift hits them all alike.
package main

import (
	"fmt"
	"os"
	"sort"
	"time"
)

// bench holds one benchmark run and its results.
type bench struct {
	opts     options
	benchDir string
	tmp      string
	env      []string
	apps     []app
	loads    []load
	servers  []server
	clk      float64

	running    []*running
	samples    map[cellKey][]sample
	memoryRows []memoryRow
	cgi        cgiResult
	loadStart  string
	elapsed    time.Duration
}

// cellKey names one cell of one server.
type cellKey struct{ server, app, load string }

// sample is one round of one cell.
type sample struct {
	wrkResult
	cpuPer1k  float64 // server CPU seconds per 1,000 requests
	perWorker memory
	totalPSS  float64
	waiting   int // connections in the server's accept queue halfway through
}

// runCells starts the servers, runs every round and stops them.
func (b *bench) runCells() error {
	b.samples = map[cellKey][]sample{}
	defer b.stopAll()
	for _, s := range b.servers {
		port, err := freePort()
		if err != nil {
			return err
		}
		r, err := start(s.name, s.command(port), port, b.benchDir, b.tmp, b.env)
		if err != nil {
			return err
		}
		b.running = append(b.running, r)
	}
	for round := 0; round < b.opts.rounds; round++ {
		for _, a := range b.apps {
			for _, l := range b.loads {
				for i := range b.running {
					r := b.running[(i+round)%len(b.running)]
					if err := b.measure(r, a, l, round); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// measure runs one cell once against r.
func (b *bench) measure(r *running, a app, l load, round int) error {
	pid := r.cmd.Process.Pid
	before := cpuTicks(pid)
	// Halfway through, how many of wrk's connections the server has not
	// even accepted: a server that serves one kept-alive connection per
	// worker leaves the others queued, unserved, for the whole run.
	waiting := make(chan int, 1)
	go func() {
		time.Sleep(b.opts.duration / 2)
		n, _ := acceptQueue(r.port)
		waiting <- n
	}()
	res, err := runWrk(wrkArgs(a, l, r.port, b.opts.duration, b.benchDir), b.opts.duration)
	if err != nil {
		return fmt.Errorf("%s, %s, %s: %w", r.name, a.name, l.name, err)
	}
	after := cpuTicks(pid)
	s := sample{wrkResult: res, waiting: <-waiting}
	if res.requests > 0 {
		s.cpuPer1k = float64(after-before) / b.clk / (float64(res.requests) / 1000)
	}
	s.perWorker, s.totalPSS = treeMemory(pid)
	key := cellKey{r.name, a.name, l.name}
	b.samples[key] = append(b.samples[key], s)
	fmt.Fprintf(os.Stderr, "round %d  %-16s %-26s %-36s %9.0f req/s  p99 %8.2f ms  errors %d\n",
		round+1, r.name, a.name, l.name, res.rps, res.p99, res.errors)
	return nil
}

// stopAll stops every started server by its PID.
func (b *bench) stopAll() {
	for _, r := range b.running {
		r.stop()
	}
	b.running = nil
}

// cell is the median of a cell's rounds, with the spread of req/s.
type cell struct {
	rps, rpsMin, rpsMax float64
	p50, p99            float64
	errors              float64
	waiting             float64
	cpuPer1k            float64
	rss, pss, totalPSS  float64 // KiB
	rounds              int
}

// summarise takes the median of every figure over the rounds, each figure
// on its own.
func summarise(samples []sample) cell {
	pick := func(f func(sample) float64) float64 {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = f(s)
		}
		return median(v)
	}
	c := cell{rounds: len(samples)}
	if len(samples) == 0 {
		return c
	}
	c.rps = pick(func(s sample) float64 { return s.rps })
	c.rpsMin, c.rpsMax = samples[0].rps, samples[0].rps
	for _, s := range samples {
		c.rpsMin, c.rpsMax = min(c.rpsMin, s.rps), max(c.rpsMax, s.rps)
	}
	c.p50 = pick(func(s sample) float64 { return s.p50 })
	c.p99 = pick(func(s sample) float64 { return s.p99 })
	c.errors = pick(func(s sample) float64 { return float64(s.errors) })
	c.waiting = pick(func(s sample) float64 { return float64(s.waiting) })
	c.cpuPer1k = pick(func(s sample) float64 { return s.cpuPer1k })
	c.rss = pick(func(s sample) float64 { return s.perWorker.rss })
	c.pss = pick(func(s sample) float64 { return s.perWorker.pss })
	c.totalPSS = pick(func(s sample) float64 { return s.totalPSS })
	return c
}

// median of v (the mean of the middle two for an even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
