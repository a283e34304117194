// SIGTTIN and SIGTTOU: one worker more or one fewer, as uWSGI's master
// does. The signals reach the pool goroutine (pool.go) over p.resizes, and
// the pool adds or retires the worker itself.
package server

import (
	"os"
	"os/signal"
	"syscall"
)

// maxProcesses bounds what SIGTTIN can grow the pool to, as --processes is.
const maxProcesses = 1024

// watchResizeSignals turns SIGTTIN into one worker more and SIGTTOU into one
// fewer, as uWSGI's master does, until the pool has stopped. It registers
// before returning: unhandled, either signal would stop the process.
func (p *pool) watchResizeSignals() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTTIN, syscall.SIGTTOU)
	go func() {
		defer signal.Stop(sigs)
		for {
			select {
			case sig := <-sigs:
				delta := 1
				if sig == syscall.SIGTTOU {
					delta = -1
				}
				select {
				case p.resizes <- delta:
				case <-p.done:
					return
				}
			case <-p.done:
				return
			}
		}
	}()
}

// resize adds a worker (delta 1) or retires the highest-numbered one
// (delta -1).
func (p *pool) resize(delta int) {
	switch {
	case p.starting || p.stopping || p.pending != 0:
		p.log.Warn("cannot change the worker count while starting, reloading or stopping", "processes", p.processes)
		return
	case delta > 0 && p.processes >= maxProcesses, delta < 0 && p.processes <= 1:
		p.log.Warn("worker count unchanged", "processes", p.processes)
		return
	}
	if delta > 0 {
		p.processes++
		p.log.Info("adding a worker", "worker", p.processes, "processes", p.processes)
		if _, err := p.spawn(p.processes, p.current); err != nil {
			p.log.Error("worker spawn failed", "worker", p.processes, "error", err)
			p.scheduleRespawn(p.processes)
		}
		return
	}
	num := p.processes
	p.processes--
	p.log.Info("removing a worker", "worker", num, "processes", p.processes)
	for w := range p.workers {
		if w.gen == p.current && w.num == num {
			p.retireWorker(w)
		}
	}
}
