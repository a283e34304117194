// Tests of the Prometheus metrics: requests counted by gateway and status
// class, the pool's state read from a snapshot, and nothing recorded
// without --metrics.
package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statusHandler answers every request with the status in its PATH_INFO
// ("/404" → "404 Not Found"), or with no head at all for "/none".
type statusHandler struct{}

func (statusHandler) ServeWSGI(_ context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	path, _ := req.Vars.Get("PATH_INFO")
	if path == "/none" {
		return nil
	}
	return w.WriteHead(strings.TrimPrefix(path, "/")+" Reason", nil)
}

func requestFor(path string) *wsgi.Request {
	req := &wsgi.Request{}
	req.Vars.Add("PATH_INFO", path)
	return req
}

func TestMetricsCountRequestsByGatewayAndClass(t *testing.T) {
	m := newMetrics(func() int64 { return 0 }, func() poolSnapshot { return poolSnapshot{} })
	httpHandler := m.wrap(ProtocolHTTP, statusHandler{})
	uwsgiHandler := m.wrap(ProtocolUWSGI, statusHandler{})
	served := []struct {
		handler wsgi.Handler
		path    string
	}{
		{httpHandler, "/200"}, {httpHandler, "/204"}, {httpHandler, "/404"},
		{httpHandler, "/502"}, {httpHandler, "/none"}, {uwsgiHandler, "/301"},
	}
	for _, s := range served {
		require.NoError(t, s.handler.ServeWSGI(context.Background(), discardWriter{}, requestFor(s.path)))
	}
	tests := []struct {
		gateway, class string
		want           float64
	}{
		{"http", "2xx", 2}, {"http", "4xx", 1}, {"http", "5xx", 1}, {"http", "none", 1},
		{"http", "3xx", 0}, {"uwsgi", "3xx", 1}, {"uwsgi", "2xx", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, value(t, m, "gowsgi_requests_total", tt.gateway, tt.class), "%s %s", tt.gateway, tt.class)
	}
	assert.Equal(t, 5.0, value(t, m, "gowsgi_request_duration_seconds", "http"))
	assert.Equal(t, 1.0, value(t, m, "gowsgi_request_duration_seconds", "uwsgi"))
}

// value gathers m and returns the value of the series of the family name
// whose label values are labels (a histogram's sample count), or -1.
func value(t *testing.T, m *metrics, name string, labels ...string) float64 {
	t.Helper()
	families, err := m.registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, series := range f.GetMetric() {
			if !hasLabelValues(series, labels) {
				continue
			}
			switch {
			case series.Histogram != nil:
				return float64(series.GetHistogram().GetSampleCount())
			case series.Counter != nil:
				return series.GetCounter().GetValue()
			default:
				return series.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func hasLabelValues(series *dto.Metric, values []string) bool {
	pairs := series.GetLabel()
	if len(pairs) != len(values) {
		return false
	}
	for i, p := range pairs {
		if p.GetValue() != values[i] {
			return false
		}
	}
	return true
}

func TestMetricsPoolState(t *testing.T) {
	snap := poolSnapshot{
		Workers: []workerSnapshot{
			{ID: 1, Status: workerBusy, Slots: 4, BusySlots: 3},
			{ID: 2, Status: workerIdle, Slots: 4},
			{ID: 2, Status: workerRetiring, Slots: 4, BusySlots: 1},
		},
		Respawns:  7,
		Harakiris: 2,
	}
	m := newMetrics(func() int64 { return 5 }, func() poolSnapshot { return snap })
	m.observeQueueWait(3 * time.Millisecond)
	tests := []struct {
		name string
		want float64
	}{
		{"gowsgi_busy_slots", 4},
		{"gowsgi_slots", 8}, // the serving workers' only, not the retiring one's
		{"gowsgi_queue_depth", 5},
		{"gowsgi_worker_respawns_total", 7},
		{"gowsgi_harakiri_kills_total", 2},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, value(t, m, tt.name), tt.name)
	}
	assert.Equal(t, 1.0, value(t, m, "gowsgi_workers", workerRetiring))
	assert.Equal(t, 0.0, value(t, m, "gowsgi_workers", workerStarting))
	assert.Equal(t, 1.0, value(t, m, "gowsgi_queue_wait_seconds"))
}

func TestNoMetricsRecordsNothing(t *testing.T) {
	var m *metrics
	next := statusHandler{}
	assert.Equal(t, wsgi.Handler(next), m.wrap(ProtocolHTTP, next), "the handler is not wrapped")
	m.observeQueueWait(time.Second) // must not panic
	m.serve()
	m.close()
}
