// uWSGI ini files of every kind issue 14 found refused or misread, run
// through the real binary and, where Debian's uWSGI is installed, through
// uWSGI too with the same file: the listener answers HTTP on the file's
// address, with the same app, worker count and threads. The files are in
// testdata/ini; each takes its address from $(ADDR).
package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// iniAnswer is what testdata/ini/ini_app.py answers.
type iniAnswer struct {
	App     string `json:"app"`
	Numproc int    `json:"numproc"`
	Cores   int    `json:"cores"`
	Env     string `json:"env"`
}

// iniEnv is the environment both servers read the files with.
var iniEnv = []string{"INI_STAGE=prod", "PYTHONDONTWRITEBYTECODE=1"}

func TestUWSGIINIFiles(t *testing.T) {
	tests := []struct {
		file string
		want iniAnswer
	}{
		{"numbers.ini", iniAnswer{App: "module", Numproc: 2, Cores: 2}},
		{"sections.ini", iniAnswer{App: "module", Numproc: 3, Cores: 1}},
		{"logic.ini", iniAnswer{App: "module", Numproc: 3, Cores: 2, Env: "hello"}},
		{"magic.ini", iniAnswer{App: "module", Numproc: 3, Cores: 1, Env: "hi from sh"}},
		{"both.ini", iniAnswer{App: "module", Numproc: 1, Cores: 1}},
		{"factory.ini", iniAnswer{App: "factory", Numproc: 2, Cores: 1}},
		{"protocol.ini", iniAnswer{App: "module", Numproc: 1, Cores: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ini := harness.TestdataPath(t, filepath.Join("ini", tt.file))
			addr := freeAddr(t)
			env := append([]string{"ADDR=" + addr}, iniEnv...)
			inst := harness.LaunchConfigured(t, t.TempDir(), env, ini)
			assert.Equal(t, tt.want, getINIAnswer(t, "http://"+addr+"/"), "gowsgi; stderr:\n%s", inst.Stderr())
			assert.NotContains(t, inst.Stderr(), "ignoring", "no option of the file is ignored")
			inst.Stop(t)
		})
	}
	bin := requireUWSGI(t)
	for _, tt := range tests {
		t.Run("uwsgi/"+tt.file, func(t *testing.T) {
			ini := harness.TestdataPath(t, filepath.Join("ini", tt.file))
			addr := freeAddr(t)
			for _, kv := range append([]string{"ADDR=" + addr}, iniEnv...) {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			body := runUWSGI(t, bin, t.TempDir(), addr, "/", "--plugin", "python3,http", "--ini", ini)
			var got iniAnswer
			require.NoError(t, json.Unmarshal(body, &got), "%s", body)
			assert.Equal(t, tt.want, got, "uWSGI")
		})
	}
}

// getINIAnswer GETs url and decodes ini_app.py's answer.
func getINIAnswer(t *testing.T, url string) iniAnswer {
	t.Helper()
	resp, body := harness.Get(t, url)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var got iniAnswer
	require.NoError(t, json.Unmarshal(body, &got), "%s", body)
	return got
}

// TestUWSGIINIWarnings: what gowsgi says about the files it starts.
func TestUWSGIINIWarnings(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "both.ini"))
	addr := freeAddr(t)
	inst := harness.LaunchConfigured(t, t.TempDir(), []string{"ADDR=" + addr}, ini)
	assert.Contains(t, inst.Stderr(), "gowsgi: warning: wsgi-file: --module and --wsgi-file are both given; as uWSGI does, gowsgi serves the module")
}

// TestCommandLineRefusals: unknown options, typos and Gunicorn's spelling
// stop the start with one line and exit status 2.
func TestCommandLineRefusals(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-w", "hello_world_app", "--procesess", "2"}, "gowsgi: unrecognized option --procesess (see gowsgi --help)\n"},
		{[]string{"app:app", "-w", "4", "-b", ":8000"}, `gowsgi: unexpected argument "app:app": pass --module app:app; this looks like a Gunicorn command line: see "Coming from Gunicorn" in gowsgi's README (-w N is -p N, -b/--bind ADDR is --http-socket ADDR, --timeout is --harakiri)` + "\n"},
		{[]string{"--module", "app", "--bind", ":8000"}, "gowsgi: --bind is Gunicorn's option; gowsgi takes --http-socket ADDR; this looks like a Gunicorn command line: see \"Coming from Gunicorn\" in gowsgi's README (-w N is -p N, -b/--bind ADDR is --http-socket ADDR, --timeout is --harakiri)\n"},
	}
	for _, tt := range tests {
		code, out := harness.RunToExit(t, tt.args...)
		assert.Equal(t, 2, code, tt.args)
		assert.Equal(t, tt.want, out, tt.args)
	}
}

// TestCommandLinePrefix: "--modul" is --module, as uWSGI's getopt reads it.
func TestCommandLinePrefix(t *testing.T) {
	inst := harness.Start(t, "--modul", "hello_world_app", "--pythonpat", harness.ExamplesDir(t), "--proces", "2")
	assert.Contains(t, inst.Stderr(), "hello_world_app:application · 2 workers")
	assertHello(t, inst)
}

// TestWarningsBeforeVirtualenvError: a virtualenv missing on this machine
// stops the start, after the warnings about the file's other options.
func TestWarningsBeforeVirtualenvError(t *testing.T) {
	dir := t.TempDir()
	ini := harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nmodule = hello_world_app\nthread-stacksize = 512\nhome = /nonexistent/venv\n")
	code, out := harness.RunGowsgi(t, dir, ini)
	assert.Equal(t, 2, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Equal(t, "gowsgi: warning: ignoring uWSGI options gowsgi does not implement: thread-stacksize", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "gowsgi: --home /nonexistent/venv: not a virtualenv"), lines[1])
}
