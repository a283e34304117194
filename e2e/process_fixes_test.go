// End-to-end tests of fixes to the master's process and its set-up, each
// through the real binary: the access line of a response the master
// serves itself (--static-map, --check-static); --py-autoreload and an
// edit made just after a module's import; sys.executable in a worker; an
// app file that is not there. And the set-up: what `make` installs, `make
// install`, the Python the build embeds, the Go version README and make
// name.
package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// staticLogFormat shows what an access line says of a response's size.
const staticLogFormat = "STATIC %(method) %(uri) => %(status) rsize=%(rsize) hsize=%(hsize) size=%(size) wid=%(wid)"

// staticSizes reads the sizes a staticLogFormat line ends with.
var staticSizes = regexp.MustCompile(`rsize=(\d+) hsize=(\d+) size=(\d+) wid=(\d+)$`)

// loggedRequest is one request of TestAccessLogHasStaticFiles and what its
// access line must say.
type loggedRequest struct {
	method, target string
	header         http.Header
	status         int
	body           int  // bytes of body sent
	byApp          bool // served by a worker, not by the master
}

// staticRequests are answered by the master from the folders, except the
// last, which the app answers; each target is unique, so each line is.
func staticRequests(pidBody int) []loggedRequest {
	future := http.Header{"If-Modified-Since": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}}
	return []loggedRequest{
		{http.MethodGet, "/static/hello.txt", nil, 200, len("hello static\n"), false},
		{http.MethodHead, "/static/style.css", nil, 200, 0, false},
		{http.MethodGet, "/static/hello.txt?cached", future, 304, 0, false},
		{http.MethodGet, "/static/escape", nil, 403, len("403 Forbidden\n"), false},
		{http.MethodPost, "/static/alias.txt", nil, 405, len("405 Method Not Allowed\n"), false},
		{http.MethodGet, "/robots.txt", nil, 200, len("User-agent: *\n"), false}, // --check-static
		{http.MethodGet, "/to-the-app", nil, 200, pidBody, true},
	}
}

// send makes lr's request and checks its status; it returns the body.
func (lr loggedRequest) send(t *testing.T, inst *harness.Instance) []byte {
	t.Helper()
	req := harness.MustRequest(t, lr.method, inst.URL+lr.target, nil)
	for name, values := range lr.header {
		req.Header[name] = values
	}
	resp, body := harness.Do(t, harness.Client(false), req)
	require.Equal(t, lr.status, resp.StatusCode, "%s %s", lr.method, lr.target)
	return body
}

// TestAccessLogHasStaticFiles: the files the master serves itself, and its
// refusals, get an access line each, as the app's responses do, with the
// status and size the client got (uWSGI logs them too).
func TestAccessLogHasStaticFiles(t *testing.T) {
	t.Parallel()
	for _, structured := range []bool{false, true} {
		t.Run(map[bool]string{false: "log format", true: "structured line"}[structured], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			staticTree(t, dir)
			harness.WriteFile(t, filepath.Join(dir, "site"), "robots.txt", "User-agent: *\n")
			args := []string{"--wsgi-file", "app.py", "--static-map", "/static=" + filepath.Join(dir, "static"),
				"--check-static", filepath.Join(dir, "site")}
			if !structured {
				args = append(args, "--log-format", staticLogFormat)
			}
			inst := harness.StartIn(t, dir, args...)
			_, body := harness.Get(t, inst.URL+"/warm-up")
			for _, lr := range staticRequests(len(body)) {
				lr.send(t, inst)
				if structured {
					lr.assertStructured(t, inst)
				} else {
					lr.assertFormatted(t, inst)
				}
			}
			assert.Equal(t, []string{"/warm-up", "/to-the-app"}, appCalls(inst), "the app saw only its own requests")
		})
	}
}

