// The options that run commands beside the app, through the real binary
// and Debian's uWSGI with the same ini file (testdata/ini/side.ini):
// hook-PHASE and exec-PHASE run at their phase, in order, and
// attach-daemon runs a side process, starts it again when it exits and
// stops it with the server. Actions and phases gowsgi does not run stop
// the start with one line.
package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// sideOrder is the order side.ini's hooks append their phases in.
const sideOrder = "asap\npre-app\npost-app\nmaster-start\n"

// daemonPIDs reads the pids side.ini's daemon recorded in dir.
func daemonPIDs(dir string) []int {
	data, _ := os.ReadFile(filepath.Join(dir, "daemon.pids"))
	var pids []int
	for _, line := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(line); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// running says whether pid is a running process (not a zombie).
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestHooksAndAttachedDaemon(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "side.ini"))
	out := t.TempDir()
	addr := freeAddr(t)
	inst := harness.LaunchConfigured(t, t.TempDir(), []string{"ADDR=" + addr, "OUT=" + out}, ini)
	assert.Equal(t, "module", getINIAnswer(t, "http://"+addr+"/").App)
	order, err := os.ReadFile(filepath.Join(out, "order"))
	require.NoError(t, err)
	assert.Equal(t, sideOrder, string(order))
	assert.DirExists(t, filepath.Join(out, "made"))

	harness.Eventually(t, harness.StartTimeout, func() bool { return len(daemonPIDs(out)) == 1 }, "the daemon did not start; stderr:\n%s", inst.Stderr())
	first := daemonPIDs(out)[0]
	require.True(t, running(first))
	// A daemon that exits is started again.
	require.NoError(t, syscall.Kill(first, syscall.SIGKILL))
	harness.Eventually(t, harness.StartTimeout, func() bool { return len(daemonPIDs(out)) == 2 }, "the daemon was not started again; stderr:\n%s", inst.Stderr())
	second := daemonPIDs(out)[1]
	harness.Eventually(t, harness.StartTimeout, func() bool { return running(second) }, "the second daemon is not running")

	inst.Signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, inst.Wait(t, harness.StopTimeout))
	assert.False(t, running(second), "the daemon stops with the server")
	assert.Len(t, daemonPIDs(out), 2, "no daemon started during the stop")
}

// TestHooksAndAttachedDaemonUnderUWSGI runs side.ini through uWSGI: the
// same phases in the same order, and the daemon started.
func TestHooksAndAttachedDaemonUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	ini := harness.TestdataPath(t, filepath.Join("ini", "side.ini"))
	out := t.TempDir()
	addr := freeAddr(t)
	t.Setenv("ADDR", addr)
	t.Setenv("OUT", out)
	// Registered first, so it runs after startUWSGI's stop: the daemon
	// stops with uWSGI (and is killed if it did not).
	t.Cleanup(func() {
		for _, pid := range daemonPIDs(out) {
			harness.Eventually(t, 10*time.Second, func() bool { return !running(pid) }, "uWSGI's daemon outlived it")
		}
	})
	uwsgiOut := startUWSGI(t, bin, addr, "--plugin", "python3,http", "--ini", ini)
	assert.Equal(t, "module", getINIAnswer(t, "http://"+addr+"/").App)
	harness.Eventually(t, harness.StartTimeout, func() bool { return len(daemonPIDs(out)) >= 1 }, "uWSGI did not start the daemon:\n%s", uwsgiOut)
	// uWSGI may run its master-start hook a moment after it answers.
	var order []byte
	harness.Eventually(t, harness.StartTimeout, func() bool {
		order, _ = os.ReadFile(filepath.Join(out, "order"))
		return string(order) == sideOrder
	}, "uWSGI ran the phases as %q", &order)
	assert.DirExists(t, filepath.Join(out, "made"))
}

// TestExecAsUser: exec-as-user runs once privileges are dropped, before
// pre-app. (uWSGI runs its as-user hooks once per place it drops
// privileges, several times a start, so the order is not compared with it.)
func TestExecAsUser(t *testing.T) {
	out := t.TempDir()
	order := filepath.Join(out, "order")
	harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"),
		"--exec-pre-app", "echo pre-app >> "+order, "--exec-as-user", "echo as-user >> "+order)
	got, err := os.ReadFile(order)
	require.NoError(t, err)
	assert.Equal(t, "as-user\npre-app\n", string(got))
}

