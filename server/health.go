// Health endpoints for load balancers and Kubernetes probes
// (--health-socket ADDR): the master's own HTTP listener, answering
// GET /livez and GET /readyz with 200 or 503 and a one-line reason, without
// a worker, so a probe works whatever protocol the app's sockets speak.
// Live: the pool goroutine, which owns the worker table, answers within
// healthLiveTimeout. Ready: a worker of the generation taking requests has
// imported the app and serves, a slot is free or fewer requests wait than
// there are slots, and the master is not draining for a stop.
package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// healthLiveTimeout bounds how long /livez waits for the pool goroutine.
const healthLiveTimeout = time.Second

// health answers the probes on every --health-socket.
type health struct {
	listeners []*listener
	servers   []*http.Server
	snapshot  func(time.Duration) (poolSnapshot, bool)
	waiting   func() int64 // requests no worker has begun (dispatcher.notBegun)
	draining  *atomic.Bool
	log       *slog.Logger
}

// listenHealth binds every --health-socket address with the other sockets,
// so one that is taken stops gowsgi at start; nil when addrs is empty.
func listenHealth(addrs []string) (*health, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	h := &health{}
	for _, addr := range addrs {
		l, err := bindSocket(Socket{Protocol: "health", Address: addr}, 0)
		if err != nil {
			closeListeners(h.listeners, true)
			return nil, fmt.Errorf("--health-socket %s: %w", addr, unwrapOpError(err))
		}
		h.listeners = append(h.listeners, l)
	}
	return h, nil
}

// serve answers probes until close; it starts before the workers, so
// /readyz says the app is loading meanwhile.
func (h *health) serve() {
	if h == nil {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", h.live)
	mux.HandleFunc("GET /readyz", h.ready)
	for _, l := range h.listeners {
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: statsWriteTimeout}
		h.servers = append(h.servers, srv)
		h.log.Info("health server listening", "address", l.Addr().String(), "paths", "/livez /readyz")
		go srv.Serve(l)
	}
}

// close stops the health servers and removes their Unix socket files.
func (h *health) close() {
	if h == nil {
		return
	}
	for _, srv := range h.servers {
		srv.Close()
	}
	closeListeners(h.listeners, true)
}

func (h *health) live(w http.ResponseWriter, _ *http.Request) {
	start := time.Now()
	if _, ok := h.snapshot(healthLiveTimeout); !ok {
		answer(w, false, fmt.Sprintf("not live: the worker pool did not answer within %s", healthLiveTimeout))
		return
	}
	answer(w, true, fmt.Sprintf("live: the worker pool answered in %s", time.Since(start).Round(time.Microsecond)))
}

func (h *health) ready(w http.ResponseWriter, _ *http.Request) {
	if h.draining.Load() {
		answer(w, false, "not ready: draining for a stop")
		return
	}
	snap, ok := h.snapshot(healthLiveTimeout)
	if !ok {
		answer(w, false, fmt.Sprintf("not ready: the worker pool did not answer within %s", healthLiveTimeout))
		return
	}
	ok, reason := readiness(snap, h.waiting())
	answer(w, ok, reason)
}

// readiness judges a pool snapshot with waiting requests queued. A worker
// serves once it has imported the app of the generation taking requests.
// Fewer waiting requests than slots means each will have a slot within
// about one request's time; at or past it the balancer does better
// elsewhere.
func readiness(snap poolSnapshot, waiting int64) (bool, string) {
	slots, busy := 0, 0
	for _, w := range snap.Workers {
		if w.Status == workerIdle || w.Status == workerBusy {
			slots += w.Slots
			busy += w.BusySlots
		}
	}
	switch {
	case slots == 0:
		return false, "not ready: no worker serves the app yet"
	case busy < slots:
		return true, fmt.Sprintf("ready: %d of %d slots free", slots-busy, slots)
	case waiting < int64(slots):
		return true, fmt.Sprintf("ready: all %d slots busy, %d requests waiting", slots, waiting)
	}
	return false, fmt.Sprintf("not ready: all %d slots busy and %d requests waiting", slots, waiting)
}

// answer writes a probe's one-line reason with 200 or 503.
func answer(w http.ResponseWriter, ok bool, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if ok {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, reason)
}
