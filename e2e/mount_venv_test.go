// End-to-end tests of several apps in one server (--mount, with and
// without --manage-script-name) and of a virtualenv (--home and its
// aliases), from the command line and from ini files.
package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// mountCase is one request and the "NAME|SCRIPT_NAME|PATH_INFO" the app
// that serves it answers (testdata/mounts.py).
type mountCase struct {
	path, want string
}

// assertMounts fetches every case's path over HTTP.
func assertMounts(t *testing.T, inst *harness.Instance, cases []mountCase) {
	t.Helper()
	for _, c := range cases {
		resp, body := harness.Get(t, inst.URL+c.path)
		assert.Equal(t, 200, resp.StatusCode, c.path)
		assert.Equal(t, c.want, string(body), c.path)
	}
}

// mountArgs mounts mounts.py's a at /a and mount_file.py, as a file, at
// /b/ (the trailing slash is ignored, as uWSGI does).
func mountArgs(t *testing.T) []string {
	return []string{"--pythonpath", filepath.Dir(harness.TestdataPath(t, "mounts.py")),
		"--mount", "/a=mounts:a", "--mount", "/b/=" + harness.TestdataPath(t, "mount_file.py")}
}

func TestMountManageScriptName(t *testing.T) {
	inst := harness.Start(t, append(mountArgs(t), "--module", "mounts", "--manage-script-name", "-p", "2")...)
	assertMounts(t, inst, []mountCase{
		{"/", "default||/"},
		{"/a", "a|/a|"},
		{"/a/", "a|/a|/"},
		{"/a/post/1", "a|/a|/post/1"},
		{"/ab/c", "default||/ab/c"}, // /a takes /a and /a/..., never /ab
		{"/b/c/d", "file|/b|/c/d"},
		{"/c", "default||/c"},
	})
}

// Without --manage-script-name the web server's SCRIPT_NAME alone chooses
// the app, as in uWSGI: over HTTP it is empty, so the default app serves.
func TestMountBySCRIPTNAME(t *testing.T) {
	inst := harness.Start(t, append(mountArgs(t), "--module", "mounts", "--uwsgi-socket", "127.0.0.1:0")...)
	assertMounts(t, inst, []mountCase{{"/a/post/1", "default||/a/post/1"}, {"/b/c", "default||/b/c"}})

	addr := bannerSockets(t, inst.Stderr())["uwsgi"]
	require.NotEmpty(t, addr, "banner: %s", inst.Stderr())
	tests := []struct{ script, path, want string }{
		{"/a", "/post/1", "a|/a|/post/1"},
		{"/a/", "/post/1", "a|/a/|/post/1"},
		{"/b", "/c", "file|/b|/c"},
		{"", "/a/post/1", "default||/a/post/1"},
		{"/elsewhere", "/x", "default|/elsewhere|/x"},
	}
	for _, tt := range tests {
		vars := []string{"REQUEST_METHOD", "GET", "SCRIPT_NAME", tt.script, "PATH_INFO", tt.path,
			"REQUEST_URI", tt.script + tt.path, "QUERY_STRING", "", "SERVER_NAME", "localhost", "SERVER_PORT", "80",
			"SERVER_PROTOCOL", "HTTP/1.1"}
		resp, body := uwsgiRoundTrip(t, addr, vars, "")
		assert.Equal(t, 200, resp.StatusCode, tt.script+tt.path)
		assert.Equal(t, tt.want, string(body), tt.script+tt.path)
	}
}

// With mounts only, a request no mount takes gets 404; a root mount is the
// default app.
func TestMountWithoutDefault(t *testing.T) {
	inst := harness.Start(t, append(mountArgs(t), "--manage-script-name")...)
	assertMounts(t, inst, []mountCase{{"/a/x", "a|/a|/x"}, {"/b", "file|/b|"}})
	resp, body := harness.Get(t, inst.URL+"/c")
	assert.Equal(t, 404, resp.StatusCode)
	assert.Equal(t, "Not Found", string(body))

	root := harness.Start(t, append(mountArgs(t), "--manage-script-name", "--mount", "/=mounts:b")...)
	assertMounts(t, root, []mountCase{{"/a/x", "a|/a|/x"}, {"/c", "b||/c"}})
}

func TestMountFromINI(t *testing.T) {
	dir := t.TempDir()
	ini := harness.WriteFile(t, dir, "app.ini", fmt.Sprintf(`[uwsgi]
http-socket = 127.0.0.1:0
pythonpath = %s
module = mounts
mount = /a=mounts:a
mount = /b=mounts:b
manage-script-name = true
`, filepath.Dir(harness.TestdataPath(t, "mounts.py"))))
	inst := harness.LaunchConfigured(t, dir, nil, "--ini", ini)
	assertMounts(t, inst, []mountCase{{"/a/x", "a|/a|/x"}, {"/b/y", "b|/b|/y"}, {"/z", "default||/z"}})
}