// assertFormatted checks lr's staticLogFormat line: written once, with
// the status, the body's size and the head's.
func (lr loggedRequest) assertFormatted(t *testing.T, inst *harness.Instance) {
	t.Helper()
	prefix := fmt.Sprintf("STATIC %s %s => %d ", lr.method, lr.target, lr.status)
	line := harness.WaitLine(t, inst, prefix)
	assert.Equal(t, 1, strings.Count(inst.Stderr(), prefix), "logged once: %s", prefix)
	sizes := staticSizes.FindStringSubmatch(line)
	require.NotNil(t, sizes, "sizes in %q", line)
	rsize, hsize, size := atoi(t, sizes[1]), atoi(t, sizes[2]), atoi(t, sizes[3])
	assert.Equal(t, int64(lr.body), rsize, line)
	assert.Greater(t, hsize, int64(len("HTTP/1.1 200 OK\r\n\r\n")), line)
	assert.Equal(t, rsize+hsize, size, line)
	wid := map[bool]string{false: "0", true: "1"}[lr.byApp]
	assert.Equal(t, wid, sizes[4], "%%(wid): the worker that served it, 0 for the master; %s", line)
}

// assertStructured checks lr's line in gowsgi's own shape.
func (lr loggedRequest) assertStructured(t *testing.T, inst *harness.Instance) {
	t.Helper()
	harness.WaitLine(t, inst, fmt.Sprintf("] %s %s => generated ", lr.method, lr.target))
	lines := harness.RequestLinesFor(inst.Stderr(), lr.method, lr.target)
	require.Len(t, lines, 1, "logged once: %s %s", lr.method, lr.target)
	assert.Equal(t, lr.status, lines[0].Status, lines[0].Line)
	assert.Equal(t, lr.body, lines[0].Bytes, lines[0].Line)
}

// viewsApp imports its views on the first request, as a Django project
// does, and answers the version they hold.
const viewsApp = `"""Routes:
  /  views.VERSION. The first request, once views is imported, writes
     "imported" and waits (20 s at most) for release-edited.
"""
import os
import time


def application(environ, start_response):
    import views
    if not os.path.exists("imported"):
        open("imported", "w").close()
        deadline = time.monotonic() + 20
        while not os.path.exists("release-edited") and time.monotonic() < deadline:
            time.sleep(0.01)
    body = views.VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

// TestPyAutoreloadSeesAnEditMadeAsAModuleIsImported: views.py is edited
// right after a worker imported it, before the master can have read the
// module list (the worker lists the module once its request ends). The
// master must compare the file with what the worker imported, reload, and
// every worker must then serve the edit. Before, the edited file was the
// master's baseline: no reload, and two workers answered v1 and v2 in turn
// for good.
func TestPyAutoreloadSeesAnEditMadeAsAModuleIsImported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	harness.WriteFile(t, dir, "app.py", viewsApp)
	views := harness.WriteFile(t, dir, "views.py", "VERSION = 'v1'\n")
	// An hour back, so the edit's time differs however coarse the clock.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(views, old, old))
	inst := harness.StartIn(t, dir, "--wsgi-file", "app.py", "-p", "2", "--py-autoreload", "1")

	first := make(chan string, 1)
	go func() {
		resp, err := harness.Client(false).Get(inst.URL + "/")
		if err != nil {
			first <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		first <- string(body)
	}()
	harness.Eventually(t, harness.StartTimeout, func() bool {
		_, imported := inst.Record("imported")
		return imported
	}, "views was never imported; stderr:\n%s", inst.Stderr())
	require.NoError(t, os.WriteFile(views, []byte("VERSION = 'v2 (edited)'\n"), 0o644))
	inst.Release(t, "edited")
	select {
	case body := <-first:
		require.Equal(t, "v1", body, "the first request imported views before the edit")
	case <-time.After(harness.StartTimeout):
		require.FailNow(t, "the first request never ended", "stderr:\n%s", inst.Stderr())
	}

	harness.Eventually(t, harness.StartTimeout, func() bool {
		return strings.Contains(inst.Stderr(), "msg=reloaded")
	}, "no reload after the edit; stderr:\n%s", inst.Stderr())
	assert.Contains(t, inst.Stderr(), `msg="reload requested" touched=`+views)
	for i := 0; i < 20; i++ {
		_, body := harness.Get(t, inst.URL+"/")
		require.Equal(t, "v2 (edited)", string(body), "answer %d after the reload", i+1)
	}
}

// executableApp runs sys.executable as a program would, and tells what it
// and the child said.
const executableApp = `"""Route: any path. Runs [sys.executable, "-c", ...] and
sys._base_executable; answers JSON of what they printed and where the app
runs."""
import json
import subprocess
import sys

