package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/pyembed"
)

func TestParseINI(t *testing.T) {
	tests := []struct {
		name, content, section string
		want                   []iniEntry
		found                  bool
	}{
		{
			name:    "only the asked section, keys and values trimmed",
			content: "[other]\nmodule = no\n[uwsgi]\n  module =  app \nprocesses=4\n",
			section: "uwsgi",
			want:    []iniEntry{{"module", "app", 4, false}, {"processes", "4", 5, false}},
			found:   true,
		},
		{
			name:    "comments only at line start, no inline comments, quotes kept",
			content: "[uwsgi]\n; a comment\n  # another\nvacuum = true ; x\nenv = A=\"b c\"\n",
			section: "uwsgi",
			want:    []iniEntry{{"vacuum", "true ; x", 4, false}, {"env", `A="b c"`, 5, false}},
			found:   true,
		},
		{
			name:    "repeated keys all kept, a bare key has an empty value",
			content: "[uwsgi]\npythonpath = a\nmaster\npythonpath = b\n",
			section: "uwsgi",
			want:    []iniEntry{{"pythonpath", "a", 2, false}, {"master", "", 3, true}, {"pythonpath", "b", 4, false}},
			found:   true,
		},
		{
			name:    "a section that appears twice is read twice",
			content: "[prod]\np = 1\n[uwsgi]\n[prod]\np = 2\n",
			section: "prod",
			want:    []iniEntry{{"p", "1", 2, false}, {"p", "2", 5, false}},
			found:   true,
		},
		{
			name:    "missing section",
			content: "[other]\nmodule = x\n",
			section: "uwsgi",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := parseINI(tt.content, tt.section)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.found, found)
		})
	}
}

func TestSplitINIArg(t *testing.T) {
	tests := []struct{ arg, path, section string }{
		{"app.ini", "app.ini", "uwsgi"},
		{"app.ini:prod", "app.ini", "prod"},
		{"/etc/a:b/app.ini", "/etc/a:b/app.ini", "uwsgi"},
		{"app.ini:", "app.ini", "uwsgi"},
	}
	for _, tt := range tests {
		path, section := splitINIArg(tt.arg)
		assert.Equal(t, tt.path, path, tt.arg)
		assert.Equal(t, tt.section, section, tt.arg)
	}
	assert.True(t, isINIArg("app.ini:prod"))
	assert.False(t, isINIArg("app.py"))
	assert.False(t, isINIArg("--ini=app.ini"))
}

