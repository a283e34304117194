// gowsgi started by the web server itself as its FastCGI application:
// lighttpd's bin-path and Apache's mod_fcgid bind the socket, hand it to
// gowsgi as fd 0 and stop gowsgi when they stop. Each is configured from
// the commented-out section of examples/lighttpd.conf or
// examples/apache.conf and runs the probe's checks of webservers_test.go.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// spawnedPort is the port the examples give the spawned deployment.
const spawnedPort = "127.0.0.1:8086"

// fcgidModule is mod_fcgid, from Debian's libapache2-mod-fcgid.
const fcgidModule = "/usr/lib/apache2/modules/mod_fcgid.so"

// spawnedDeployment is one web server's commented-out section that spawns
// gowsgi.
type spawnedDeployment struct {
	server      string // a webServerKinds name
	first, last string // the section's first and last lines, commented out
	// setup returns the server-wide settings the section relies on: the
	// example's own, or those it leaves to the distribution's
	// configuration, for a test whose files go in dir.
	setup func(t *testing.T, example, dir string) string
}

var spawnedDeployments = []spawnedDeployment{
	{
		server: "lighttpd",
		first:  `#$SERVER["socket"] == "` + spawnedPort + `" {`, last: "#}",
		setup: func(t *testing.T, example, _ string) string {
			// The modules and the streaming of responses, set before the
			// example's first site.
			globals, _, found := strings.Cut(example, "\n$SERVER[")
			require.True(t, found, "no site in examples/lighttpd.conf")
			return globals + "\n"
		},
	},
	{
		server: "apache",
		first:  "#Listen " + spawnedPort, last: "#</VirtualHost>",
		setup: func(t *testing.T, _, dir string) string {
			if _, err := os.Stat(fcgidModule); err != nil {
				t.Skip("mod_fcgid is not installed (make deps installs libapache2-mod-fcgid)")
			}
			// What Debian's fcgid.load and fcgid.conf say, with the files
			// in the test's directory; mod_fcgid makes the socket
			// directory and gives it to Apache's user.
			ipc := filepath.Join(dir, "fcgid")
			return fmt.Sprintf("LoadModule fcgid_module %s\nFcgidIPCDir %s\nFcgidProcessTableFile %s\n",
				fcgidModule, ipc, filepath.Join(ipc, "shm"))
		},
	},
}

func TestSpawnedFastCGI(t *testing.T) {
	t.Parallel()
	environs := &environSet{byMount: make(map[string]probeEnviron)}
	t.Run("servers", func(t *testing.T) {
		for _, d := range spawnedDeployments {
			t.Run(d.server, func(t *testing.T) {
				t.Parallel()
				runSpawned(t, d, environs)
			})
		}
	})
	t.Run("same environ", func(t *testing.T) { environs.compare(t) })
}

// runSpawned starts the web server with the deployment's section, which
// starts gowsgi on the probe, runs the probe's checks through it, then
// stops the web server and waits for every gowsgi process to go.
func runSpawned(t *testing.T, d spawnedDeployment, environs *environSet) {
	kind := webServerKindNamed(t, d.server)
	root := harness.SharedDir(t, "", "gowsgi-spawned-")
	cgiBin := harness.CopyExecutable(t, root)
	app := &testApp{Backend: harness.Backend{
		AppDir:  harness.SharedDir(t, root, "probe-app-"),
		SockDir: harness.SharedDir(t, root, "probe-sock-"),
		CGIBin:  cgiBin,
	}}
	app.download = filepath.Join(app.AppDir, "app.wsgi")
	require.NoError(t, os.WriteFile(app.download, []byte(probeScript(t, cgiBin)), 0o755))
	harness.CopyAppHelpers(t, app.AppDir)

	example, err := os.ReadFile(filepath.Join(harness.ExamplesDir(t), kind.Example))
	require.NoError(t, err)
	section := uncommentSection(t, string(example), d.first, d.last)
	addr := harness.FreeAddr(t)
	siteConf := d.setup(t, string(example), app.SockDir) +
		strings.ReplaceAll(harness.Site{Backend: &app.Backend}.Render(section), spawnedPort, addr)
	ws := harness.StartWebServerSite(t, kind, siteConf, []string{addr})

	m := mount{name: kind.Name + "/spawned", way: "fastcgi", base: "http://" + addr + "/app", appDir: app.AppDir}
	probeThroughServer(t, m, app, environs)

	t.Run("stops with the server", func(t *testing.T) {
		procs := descendantsRunning(t, ws.Cmd.Process.Pid, cgiBin)
		require.GreaterOrEqual(t, len(procs), 2, "a gowsgi master and its worker under %s\n%s", kind.Name, ws.Logs())
		ws.Stop(t)
		harness.Eventually(t, harness.StopTimeout, func() bool { return len(stillRunning(procs)) == 0 },
			"gowsgi processes %v outlived %s\n%s", procs, kind.Name, ws.Logs())
	})
}

