// uWSGI's cheaper subsystem: the master starts workers when the load
// grows and stops them when it falls, between Cheaper.Min and --processes.
// Each second it looks at the workers (as uWSGI's master does on each of
// its cycles) and asks the pool for one worker more or fewer over
// p.resizes, the path SIGTTIN and SIGTTOU take. Two algorithms:
//   - spare (uWSGI's default): when every worker is busy for Overload
//     cycles, start Step more; when more than one is idle for Overload
//     cycles, stop one, down to Min.
//   - busyness: every Overload cycles, the share of busy slots averaged
//     over those cycles above BusynessMax starts Step more, below
//     BusynessMin stops one. (uWSGI measures each worker's time spent in
//     requests; sampling the busy slots each second approximates it.)
package server

import (
	"time"
)

// Cheaper sets the algorithm; nil runs --processes workers throughout.
type Cheaper struct {
	Algo    string // "spare" or "busyness"
	Min     int    // the fewest workers (uWSGI's --cheaper)
	Initial int    // the workers started first (--cheaper-initial)
	Step    int    // workers started at once (--cheaper-step)
	// Overload is how many one-second cycles a condition must last
	// (--cheaper-overload).
	Overload int
	// BusynessMax and BusynessMin are percentages (--cheaper-busyness-max,
	// --cheaper-busyness-min).
	BusynessMax, BusynessMin int
}

// startProcesses is the number of workers the pool starts with.
func startProcesses(cfg Config) int {
	if cfg.Cheaper != nil {
		return cfg.Cheaper.Initial
	}
	return cfg.Processes
}

// cheaperInterval is the length of one cycle.
const cheaperInterval = time.Second

// cheaperState is what the algorithms remember between cycles.
type cheaperState struct {
	overload, idle int
	busySum        float64 // busyness: the sampled shares of busy slots
	samples        int
}

// runCheaper scales the pool between c.Min and most until stop is closed.
func (m *master) runCheaper(c *Cheaper, most int, stop <-chan struct{}) {
	tick := time.NewTicker(cheaperInterval)
	defer tick.Stop()
	var state cheaperState
	for {
		select {
		case <-tick.C:
		case <-stop:
			return
		}
		snap := m.pool.snapshot()
		active, busy, slots, busySlots := countLoad(snap)
		if active != snap.Processes {
			continue // starting, retiring or reloading: wait until it settles
		}
		var delta int
		if c.Algo == "busyness" {
			delta = state.busyness(c, float64(busySlots)/float64(max(slots, 1)))
		} else {
			delta = state.spare(c, active, busy)
		}
		m.resizeBy(clampDelta(delta, snap.Processes, c.Min, most))
	}
}

// countLoad counts the serving workers, those with every slot busy, and
// their slots.
func countLoad(snap poolSnapshot) (active, busy, slots, busySlots int) {
	for _, w := range snap.Workers {
		if w.Status != workerIdle && w.Status != workerBusy {
			continue
		}
		active++
		slots += w.Slots
		busySlots += w.BusySlots
		if w.BusySlots >= w.Slots {
			busy++
		}
	}
	return active, busy, slots, busySlots
}

// spare is uWSGI's spare algorithm for one cycle: the workers to add (or,
// negative, to stop).
func (s *cheaperState) spare(c *Cheaper, active, busy int) int {
	if busy < active {
		s.overload = max(s.overload-1, 0)
	} else {
		s.overload++
		s.idle = 0
	}
	switch {
	case s.overload >= c.Overload:
		s.overload = 0
		return c.Step
	case s.overload > 0:
		return 0
	case active-busy == 1: // one spare worker: stable
		s.idle = 0
		return 0
	}
	s.idle++
	if s.idle >= c.Overload {
		s.idle = 0
		return -1
	}
	return 0
}

// busyness adds one cycle's share of busy slots; every Overload cycles it
// decides on their average.
func (s *cheaperState) busyness(c *Cheaper, share float64) int {
	s.busySum += share
	s.samples++
	if s.samples < c.Overload {
		return 0
	}
	average := 100 * s.busySum / float64(s.samples)
	s.busySum, s.samples = 0, 0
	switch {
	case average > float64(c.BusynessMax):
		return c.Step
	case average < float64(c.BusynessMin):
		return -1
	}
	return 0
}

// clampDelta keeps processes+delta within [low, high].
func clampDelta(delta, processes, low, high int) int {
	return min(max(processes+delta, low), high) - processes
}

// resizeBy asks the pool for delta workers more (or fewer), one at a time.
func (m *master) resizeBy(delta int) {
	step := 1
	if delta < 0 {
		step, delta = -1, -delta
	}
	for ; delta > 0; delta-- {
		select {
		case m.pool.resizes <- step:
		case <-m.pool.done:
			return
		}
	}
}
