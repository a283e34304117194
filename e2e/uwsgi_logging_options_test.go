// uWSGI's log options real files use, through the real binary and
// Debian's uWSGI with the same ini file (testdata/ini/logging.ini): the
// log file rotated by size to log-backupname, X-Forwarded-For as %(addr),
// and (gowsgi) the log file reopened at a reload; log-date's dated lines
// (log_date.ini).
package e2e

import (
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

// forwardedGet GETs url as a proxy would, with X-Forwarded-For.
func forwardedGet(t *testing.T, url string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
}

// awaitRotation sends requests, 20 at a time and at most 2000, until the
// log has been rotated to backup, and returns the backup's content.
func awaitRotation(t *testing.T, addr, backup string) string {
	t.Helper()
	sent := 0
	harness.Eventually(t, 30*time.Second, func() bool {
		for i := 0; i < 20 && sent < 2000; i++ {
			forwardedGet(t, "http://"+addr+"/r"+strconv.Itoa(sent))
			sent++
		}
		_, err := os.Stat(backup)
		return err == nil
	}, "the log was not rotated to %s after up to 2000 requests", backup)
	content, err := os.ReadFile(backup)
	require.NoError(t, err)
	return string(content)
}

// assertRotated checks what logging.ini's rotation left.
func assertRotated(t *testing.T, rotated string) {
	t.Helper()
	assert.Contains(t, rotated, "203.0.113.7 GET /r0 200\n", "X-Forwarded-For is %(addr)")
	assert.Regexp(t, `logsize: \d+, triggering rotation to .*\.old\.\.\.`, rotated)
}

func TestLoggingINI(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "logging.ini"))
	addr, log := freeAddr(t), filepath.Join(t.TempDir(), "app.log")
	t.Setenv("ADDR", addr)
	t.Setenv("LOG", log)
	// The banner goes to the log file, where waitLogBanner finds it.
	inst := harness.Launch(t, t.TempDir(), ini)
	waitLogBanner(t, inst, log)
	assertRotated(t, awaitRotation(t, addr, log+".old"))

	// log-reopen: a reload opens the file anew, after logrotate moved it.
	require.NoError(t, os.Rename(log, log+".moved"))
	inst.Signal(t, syscall.SIGHUP)
	harness.Eventually(t, harness.StartTimeout, func() bool {
		forwardedGet(t, "http://"+addr+"/after")
		content, err := os.ReadFile(log)
		return err == nil && strings.Contains(string(content), "203.0.113.7 GET /after 200")
	}, "the reload did not reopen %s", log)
}

func TestLoggingINIUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	ini := harness.TestdataPath(t, filepath.Join("ini", "logging.ini"))
	addr, log := freeAddr(t), filepath.Join(t.TempDir(), "app.log")
	t.Setenv("ADDR", addr)
	t.Setenv("LOG", log)
	startUWSGI(t, bin, addr, "--plugin", "python3,http", "--ini", ini)
	assertRotated(t, awaitRotation(t, addr, log+".old"))
}

// logDateCases are log_date.ini's formats and the start of a dated line.
var logDateCases = []struct {
	format string
	line   *regexp.Regexp
}{
	{"true", regexp.MustCompile(`(?m)^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} - `)},
	{"%Y-%m-%d", regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d - `)},
}

func TestLogDateINI(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "log_date.ini"))
	for _, tc := range logDateCases {
		addr := freeAddr(t)
		inst := harness.LaunchConfigured(t, t.TempDir(), []string{"ADDR=" + addr, "DATE_FORMAT=" + tc.format}, ini)
		assert.Regexp(t, regexp.MustCompile(tc.line.String()+`gowsgi \S+ · Python`), inst.Stderr(), "the banner is dated (%s)", tc.format)
		inst.Stop(t)
	}
}

func TestLogDateINIUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	ini := harness.TestdataPath(t, filepath.Join("ini", "log_date.ini"))
	for _, tc := range logDateCases {
		addr := freeAddr(t)
		t.Setenv("ADDR", addr)
		t.Setenv("DATE_FORMAT", tc.format)
		out := startUWSGI(t, bin, addr, "--plugin", "python3,http", "--ini", ini)
		harness.Eventually(t, harness.StartTimeout, func() bool { return tc.line.MatchString(out.String()) },
			"uWSGI's lines are not dated as %s:\n%s", tc.format, out)
	}
}
