// The rest of the uWSGI options, each run in the real binary from the
// command line and from an ini file: --chown-socket (the socket file's
// owner), --http (the master's HTTP front end, keep-alive included), the
// options accepted with one warning line (cheaper*, logger, req-logger,
// memory-report = 2), --metrics (a Prometheus scrape), and the Django
// deployment of examples/uwsgi.ini behind nginx with examples/nginx-uwsgi.conf.
package main_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// optionSource is how a test passes options: on the command line or in an
// ini file, to check both read the same.
type restSource struct {
	name string
	// args turns uWSGI "key = value" pairs into gowsgi's arguments:
	// "--key=value" each, or an ini file in dir.
	args func(t *testing.T, dir string, pairs [][2]string) []string
}

var restSources = []restSource{
	{name: "command line", args: func(t *testing.T, _ string, pairs [][2]string) []string {
		var args []string
		for _, kv := range pairs {
			args = append(args, "--"+kv[0]+"="+kv[1])
		}
		return args
	}},
	{name: "ini file", args: func(t *testing.T, dir string, pairs [][2]string) []string {
		var ini strings.Builder
		ini.WriteString("[uwsgi]\n")
		for _, kv := range pairs {
			fmt.Fprintf(&ini, "%s = %s\n", kv[0], kv[1])
		}
		return []string{writeFile(t, dir, "app.ini", ini.String())}
	}},
}

// probeFile is the test app every test here serves.
func probeFile(t *testing.T) [2]string { return [2]string{"wsgi-file", testdataPath(t, "probe.py")} }

func TestChownSocket(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("chown needs root")
	}
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	nogroup, err := user.LookupGroup("nogroup")
	require.NoError(t, err)
	tests := []struct {
		owner            string
		wantUID, wantGID string
	}{
		{owner: "nobody:nogroup", wantUID: nobody.Uid, wantGID: nogroup.Gid},
		// No group: the file keeps the group it was created with, root's.
		{owner: "nobody", wantUID: nobody.Uid, wantGID: "0"},
		{owner: nobody.Uid + ":" + nogroup.Gid, wantUID: nobody.Uid, wantGID: nogroup.Gid},
	}
	for _, src := range restSources {
		for _, tt := range tests {
			t.Run(src.name+"/"+tt.owner, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				sock := filepath.Join(dir, "app.sock")
				start(t, src.args(t, dir, [][2]string{probeFile(t),
					{"uwsgi-socket", sock}, {"chown-socket", tt.owner}})...)
				info, err := os.Stat(sock)
				require.NoError(t, err)
				st := info.Sys().(*syscall.Stat_t)
				assert.Equal(t, tt.wantUID, strconv.Itoa(int(st.Uid)))
				assert.Equal(t, tt.wantGID, strconv.Itoa(int(st.Gid)))
			})
		}
	}
}

func TestChownSocketUnknownUser(t *testing.T) {
	code, out := runGowsgi(t, t.TempDir(), "--wsgi-file", testdataPath(t, "probe.py"),
		"--uwsgi-socket", filepath.Join(t.TempDir(), "app.sock"), "--chown-socket", "no-such-user-here")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "--chown-socket no-such-user-here")
}

func TestHTTPOption(t *testing.T) {
	for _, src := range restSources {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// No --http-socket: --http alone must make the HTTP front end.
			inst := launchConfigured(t, dir, nil, src.args(t, dir, [][2]string{probeFile(t), {"http", "127.0.0.1:0"}})...)
			conn := dial(t, inst.Addr)
			r := bufio.NewReader(conn)
			// Two requests on one connection: keep-alive, as --http-socket.
			for range 2 {
				_, err := fmt.Fprintf(conn, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
				require.NoError(t, err)
				resp := readResponses(t, r, 1, http.MethodGet)[0]
				assert.Equal(t, 200, resp.StatusCode)
				assert.Equal(t, "Hello World!\n", string(resp.Body))
				assert.False(t, resp.Close, "the connection stays open")
			}
		})
	}
}

// warningLines returns the lines of out that are warnings.
func warningLines(out string) []string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "gowsgi: warning:") {
			lines = append(lines, line)
		}
	}
	return lines
}

// warned is one expected warning line: the options it names (without
// dashes, which only the command line spells) and what it says.
type warned struct{ names, text string }

// parseWarning splits a warning line into its options and its text.
func parseWarning(line string) warned {
	rest := strings.TrimPrefix(line, "gowsgi: warning: ")
	names, text, _ := strings.Cut(rest, ": ")
	return warned{names: strings.ReplaceAll(names, "--", ""), text: text}
}

