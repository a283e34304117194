// Reload, as the pool goroutine (pool.go) runs it: a new generation's
// zygote imports the app in the background while the running workers go on
// serving; once every new worker is ready the queue switches over to them
// and the old ones finish what they are serving, so no request is dropped.
// A generation that fails to import is dropped and the old one keeps serving.
package server

func (p *pool) beginReload() {
	switch {
	case p.starting || p.stopping:
		return
	case p.pending != 0:
		p.log.Warn("reload already in progress")
		return
	}
	gen := p.newGeneration()
	p.pending = gen
	p.log.Info("reloading", "generation", gen)
	if p.reloadBegan != nil {
		p.reloadBegan()
	}
	p.launcher.prepare(gen, func(err error) {
		ev := event{kind: evPrepared, gen: gen}
		if err != nil {
			ev.text = err.Error()
		}
		p.send(ev)
	})
}

// generationPrepared starts the workers of a reload's generation once it
// can start (its zygote has imported the app), unless the reload has been
// given up or failed since.
func (p *pool) generationPrepared(gen int, failure string) {
	switch {
	case gen != p.pending || p.stopping: // given up: released already, or when run ends
	case failure != "":
		p.loadFailed(gen, failure)
	default:
		p.spawnGeneration(gen)
	}
}

// finishReload switches the queue over to the pending generation, then lets
// the old workers finish what they are serving.
func (p *pool) finishReload() {
	gen := p.pending
	old := p.current
	p.current, p.pending = gen, 0
	p.failures, p.gaveUp = nil, false
	p.launcher.release(old)
	for w := range p.workers {
		if w.gen == gen {
			p.activate(w)
		}
	}
	for w := range p.workers {
		if w.gen != gen {
			p.retireWorker(w)
		}
	}
	p.log.Info("reloaded", "generation", gen)
	if p.tookOver != nil {
		p.tookOver(gen)
	}
	if p.reloadEnded != nil {
		p.reloadEnded("")
	}
}

// abandonReload drops a generation that failed to load; the old one keeps
// serving.
func (p *pool) abandonReload(reason string) {
	p.log.Error("reload failed, keeping the running workers", "error", reason)
	for w := range p.workers {
		if w.gen == p.pending {
			p.retireWorker(w)
		}
	}
	p.launcher.release(p.pending)
	p.pending = 0
	if p.reloadEnded != nil {
		p.reloadEnded(reason)
	}
}
