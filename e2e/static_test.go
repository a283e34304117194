// The master's static files (--static-map, --check-static) through the real
// binary, each started from the command line and from an ini file and
// observed from outside.
package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
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
	harness.WriteFile(t, dir, "app.py", statusApp)
	harness.WriteFile(t, dir, "secret", secretText)
	static := filepath.Join(dir, "static")
	harness.WriteFile(t, static, "hello.txt", "hello static\n")
	harness.WriteFile(t, static, "style.css", "body { color: red }\n")
	require.NoError(t, os.MkdirAll(filepath.Join(static, "sub"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(dir, "secret"), filepath.Join(static, "escape")))
	require.NoError(t, os.Symlink("hello.txt", filepath.Join(static, "alias.txt")))
}

// appCalls returns the paths the app was called with.
func appCalls(inst *harness.Instance) []string {
	calls, _ := inst.Record("calls.log")
	return strings.Fields(calls)
}

func TestStaticMap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staticTree(t, dir)
	inst := harness.StartIn(t, dir, "--wsgi-file", "app.py", "--static-map", "/static="+filepath.Join(dir, "static"))

	t.Run("files", func(t *testing.T) {
		info, err := os.Stat(filepath.Join(dir, "static", "hello.txt"))
		require.NoError(t, err)
		for _, tc := range []struct{ path, body, contentType string }{
			{"/static/hello.txt", "hello static\n", "text/plain; charset=utf-8"},
			{"/static/style.css", "body { color: red }\n", "text/css; charset=utf-8"},
			{"/static/alias.txt", "hello static\n", "text/plain; charset=utf-8"},
		} {
			resp, body := harness.Get(t, inst.URL+tc.path)
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
		resp, body := harness.Do(t, harness.Client(false), harness.MustRequest(t, http.MethodHead, inst.URL+"/static/hello.txt", nil))
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "13", resp.Header.Get("Content-Length"))
		assert.Empty(t, body)
	})
	t.Run("not modified", func(t *testing.T) {
		req := harness.MustRequest(t, http.MethodGet, inst.URL+"/static/hello.txt", nil)
		req.Header.Set("If-Modified-Since", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		resp, body := harness.Do(t, harness.Client(false), req)
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
		resp, body := harness.Get(t, inst.URL+path)
		assert.Equal(t, 200, resp.StatusCode, path)
		assert.Contains(t, string(body), "pid=", path)
	}
	assert.Equal(t, toApp, appCalls(inst))
}

func TestStaticMapFromINI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staticTree(t, dir)
	harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = %dapp.py\nhttp-socket = 127.0.0.1:0\nstatic-map = /assets=%dstatic\nstatic-map = /more=%dstatic/sub\nstatic-map = /assets=%dstatic/sub\n")
	harness.WriteFile(t, filepath.Join(dir, "static", "sub"), "deep.js", "let x = 1;\n")
	inst := harness.LaunchConfigured(t, dir, nil, "app.ini")
	resp, body := harness.Get(t, inst.URL+"/assets/hello.txt")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello static\n", string(body))
	resp, body = harness.Get(t, inst.URL+"/more/deep.js")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "let x = 1;\n", string(body))
	assert.Contains(t, resp.Header.Get("Content-Type"), "javascript")
	// Two folders on one mount: the first without the file passes it on to
	// the next, as in uWSGI.
	resp, body = harness.Get(t, inst.URL+"/assets/deep.js")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "let x = 1;\n", string(body))
	_, responses := exchange(t, inst.Addr, "GET /more/%2e%2e/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1, http.MethodGet)
	assert.Equal(t, 403, responses[0].StatusCode)
	assert.Empty(t, appCalls(inst))
}

func TestStaticMapRefusesABadValue(t *testing.T) {
	t.Parallel()
	code, out := harness.RunToExit(t, "--wsgi-file", "app.py", "--static-map", "static-without-mount")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "--static-map")
}

// requestStatuses asks for each status in turn on one connection, so each
// request's log line is written before the next request is read.
func requestStatuses(t *testing.T, inst *harness.Instance, statuses ...int) {
	t.Helper()
	c := harness.Client(false)
	for _, status := range statuses {
		resp, _ := harness.Do(t, c, harness.MustRequest(t, http.MethodGet, fmt.Sprintf("%s/status/%d", inst.URL, status), nil))
		require.Equal(t, status, resp.StatusCode)
		require.Equal(t, fmt.Sprintf("%d Status", status), resp.Status, "the app's reason phrase")
	}
}

// --check-static DIR serves any path DIR has a file for, after the
// --static-map mappings, and passes the rest to the app, as uWSGI does.
func TestCheckStatic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staticTree(t, dir)
	harness.WriteFile(t, filepath.Join(dir, "assets"), "hello.txt", "from the static map\n")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"command line", []string{"--wsgi-file", "app.py", "--static-map", "/static=" + filepath.Join(dir, "assets"),
			"--check-static", filepath.Join(dir, "static")}},
		{"ini", []string{"--ini", harness.WriteFile(t, dir, "app.ini",
			"[uwsgi]\nwsgi-file = %dapp.py\nstatic-map = /static=%dassets\ncheck-static = %dstatic\n")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := harness.StartIn(t, dir, tc.args...)
			for path, want := range map[string]string{
				"/hello.txt":        "hello static\n",
				"/alias.txt":        "hello static\n",
				"/static/hello.txt": "from the static map\n",
			} {
				resp, body := harness.Get(t, inst.URL+path)
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
				resp, body := harness.Get(t, inst.URL+path)
				assert.Equal(t, 200, resp.StatusCode, path)
				assert.Contains(t, string(body), "pid=", path)
			}
			assert.Equal(t, toApp, appCalls(inst))
			require.NoError(t, os.Remove(filepath.Join(dir, "calls.log")))
		})
	}
	code, out := harness.RunToExit(t, "--wsgi-file", "app.py", "--check-static", filepath.Join(dir, "nowhere"))
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "--check-static "+filepath.Join(dir, "nowhere"))
}