func TestWarnedOptions(t *testing.T) {
	const (
		cheaper = "gowsgi runs the fixed number of workers --processes gives; send SIGTTIN to the master for one worker more, SIGTTOU for one fewer"
		logger  = "gowsgi writes its log to stderr, or to the file --logto or logger = file:PATH names"
		memory  = "gowsgi reports each worker's RSS and address space; USS and PSS (memory-report = 2) are not reported"
	)
	tests := []struct {
		name  string
		pairs [][2]string
		want  []warned
	}{
		{name: "cheaper", pairs: [][2]string{{"cheaper", "1"}, {"cheaper-initial", "1"}, {"cheaper-step", "1"}, {"cheaper-algo", "spare"}, {"cheaper-overload", "5"}},
			want: []warned{{"cheaper, cheaper-initial, cheaper-step, cheaper-algo, cheaper-overload", cheaper}}},
		{name: "syslog logger", pairs: [][2]string{{"logger", "syslog:myapp"}, {"req-logger", "socket:127.0.0.1:514"}},
			want: []warned{{"logger, req-logger", logger}}},
		{name: "memory-report extras", pairs: [][2]string{{"memory-report", "2"}},
			want: []warned{{"memory-report", memory}}},
		{name: "every kind", pairs: [][2]string{{"cheaper", "1"}, {"logger", "rsyslog:localhost:514"}, {"memory-report", "2"}},
			want: []warned{{"cheaper", cheaper}, {"logger", logger}, {"memory-report", memory}}},
	}
	for _, src := range restSources {
		for _, tt := range tests {
			t.Run(src.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				args := append(src.args(t, dir, append([][2]string{probeFile(t)}, tt.pairs...)), "--processes", "2")
				inst := start(t, args...)
				status, body := getText(t, inst.URL+"/hello")
				assert.Equal(t, 200, status, body)
				// Printed by the master alone, though both workers parse
				// the same options.
				lines := warningLines(inst.Stderr())
				require.Len(t, lines, len(tt.want), "stderr:\n%s", inst.Stderr())
				for i, want := range tt.want {
					got := parseWarning(lines[i])
					assert.Equal(t, want.names, got.names)
					assert.True(t, strings.HasPrefix(got.text, want.text), "%q", got.text)
				}
				assert.Contains(t, inst.Stderr(), "2 workers", "cheaper leaves the worker count alone")
			})
		}
	}
}

func TestLoggerFile(t *testing.T) {
	for _, key := range []string{"logger", "req-logger"} {
		for _, src := range restSources {
			t.Run(key+"/"+src.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				logFile := filepath.Join(dir, "app.log")
				inst := launch(t, dir, src.args(t, dir, [][2]string{probeFile(t), {key, "file:" + logFile}})...)
				// As --logto: the banner and the request lines go to the file.
				waitLogBanner(t, inst, logFile)
				status, _ := getText(t, inst.URL+"/hello?logged=yes")
				require.Equal(t, 200, status)
				eventually(t, 10*time.Second, func() bool { return fileContains(logFile, "path=/hello") },
					"%s file:PATH: no request line in the file", key)
				assert.Empty(t, warningLines(inst.Stderr()))
				assert.NotContains(t, inst.Stderr(), "path=/hello")
			})
		}
	}
}

// metricsAddr waits for the metrics server's log line and returns its
// address.
func metricsAddr(t *testing.T, inst *instance) string {
	t.Helper()
	m := regexp.MustCompile(`address=(\S+)`).FindStringSubmatch(waitLine(t, inst, "metrics server listening"))
	require.Len(t, m, 2)
	return m[1]
}

// scrape fetches and parses the metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client(false).Get("http://" + addr + "/metrics")
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
			inst := start(t, src.args(t, dir, [][2]string{probeFile(t), {"metrics", "127.0.0.1:0"}, {"threads", "2"}})...)
			addr := metricsAddr(t, inst)

			const ok, missing = 5, 2
			for range ok {
				status, _ := getText(t, inst.URL+"/hello")
				require.Equal(t, 200, status)
			}
			for range missing {
				status, _ := getText(t, inst.URL+"/no-such-route")
				require.Equal(t, 404, status)
			}
			// A request is counted once its response has ended, just after
			// its client has read it.
			var m map[string]*dto.MetricFamily
			eventually(t, 10*time.Second, func() bool {
				m = scrape(t, addr)
				return metricValue(m, "gowsgi_request_duration_seconds", "gateway", "http") == ok+missing
			}, "the requests made are not all counted")
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
				resp, err := client(false).Get(inst.URL + "/stream?tag=metrics")
				if err != nil {
					held <- err.Error()
					return
				}
				defer resp.Body.Close()
				var body strings.Builder
				_, _ = bufio.NewReader(resp.Body).WriteTo(&body)
				held <- body.String()
			}()
			eventually(t, 10*time.Second, func() bool {
				return metricValue(scrape(t, addr), "gowsgi_busy_slots") == 1
			}, "no busy slot while a request is held")
			assert.Equal(t, 1.0, metricValue(scrape(t, addr), "gowsgi_workers", "status", "busy"))
			inst.release(t, "metrics")
			select {
			case body := <-held:
				assert.Equal(t, "first\nsecond\n", body)
			case <-time.After(20 * time.Second):
				require.FailNow(t, "the held request never ended")
			}
			eventually(t, 10*time.Second, func() bool {
				m := scrape(t, addr)
				return metricValue(m, "gowsgi_busy_slots") == 0 &&
					metricValue(m, "gowsgi_requests_total", "gateway", "http", "status", "2xx") == ok+1
			}, "the held request is not counted once it ends")
		})
	}
}

