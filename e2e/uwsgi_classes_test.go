// The rule for uWSGI options gowsgi does not implement, through the real
// binary: one whose absence would change what is served or run stops the
// start with one line naming the file, the line, the option and what to
// do; a tuning knob starts with one warning line, also under strict.
package e2e

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

func TestRefusedUWSGIOptions(t *testing.T) {
	const cut = ": not implemented, and ignoring it would change what is served or run; "
	tests := []struct {
		line, want string
	}{
		{"spooler-external = /var/spool/other", "spooler-external" + cut + refusedSpooler},
		{"master-fifo = /tmp/fifo", "master-fifo" + cut + "gowsgi has no master FIFO: send the master signals instead (SIGHUP reloads, SIGTERM stops, SIGUSR1 reopens the log)"},
		{"cron = 0 -1 -1 -1 -1 /usr/bin/backup", "cron" + cut + "register the job from the app with uwsgi.add_cron or @cron, or use the system's cron or a systemd timer"},
		{"mule-harakiri = 10", "mule-harakiri" + cut + "gowsgi's mules do not implement it (gowsgi --help lists the mule options it takes); drop it, or run the code as its own process with attach-daemon"},
		{"cache-store = /var/cache/app.cache", "cache-store" + cut + "gowsgi implements --cache2, --cache and --cache-blocksize only; for the rest use a cache server (memcached, Redis) from the app"},
		{"hook-accepting = exec:true", "hook-accepting" + cut + "gowsgi runs the hooks of the phases asap, as-root, as-user, pre-app, post-app and master-start (hook-PHASE = exec:COMMAND, exec-PHASE = COMMAND); run anything else from the service manager (systemd ExecStartPre=) or the app"},
		{"yaml = app.yaml", "yaml" + cut + "gowsgi reads ini files, the command line and UWSGI_* variables; write the options there (ini = FILE includes another ini file)"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		ini := harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nmodule = hello_world_app\n"+tt.line+"\n")
		code, out := harness.RunGowsgi(t, dir, ini)
		assert.Equal(t, 2, code, tt.line)
		assert.Equal(t, "gowsgi: "+filepath.Join(dir, "app.ini")+":3: "+tt.want+"\n", out, tt.line)
	}
}

// refusedSpooler is the refusal of a spooler option gowsgi's spooler lacks.
const refusedSpooler = "gowsgi's spooler does not implement it (gowsgi --help lists the spooler options it takes); drop it, or run the tasks with a task queue (Celery, RQ) started by attach-daemon"

// TestTuningOptionsWarnUnderStrict: tuning knobs start the server, with
// one warning line, even with strict = true, as under uWSGI.
func TestTuningOptionsWarnUnderStrict(t *testing.T) {
	dir := t.TempDir()
	ini := harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nstrict = true\nmodule = hello_world_app\npythonpath = "+harness.ExamplesDir(t)+
		"\nhttp-socket = 127.0.0.1:0\nso-keepalive = true\nthread-stacksize = 512\nlog-master-bufsize = 8192\n")
	inst := harness.LaunchConfigured(t, dir, nil, ini)
	assertHello(t, inst)
	assert.Contains(t, inst.Stderr(), "gowsgi: warning: ignoring uWSGI options gowsgi does not implement: so-keepalive, thread-stacksize, log-master-bufsize\n")
}
