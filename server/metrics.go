// Prometheus metrics (--metrics ADDR), beyond what uWSGI offers: requests
// by gateway and status class, their latency, the queue of requests
// waiting for a slot and how long they wait, the busy slots, and the
// workers respawned and killed by harakiri. They are served in the
// Prometheus text format on their own listener, with the official client
// library, so a scrape never competes with the app's sockets.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsPath is where the metrics are served, as Prometheus expects.
const metricsPath = "/metrics"

// statusClasses are the values of the status label: the class of the
// status sent, or "none" when no response began (the client left first).
var statusClasses = []string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

// metrics holds the collectors the master updates. A nil *metrics records
// nothing, so the dispatcher and the gateways need no test for --metrics.
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec   // gateway, status
	latency   *prometheus.HistogramVec // gateway
	queueWait prometheus.Histogram
	listener  *listener
	httpSrv   *http.Server
	log       *slog.Logger
}

// newMetrics registers gowsgi's metrics; queueDepth and snapshot read the
// dispatcher's queue and the pool when a scrape asks.
func newMetrics(queueDepth func() int64, snapshot func() poolSnapshot) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gowsgi_requests_total",
			Help: "Requests answered, by gateway (http, https, uwsgi, scgi, fastcgi) and status class.",
		}, []string{"gateway", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gowsgi_request_duration_seconds",
			Help:    "Time from a request's arrival at the master to the end of its response.",
			Buckets: prometheus.DefBuckets,
		}, []string{"gateway"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gowsgi_queue_wait_seconds",
			Help: "Time a request waited in the queue for a free slot.",
			// 100µs to about 26s: an idle server hands a request over in
			// microseconds, an overloaded one in seconds.
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.queueWait,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gowsgi_queue_depth",
			Help: "Requests waiting for a free slot now.",
		}, func() float64 { return float64(queueDepth()) }),
		&poolCollector{snapshot: snapshot},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// listenMetrics binds --metrics with the other sockets, so an address that
// is taken stops gowsgi at start; nil when addr is empty.
func listenMetrics(addr string, queueDepth func() int64, snapshot func() poolSnapshot, log *slog.Logger) (*metrics, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := bindSocket(Socket{Protocol: "metrics", Address: addr}, 0)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	m := newMetrics(queueDepth, snapshot)
	m.listener, m.log = l, log
	return m, nil
}

// serve answers scrapes until close.
func (m *metrics) serve() {
	if m == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle(metricsPath, promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	m.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: statsWriteTimeout}
	m.log.Info("metrics server listening", "address", m.listener.Addr().String(), "path", metricsPath)
	go m.httpSrv.Serve(m.listener)
}

// close stops the metrics server and removes its Unix socket file.
func (m *metrics) close() {
	if m == nil {
		return
	}
	if m.httpSrv != nil {
		m.httpSrv.Close()
	}
	closeListeners([]*listener{m.listener}, true)
}

// observeQueueWait records how long a request waited for a slot.
func (m *metrics) observeQueueWait(d time.Duration) {
	if m != nil {
		m.queueWait.Observe(d.Seconds())
	}
}

// wrap returns next measured as the gateway of protocol, or next itself
// without --metrics.
func (m *metrics) wrap(protocol Protocol, next wsgi.Handler) wsgi.Handler {
	if m == nil {
		return next
	}
	h := &measuredHandler{next: next, latency: m.latency.WithLabelValues(string(protocol))}
	for i, class := range statusClasses {
		h.byClass[i] = m.requests.WithLabelValues(string(protocol), class)
	}
	return h
}

// measuredHandler counts and times the requests of one gateway. Its
// counters are resolved once, so a request costs no label lookup.
type measuredHandler struct {
	next    wsgi.Handler
	latency prometheus.Observer
	byClass [6]prometheus.Counter // indexed as statusClasses
}

func (h *measuredHandler) ServeWSGI(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	err := h.next.ServeWSGI(ctx, sw, req)
	h.latency.Observe(time.Since(start).Seconds())
	h.byClass[sw.class].Inc()
	return err
}

// statusWriter notes the class of the status a response starts with.
type statusWriter struct {
	wsgi.ResponseWriter
	class int // an index of statusClasses
}

func (sw *statusWriter) WriteHead(status string, headers []byte) error {
	if len(status) > 0 && status[0] >= '1' && status[0] <= '5' {
		sw.class = int(status[0] - '0')
	}
	return sw.ResponseWriter.WriteHead(status, headers)
}

// poolCollector reports the pool's state from one snapshot per scrape.
type poolCollector struct {
	snapshot func() poolSnapshot
}

var (
	busySlotsDesc = prometheus.NewDesc("gowsgi_busy_slots",
		"Worker slots running a request now.", nil, nil)
	slotsDesc = prometheus.NewDesc("gowsgi_slots",
		"Worker slots of the workers serving now (processes × threads while none is starting or retiring).", nil, nil)
	workersDesc = prometheus.NewDesc("gowsgi_workers",
		"Worker processes, by status (starting, idle, busy, retiring).", []string{"status"}, nil)
	respawnsDesc = prometheus.NewDesc("gowsgi_worker_respawns_total",
		"Workers started again after the first start, for any reason (exit, recycling, harakiri, reload).", nil, nil)
	harakiriDesc = prometheus.NewDesc("gowsgi_harakiri_kills_total",
		"Workers killed by --harakiri.", nil, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{busySlotsDesc, slotsDesc, workersDesc, respawnsDesc, harakiriDesc} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.snapshot()
	busy, slots := 0, 0
	byStatus := map[string]int{workerStarting: 0, workerIdle: 0, workerBusy: 0, workerRetiring: 0}
	for _, w := range snap.Workers {
		busy += w.BusySlots
		if w.Status == workerIdle || w.Status == workerBusy {
			slots += w.Slots
		}
		byStatus[w.Status]++
	}
	ch <- prometheus.MustNewConstMetric(busySlotsDesc, prometheus.GaugeValue, float64(busy))
	ch <- prometheus.MustNewConstMetric(slotsDesc, prometheus.GaugeValue, float64(slots))
	for status, n := range byStatus {
		ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(n), status)
	}
	ch <- prometheus.MustNewConstMetric(respawnsDesc, prometheus.CounterValue, float64(snap.Respawns))
	ch <- prometheus.MustNewConstMetric(harakiriDesc, prometheus.CounterValue, float64(snap.Harakiris))
}

// Direct, WriteRaw, SendFileRaw and Completed pass a direct response
// through (wsgi.DirectResponder); its status comes from the worker's
// completion record.
func (sw *statusWriter) Direct() (syscall.RawConn, wsgi.Framing, wsgi.HTTPFlags, bool) {
	return directTo(sw.ResponseWriter)
}

func (sw *statusWriter) WriteRaw(p []byte) error {
	return sw.ResponseWriter.(wsgi.DirectResponder).WriteRaw(p)
}

func (sw *statusWriter) SendFileRaw(f *os.File, offset, count int64) error {
	return sw.ResponseWriter.(wsgi.DirectResponder).SendFileRaw(f, offset, count)
}

func (sw *statusWriter) Completed(c wsgi.Completion) {
	if c.Status >= 100 && c.Status < 600 {
		sw.class = c.Status / 100
	}
	sw.ResponseWriter.(wsgi.DirectResponder).Completed(c)
}