func TestMetricsCountsRespawns(t *testing.T) {
	inst := start(t, "--wsgi-file", testdataPath(t, "probe.py"), "--metrics", "127.0.0.1:0", "--max-requests", "2")
	addr := metricsAddr(t, inst)
	for range 3 {
		status, _ := getText(t, inst.URL+"/hello")
		require.Equal(t, 200, status)
	}
	eventually(t, 20*time.Second, func() bool {
		return metricValue(scrape(t, addr), "gowsgi_worker_respawns_total") >= 1
	}, "a worker recycled by --max-requests is not counted as respawned")
}

// launchUWSGIOnly starts gowsgi with args alone (no HTTP socket added) and
// waits for the banner naming its uwsgi socket.
func launchUWSGIOnly(t *testing.T, dir string, args ...string) *instance {
	t.Helper()
	inst := &instance{Dir: dir, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	inst.cmd = exec.Command(gowsgiBin, args...)
	inst.cmd.Dir = dir
	inst.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inst.cmd.Stdout, inst.cmd.Stderr = inst.stderr, inst.stderr
	require.NoError(t, inst.cmd.Start())
	go func() {
		inst.err = inst.cmd.Wait()
		close(inst.exited)
	}()
	t.Cleanup(func() { inst.stop(t) })
	eventually(t, startTimeout, func() bool {
		select {
		case <-inst.exited:
			require.FailNow(t, "gowsgi exited at start", "%v\n%s", inst.err, inst.Stderr())
		default:
		}
		return strings.Contains(inst.Stderr(), "uwsgi://")
	}, "no banner from gowsgi:\n%s", inst.Stderr())
	return inst
}

// copyExample copies examples/name into dir unchanged.
func copyExample(t *testing.T, dir, name string) string {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(examplesDir(t), name))
	require.NoError(t, err)
	return writeFile(t, dir, name, string(content))
}

func TestDjangoINIBehindNginx(t *testing.T) {
	nginx := webServerKinds[0]
	require.Equal(t, "nginx", nginx.name)
	// The deployment's folder: the ini and the app as shipped, so the
	// socket (%d…) is created there, not in the repository.
	appDir := sharedDir(t, "", "gowsgi-django-")
	ini := copyExample(t, appDir, "uwsgi.ini")
	copyExample(t, appDir, "django_app.py")
	site, err := os.ReadFile(filepath.Join(examplesDir(t), "nginx-uwsgi.conf"))
	require.NoError(t, err)
	addr := freeAddr(t)
	rendered := strings.NewReplacer("/srv/app/", appDir+"/", "127.0.0.1:8080", addr).Replace(string(site))

	inst := launchUWSGIOnly(t, t.TempDir(), ini)
	assert.Contains(t, inst.Stderr(), "uwsgi://"+filepath.Join(appDir, "django_app.sock"))
	assert.Empty(t, warningLines(inst.Stderr()))
	startWebServerSite(t, nginx, rendered, []string{addr})

	base := "http://" + addr
	c := client(true)
	tests := []struct {
		method, path, form string
		wantStatus         int
		wantBody           string
	}{
		{method: "GET", path: "/", wantStatus: 200, wantBody: "Hello World!\n"},
		{method: "GET", path: "/greet/" + url.PathEscape("Zoë"), wantStatus: 200, wantBody: "Hello, Zoë!"},
		{method: "GET", path: "/search?q=gowsgi&page=2", wantStatus: 200, wantBody: `{"q": "gowsgi", "page": "2"}`},
		{method: "POST", path: "/form", form: "name=ann&message=hi+there", wantStatus: 200, wantBody: `{"name": "ann", "message": "hi there"}`},
		{method: "GET", path: "/stream?lines=3", wantStatus: 200, wantBody: "line 0\nline 1\nline 2\n"},
		{method: "GET", path: "/redirect", wantStatus: 302},
		{method: "GET", path: "/no-such-page", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req := mustRequest(t, tt.method, base+tt.path, strings.NewReader(tt.form))
			if tt.form != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, body := do(t, c, req)
			assert.Equal(t, tt.wantStatus, resp.StatusCode, "%s", body)
			if tt.wantBody != "" {
				assert.Equal(t, tt.wantBody, string(body))
			}
			if tt.wantStatus == 302 {
				assert.Equal(t, "/greet/world", resp.Header.Get("Location"))
			}
		})
	}
}