func TestMountRefused(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--mount", "a=mounts:a"}, "gowsgi: --mount a=mounts:a: the mount point does not start with /\n"},
		{[]string{"--mount", "/a"}, "gowsgi: --mount /a: not MOUNTPOINT=APP\n"},
		{[]string{"--mount", "/a=x", "--mount", "/a/=y"}, "gowsgi: --mount /a/=y: x is mounted there already\n"},
		{[]string{"--module", "x", "--mount", "/=y"}, "gowsgi: --mount /=y: the --module, --wsgi-file or --paste app is mounted there already\n"},
	}
	for _, tt := range tests {
		code, out := harness.RunToExit(t, tt.args...)
		assert.Equal(t, 2, code, tt.args)
		assert.Equal(t, tt.want, out, tt.args)
	}
}

// venvApp imports a package only the virtualenv has and reports where
// Python thinks it runs.
const venvApp = `import sys
import gowsgi_venv_probe


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s|%s" % (gowsgi_venv_probe.WHERE, sys.prefix)).encode()]
`

// embeddedVersion returns the major.minor of the Python the binary embeds,
// from the error a --home of a made-up version gets: the binary under test
// may be built against any Python.
func embeddedVersion(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	harness.WriteFile(t, dir, "pyvenv.cfg", "version = 0.0.0\n")
	code, out := harness.RunToExit(t, "--module", "app", "--home", dir)
	require.Equal(t, 2, code, out)
	m := regexp.MustCompile(`gowsgi embeds Python (3\.\d+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	return m[1]
}

// pythonOf returns an interpreter of version (major.minor): Debian's, else
// one under pyenv's versions; the test is skipped when there is none.
func pythonOf(t *testing.T, version string) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if root, err := exec.Command("pyenv", "root").Output(); err == nil {
		found, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(root)), "versions", version+".*", "bin", "python3"))
		candidates = append(candidates, found...)
	}
	for _, python := range candidates {
		out, err := exec.Command(python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
		if err == nil && strings.TrimSpace(string(out)) == version {
			return python
		}
	}
	t.Skipf("no Python %s to make a virtualenv with", version)
	return ""
}

// makeVenv creates a virtualenv with python in a fresh directory and puts a
// one-module package in its site-packages.
func makeVenv(t *testing.T, python string) string {
	t.Helper()
	venv := filepath.Join(t.TempDir(), "venv")
	out, err := exec.Command(python, "-m", "venv", "--without-pip", venv).CombinedOutput()
	require.NoError(t, err, "%s -m venv: %s", python, out)
	site, err := filepath.Glob(filepath.Join(venv, "lib", "python3.*", "site-packages"))
	require.NoError(t, err)
	require.Len(t, site, 1)
	harness.WriteFile(t, filepath.Join(site[0], "gowsgi_venv_probe"), "__init__.py", `WHERE = "venv"`+"\n")
	return venv
}

func TestVirtualenv(t *testing.T) {
	venv := makeVenv(t, pythonOf(t, embeddedVersion(t)))
	tests := []struct {
		name string
		run  func(dir string) *harness.Instance
	}{
		{"-H", func(dir string) *harness.Instance { return harness.StartIn(t, dir, "--module", "app", "-H", venv) }},
		{"--virtualenv relative to --chdir", func(dir string) *harness.Instance {
			return harness.Start(t, "--chdir", dir, "--module", "app", "--virtualenv", filepath.Join("..", filepath.Base(filepath.Dir(venv)), "venv"))
		}},
		{"venv in an ini file", func(dir string) *harness.Instance {
			ini := harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nhttp-socket = 127.0.0.1:0\nmodule = app\nvenv = "+venv+"\n")
			return harness.LaunchConfigured(t, dir, nil, ini)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(filepath.Dir(filepath.Dir(venv)), strings.ReplaceAll(tt.name, " ", "_"))
			harness.WriteFile(t, dir, "app.py", venvApp)
			inst := tt.run(dir)
			resp, body := harness.Get(t, inst.URL+"/")
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "venv|"+venv, string(body), "the package from the venv's site-packages, and sys.prefix")
		})
	}
}

func TestVirtualenvOfAnotherPython(t *testing.T) {
	embedded := embeddedVersion(t)
	other := "3.12"
	if embedded == other {
		other = "3.11"
	}
	venv := makeVenv(t, pythonOf(t, other))
	code, out := harness.RunToExit(t, "--module", "app", "--pyhome", venv)
	assert.Equal(t, 2, code)
	assert.Equal(t, fmt.Sprintf("gowsgi: --home %s: the virtualenv is of Python %s, but gowsgi embeds Python %s; recreate it with python%s -m venv\n",
		venv, other, embedded, embedded), out)
}