func TestExpand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "value.txt")
	require.NoError(t, os.WriteFile(file, []byte("first line\n"), 0o644))
	s := &substituter{
		path:     "/srv/site/conf/app.ini",
		first:    "/srv/first/base.ini",
		section:  "prod",
		hostname: "web1",
		getenv: func(k string) (string, bool) {
			v, ok := map[string]string{"PORT": "8080", "EMPTY": ""}[k]
			return v, ok
		},
		lookup: func(k string) (string, bool) {
			v, ok := map[string]string{"project": "mysite", "processes": "4"}[k]
			return v, ok
		},
	}
	tests := []struct{ in, want string }{
		{":$(PORT)", ":8080"},
		{"a$(EMPTY)b", "ab"},
		{"$(UNSET) stays", "$(UNSET) stays"},
		{"%(project).wsgi:%(processes)", "mysite.wsgi:4"},
		{"%(nope) stays", "%(nope) stays"},
		{"%dapp", "/srv/site/conf/app"},
		{"%p %s %n %c %h", "/srv/site/conf/app.ini app.ini app conf web1"},
		{"100%% %z %", "100%  %"}, // a letter that names nothing is nothing, as in uWSGI
		{"%%(project)", "mysite"}, // "%%" is "%" before references are read
		{"$(PORT", "$(PORT"},
		{"%D %E %0-%1-%9", "/srv/first/ ini srv-site-"},
		{"%x", "prod"},
		{"%(processes project)", "4mysite"},
		{"%(processes * 2 + 1)", "9"},
		{"%(processes / 0) %(processes ++) %(3 - processes)", "0 5 -1"},
		{"%((%(processes) * 2) + 1)", "1"}, // uWSGI's words: "(4" names nothing
		{"@(" + file + ")", "first line"},
		{"@(exec://echo $((6 * 7)))", "42"},
		{"%(_)", "%(_)"},
		{"%()", "%()"},
	}
	for _, tt := range tests {
		got, err := s.expand(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	_, err := s.expand("@(/nonexistent/x)")
	assert.EqualError(t, err, "@(/nonexistent/x): open /nonexistent/x: no such file or directory")
}

func TestUWSGIBool(t *testing.T) {
	for _, v := range []string{"false", "OFF", "No", "0"} {
		assert.False(t, uwsgiBool(v), v)
	}
	for _, v := range []string{"true", "1", "yes", "on", "true ; x", "anything"} {
		assert.True(t, uwsgiBool(v), v)
	}
}

// writeINI writes content to name in a temporary directory and returns the
// directory.
func writeINI(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	return dir
}

func TestParseConfigSources(t *testing.T) {
	dir := writeINI(t, "app.ini", `[uwsgi]
project = mysite
module = %(project).wsgi
pythonpath = %dsrc
pythonpath = $(HOME)/lib
processes = 3
vacuum = true ; no inline comments
master
enable-threads = true
plugins = python3, http
procname-master = main
ini = %dmore.ini:extra

[extra]
threads = 2
disable-logging = off
`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "more.ini"), []byte("[extra]\nthreads = 4\nthreads = 2\n"), 0o644))
	defaults := defaultOptions()
	tests := []struct {
		name    string
		environ []string
		args    []string
		edit    func(o *options)
	}{
		{
			name: "an ini file as a bare argument",
			args: []string{"app.ini"},
			edit: func(o *options) {
				o.Module, o.Processes, o.Threads, o.Vacuum = "mysite.wsgi", 3, 2, true
				o.PythonPath = []string{dir + "/src", "/home/u/lib"}
				o.ProcNames = pyembed.ProcNames{Auto: true, MasterName: "main"}
			},
		},
		{
			name:    "environment first, then the command line in order",
			environ: []string{"HOME=/home/u", "UWSGI_PROCESSES=4", "UWSGI_PYTHONPATH=/env", "UWSGI_VACUUM=", "UWSGI_FOO_BAR=1"},
			args:    []string{"-w", "m", "--pythonpath", "/cli", "--ini", filepath.Join(dir, "more.ini:extra"), "--processes=5"},
			edit: func(o *options) {
				o.Module, o.Processes, o.Threads, o.Vacuum = "m", 5, 2, true
				o.PythonPath = []string{"/env", "/cli"}
				o.Unknown = []string{"UWSGI_FOO_BAR"}
			},
		},
		{
			name:    "command line wins over the environment; ini loaded where it appears",
			environ: []string{"UWSGI_PROCESSES=4", "UWSGI_MODULE=env"},
			args:    []string{"--ini", "app.ini", "-p", "2", "-M", "-T", "-b", "8192", "-C", "660"},
			edit: func(o *options) {
				o.Module, o.Processes, o.Threads, o.Vacuum = "mysite.wsgi", 2, 2, true
				o.PythonPath = []string{dir + "/src", "$(HOME)/lib"}
				o.BufferSize, o.ChmodSocket = 8192, 0o660
				o.ProcNames = pyembed.ProcNames{Auto: true, MasterName: "main"}
			},
		},
		{
			name: "unknown options on the command line, with and without values",
			args: []string{"-w", "m", "--cpu-affinity", "2", "--reaper", "-R", "100", "--cpu-affinity=1", "-L", "--modul", "n", "--proces=2"},
			edit: func(o *options) {
				o.Module, o.DisableLogging, o.MaxRequests, o.Processes = "n", true, 100, 2
				o.Unimplemented = []string{"--cpu-affinity", "--reaper"} // uWSGI's
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := tt.environ
			if environ == nil {
				environ = []string{"HOME=/home/u"}
			}
			got, err := parseConfig(environ, tt.args, dir)
			require.NoError(t, err)
			want := *defaults
			tt.edit(&want)
			got.Given = nil // TestGivenOptions checks them
			assert.Equal(t, &want, got)
		})
	}
}

