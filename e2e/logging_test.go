// Logging through the real binary: the access log switch and its shapes
// (--log-format, --log-4xx, --log-5xx, --memory-report), --logto with
// SIGUSR1 and --touch-logreopen, and --logger / --req-logger file:.
package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

func fileContains(path, text string) bool {
	content, _ := os.ReadFile(path)
	return strings.Contains(string(content), text)
}

// TestLogToAndSIGUSR1 checks that the master's and the workers' lines go to
// the file, and that SIGUSR1 after logrotate moved it writes the stats line,
// and the running worker's lines, to a new file at the same path.
func TestLogToAndSIGUSR1(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "gowsgi.log")
	inst := harness.Launch(t, dir, "--wsgi-file", harness.TestdataPath(t, "misbehave.py"), "--logto", logPath)
	waitLogBanner(t, inst, logPath)
	status, _ := harness.GetText(t, inst.URL+"/log?line=from-the-worker")
	assert.Equal(t, 200, status)
	harness.Eventually(t, 10*time.Second, func() bool { return fileContains(logPath, "from-the-worker") },
		"the worker's line is not in the log")
	assert.NotContains(t, inst.Stderr(), "from-the-worker")

	rotated := logPath + ".1"
	require.NoError(t, os.Rename(logPath, rotated))
	inst.Signal(t, syscall.SIGUSR1)
	harness.Eventually(t, 10*time.Second, func() bool { return fileContains(logPath, "msg=stats") },
		"no stats line in the reopened log")
	// The worker that was already running writes to the new file too: its
	// output goes through the master.
	status, _ = harness.GetText(t, inst.URL+"/log?line=after-the-reopen")
	assert.Equal(t, 200, status)
	harness.Eventually(t, 10*time.Second, func() bool { return fileContains(logPath, "after-the-reopen") },
		"the running worker's line is not in the reopened log")
	assert.False(t, fileContains(rotated, "after-the-reopen"))
	inst.Signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, inst.Wait(t, harness.StopTimeout))
	assert.True(t, fileContains(logPath, "msg=stopping"), "the master's last line is not in the reopened log")
	assert.False(t, fileContains(rotated, "msg=stats"))
}

// --touch-logreopen reopens the --logto file when its trigger is touched,
// as logrotate's postrotate "touch" does with uWSGI.
func TestTouchLogReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logPath, trigger := filepath.Join(dir, "gowsgi.log"), harness.WriteFile(t, dir, "reopen", "")
	inst := harness.Launch(t, dir, "--wsgi-file", harness.TestdataPath(t, "misbehave.py"), "--logto", logPath, "--touch-logreopen", trigger)
	waitLogBanner(t, inst, logPath)

	rotated := logPath + ".1"
	require.NoError(t, os.Rename(logPath, rotated))
	harness.Eventually(t, 20*time.Second, func() bool {
		// Touched on every poll until seen, so a touch within the file
		// system's time granularity of the baseline still counts.
		now := time.Now()
		require.NoError(t, os.Chtimes(trigger, now, now))
		return fileContains(logPath, `msg="log reopened"`)
	}, "the log was not reopened")
	status, _ := harness.GetText(t, inst.URL+"/log?line=after-the-reopen")
	assert.Equal(t, 200, status)
	harness.Eventually(t, 10*time.Second, func() bool { return fileContains(logPath, "after-the-reopen") },
		"the worker's line is not in the reopened log")
	assert.False(t, fileContains(rotated, "after-the-reopen"))
	assert.False(t, fileContains(logPath, "msg=stats"), "only SIGUSR1 writes the stats line")
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantAccess bool
	}{
		{name: "on by default", wantAccess: true},
		{name: "-L silences it", args: []string{"-L"}, wantAccess: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := harness.Start(t, append([]string{"--wsgi-file", harness.TestdataPath(t, "misbehave.py")}, tt.args...)...)
			resp, _ := harness.Get(t, app.URL+"/version")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			// Stopping flushes everything the master would ever log.
			app.Signal(t, syscall.SIGTERM)
			require.Equal(t, 0, app.Wait(t, 30*time.Second))
			logged := len(harness.RequestLinesFor(app.Stderr(), "GET", "/version")) == 1
			assert.Equal(t, tt.wantAccess, logged, "stderr:\n%s", app.Stderr())
		})
	}
}

// accessLine is the --log-format of TestLogFormat: every variable whose
// value the test knows in advance, then the timing ones.
const accessLine = "ACCESS [%(addr)] %(method) %(uri) %(proto) => %(status) %(rsize) host=%(host) ua=%(uagent) ref=%(referer) wid=%(wid) pid=%(pid)" +
	" | %(msecs) %(micros) %(time) <%(ltime)> %(size) %(hsize)"

func TestLogFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	harness.WriteFile(t, dir, "app.py", statusApp)
	inst := harness.StartIn(t, dir, "--wsgi-file", "app.py", "--log-format", accessLine)
	before := time.Now().Add(-time.Second).Unix()
	_, responses := exchange(t, inst.Addr, "GET /status/201?q=1 HTTP/1.1\r\nHost: example.test\r\n"+
		"User-Agent: probe/1.0\r\nReferer: http://ref.test/page\r\nConnection: close\r\n\r\n", 1, http.MethodGet)
	after := time.Now().Add(time.Second).Unix()
	require.Equal(t, 201, responses[0].StatusCode)
	pid := strings.TrimSpace(strings.TrimPrefix(string(responses[0].Body), "pid="))
	want := fmt.Sprintf("ACCESS [127.0.0.1] GET /status/201?q=1 HTTP/1.1 => 201 %d host=example.test ua=probe/1.0 ref=http://ref.test/page wid=1 pid=%s | ",
		len(responses[0].Body), pid)
	line := harness.WaitLine(t, inst, "ACCESS [")
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
	assert.Empty(t, harness.RequestLines(inst.Stderr()), "the format replaces uWSGI's line")
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
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
			harness.WriteFile(t, dir, "app.py", statusApp)
			harness.WriteFile(t, dir, "only5xx.ini", "[uwsgi]\ndisable-logging = true\nlog-5xx = true\nlog-format = LOGGED %(uri)\n")
			inst := harness.StartIn(t, dir, append([]string{"--wsgi-file", "app.py"}, tc.args...)...)
			requestStatuses(t, inst, append(append([]int{}, tc.quiet...), tc.logged...)...)
			// A last request whose line every case writes (or, when nothing
			// is logged, that shows the earlier ones were handled).
			requestStatuses(t, inst, 200)
			harness.Eventually(t, 10*time.Second, func() bool {
				return strings.Count(strings.Join(appCalls(inst), " "), "/status/") == len(tc.quiet)+len(tc.logged)+1
			}, "the app did not see every request")
			for _, status := range tc.logged {
				harness.WaitLine(t, inst, fmt.Sprintf("LOGGED /status/%d", status))
			}
			for _, status := range tc.quiet {
				assert.NotContains(t, inst.Stderr(), fmt.Sprintf("LOGGED /status/%d\n", status))
			}
			assert.Empty(t, harness.RequestLines(inst.Stderr()))
		})
	}
}

func TestMemoryReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	harness.WriteFile(t, dir, "app.py", statusApp)
	harness.WriteFile(t, dir, "mem.ini", "[uwsgi]\nmemory-report = true\n")
	for _, tc := range []struct {
		name string
		args []string
		line *regexp.Regexp // groups: pid, and rss when the line has a number for it
	}{
		{"format", []string{"--memory-report", "--log-format", "MEM %(uri) pid=%(pid) rss=%(rss) rssM=%(rssM)"},
			regexp.MustCompile(`MEM /mem pid=(?P<pid>\d+) rss=(?P<rss>\d+) rssM=\d+`)},
		{"uWSGI wording from ini", []string{"--ini", "mem.ini", "--log-format", "MEM %(uri)"},
			regexp.MustCompile(`MEM /mem \{address space usage: \d+ bytes/\d+MB\} \{rss usage: (?P<rss>\d+) bytes/\d+MB\} \[pid: (?P<pid>\d+)\]`)},
		{"uWSGI's request line", []string{"--memory-report"},
			regexp.MustCompile(`\{address space usage: \d+ bytes/\d+MB\} \{rss usage: (?P<rss>\d+) bytes/\d+MB\} \[pid: (?P<pid>\d+)\|app: 0\|[^\n]* GET /mem => `)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := harness.StartIn(t, dir, append([]string{"--wsgi-file", "app.py"}, tc.args...)...)
			_, body := harness.Get(t, inst.URL+"/mem")
			pid := strings.TrimSpace(strings.TrimPrefix(string(body), "pid="))
			var match []string
			harness.Eventually(t, 10*time.Second, func() bool {
				match = tc.line.FindStringSubmatch(inst.Stderr())
				return match != nil
			}, "no memory report in stderr:\n%s", inst.Stderr())
			assert.Equal(t, pid, match[tc.line.SubexpIndex("pid")])
			assert.Greater(t, atoi(t, match[tc.line.SubexpIndex("rss")]), int64(1<<20), "a worker with Python loaded has over 1 MiB resident")
		})
	}
}

func TestLoggerFile(t *testing.T) {
	for _, key := range []string{"logger", "req-logger"} {
		for _, src := range restSources {
			t.Run(key+"/"+src.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				logFile := filepath.Join(dir, "app.log")
				inst := harness.Launch(t, dir, src.args(t, dir, [][2]string{probeFile(t), {key, "file:" + logFile}})...)
				if key == "logger" {
					// As --logto: the banner and the request lines go to the file.
					waitLogBanner(t, inst, logFile)
				} else {
					// A request logger gets the request lines alone, as in uWSGI.
					inst.WaitBanner(t)
				}
				status, _ := harness.GetText(t, inst.URL+"/hello?logged=yes")
				require.Equal(t, 200, status)
				harness.Eventually(t, 10*time.Second, func() bool { return fileContains(logFile, "] GET /hello?logged=yes => ") },
					"%s file:PATH: no request line in the file", key)
				assert.Empty(t, warningLines(inst.Stderr()))
				assert.NotContains(t, inst.Stderr(), "GET /hello")
				if key == "req-logger" {
					assert.False(t, fileContains(logFile, " · Python "), "the banner is not a request line")
				}
			})
		}
	}
}
