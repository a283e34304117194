// The app's metrics (--metric, set by the app through uwsgi.metric_*), as
// the master shows them: in the --stats JSON under "metrics", in uWSGI's
// shape, and on the --metrics endpoint, read from the newest generation's
// shared area (shared_linux.go) when asked.
package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gowsgi/gowsgi/pyembed"
)

// statsMetric is one metric in the stats JSON, as uWSGI writes it: type
// 0 counter, 1 gauge, 2 absolute; gowsgi's metrics have no SNMP oid.
type statsMetric struct {
	Type  int    `json:"type"`
	OID   string `json:"oid"`
	Value int64  `json:"value"`
}

// statsMetrics returns the app's metrics for the stats JSON, nil when
// none is declared.
func statsMetrics(values []metricValue) map[string]statsMetric {
	if len(values) == 0 {
		return nil
	}
	out := make(map[string]statsMetric, len(values))
	for _, v := range values {
		out[v.spec.Name] = statsMetric{Type: int(v.spec.Type), Value: v.value}
	}
	return out
}

var (
	appCounterDesc = prometheus.NewDesc("gowsgi_app_metric_total",
		"A --metric of type counter, as the app set it through uwsgi.metric_*.", []string{"metric"}, nil)
	appGaugeDesc = prometheus.NewDesc("gowsgi_app_metric",
		"A --metric of type gauge or absolute, as the app set it through uwsgi.metric_*.", []string{"metric"}, nil)
)

// appMetricsCollector reports the app's metrics at each scrape.
type appMetricsCollector struct {
	values func() []metricValue
}

func (c *appMetricsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- appCounterDesc
	ch <- appGaugeDesc
}

func (c *appMetricsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.values() {
		desc, kind := appGaugeDesc, prometheus.GaugeValue
		if v.spec.Type == pyembed.MetricCounter {
			desc, kind = appCounterDesc, prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(desc, kind, float64(v.value), v.spec.Name)
	}
}

// addAppMetrics registers the app's metrics, which values reads; nothing
// without --metrics.
func (m *metrics) addAppMetrics(values func() []metricValue) {
	if m == nil {
		return
	}
	m.registry.MustRegister(&appMetricsCollector{values: values})
}
