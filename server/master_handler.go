// The master's handler and what hangs off its dispatcher, set up once the
// dispatcher and the pool exist: the access log (accesslog.go), the routing
// rules (routing.go) and static files (static.go) in front of the
// dispatcher, and the per-worker totals the stats server reports
// (stats.go).
package server

import "io"

// prepareAccessStaticStats sets up the access log, the static files and
// the stats server cfg asks for; newMaster calls it once the dispatcher and
// the pool exist, before the gateways are built.
func (m *master) prepareAccessStaticStats() (err error) {
	access := newAccessLog(m.cfg, m.log, m.requestLineOutput())
	if access != nil {
		access.pidOf = m.pidOf
	}
	m.handler = m.dispatch
	if len(m.cfg.StaticMaps) > 0 {
		static, err := newStaticHandler(m.cfg.StaticMaps, m.dispatch)
		if err != nil {
			return err
		}
		static.gzipAll, static.gzipDirs, static.expires = m.cfg.StaticGzipAll, m.cfg.StaticGzipDirs, m.cfg.StaticExpires
		m.handler = static
	}
	// The rules see a request before the static files do, as in uWSGI.
	if len(m.cfg.Routes) > 0 || len(m.cfg.AddHeaders) > 0 {
		m.handler = &routingHandler{routes: m.cfg.Routes, headers: m.cfg.AddHeaders, next: m.handler}
	}
	if m.cfg.LogJSON {
		m.handler = requestIDs{next: m.handler}
	}
	// The access log wraps static files too, so every response is logged
	// once, and sees the request's id.
	m.handler = access.wrap(m.handler)
	if m.stats, err = listenStats(m.cfg.Stats, m.cfg.StatsHTTP, m.log); err != nil {
		return err
	}
	if m.stats != nil {
		m.dispatch.totals = newWorkerTotals()
	}
	return nil
}

// requestLineOutput is where the request lines go: the sink's request
// path, or the master's stderr without --log-date's dates (uWSGI does
// not date its request lines).
func (m *master) requestLineOutput() io.Writer {
	if m.cfg.sink != nil {
		return m.cfg.sink.writer(true)
	}
	return undated(m.stderr)
}

// pidOf returns the pid of the serving worker numbered worker, 0 when
// there is none; for the access log's %(pid) and --memory-report.
func (m *master) pidOf(worker int) int {
	pid := 0
	for _, w := range m.pool.snapshot().Workers {
		if w.ID == worker && w.Status != workerStarting {
			pid = w.PID // the newest such process, as the list is oldest first
		}
	}
	return pid
}
