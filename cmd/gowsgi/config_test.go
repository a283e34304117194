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
			want:    []iniEntry{{"module", "app", 4}, {"processes", "4", 5}},
			found:   true,
		},
		{
			name:    "comments only at line start, no inline comments, quotes kept",
			content: "[uwsgi]\n; a comment\n  # another\nvacuum = true ; x\nenv = A=\"b c\"\n",
			section: "uwsgi",
			want:    []iniEntry{{"vacuum", "true ; x", 4}, {"env", `A="b c"`, 5}},
			found:   true,
		},
		{
			name:    "repeated keys all kept, a bare key has an empty value",
			content: "[uwsgi]\npythonpath = a\nmaster\npythonpath = b\n",
			section: "uwsgi",
			want:    []iniEntry{{"pythonpath", "a", 2}, {"master", "", 3}, {"pythonpath", "b", 4}},
			found:   true,
		},
		{
			name:    "a section that appears twice is read twice",
			content: "[prod]\np = 1\n[uwsgi]\n[prod]\np = 2\n",
			section: "prod",
			want:    []iniEntry{{"p", "1", 2}, {"p", "2", 5}},
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
	s := &substituter{
		path:     "/srv/site/conf/app.ini",
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
		{"100%% %x %", "100% %x %"},
		{"%%(project)", "%(project)"},
		{"$(PORT", "$(PORT"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, s.expand(tt.in), tt.in)
	}
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
spooler-processes = 2
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
				o.Unimplemented = []string{"spooler-processes"}
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
				o.Unimplemented = []string{"spooler-processes"}
			},
		},
		{
			name: "unknown options on the command line, with and without values",
			args: []string{"-w", "m", "--spooler", "/var/spool", "--reaper", "--reapr", "-R", "100", "--spooler=x", "-L"},
			edit: func(o *options) {
				o.Module, o.DisableLogging, o.MaxRequests = "m", true, 100
				o.Unimplemented = []string{"--spooler", "--reaper"} // uWSGI's
				o.Unknown = []string{"--reapr"}                     // nobody's
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
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"app.ini"}, dir + `/app.ini:3: processes: "many" is not a number`},
		{[]string{"app.ini:prod"}, "--ini: " + dir + "/app.ini has no [prod] section"},
		{[]string{"-w", "m", "loop.ini"}, dir + "/loop.ini: ini files include each other more than 16 deep"},
		{[]string{"-w", "m", "app.py"}, `unexpected argument "app.py" (see gowsgi --help)`},
	}
	for _, tt := range tests {
		_, err := parseConfig(nil, tt.args, dir)
		require.Error(t, err, tt.args)
		assert.Equal(t, tt.want, err.Error())
	}
}
