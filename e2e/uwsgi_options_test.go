// uWSGI's configuration through the real binary: gowsgi started from ini
// files and UWSGI_* variables, warning about (or with --strict refusing)
// options it does not know, the options accepted with one warning line
// (cheaper's finer knobs, memory-report = 2), and the shipped
// examples/uwsgi.ini.
package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// assertHello checks that the hello world example answers at inst.
func assertHello(t *testing.T, inst *harness.Instance) {
	t.Helper()
	resp, body := harness.Get(t, inst.URL+"/")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "Hello World!\n", string(body))
}

func TestConfigINIServes(t *testing.T) {
	dir := t.TempDir()
	app, err := os.ReadFile(filepath.Join(harness.ExamplesDir(t), "hello_world_app.py"))
	require.NoError(t, err)
	harness.WriteFile(t, filepath.Join(dir, "app"), "hello_world_app.py", string(app))
	// chdir moves master and workers away from where the relative "app.ini"
	// was given; the workers must still find it.
	harness.WriteFile(t, dir, "app.ini", `[uwsgi]
; everything from the ini: socket, path, module, processes
http-socket = 127.0.0.1:0
chdir = %dapp
pythonpath = %dapp
module = hello_world_app
processes = 2
`)
	inst := harness.LaunchConfigured(t, dir, nil, "app.ini")
	assert.Contains(t, inst.Stderr(), "hello_world_app:application · 2 workers · http://127.0.0.1:")
	assertHello(t, inst)
	assert.NotContains(t, inst.Stderr(), "warning")
}

func TestConfigEnvironmentThenCommandLine(t *testing.T) {
	env := []string{"UWSGI_PROCESSES=3", "UWSGI_MODULE=hello_world_app", "UWSGI_PYTHONPATH=" + harness.ExamplesDir(t)}
	inst := harness.LaunchConfigured(t, t.TempDir(), env, "--http-socket", "127.0.0.1:0", "-p", "2")
	assert.Contains(t, inst.Stderr(), "hello_world_app:application · 2 workers ·")
	assertHello(t, inst)
}

func TestConfigUnknownKeysWarnOnce(t *testing.T) {
	dir := t.TempDir()
	harness.WriteFile(t, dir, "app.ini", `[uwsgi]
project = hello_world_app
module = %(project)
pythonpath = `+harness.ExamplesDir(t)+`
cpu-affinity = 1
foo-bar = 1
http-socket = 127.0.0.1:0
processes = 2
`)
	inst := harness.LaunchConfigured(t, dir, nil, "--ini", filepath.Join(dir, "app.ini"))
	assertHello(t, inst)
	var warnings []string
	for _, line := range strings.Split(inst.Stderr(), "\n") {
		if strings.Contains(line, "warning") {
			warnings = append(warnings, line)
		}
	}
	require.Len(t, warnings, 2, "stderr:\n%s", inst.Stderr())
	assert.Equal(t, "gowsgi: warning: ignoring uWSGI options gowsgi does not implement: cpu-affinity", warnings[0])
	assert.Equal(t, "gowsgi: warning: ignoring options gowsgi does not know (--strict refuses them): foo-bar", warnings[1])
	assert.NotContains(t, inst.Stderr(), "project")
}

// On the command line, an option neither gowsgi nor uWSGI knows stops
// the start, as uWSGI's getopt does; a uWSGI option gowsgi does not
// implement is warned about, as it always is.
func TestConfigStrictRefusesUnknown(t *testing.T) {
	code, out := harness.RunToExit(t, "-w", "hello_world_app", "--strict", "--procname-master", "main", "--foo")
	assert.Equal(t, 2, code)
	assert.Equal(t, "gowsgi: unrecognized option --foo (see gowsgi --help)\n", out)
}

// productionINI is the shape of a widely copied production config: strict
// mode on, most options ones gowsgi implements, one it does not (signal
// trapping in workers).
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
	harness.WriteFile(t, dir, "app.ini", productionINI+"module = hello_world_app\npythonpath = "+harness.ExamplesDir(t)+"\nhttp-socket = 127.0.0.1:0\n")
	inst := harness.LaunchConfigured(t, dir, nil, "app.ini")
	assertHello(t, inst)
	assert.Contains(t, inst.Stderr(),
		"gowsgi: warning: ignoring uWSGI options gowsgi does not implement: py-call-osafterfork\n")
	assert.Contains(t, inst.Stderr(), "1 worker (cheaper busyness: 1 to 2)")
	assert.NotContains(t, inst.Stderr(), "warning: cheaper")
}

