package e2e

// --log-json: every line the master, its access log, the zygote and the
// workers write is one JSON object, whatever the request's path or the
// app's bytes; each request has an id, from X-Request-Id or a new one,
// that the app sees and its access line carries. The app is
// testdata/proxied_app.py.

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// logLines parses every line of out as one JSON object.
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var obj map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &obj), "line %d is not one JSON object: %q", i+1, line)
		objs = append(objs, obj)
	}
	return objs
}

// find returns the objects for which match holds.
func find(objs []map[string]any, match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if match(o) {
			out = append(out, o)
		}
	}
	return out
}

// rawGet sends a raw GET of target and returns the response's body.
func rawGet(t *testing.T, addr, target, extra string) string {
	t.Helper()
	conn := harness.Dial(t, addr)
	defer conn.Close()
	_, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"+extra+"\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestLogJSONEveryLineIsAnObject(t *testing.T) {
	for _, source := range []string{"command line", "environment"} {
		t.Run(source, func(t *testing.T) {
			app := harness.TestdataPath(t, "proxied_app.py")
			var inst *harness.Instance
			if source == "command line" {
				inst = harness.Start(t, "--wsgi-file", app, "--log-json", "--processes", "2", "--cheaper-idle", "60")
			} else {
				inst = harness.LaunchConfigured(t, t.TempDir(), []string{"UWSGI_LOG_JSON=1"},
					"--http-socket", "127.0.0.1:0", "--wsgi-file", app, "--processes", "2", "--cheaper-idle", "60")
			}
			var given, made whoami
			require.NoError(t, json.Unmarshal([]byte(rawGet(t, inst.Addr, "/whoami", "X-Request-Id: req-\"7\"-abc\r\n")), &made))
			require.NoError(t, json.Unmarshal([]byte(rawGet(t, inst.Addr, "/whoami", "X-Request-Id: trace-42\r\n")), &given))
			rawGet(t, inst.Addr, `/quo%22ted%5Cpath%0A"x"?q="1"`, "")
			assert.Equal(t, "printed", rawGet(t, inst.Addr, "/print", ""))
			rawGet(t, inst.Addr, "/boom", "")
			inst.AwaitLogged(t, `odd \"quoted\" \\ back\u0001`, "RuntimeError")
			inst.Signal(t, syscall.SIGTERM)
			require.Equal(t, 0, inst.Wait(t, 30*time.Second))

			objs := logLines(t, inst.Stderr())
			require.NotNil(t, given.RequestID)
			assert.Equal(t, "trace-42", *given.RequestID, "a sane X-Request-Id is the request's id")
			require.NotNil(t, made.RequestID)
			assert.Regexp(t, hexID, *made.RequestID, "an X-Request-Id with quotes is replaced by a new id")

			access := find(objs, func(o map[string]any) bool { return o["msg"] == "request" })
			require.Len(t, access, 5, "one access line per request")
			for _, a := range access {
				assert.NotEmpty(t, a["request_id"])
				assert.IsType(t, float64(0), a["duration_ms"])
				assert.Equal(t, "127.0.0.1", a["remote"])
			}
			byID := find(access, func(o map[string]any) bool { return o["request_id"] == "trace-42" })
			assert.Len(t, byID, 1)
			assert.Len(t, find(access, func(o map[string]any) bool { return o["request_id"] == *made.RequestID }), 1)
			assert.Len(t, find(access, func(o map[string]any) bool { return o["path"] == "/quo\"ted\\path\n\"x\"" }), 1,
				"a path with quotes, a backslash and a line end is one field")
			assert.Len(t, find(access, func(o map[string]any) bool { return o["path"] == "/boom" && o["status"] == float64(500) }), 1)

			for _, stream := range []string{"stdout", "stderr"} {
				printed := find(objs, func(o map[string]any) bool {
					return o["stream"] == stream && o["source"] == "app" && strings.HasPrefix(o["msg"].(string), "odd")
				})
				require.Len(t, printed, 1, stream)
				assert.Equal(t, "odd \"quoted\" \\ back\x01\x1b[31m \ufffd\ufffd tail", printed[0]["msg"], "bytes that are not UTF-8 become U+FFFD")
			}
			assert.NotEmpty(t, find(objs, func(o map[string]any) bool {
				return o["stream"] == "stderr" && strings.Contains(o["msg"].(string), `RuntimeError: boom with "quotes"`)
			}), "the traceback's lines are objects too")
			assert.NotEmpty(t, find(objs, func(o map[string]any) bool {
				return o["source"] == "master" && strings.HasPrefix(o["msg"].(string), "gowsgi ") && o["level"] == "INFO"
			}), "the banner")
			assert.NotEmpty(t, find(objs, func(o map[string]any) bool {
				return o["level"] == "WARN" && strings.Contains(o["msg"].(string), "cheaper")
			}), "the option warnings")
		})
	}
}

// TestLogJSONFailedStart: the one line that stops a start is an object too.
func TestLogJSONFailedStart(t *testing.T) {
	code, out := harness.RunToExit(t, "--log-json", "--wsgi-file", "/nonexistent/app.py")
	assert.Equal(t, 2, code)
	objs := logLines(t, out)
	assert.NotEmpty(t, find(objs, func(o map[string]any) bool {
		return o["level"] == "ERROR" && strings.Contains(o["msg"].(string), "app.py")
	}), "%s", out)
}

// TestLogJSONRefusedInCGIMode: a CGI program's app writes to the web
// server's error log itself, so --log-json could not keep its promise
// there and stops the run with one line.
func TestLogJSONRefusedInCGIMode(t *testing.T) {
	cmd := exec.Command(harness.GowsgiBin, "--log-json", "--wsgi-file", harness.TestdataPath(t, "proxied_app.py"))
	cmd.Dir = t.TempDir()
	cmd.Env = cgiRequest{method: "GET", pathInfo: "/hello"}.env()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	assert.Equal(t, 2, exit.ExitCode())
	assert.Equal(t, "gowsgi: --log-json: not in CGI mode, where the app writes to the web server's error log itself; drop the option\n", string(out))
}