// TestSideOptionRefusals: a hook action, a daemon key or a phase gowsgi
// does not run stops the start with one line that names it.
func TestSideOptionRefusals(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--hook-pre-app", "chdir:/tmp"}, `gowsgi: --hook-pre-app: gowsgi runs the hook actions exec:COMMAND, mkdir:DIR and print:TEXT (and, at master-start, "unix_signal:15 gracefully_kill_them_all"), not "chdir:/tmp"; run anything else from the service manager (systemd ExecStartPre=) or the app` + "\n"},
		{[]string{"--hook-master-start", "unix_signal:1 gracefully_kill_them_all"}, `gowsgi: --hook-master-start: gowsgi runs the hook actions exec:COMMAND, mkdir:DIR and print:TEXT (and, at master-start, "unix_signal:15 gracefully_kill_them_all"), not "unix_signal:1 gracefully_kill_them_all"; run anything else from the service manager (systemd ExecStartPre=) or the app` + "\n"},
		{[]string{"--hook-accepting", "exec:true"}, "gowsgi: --hook-accepting: not implemented, and ignoring it would change what is served or run; gowsgi runs the hooks of the phases asap, as-root, as-user, pre-app, post-app and master-start (hook-PHASE = exec:COMMAND, exec-PHASE = COMMAND); run anything else from the service manager (systemd ExecStartPre=) or the app\n"},
		{[]string{"--attach-daemon2", "cmd=sleep 1,uid=nobody"}, `gowsgi: --attach-daemon2: gowsgi takes the keys cmd, stopsignal, pidfile and daemonize, not "uid"; run the daemon under the service manager for the rest` + "\n"},
		{[]string{"--exec-pre-app", "exit 3"}, "gowsgi: exec-pre-app exec:exit 3: exit status 3\n"},
	}
	for _, tt := range tests {
		code, out := harness.RunToExit(t, append([]string{"-w", "hello_world_app", "--pythonpath", harness.ExamplesDir(t)}, tt.args...)...)
		assert.Equal(t, 2, code, tt.args)
		assert.Equal(t, tt.want, out, tt.args)
	}
}

// TestMasterAsRoot runs as root: with master-as-root the master stays
// root while the workers run as nobody:nogroup.
func TestMasterAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("master-as-root needs root")
	}
	dir, exe := nobodyReadableApp(t)
	harness.WriteFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = %dprocess_app.py\nuid = nobody\ngid = nogroup\nmaster-as-root = true\n")

	inst := launchBinary(t, exe, dir, "--http-socket", "127.0.0.1:0", "app.ini")
	inst.WaitBanner(t)
	status, ids := harness.GetText(t, inst.URL+"/ids")
	require.Equal(t, 200, status, ids)
	assert.Equal(t, "65534 65534 65534", ids, "the workers run as nobody:nogroup")
	master, err := os.ReadFile("/proc/" + strconv.Itoa(inst.Cmd.Process.Pid) + "/status")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^Uid:\t0\t0\t0\t0$`, string(master), "the master stays root")
}

// TestSmartAttachDaemon: a command that daemonizes and writes its pidfile
// is started when the pidfile names no live process, started again when
// that process dies, and stopped with the server.
func TestSmartAttachDaemon(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "daemon.pid")
	command := "sh -c 'sleep 300 & echo $! > " + pidfile + "'"
	inst := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--smart-attach-daemon", pidfile+" "+command)
	readDaemon := func() int {
		data, err := os.ReadFile(pidfile)
		if err != nil {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return pid
	}
	harness.Eventually(t, harness.StartTimeout, func() bool { return readDaemon() > 0 && running(readDaemon()) },
		"the smart daemon did not start; stderr:\n%s", inst.Stderr())
	first := readDaemon()
	require.NoError(t, syscall.Kill(first, syscall.SIGKILL))
	harness.Eventually(t, harness.StartTimeout, func() bool { pid := readDaemon(); return pid != first && running(pid) },
		"the smart daemon was not started again; stderr:\n%s", inst.Stderr())
	second := readDaemon()
	inst.Signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, inst.Wait(t, harness.StopTimeout))
	harness.Eventually(t, 5*time.Second, func() bool { return !running(second) }, "the smart daemon outlived the server")
}
