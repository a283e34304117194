// The stats server (--stats, --stats-http: uWSGI's stats JSON) and gowsgi's
// own --metrics (a Prometheus scrape) through the real binary, each started
// from the command line and from an ini file and observed from outside.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// statsWorker holds the worker keys uwsgitop reads.
type statsWorker struct {
	ID            int    `json:"id"`
	PID           int    `json:"pid"`
	Requests      int64  `json:"requests"`
	Exceptions    *int64 `json:"exceptions"`
	Status        string `json:"status"`
	RSS           int64  `json:"rss"`
	VSZ           int64  `json:"vsz"`
	RunningTime   *int64 `json:"running_time"`
	AvgRT         *int64 `json:"avg_rt"`
	RespawnCount  int    `json:"respawn_count"`
	TX            int64  `json:"tx"`
	HarakiriCount *int64 `json:"harakiri_count"`
	LastSpawn     int64  `json:"last_spawn"`
}

type statsDoc struct {
	Version     string `json:"version"`
	ListenQueue *int64 `json:"listen_queue"`
	PID         int    `json:"pid"`
	UID         *int   `json:"uid"`
	GID         *int   `json:"gid"`
	CWD         string `json:"cwd"`
	Sockets     []struct {
		Name  string `json:"name"`
		Proto string `json:"proto"`
		Queue *int64 `json:"queue"`
	} `json:"sockets"`
	Workers []statsWorker `json:"workers"`
}

// readStats connects to a raw stats server and reads the document up to
// the server's close.
func readStats(t *testing.T, network, addr string) statsDoc {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, 10*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	raw, err := io.ReadAll(conn)
	require.NoError(t, err, "the stats server closes the connection once written")
	var doc statsDoc
	require.NoError(t, json.Unmarshal(raw, &doc), "%s", raw)
	return doc
}

// totalRequests sums the workers' request counts.
func totalRequests(doc statsDoc) int64 {
	var n int64
	for _, w := range doc.Workers {
		n += w.Requests
	}
	return n
}

// appPIDs asks the app for its pid until want distinct ones answered, or
// the bound is reached.
func appPIDs(t *testing.T, inst *harness.Instance, want int) map[int]bool {
	t.Helper()
	pids := make(map[int]bool)
	for i := 0; i < 200 && len(pids) < want; i++ {
		// A fresh connection and a concurrent pair spread the requests.
		results := make(chan string, 2)
		for range 2 {
			go func() {
				resp, err := harness.Client(false).Get(inst.URL + "/pid")
				if err != nil {
					results <- ""
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				results <- string(b)
			}()
		}
		for range 2 {
			if pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(<-results, "pid="))); err == nil {
				pids[pid] = true
			}
		}
	}
	return pids
}

// checkStats checks a document against the live master started in dir
// with the given number of workers.
func checkStats(t *testing.T, inst *harness.Instance, doc statsDoc, workers int) {
	t.Helper()
	assert.NotEmpty(t, doc.Version)
	assert.Equal(t, inst.Cmd.Process.Pid, doc.PID)
	assert.NotNil(t, doc.ListenQueue)
	assert.NotNil(t, doc.UID)
	assert.NotNil(t, doc.GID)
	assert.Equal(t, inst.Dir, doc.CWD)
	require.NotEmpty(t, doc.Sockets)
	assert.Equal(t, inst.Addr, doc.Sockets[0].Name)
	assert.Equal(t, "http", doc.Sockets[0].Proto)
	require.Len(t, doc.Workers, workers)
	for i, w := range doc.Workers {
		assert.Equal(t, i+1, w.ID)
		assert.Contains(t, []string{"idle", "busy"}, w.Status)
		assert.Greater(t, w.RSS, int64(0))
		assert.Greater(t, w.VSZ, w.RSS)
		assert.Equal(t, 1, w.RespawnCount)
		assert.NotNil(t, w.Exceptions)
		assert.NotNil(t, w.RunningTime)
		assert.NotNil(t, w.AvgRT)
		assert.NotNil(t, w.HarakiriCount)
		assert.InDelta(t, time.Now().Unix(), w.LastSpawn, 300)
		_, err := os.Stat(fmt.Sprintf("/proc/%d", w.PID))
		assert.NoError(t, err, "worker %d's pid %d is a live process", w.ID, w.PID)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	harness.WriteFile(t, dir, "app.py", statusApp)
	inst := harness.StartIn(t, dir, "--wsgi-file", "app.py", "-p", "2", "--stats", "127.0.0.1:0")
	addr := regexp.MustCompile(`address=(\S+)`).FindStringSubmatch(harness.WaitLine(t, inst, "stats server listening"))
	require.NotNil(t, addr)

	first := readStats(t, "tcp", addr[1])
	checkStats(t, inst, first, 2)
	statsPIDs := map[int]bool{first.Workers[0].PID: true, first.Workers[1].PID: true}
	assert.Len(t, statsPIDs, 2)
	served := appPIDs(t, inst, 2)
	assert.Equal(t, statsPIDs, served, "the pids that answered are the workers the stats list")

	before := totalRequests(readStats(t, "tcp", addr[1]))
	requestStatuses(t, inst, 200, 200, 200, 200, 200)
	var after statsDoc
	harness.Eventually(t, 10*time.Second, func() bool {
		after = readStats(t, "tcp", addr[1])
		return totalRequests(after) >= before+5
	}, "requests did not grow by 5 from %d", before)
	var tx int64
	for _, w := range after.Workers {
		tx += w.TX
	}
	assert.Greater(t, tx, int64(5*len("pid=1\n")), "tx counts the bytes sent")
}

func TestStatsHTTPFromINI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	harness.WriteFile(t, dir, "app.py", statusApp)
	sock := filepath.Join(dir, "stats.sock")
	harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = app.py\nprocesses = 3\nstats = %dstats.sock\nstats-http = true\n")
	inst := harness.StartIn(t, dir, "--ini", "app.ini")
	harness.WaitLine(t, inst, "stats server listening")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, body := harness.Do(t, c, harness.MustRequest(t, http.MethodGet, "http://stats/", nil))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var doc statsDoc
	require.NoError(t, json.Unmarshal(body, &doc), "%s", body)
	checkStats(t, inst, doc, 3)
	inst.Stop(t)
	_, err := os.Stat(sock)
	assert.True(t, os.IsNotExist(err), "the stats socket file is removed on exit")
}