// A key uWSGI does not know either is what strict mode is for: a common
// misspelling of py-call-osafterfork stops uWSGI's strict mode too.
func TestConfigStrictRefusesAMisspelledINIKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := harness.WriteFile(t, dir, "app.ini", productionINI+"py-callos-afterfork = true\nmodule = hello_world_app\npythonpath = "+harness.ExamplesDir(t)+"\n")
	code, out := harness.RunToExit(t, ini)
	assert.Equal(t, 2, code)
	assert.Equal(t, "gowsgi: unknown options (--strict): py-callos-afterfork\n", out)
}

func TestConfigDjangoExampleINI(t *testing.T) {
	// The ini as shipped, run from a copy of its folder: its socket is
	// created next to it (%d), never inside the repository.
	appDir := t.TempDir()
	ini := harness.CopyExample(t, appDir, "uwsgi.ini")
	harness.CopyExample(t, appDir, "django_app.py")
	sock := filepath.Join(appDir, "django_app.sock")
	inst := harness.LaunchConfigured(t, t.TempDir(), nil, ini, "--http-socket", "127.0.0.1:0")
	resp, body := harness.Get(t, inst.URL+"/greet/world")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "Hello, world!", string(body))
	assert.Contains(t, inst.Stderr(), "django_app:application · 2 workers × 2 threads")
	assert.NotContains(t, inst.Stderr(), "warning")

	info, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSocket|0o664, info.Mode()&(fs.ModeSocket|fs.ModePerm))
	inst.Signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, inst.Wait(t, harness.StopTimeout))
	assert.NoFileExists(t, sock, "vacuum removes the socket")
}

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
		return []string{harness.WriteFile(t, dir, "app.ini", ini.String())}
	}},
}

// probeFile is the test app every test here serves.
func probeFile(t *testing.T) [2]string {
	return [2]string{"wsgi-file", harness.TestdataPath(t, "probe.py")}
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
		cheaper = "gowsgi's cheaper takes --cheaper, --cheaper-initial, --cheaper-step, --cheaper-overload, --cheaper-algo spare or busyness and --cheaper-busyness-max/-min; the other knobs keep their defaults"
		memory  = "gowsgi reports each worker's RSS and address space; USS and PSS (memory-report = 2) are not reported"
	)
	tests := []struct {
		name  string
		pairs [][2]string
		want  []warned
	}{
		{name: "cheaper knobs", pairs: [][2]string{{"cheaper-busyness-multiplier", "10"}, {"cheaper-busyness-penalty", "2"}, {"cheaper-rss-limit-soft", "1000000"}},
			want: []warned{{"cheaper-busyness-multiplier, cheaper-busyness-penalty, cheaper-rss-limit-soft", cheaper}}},
		{name: "memory-report extras", pairs: [][2]string{{"memory-report", "2"}},
			want: []warned{{"memory-report", memory}}},
		{name: "every kind", pairs: [][2]string{{"cheaper-idle", "60"}, {"memory-report", "2"}},
			want: []warned{{"cheaper-idle", cheaper}, {"memory-report", memory}}},
	}
	for _, src := range restSources {
		for _, tt := range tests {
			t.Run(src.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				args := append(src.args(t, dir, append([][2]string{probeFile(t)}, tt.pairs...)), "--processes", "2")
				inst := harness.Start(t, args...)
				status, body := harness.GetText(t, inst.URL+"/hello")
				assert.Equal(t, 200, status, body)
				// Printed once, by the master: workers never parse
				// options.
				lines := warningLines(inst.Stderr())
				require.Len(t, lines, len(tt.want), "stderr:\n%s", inst.Stderr())
				for i, want := range tt.want {
					got := parseWarning(lines[i])
					assert.Equal(t, want.names, got.names)
					assert.True(t, strings.HasPrefix(got.text, want.text), "%q", got.text)
				}
				assert.Contains(t, inst.Stderr(), "2 workers", "the cheaper knobs alone leave the worker count alone")
			})
		}
	}
}