// webServerKindNamed returns the webServerKinds entry called name.
func webServerKindNamed(t *testing.T, name string) harness.WebServerKind {
	t.Helper()
	for _, kind := range harness.WebServerKinds {
		if kind.Name == name {
			return kind
		}
	}
	require.FailNow(t, "no web server kind "+name)
	return harness.WebServerKind{}
}

// uncommentSection returns the lines of example from first through last,
// each without its leading "#": a deployment an example shows commented
// out because it cannot sit beside the others.
func uncommentSection(t *testing.T, example, first, last string) string {
	t.Helper()
	lines := strings.Split(example, "\n")
	start := -1
	for i, line := range lines {
		if line == first {
			start = i
		}
		if start >= 0 && line == last {
			var section strings.Builder
			for _, l := range lines[start : i+1] {
				section.WriteString(strings.TrimPrefix(l, "#") + "\n")
			}
			return section.String()
		}
	}
	require.FailNow(t, "no commented-out section", "from %q to %q in the example", first, last)
	return ""
}

// process is one process, told from a later one reusing its PID by its
// start time.
type process struct {
	pid   int
	start string
}

func (p process) String() string { return fmt.Sprint(p.pid) }

// procStart returns pid's start time (proc(5): /proc/PID/stat, field 22)
// and false when there is no such process or it is a zombie, which has
// exited and only waits for its parent.
func procStart(pid int) (string, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	// Field 2, the command name, is in parentheses and may hold spaces;
	// the fields after it start with field 3, the state.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 20 || fields[0] == "Z" {
		return "", false
	}
	return fields[19], true
}

// stillRunning returns the processes of procs that have not exited.
func stillRunning(procs []process) []process {
	var running []process
	for _, p := range procs {
		if start, ok := procStart(p.pid); ok && start == p.start {
			running = append(running, p)
		}
	}
	return running
}

// maxDescendants bounds the walk of a process tree.
const maxDescendants = 1000

// descendantsRunning returns the running descendants of pid whose
// executable is bin.
func descendantsRunning(t *testing.T, pid int, bin string) []process {
	t.Helper()
	var found []process
	queue := []int{pid}
	for seen := 0; len(queue) > 0 && seen < maxDescendants; seen++ {
		parent := queue[0]
		queue = queue[1:]
		children, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", parent))
		require.NoError(t, err)
		for _, list := range children {
			data, _ := os.ReadFile(list) // a task that just ended has none
			for _, field := range strings.Fields(string(data)) {
				var child int
				_, err := fmt.Sscan(field, &child)
				require.NoError(t, err)
				queue = append(queue, child)
				exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", child))
				if start, ok := procStart(child); ok && exe == bin {
					found = append(found, process{pid: child, start: start})
				}
			}
		}
	}
	assert.Empty(t, queue, "more than %d processes under %d", maxDescendants, pid)
	return found
}
