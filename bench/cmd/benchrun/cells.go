// The benchmark's main loop: every server started once, then for each round
// every cell (app × load) run by every server that runs it, in turn, the
// starting server rotating from round to round so drift hits them all alike.
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
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
	cpu       cpuSplit       // CPU µs per request by role
	processes [roleCount]int // processes per role after the cell
	perWorker memory
	totalPSS  float64
	waiting   int // connections in the server's accept queue halfway through
}

// runCells starts the servers, runs every round and stops them.
func (b *bench) runCells() error {
	b.samples = map[cellKey][]sample{}
	defer b.stopAll()
	for _, s := range b.servers {
		r, err := b.startServer(s)
		if err != nil {
			return err
		}
		b.running = append(b.running, r)
	}
	for round := 0; round < b.opts.rounds; round++ {
		for _, a := range b.apps {
			for _, l := range b.loads {
				for i := range b.running {
					k := (i + round) % len(b.running)
					if !b.servers[k].runs(a, l) {
						continue
					}
					if err := b.measure(b.running[k], a, l, round); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// startServer starts s on a free port, or behind its own nginx.
func (b *bench) startServer(s server) (*running, error) {
	if s.behindNginx {
		return startBehindNginx(s, b.benchDir, b.tmp, b.env)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return start(s.name, s.command(listenAddr(port)), port, b.benchDir, b.tmp, b.env)
}

// listenAddr is the loopback address of port.
func listenAddr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// measure runs one cell once against r.
func (b *bench) measure(r *running, a app, l load, round int) error {
	before := readTreeCPU(r)
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
	after := readTreeCPU(r)
	s := sample{wrkResult: res, waiting: <-waiting, processes: after.processes}
	s.cpu = perRequest(before, after, b.clk, res.requests)
	s.perWorker, s.totalPSS = treeMemory(r.cmd.Process.Pid)
	key := cellKey{r.name, a.name, l.name}
	b.samples[key] = append(b.samples[key], s)
	fmt.Fprintf(os.Stderr, "round %d  %-16s %-26s %-36s %9.0f req/s  p99 %8.2f ms  errors %d  CPU µs/req %s\n",
		round+1, r.name, a.name, l.name, res.rps, res.p99, res.errors, s.cpu)
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
	cpu                 cpuSplit       // µs per request by role
	processes           [roleCount]int // processes per role after the last round
	rss, pss, totalPSS  float64        // KiB
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
	for r := range c.cpu {
		c.cpu[r] = pick(func(s sample) float64 { return s.cpu[r] })
	}
	c.processes = samples[len(samples)-1].processes
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