CHILD = "import sys; print(1); print(sys.prefix); print('%d.%d' % sys.version_info[:2])"


def run(program):
    try:
        done = subprocess.run([program, "-c", CHILD], capture_output=True, text=True, timeout=20)
    except OSError as exc:
        return {"code": -1, "out": "", "err": repr(exc)}
    return {"code": done.returncode, "out": done.stdout, "err": done.stderr[-400:]}


def application(environ, start_response):
    body = json.dumps({
        "executable": sys.executable,
        "base": sys._base_executable,
        "prefix": sys.prefix,
        "version": "%d.%d" % sys.version_info[:2],
        "child": run(sys.executable),
        "base_child": run(sys._base_executable),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
`

// executableReport is executableApp's answer.
type executableReport struct {
	Executable, Base, Prefix, Version string
	Child                             childRun `json:"child"`
	BaseChild                         childRun `json:"base_child"`
}

// childRun is what one program executableApp ran printed.
type childRun struct {
	Code     int
	Out, Err string
}

// TestSysExecutableIsPython: sys.executable in a worker is the Python
// interpreter gowsgi embeds, or the virtualenv's under --home, as under
// Gunicorn, so subprocess.run([sys.executable, "-c", ...]) runs Python with
// the app's packages; before, it started gowsgi, which wanted an app.
func TestSysExecutableIsPython(t *testing.T) {
	t.Parallel()
	venv := makeVenv(t, pythonOf(t, embeddedVersion(t)))
	for _, tc := range []struct {
		name string
		home string
		args []string
		cgi  bool
	}{
		{"forked by the zygote", "", nil, false},
		{"--lazy-apps", "", []string{"--lazy-apps"}, false},
		{"CGI", "", nil, true},
		{"--home virtualenv", venv, []string{"--home", venv}, false},
		{"--lazy-apps --virtualenv", venv, []string{"--lazy-apps", "--virtualenv", venv}, false},
		{"CGI --home virtualenv", venv, []string{"--home", venv}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			app := harness.WriteFile(t, dir, "app.py", executableApp)
			var body []byte
			if tc.cgi {
				argv := append(append([]string{harness.GowsgiBin}, tc.args...), app)
				out := runCGI(t, dir, argv, cgiRequest{method: "GET", pathInfo: "/"})
				require.Equal(t, "200 OK", out.status, out.stderr)
				body = out.body
			} else {
				inst := harness.StartIn(t, dir, append([]string{"--wsgi-file", "app.py"}, tc.args...)...)
				_, body = harness.Get(t, inst.URL+"/")
			}
			var got executableReport
			require.NoError(t, json.Unmarshal(body, &got), "%s", body)
			want := got.Base
			if tc.home != "" {
				want = filepath.Join(tc.home, "bin", "python")
			}
			assert.Equal(t, want, got.Executable)
			assert.Regexp(t, `/python`+regexp.QuoteMeta(got.Version)+`$`, got.Base, "sys._base_executable")
			childSays := fmt.Sprintf("1\n%s\n%s\n", got.Prefix, got.Version)
			assert.Equal(t, childRun{Out: childSays}, got.Child, "sys.executable: the app's own Python, sys.prefix and all")
			assert.Equal(t, 0, got.BaseChild.Code, "sys._base_executable: %+v", got.BaseChild)
			assert.True(t, strings.HasPrefix(got.BaseChild.Out, "1\n"), "sys._base_executable: %+v", got.BaseChild)
		})
	}
}

// TestMissingAppFileIsOneLine: a --wsgi-file or --mount file that is not
// there stops gowsgi with exit status 2 and one line naming the option, the
// path and what to do, without importlib's traceback; a file that is there
// and raises keeps its traceback.
func TestMissingAppFileIsOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.py")
	raising := harness.WriteFile(t, dir, "raising.py", "1 / 0\n")
	oneLine := func(option string) string {
		return "gowsgi: " + option + ": there is no file " + missing + "; pass the path of the file that defines the app\n"
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // the whole output, when it is one line
	}{
		{"--wsgi-file", []string{"--wsgi-file", missing}, oneLine("--wsgi-file " + missing)},
		{"--wsgi-file relative to --chdir", []string{"--chdir", dir, "--wsgi-file", "missing.py"}, oneLine("--wsgi-file missing.py")},
		{"--mount", []string{"--mount", "/x=" + missing}, oneLine("--mount /x=" + missing)},
		{"a folder", []string{"--wsgi-file", dir},
			"gowsgi: --wsgi-file " + dir + ": " + dir + " is a folder; pass the path of the file in it that defines the app\n"},
		{"--lazy-apps", []string{"--lazy-apps", "--wsgi-file", missing}, ""},
		{"a file that raises", []string{"--wsgi-file", raising}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out := harness.RunToExit(t, tc.args...)
			assert.Equal(t, 2, code, out)
			switch {
			case tc.want != "":
				assert.Equal(t, tc.want, out)
			case tc.name == "--lazy-apps":
				// Each worker imports the app: the master's own lines, then
				// the same one line at the end.
				assert.NotContains(t, out, "Traceback", out)
				assert.True(t, strings.HasSuffix(out, oneLine("--wsgi-file "+missing)), out)
			default:
				assert.Contains(t, out, "Traceback (most recent call last)", out)
				assert.Contains(t, out, "ZeroDivisionError", out)
			}
		})
	}
}

// repoRoot returns the repository's top folder, where the Makefile is.
func repoRoot(t *testing.T) string {
	t.Helper()
	return filepath.Dir(harness.ExamplesDir(t))
}

// runMake runs make with args in dir and returns what it printed; env is
// added to the test's environment, less the make variables a `make test`
// that runs this test would pass down.
func runMake(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "make %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// installsPackage reports whether a make dry run's output installs the
// Debian package deb: it is a word of a package list there.
func installsPackage(out, deb string) bool {
	return regexp.MustCompile(`for p in ([^;]*\s)?` + regexp.QuoteMeta(deb) + `[\s;]`).MatchString(out)
}

// TestMakeInstallsWhatEachGoalNeeds: `make` installs only what the build
// needs, so building on a server starts no web server on port 80; `make
// test` installs everything the tests need, after apt-get update, as CI on
// a fresh machine needs.
func TestMakeInstallsWhatEachGoalNeeds(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	buildDebs := []string{"gcc", "pkg-config", "libpython3-dev", "python3"}
	testDebs := []string{"nginx", "lighttpd", "apache2", "libapache2-mod-proxy-uwsgi", "libapache2-mod-fcgid",
		"wrk", "python3-flask", "python3-django", "python3-bottle", "python3-falcon", "python3-werkzeug", "python3-venv", "iproute2"}
	build := runMake(t, root, nil, "-n")
	for _, deb := range buildDebs {
		assert.True(t, installsPackage(build, deb), "make installs %s", deb)
	}
	for _, deb := range testDebs {
		assert.False(t, installsPackage(build, deb), "make installs %s, which only the tests need", deb)
	}
	test := runMake(t, root, nil, "-n", "test")
	for _, deb := range append(buildDebs, testDebs...) {
		assert.True(t, installsPackage(test, deb), "make test installs %s", deb)
	}
	assert.Contains(t, test, "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install")
}

// TestMakeInstall: `make install` copies bin/gowsgi to $(PREFIX)/bin,
// /usr/local by default, under $(DESTDIR) when set. It runs on a copy of
// the Makefile with a binary in place, so the test builds nothing.
func TestMakeInstall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"Makefile", "go.mod"} {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), name))
		require.NoError(t, err)
		harness.WriteFile(t, dir, name, string(data))
	}
	harness.WriteFile(t, filepath.Join(dir, "bin"), "gowsgi", "#!/bin/sh\necho built\n")
	for _, tc := range []struct {
		args []string
		want string // below the staging folder
	}{
		{nil, "usr/local/bin/gowsgi"},
		{[]string{"PREFIX=/opt/gowsgi"}, "opt/gowsgi/bin/gowsgi"},
	} {
		stage := t.TempDir()
		// -o build: bin/gowsgi is taken as built.
		runMake(t, dir, nil, append([]string{"-o", "build", "install", "DESTDIR=" + stage}, tc.args...)...)
		installed := filepath.Join(stage, tc.want)
		info, err := os.Stat(installed)
		if assert.NoError(t, err, "make install %s", tc.args) {
			assert.Equal(t, os.FileMode(0o755), info.Mode().Perm())
			out, err := exec.Command(installed).Output()
			assert.NoError(t, err)
			assert.Equal(t, "built\n", string(out))
		}
	}
}

