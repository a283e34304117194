// End-to-end tests of the master's static files (--static-map), the access
// log's shapes (--log-format, --log-4xx, --log-5xx, --memory-report) and
// the stats server (--stats, --stats-http), each started from the command
// line and from an ini file and observed from outside.
package main_test

import (
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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statusApp answers /status/NNN with that status and every other path with
// 200; the body names the worker's pid. Each call is appended to calls.log,
// so a test can tell which requests reached the app.
const statusApp = `import os

def application(environ, start_response):
    path = environ["PATH_INFO"]
    with open("calls.log", "a") as f:
        f.write(path + "\n")
    status = path[len("/status/"):] if path.startswith("/status/") else "200"
    body = ("pid=%d\n" % os.getpid()).encode()
    start_response(status + " Status", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// secretText is the content of a file outside every mapped folder.
const secretText = "the secret outside the static folder\n"

// staticTree lays out dir: the app, a static folder with files, a
// subfolder and two symlinks (one inside, one out), and a secret file
// beside the folder.
func staticTree(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, dir, "app.py", statusApp)
	writeFile(t, dir, "secret", secretText)
	static := filepath.Join(dir, "static")
	writeFile(t, static, "hello.txt", "hello static\n")
	writeFile(t, static, "style.css", "body { color: red }\n")
	require.NoError(t, os.MkdirAll(filepath.Join(static, "sub"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(dir, "secret"), filepath.Join(static, "escape")))
	require.NoError(t, os.Symlink("hello.txt", filepath.Join(static, "alias.txt")))
}

// appCalls returns the paths the app was called with.
func appCalls(inst *instance) []string {
	calls, _ := inst.record("calls.log")
	return strings.Fields(calls)
}

func TestStaticMap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staticTree(t, dir)
	inst := startIn(t, dir, "--wsgi-file", "app.py", "--static-map", "/static="+filepath.Join(dir, "static"))

	t.Run("files", func(t *testing.T) {
		info, err := os.Stat(filepath.Join(dir, "static", "hello.txt"))
		require.NoError(t, err)
		for _, tc := range []struct{ path, body, contentType string }{
			{"/static/hello.txt", "hello static\n", "text/plain; charset=utf-8"},
			{"/static/style.css", "body { color: red }\n", "text/css; charset=utf-8"},
			{"/static/alias.txt", "hello static\n", "text/plain; charset=utf-8"},
		} {
			resp, body := get(t, inst.URL+tc.path)
			assert.Equal(t, 200, resp.StatusCode, tc.path)
			assert.Equal(t, tc.body, string(body), tc.path)
			assert.Equal(t, tc.contentType, resp.Header.Get("Content-Type"), tc.path)
			assert.Equal(t, strconv.Itoa(len(tc.body)), resp.Header.Get("Content-Length"), tc.path)
			modified, err := http.ParseTime(resp.Header.Get("Last-Modified"))
			if assert.NoError(t, err, tc.path) {
				assert.Equal(t, info.ModTime().Unix(), modified.Unix(), tc.path)
			}
		}
	})
	t.Run("head", func(t *testing.T) {
		resp, body := do(t, client(false), mustRequest(t, http.MethodHead, inst.URL+"/static/hello.txt", nil))
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "13", resp.Header.Get("Content-Length"))
		assert.Empty(t, body)
	})
	t.Run("not modified", func(t *testing.T) {
		req := mustRequest(t, http.MethodGet, inst.URL+"/static/hello.txt", nil)
		req.Header.Set("If-Modified-Since", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		resp, body := do(t, client(false), req)
		assert.Equal(t, 304, resp.StatusCode)
		assert.Empty(t, body)
	})
	t.Run("never outside the folder", func(t *testing.T) {
		for _, target := range []string{
			"/static/../secret",
			"/static/%2e%2e/secret",
			"/static/%2E%2E/secret",
			"/static/sub/../../secret",
			"/static/sub/%2e%2e/%2e%2e/secret",
			"/static/..%2fsecret",
			"/static/escape",
		} {
			_, responses := exchange(t, inst.Addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1, http.MethodGet)
			assert.Equal(t, 403, responses[0].StatusCode, target)
			assert.NotContains(t, string(responses[0].Body), "secret outside", target)
		}
	})
	// Everything so far was the master's; only now does the app see a
	// request: one outside every mount, and, as under uWSGI, one under a
	// mount whose folder has no such file.
	assert.Empty(t, appCalls(inst))
	toApp := []string{"/staticx/hello.txt", "/static/missing.txt", "/static/sub", "/static/sub/", "/static", "/static/"}
	for _, path := range toApp {
		resp, body := get(t, inst.URL+path)
		assert.Equal(t, 200, resp.StatusCode, path)
		assert.Contains(t, string(body), "pid=", path)
	}
	assert.Equal(t, toApp, appCalls(inst))
}

func TestStaticMapFromINI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staticTree(t, dir)
	writeFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = %dapp.py\nhttp-socket = 127.0.0.1:0\nstatic-map = /assets=%dstatic\nstatic-map = /more=%dstatic/sub\nstatic-map = /assets=%dstatic/sub\n")
	writeFile(t, filepath.Join(dir, "static", "sub"), "deep.js", "let x = 1;\n")
	inst := launchConfigured(t, dir, nil, "app.ini")
	resp, body := get(t, inst.URL+"/assets/hello.txt")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello static\n", string(body))
	resp, body = get(t, inst.URL+"/more/deep.js")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "let x = 1;\n", string(body))
	assert.Contains(t, resp.Header.Get("Content-Type"), "javascript")
	// Two folders on one mount: the first without the file passes it on to
	// the next, as in uWSGI.
	resp, body = get(t, inst.URL+"/assets/deep.js")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "let x = 1;\n", string(body))
	_, responses := exchange(t, inst.Addr, "GET /more/%2e%2e/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1, http.MethodGet)
	assert.Equal(t, 403, responses[0].StatusCode)
	assert.Empty(t, appCalls(inst))
}

func TestStaticMapRefusesABadValue(t *testing.T) {
	t.Parallel()
	code, out := runToExit(t, "--wsgi-file", "app.py", "--static-map", "static-without-mount")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "--static-map")
}

// accessLine is the --log-format of TestLogFormat: every variable whose
// value the test knows in advance, then the timing ones.
const accessLine = "ACCESS [%(addr)] %(method) %(uri) %(proto) => %(status) %(rsize) host=%(host) ua=%(uagent) ref=%(referer) wid=%(wid) pid=%(pid)" +
	" | %(msecs) %(micros) %(time) <%(ltime)> %(size) %(hsize)"

func TestLogFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "app.py", statusApp)
	inst := startIn(t, dir, "--wsgi-file", "app.py", "--log-format", accessLine)
	before := time.Now().Add(-time.Second).Unix()
	_, responses := exchange(t, inst.Addr, "GET /status/201?q=1 HTTP/1.1\r\nHost: example.test\r\n"+
		"User-Agent: probe/1.0\r\nReferer: http://ref.test/page\r\nConnection: close\r\n\r\n", 1, http.MethodGet)
	after := time.Now().Add(time.Second).Unix()
	require.Equal(t, 201, responses[0].StatusCode)
	pid := strings.TrimSpace(strings.TrimPrefix(string(responses[0].Body), "pid="))
	want := fmt.Sprintf("ACCESS [127.0.0.1] GET /status/201?q=1 HTTP/1.1 => 201 %d host=example.test ua=probe/1.0 ref=http://ref.test/page wid=1 pid=%s | ",
		len(responses[0].Body), pid)
	line := waitLine(t, inst, "ACCESS [")
	require.True(t, strings.HasPrefix(line, want), "line %q\nwant prefix %q", line, want)
	timing := regexp.MustCompile(`^(\d+) (\d+) (\d+) <([^>]+)> (\d+) (\d+)$`).FindStringSubmatch(strings.TrimPrefix(line, want))
	require.NotNil(t, timing, "timing part of %q", line)
	msecs, micros, start := atoi(t, timing[1]), atoi(t, timing[2]), atoi(t, timing[3])
	assert.Equal(t, micros/1000, msecs)
	assert.True(t, start >= before && start <= after, "%%(time) %d not in [%d, %d]", start, before, after)
	ltime, err := time.Parse("02/Jan/2006:15:04:05 -0700", timing[4])
	if assert.NoError(t, err) {
		assert.Equal(t, start, ltime.Unix())
	}
	size, hsize := atoi(t, timing[5]), atoi(t, timing[6])
	assert.Equal(t, int64(len(responses[0].Body))+hsize, size)
	assert.Greater(t, hsize, int64(len("HTTP/1.1 201 Status\r\n\r\n")))
	assert.NotContains(t, inst.Stderr(), "msg=request", "the format replaces the structured line")
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

// waitLine waits for a line of inst's stderr that contains marker.
func waitLine(t *testing.T, inst *instance, marker string) string {
	t.Helper()
	var found string
	eventually(t, 10*time.Second, func() bool {
		for _, line := range strings.Split(inst.Stderr(), "\n") {
			if strings.Contains(line, marker) {
				found = line
				return true
			}
		}
		return false
	}, "no line with %q in stderr:\n%s", marker, inst.Stderr())
	return found
}

// requestStatuses asks for each status in turn on one connection, so each
// request's log line is written before the next request is read.
func requestStatuses(t *testing.T, inst *instance, statuses ...int) {
	t.Helper()
	c := client(false)
	for _, status := range statuses {
		resp, _ := do(t, c, mustRequest(t, http.MethodGet, fmt.Sprintf("%s/status/%d", inst.URL, status), nil))
		require.Equal(t, status, resp.StatusCode)
		require.Equal(t, fmt.Sprintf("%d Status", status), resp.Status, "the app's reason phrase")
	}
}

func TestLogErrorsWithLoggingDisabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		args   []string
		logged []int
		quiet  []int
	}{
		{"4xx and 5xx", []string{"-L", "--log-4xx", "--log-5xx", "--log-format", "LOGGED %(uri)"}, []int{404, 503}, []int{200, 302}},
		{"4xx only", []string{"--disable-logging", "--log-4xx", "--log-format", "LOGGED %(uri)"}, []int{404}, []int{200, 500}},
		{"5xx from ini", []string{"--ini", "only5xx.ini"}, []int{500}, []int{200, 404}},
		{"disabled", []string{"-L", "--log-format", "LOGGED %(uri)"}, nil, []int{200, 404, 500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "app.py", statusApp)
			writeFile(t, dir, "only5xx.ini", "[uwsgi]\ndisable-logging = true\nlog-5xx = true\nlog-format = LOGGED %(uri)\n")
			inst := startIn(t, dir, append([]string{"--wsgi-file", "app.py"}, tc.args...)...)
			requestStatuses(t, inst, append(append([]int{}, tc.quiet...), tc.logged...)...)
			// A last request whose line every case writes (or, when nothing
			// is logged, that shows the earlier ones were handled).
			requestStatuses(t, inst, 200)
			eventually(t, 10*time.Second, func() bool {
				return strings.Count(strings.Join(appCalls(inst), " "), "/status/") == len(tc.quiet)+len(tc.logged)+1
			}, "the app did not see every request")
			for _, status := range tc.logged {
				waitLine(t, inst, fmt.Sprintf("LOGGED /status/%d", status))
			}
			for _, status := range tc.quiet {
				assert.NotContains(t, inst.Stderr(), fmt.Sprintf("LOGGED /status/%d\n", status))
			}
			assert.NotContains(t, inst.Stderr(), "msg=request")
		})
	}
}

func TestMemoryReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "app.py", statusApp)
	writeFile(t, dir, "mem.ini", "[uwsgi]\nmemory-report = true\n")
	for _, tc := range []struct {
		name string
		args []string
		line *regexp.Regexp // its first group is the pid, the second the RSS
	}{
		{"format", []string{"--memory-report", "--log-format", "MEM %(uri) pid=%(pid) rss=%(rss) rssM=%(rssM)"},
			regexp.MustCompile(`MEM /mem pid=(\d+) rss=(\d+) rssM=\d+`)},
		{"uWSGI wording from ini", []string{"--ini", "mem.ini", "--log-format", "MEM %(uri)"},
			regexp.MustCompile(`MEM /mem \{address space usage: \d+ bytes/\d+MB\} \{rss usage: (?:\d+) bytes/\d+MB\} \[pid: (\d+)\]()`)},
		{"structured line", []string{"--memory-report"},
			regexp.MustCompile(`msg=request .*path=/mem .*pid=(\d+) rss=(\d+)`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := startIn(t, dir, append([]string{"--wsgi-file", "app.py"}, tc.args...)...)
			_, body := get(t, inst.URL+"/mem")
			pid := strings.TrimSpace(strings.TrimPrefix(string(body), "pid="))
			var match []string
			eventually(t, 10*time.Second, func() bool {
				match = tc.line.FindStringSubmatch(inst.Stderr())
				return match != nil
			}, "no memory report in stderr:\n%s", inst.Stderr())
			assert.Equal(t, pid, match[1])
			if match[2] != "" {
				assert.Greater(t, atoi(t, match[2]), int64(1<<20), "a worker with Python loaded has over 1 MiB resident")
			}
		})
	}
}

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
func appPIDs(t *testing.T, inst *instance, want int) map[int]bool {
	t.Helper()
	pids := make(map[int]bool)
	for i := 0; i < 200 && len(pids) < want; i++ {
		// A fresh connection and a concurrent pair spread the requests.
		results := make(chan string, 2)
		for range 2 {
			go func() {
				resp, err := client(false).Get(inst.URL + "/pid")
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
func checkStats(t *testing.T, inst *instance, doc statsDoc, workers int) {
	t.Helper()
	assert.NotEmpty(t, doc.Version)
	assert.Equal(t, inst.cmd.Process.Pid, doc.PID)
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
	writeFile(t, dir, "app.py", statusApp)
	inst := startIn(t, dir, "--wsgi-file", "app.py", "-p", "2", "--stats", "127.0.0.1:0")
	addr := regexp.MustCompile(`address=(\S+)`).FindStringSubmatch(waitLine(t, inst, "stats server listening"))
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
	eventually(t, 10*time.Second, func() bool {
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
	writeFile(t, dir, "app.py", statusApp)
	sock := filepath.Join(dir, "stats.sock")
	writeFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = app.py\nprocesses = 3\nstats = %dstats.sock\nstats-http = true\n")
	inst := startIn(t, dir, "--ini", "app.ini")
	waitLine(t, inst, "stats server listening")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, body := do(t, c, mustRequest(t, http.MethodGet, "http://stats/", nil))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var doc statsDoc
	require.NoError(t, json.Unmarshal(body, &doc), "%s", body)
	checkStats(t, inst, doc, 3)
	inst.stop(t)
	_, err := os.Stat(sock)
	assert.True(t, os.IsNotExist(err), "the stats socket file is removed on exit")
}

// --check-static DIR serves any path DIR has a file for, after the
// --static-map mappings, and passes the rest to the app, as uWSGI does.
func TestCheckStatic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staticTree(t, dir)
	writeFile(t, filepath.Join(dir, "assets"), "hello.txt", "from the static map\n")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"command line", []string{"--wsgi-file", "app.py", "--static-map", "/static=" + filepath.Join(dir, "assets"),
			"--check-static", filepath.Join(dir, "static")}},
		{"ini", []string{"--ini", writeFile(t, dir, "app.ini",
			"[uwsgi]\nwsgi-file = %dapp.py\nstatic-map = /static=%dassets\ncheck-static = %dstatic\n")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := startIn(t, dir, tc.args...)
			for path, want := range map[string]string{
				"/hello.txt":        "hello static\n",
				"/alias.txt":        "hello static\n",
				"/static/hello.txt": "from the static map\n",
			} {
				resp, body := get(t, inst.URL+path)
				assert.Equal(t, 200, resp.StatusCode, path)
				assert.Equal(t, want, string(body), path)
			}
			for _, target := range []string{"/../secret", "/%2e%2e/secret", "/escape"} {
				_, responses := exchange(t, inst.Addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1, http.MethodGet)
				assert.Equal(t, 403, responses[0].StatusCode, target)
			}
			assert.Empty(t, appCalls(inst), "the app saw a request for a static file")
			toApp := []string{"/missing.txt", "/sub", "/"}
			for _, path := range toApp {
				resp, body := get(t, inst.URL+path)
				assert.Equal(t, 200, resp.StatusCode, path)
				assert.Contains(t, string(body), "pid=", path)
			}
			assert.Equal(t, toApp, appCalls(inst))
			require.NoError(t, os.Remove(filepath.Join(dir, "calls.log")))
		})
	}
	code, out := runToExit(t, "--wsgi-file", "app.py", "--check-static", filepath.Join(dir, "nowhere"))
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "--check-static "+filepath.Join(dir, "nowhere"))
}
