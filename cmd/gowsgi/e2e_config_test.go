// End-to-end tests of uWSGI's configuration sources: gowsgi started from ini
// files and UWSGI_* variables, warning about (or with --strict refusing)
// options it does not know, and the shipped examples/uwsgi.ini.
package main_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// launchConfigured starts gowsgi in dir with exactly args (no socket added,
// so one may come from an ini file) and extra environment variables, and
// waits for its banner.
func launchConfigured(t *testing.T, dir string, env []string, args ...string) *instance {
	t.Helper()
	inst := &instance{Dir: dir, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	inst.cmd = exec.Command(gowsgiBin, args...)
	inst.cmd.Dir = dir
	inst.cmd.Env = append(os.Environ(), env...)
	inst.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inst.cmd.Stdout = inst.stderr
	inst.cmd.Stderr = inst.stderr
	require.NoError(t, inst.cmd.Start(), "starting %s", gowsgiBin)
	go func() {
		inst.err = inst.cmd.Wait()
		close(inst.exited)
	}()
	t.Cleanup(func() { inst.stop(t) })
	inst.waitBanner(t)
	return inst
}

// writeFile writes content to dir/name, creating dir.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// assertHello checks that the hello world example answers at inst.
func assertHello(t *testing.T, inst *instance) {
	t.Helper()
	resp, body := get(t, inst.URL+"/")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "Hello World!\n", string(body))
}

func TestConfigINIServes(t *testing.T) {
	dir := t.TempDir()
	app, err := os.ReadFile(filepath.Join(examplesDir(t), "hello_world_app.py"))
	require.NoError(t, err)
	writeFile(t, filepath.Join(dir, "app"), "hello_world_app.py", string(app))
	// chdir moves master and workers away from where the relative "app.ini"
	// was given; the workers must still find it.
	writeFile(t, dir, "app.ini", `[uwsgi]
; everything from the ini: socket, path, module, processes
http-socket = 127.0.0.1:0
chdir = %dapp
pythonpath = %dapp
module = hello_world_app
processes = 2
`)
	inst := launchConfigured(t, dir, nil, "app.ini")
	assert.Contains(t, inst.Stderr(), "hello_world_app:application · 2 workers · http://127.0.0.1:")
	assertHello(t, inst)
	assert.NotContains(t, inst.Stderr(), "warning")
}

func TestConfigEnvironmentThenCommandLine(t *testing.T) {
	env := []string{"UWSGI_PROCESSES=3", "UWSGI_MODULE=hello_world_app", "UWSGI_PYTHONPATH=" + examplesDir(t)}
	inst := launchConfigured(t, t.TempDir(), env, "--http-socket", "127.0.0.1:0", "-p", "2")
	assert.Contains(t, inst.Stderr(), "hello_world_app:application · 2 workers ·")
	assertHello(t, inst)
}

func TestConfigUnknownKeysWarnOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "app.ini", `[uwsgi]
project = hello_world_app
module = %(project)
pythonpath = `+examplesDir(t)+`
spooler-processes = 2
foo-bar = 1
http-socket = 127.0.0.1:0
processes = 2
`)
	inst := launchConfigured(t, dir, nil, "--ini", filepath.Join(dir, "app.ini"))
	assertHello(t, inst)
	var warnings []string
	for _, line := range strings.Split(inst.Stderr(), "\n") {
		if strings.Contains(line, "warning") {
			warnings = append(warnings, line)
		}
	}
	require.Len(t, warnings, 2, "stderr:\n%s", inst.Stderr())
	assert.Equal(t, "gowsgi: warning: ignoring uWSGI options gowsgi does not implement: spooler-processes", warnings[0])
	assert.Equal(t, "gowsgi: warning: ignoring options gowsgi does not know (--strict refuses them): foo-bar", warnings[1])
	assert.NotContains(t, inst.Stderr(), "project")
}

// --strict refuses what uWSGI's refuses, a key neither knows; a uWSGI
// option gowsgi does not implement is warned about, as it always is.
func TestConfigStrictRefusesUnknown(t *testing.T) {
	code, out := runToExit(t, "-w", "hello_world_app", "--strict", "--spooler-processes", "2", "--foo")
	assert.Equal(t, 2, code)
	assert.Equal(t, "gowsgi: unknown options (--strict): --foo\n", out)
}

// productionINI is the shape of a widely copied production config: strict
// mode on, most options ones gowsgi implements, some it does not (process
// names, worker scaling, signal trapping in workers).
const productionINI = `[uwsgi]
strict = true
master = true
enable-threads = true
vacuum = true
single-interpreter = true
die-on-term = true
need-app = true
disable-logging = true
log-4xx = true
log-5xx = true
harakiri = 60
py-call-osafterfork = true
max-requests = 1000
max-worker-lifetime = 3600
reload-on-rss = 2048
worker-reload-mercy = 60
cheaper-algo = busyness
processes = 2
cheaper = 1
auto-procname = true
procname-prefix = "api "
no-orphans = true
`

func TestConfigStrictStartsAProductionINI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "app.ini", productionINI+"module = hello_world_app\npythonpath = "+examplesDir(t)+"\nhttp-socket = 127.0.0.1:0\n")
	inst := launchConfigured(t, dir, nil, "app.ini")
	assertHello(t, inst)
	assert.Contains(t, inst.Stderr(),
		"gowsgi: warning: ignoring uWSGI options gowsgi does not implement: py-call-osafterfork, procname-prefix\n")
	assert.Contains(t, inst.Stderr(), "gowsgi: warning: cheaper-algo, cheaper: gowsgi runs the fixed number of workers")
}

// A key uWSGI does not know either is what strict mode is for: a common
// misspelling of py-call-osafterfork stops uWSGI's strict mode too.
func TestConfigStrictRefusesAMisspelledINIKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := writeFile(t, dir, "app.ini", productionINI+"py-callos-afterfork = true\nmodule = hello_world_app\npythonpath = "+examplesDir(t)+"\n")
	code, out := runToExit(t, ini)
	assert.Equal(t, 2, code)
	assert.Equal(t, "gowsgi: unknown options (--strict): py-callos-afterfork\n", out)
}

func TestConfigDjangoExampleINI(t *testing.T) {
	// The ini as shipped, run from a copy of its folder: its socket is
	// created next to it (%d), never inside the repository.
	appDir := t.TempDir()
	ini := copyExample(t, appDir, "uwsgi.ini")
	copyExample(t, appDir, "django_app.py")
	sock := filepath.Join(appDir, "django_app.sock")
	inst := launchConfigured(t, t.TempDir(), nil, ini, "--http-socket", "127.0.0.1:0")
	resp, body := get(t, inst.URL+"/greet/world")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "Hello, world!", string(body))
	assert.Contains(t, inst.Stderr(), "django_app:application · 2 workers × 2 threads")
	assert.NotContains(t, inst.Stderr(), "warning")

	info, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSocket|0o664, info.Mode()&(fs.ModeSocket|fs.ModePerm))
	inst.Signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, inst.Wait(t, stopTimeout))
	assert.NoFileExists(t, sock, "vacuum removes the socket")
}