// TestGivenOptions: the options as uwsgi.opt shows them, keyed and valued
// as uWSGI 2.0.21 exports them (checked against it by
// e2e/uwsgi_module_test.go).
func TestGivenOptions(t *testing.T) {
	dir := writeINI(t, "app.ini", "[uwsgi]\nmodule = m\nmaster\nvacuum = true\ncustom = x\npythonpath = %dsrc\n")
	tests := []struct {
		name    string
		environ []string
		args    []string
		want    []pyembed.Option
	}{
		{
			name: "command line: short options under uWSGI's long names, bare flags, values",
			args: []string{"-w", "m", "-p", "2", "--master", "-L", "--pythonpath=a", "--pythonpath", "b", "--chmod-socket"},
			want: []pyembed.Option{
				{Key: "module", Value: "m"}, {Key: "processes", Value: "2"}, {Key: "master", Bare: true},
				{Key: "disable-logging", Bare: true}, {Key: "pythonpath", Value: "a"}, {Key: "pythonpath", Value: "b"},
				{Key: "chmod-socket", Bare: true},
			},
		},
		{
			name:    "environment and ini: values as written, a bare key empty",
			environ: []string{"UWSGI_PROCESSES=3"},
			args:    []string{"--ini", "app.ini"},
			want: []pyembed.Option{
				{Key: "processes", Value: "3"}, {Key: "ini", Value: "app.ini"}, {Key: "module", Value: "m"},
				{Key: "master", Value: ""}, {Key: "vacuum", Value: "true"}, {Key: "custom", Value: "x"},
				{Key: "pythonpath", Value: dir + "/src"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.environ, tt.args, dir)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.Given)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	dir := writeINI(t, "app.ini", "[uwsgi]\nmodule = m\nprocesses = many\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "loop.ini"), []byte("[uwsgi]\nini = %p\n"), 0o644))
	for name, content := range map[string]string{
		"bare.ini":   "[uwsgi]\nmaster\nmodule forkapp\n",
		"nested.ini": "[uwsgi]\nif-exists = /\nif-env = HOME\nendif\n",
		"at.ini":     "[uwsgi]\nmodule = @(/nonexistent/m)\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"app.ini"}, dir + `/app.ini:3: processes: "many" is not a number`},
		{[]string{"app.ini:prod"}, "--ini: " + dir + "/app.ini has no [prod] section"},
		{[]string{"-w", "m", "loop.ini"}, dir + "/loop.ini: ini files include each other more than 16 deep"},
		{[]string{"-w", "m", "app.py"}, `unexpected argument "app.py" (see gowsgi --help)`},
		{[]string{"-w", "m", "--procesess", "2"}, "unrecognized option --procesess (see gowsgi --help)"},
		{[]string{"-w", "m", "-Z"}, "unrecognized option -Z (see gowsgi --help)"},
		{[]string{"-w", "m", "--proc", "2"}, "option --proc is ambiguous; possibilities: --processes --procname --procname-append --procname-master --procname-prefix --procname-prefix-spaced"},
		{[]string{"app:app", "-w", "4"}, `unexpected argument "app:app": pass --module app:app; ` + gunicornHint},
		{[]string{"-w", "4", "--module", "app"}, "-w 4: -w is uWSGI's --module; for 4 workers pass -p 4; " + gunicornHint},
		{[]string{"--module", "app", "-b", ":8000"}, "-b :8000: -b is uWSGI's --buffer-size; to listen on :8000 pass --http-socket :8000; " + gunicornHint},
		{[]string{"--module", "app", "--bind=0.0.0.0:8000"}, "--bind is Gunicorn's option; gowsgi takes --http-socket ADDR; " + gunicornHint},
		{[]string{"--module", "app", "--access-logfile", "-"}, "--access-logfile is Gunicorn's option; gowsgi takes nothing: requests are logged to stderr, or --logto FILE; " + gunicornHint},
		{[]string{"bare.ini"}, dir + `/bare.ini:3: "module forkapp" has no "="; write module = forkapp`},
		{[]string{"-w", "m", "--ini", ":base"}, "--ini :base: no ini file was read before to take the section from"},
		{[]string{"nested.ini"}, dir + "/nested.ini:3: if-env: recursive logic in options is not supported (if-env inside if-exists)"},
		{[]string{"at.ini"}, dir + "/at.ini:2: module: @(/nonexistent/m): open /nonexistent/m: no such file or directory"},
	}
	for _, tt := range tests {
		_, err := parseConfig(nil, tt.args, dir)
		require.Error(t, err, tt.args)
		assert.Equal(t, tt.want, err.Error())
	}
}

// TestConfigLogic: if and for blocks apply their lines as uWSGI 2.0.21
// does (e2e/uwsgi_ini_test.go runs the same kinds of files through both).
func TestConfigLogic(t *testing.T) {
	dir := writeINI(t, "lines.txt", "/one\n/two\n")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	tests := []struct {
		name, ini string
		want      []string // the pythonpath entries
	}{
		{"if-env holds, %(_) is its value", "if-env = STAGE\npythonpath = /env/%(_)\nendif\n", []string{"/env/prod"}},
		{"if-env fails: the block is not applied", "if-env = NOPE\npythonpath = /no\nendif\npythonpath = /after\n", []string{"/after"}},
		{"if-env NAME=VALUE", "if-env = STAGE=dev\npythonpath = /dev\nelse\npythonpath = /else\nendif\n", []string{"/else"}},
		{"if-not-env", "if-not-env = NOPE\npythonpath = /yes\nendif\nif-not-env = STAGE\npythonpath = /no\nendif\n", []string{"/yes"}},
		{"if-opt and if-not-opt", "processes = 2\nif-opt = processes=2\npythonpath = /p%(_)\nendif\nif-not-opt = threads\npythonpath = /t\nend-if\n", []string{"/p2", "/t"}},
		{"if-exists, if-file, if-dir", "if-exists = %dsub\npythonpath = %(_)\nendif\nif-file = %dsub\npythonpath = /no\nendif\nif-dir = %dsub\npythonpath = /dir\nendif\nif-not-file = %dnope\npythonpath = /nofile\nendif\n",
			[]string{dir + "/sub", "/dir", "/nofile"}},
		{"for: each line once per word", "for = a b\npythonpath = /x/%(_)\npythonpath = /y/%(_)\nendfor\n", []string{"/x/a", "/x/b", "/y/a", "/y/b"}},
		{"for-readline", "for-readline = %dlines.txt\npythonpath = %(_)\nendfor\n", []string{"/one", "/two"}},
		{"for-glob marks folders", "for-glob = %ds*\npythonpath = %(_)\nendfor\n", []string{dir + "/sub/"}},
		{"for-times", "for-times = 2\npythonpath = /%(_)\nendfor\n", []string{"/1", "/2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "app.ini"), []byte("[uwsgi]\nmodule = m\n"+tt.ini), 0o644))
			got, err := parseConfig([]string{"STAGE=prod"}, []string{"app.ini"}, dir)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.PythonPath)
			assert.Empty(t, got.Unknown)
			assert.Empty(t, got.Unimplemented)
		})
	}
}

func TestINISections(t *testing.T) {
	dir := writeINI(t, "app.ini", "[base]\nprocesses = 3\nmodule = m\n[uwsgi]\nini = :base\nthreads = 2\n")
	got, err := parseConfig(nil, []string{"app.ini"}, dir)
	require.NoError(t, err)
	assert.Equal(t, []int{3, 2}, []int{got.Processes, got.Threads})
	assert.Equal(t, "m", got.Module)
}