// TestBuildEmbedsDebiansPython: what README says: the build embeds
// /usr/bin/python3 even when another python3 comes first on PATH, and
// PYTHON chooses another.
func TestBuildEmbedsDebiansPython(t *testing.T) {
	t.Parallel()
	libpc, err := exec.Command("/usr/bin/python3", "-c", `import sysconfig; print(sysconfig.get_config_var("LIBPC"))`).Output()
	require.NoError(t, err)
	// A python3 first on PATH that runs ("-c ''") and answers every
	// question with its own folder, as a pyenv or virtualenv one would.
	other := t.TempDir()
	harness.WriteFile(t, other, "python3", "#!/bin/sh\n[ -z \"$2\" ] || echo "+other+"/lib/pkgconfig\n")
	require.NoError(t, os.Chmod(filepath.Join(other, "python3"), 0o755))
	path := "PATH=" + other + ":" + os.Getenv("PATH")

	build := runMake(t, repoRoot(t), []string{path}, "-n", "build")
	assert.Contains(t, build, "PKG_CONFIG_PATH="+strings.TrimSpace(string(libpc))+" ")
	assert.NotContains(t, build, other)
	chosen := runMake(t, repoRoot(t), []string{path}, "-n", "build", "PYTHON=python3")
	assert.Contains(t, chosen, "PKG_CONFIG_PATH="+other+"/lib/pkgconfig ")
}

// TestGoVersionAgrees: go.mod's go line is the oldest Go the dependencies
// allow (their own go lines), and README and make's message name it.
func TestGoVersionAgrees(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	line := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(goMod)
	require.NotNil(t, line, "go.mod has no go line")
	version := string(line[1])

	list := exec.Command("go", "list", "-m", "-f", "{{if not .Main}}{{.GoVersion}}{{end}}", "all")
	list.Dir = root
	out, err := list.Output()
	require.NoError(t, err, "go list -m all")
	newest := "0"
	for _, v := range strings.Fields(string(out)) {
		if compareVersions(v, newest) > 0 {
			newest = v
		}
	}
	assert.Equal(t, 0, compareVersions(version, newest), "go.mod says go %s; the dependencies need go %s", version, newest)

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	assert.Contains(t, string(readme), "with Go "+version+" or newer")
	assert.Contains(t, runMake(t, root, nil, "-n", "deps"), "gowsgi needs Go "+version+" or newer")
}

// compareVersions compares dotted Go versions ("1.26", "1.26.0") as
// numbers, a missing part counting as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