// metricsAddr waits for the metrics server's log line and returns its
// address.
func metricsAddr(t *testing.T, inst *harness.Instance) string {
	t.Helper()
	m := regexp.MustCompile(`address=(\S+)`).FindStringSubmatch(harness.WaitLine(t, inst, "metrics server listening"))
	require.Len(t, m, 2)
	return m[1]
}

// scrape fetches and parses the metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := harness.Client(false).Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// metricValue returns the value of the family's series whose labels
// include labels (name, value pairs); -1 when there is none.
func metricValue(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		have := make(map[string]string)
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	for _, src := range restSources {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			inst := harness.Start(t, src.args(t, dir, [][2]string{probeFile(t), {"metrics", "127.0.0.1:0"}, {"threads", "2"}})...)
			addr := metricsAddr(t, inst)

			const ok, missing = 5, 2
			for range ok {
				status, _ := harness.GetText(t, inst.URL+"/hello")
				require.Equal(t, 200, status)
			}
			for range missing {
				status, _ := harness.GetText(t, inst.URL+"/no-such-route")
				require.Equal(t, 404, status)
			}
			// A request is counted, and its slot idle, once its response
			// has ended, which is just after its client has read it: the
			// worker writes to the client before it tells the master.
			var m map[string]*dto.MetricFamily
			harness.Eventually(t, 10*time.Second, func() bool {
				m = scrape(t, addr)
				return metricValue(m, "gowsgi_request_duration_seconds", "gateway", "http") == ok+missing &&
					metricValue(m, "gowsgi_busy_slots") == 0
			}, "the requests made are not all counted, or a slot stays busy")
			assert.Equal(t, float64(ok), metricValue(m, "gowsgi_requests_total", "gateway", "http", "status", "2xx"))
			assert.Equal(t, float64(missing), metricValue(m, "gowsgi_requests_total", "gateway", "http", "status", "4xx"))
			assert.Equal(t, float64(ok+missing), metricValue(m, "gowsgi_request_duration_seconds", "gateway", "http"))
			assert.Equal(t, float64(ok+missing), metricValue(m, "gowsgi_queue_wait_seconds"))
			assert.Equal(t, 0.0, metricValue(m, "gowsgi_busy_slots"))
			assert.Equal(t, 2.0, metricValue(m, "gowsgi_slots"))
			assert.Equal(t, 0.0, metricValue(m, "gowsgi_queue_depth"))
			assert.Equal(t, 0.0, metricValue(m, "gowsgi_worker_respawns_total"))
			assert.Equal(t, 0.0, metricValue(m, "gowsgi_harakiri_kills_total"))

			// A request held open by the app keeps one slot busy.
			held := make(chan string, 1)
			go func() {
				resp, err := harness.Client(false).Get(inst.URL + "/stream?tag=metrics")
				if err != nil {
					held <- err.Error()
					return
				}
				defer resp.Body.Close()
				var body strings.Builder
				_, _ = bufio.NewReader(resp.Body).WriteTo(&body)
				held <- body.String()
			}()
			harness.Eventually(t, 10*time.Second, func() bool {
				return metricValue(scrape(t, addr), "gowsgi_busy_slots") == 1
			}, "no busy slot while a request is held")
			assert.Equal(t, 1.0, metricValue(scrape(t, addr), "gowsgi_workers", "status", "busy"))
			inst.Release(t, "metrics")
			select {
			case body := <-held:
				assert.Equal(t, "first\nsecond\n", body)
			case <-time.After(20 * time.Second):
				require.FailNow(t, "the held request never ended")
			}
			harness.Eventually(t, 10*time.Second, func() bool {
				m := scrape(t, addr)
				return metricValue(m, "gowsgi_busy_slots") == 0 &&
					metricValue(m, "gowsgi_requests_total", "gateway", "http", "status", "2xx") == ok+1
			}, "the held request is not counted once it ends")
		})
	}
}

func TestMetricsCountsRespawns(t *testing.T) {
	inst := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--metrics", "127.0.0.1:0", "--max-requests", "2")
	addr := metricsAddr(t, inst)
	for range 3 {
		status, _ := harness.GetText(t, inst.URL+"/hello")
		require.Equal(t, 200, status)
	}
	harness.Eventually(t, 20*time.Second, func() bool {
		return metricValue(scrape(t, addr), "gowsgi_worker_respawns_total") >= 1
	}, "a worker recycled by --max-requests is not counted as respawned")
}
