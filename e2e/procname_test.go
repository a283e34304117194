package e2e

// The titles ps shows for the processes (uWSGI's procname options), and
// the kernel's name for them (comm), compared with Debian's uWSGI running
// the same ini file.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// procnameServes is the part of the ini every case shares: a master, two
// workers, a mule and a spooler, so each kind of process is named.
const procnameServes = `[uwsgi]
http-socket = %s
wsgi-file = echo.py
master = true
processes = 2
mules = 1
spooler = %s
`

// procnameProcesses is how many processes uWSGI runs for procnameServes.
const procnameProcesses = 5

// procTitle is what ps -o args= shows for pid: its command line with the
// NULs between the arguments as spaces, without what trails.
func procTitle(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "", fmt.Errorf("reading the title of %d: %w", pid, err)
	}
	return strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " "), nil
}

// procComm is the kernel's name for pid (/proc/PID/comm), which top shows.
func procComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// processTree lists pid and every live process below it.
func processTree(t *testing.T, pid int) []int {
	t.Helper()
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, harness.LiveChildren(t, tree[i])...)
	}
	return tree
}

// treeTitles returns the sorted titles of pid's tree once it holds n
// processes none of which shows the command line it was started with any
// more (when rename is set) — a process is renamed a moment after it is
// forked — and the kernel's names of them.
func treeTitles(t *testing.T, pid, n int, rename bool, startedAs string) (titles, comms []string) {
	t.Helper()
	harness.Eventually(t, harness.StartTimeout, func() bool {
		titles, comms = nil, nil
		for _, p := range processTree(t, pid) {
			title, err := procTitle(p)
			if err != nil || rename && title == startedAs {
				return false
			}
			titles, comms = append(titles, title), append(comms, procComm(p))
		}
		slices.Sort(titles)
		return len(titles) == n
	}, "the %d processes of %d were not all named: %q", n, pid, &titles)
	return titles, comms
}

func TestProcessTitlesAsUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	for _, tc := range []struct {
		name    string
		options string
		zygote  string // gowsgi's title for the process uWSGI has no twin of
	}{
		{"auto", "auto-procname = true\n", "uWSGI zygote"},
		{"prefix", "procname-prefix = web-\n", "web-uWSGI zygote"},
		{"spaced prefix and append", "procname-prefix-spaced = shop\nprocname-append = [prod]\n", "shop uWSGI zygote[prod]"},
		{"one name, the master's own", "procname = shop\nprocname-master = shop-master\n", "shop"},
		{"one name and a prefix", "procname-prefix = x-\nprocname = shop\n", "x-shop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var titles [2][]string // uWSGI's, then gowsgi's
			for i, server := range []string{"uwsgi", "gowsgi"} {
				dir := procnameDir(t)
				addr := freeAddr(t)
				ini := harness.WriteFile(t, dir, "app.ini", fmt.Sprintf(procnameServes, addr, filepath.Join(dir, "spool"))+tc.options)
				var cmd *exec.Cmd
				n := procnameProcesses
				if server == "uwsgi" {
					cmd, _ = startUWSGIForTest(t, bin, dir, "--plugin", "python3,http", "--ini", ini)
				} else {
					cmd = harness.LaunchConfigured(t, dir, nil, "--ini", ini).Cmd
					n++ // the zygote
				}
				var comms []string
				titles[i], comms = treeTitles(t, cmd.Process.Pid, n, true, strings.Join(cmd.Args, " "))
				for _, comm := range comms {
					assert.Equal(t, filepath.Base(cmd.Path), comm, "%s: comm stays the binary's name, as under uWSGI", server)
				}
			}
			want := slices.Sorted(slices.Values(append(slices.Clone(titles[0]), tc.zygote)))
			assert.Equal(t, want, titles[1], "gowsgi's processes are titled as uWSGI's, and its zygote so")
		})
	}
}

// TestProcessTitlesWithoutProcnameAreTheCommandLine: without a procname
// option every process shows the master's command line as it was typed,
// argv[0] included, as uWSGI's forks do.
func TestProcessTitlesWithoutProcnameAreTheCommandLine(t *testing.T) {
	dir := procnameDir(t)
	ini := harness.WriteFile(t, dir, "app.ini", fmt.Sprintf(procnameServes, "127.0.0.1:0", filepath.Join(dir, "spool")))
	inst := &harness.Instance{Dir: dir, Output: &harness.LockedBuffer{}, Exited: make(chan struct{})}
	inst.Cmd = exec.Command(harness.GowsgiBin, "--ini", ini)
	inst.Cmd.Args[0] = "gowsgi" // as a shell that found it on PATH passes it
	inst.Cmd.Dir, inst.Cmd.Stdout, inst.Cmd.Stderr = dir, inst.Output, inst.Output
	require.NoError(t, inst.Cmd.Start())
	go func() {
		inst.Err = inst.Cmd.Wait()
		close(inst.Exited)
	}()
	t.Cleanup(func() { inst.Stop(t) })
	inst.WaitBanner(t)
	master, err := procTitle(inst.Cmd.Process.Pid)
	require.NoError(t, err)
	require.Equal(t, "gowsgi --ini "+ini, master)
	titles, _ := treeTitles(t, inst.Cmd.Process.Pid, procnameProcesses+1, false, "")
	for _, title := range titles {
		assert.Equal(t, master, title)
	}
	resp, body := harness.Get(t, inst.URL+"/")
	assert.Equal(t, 200, resp.StatusCode, "the app serves: Python found its prefix from the binary: %s", body)
}

// TestSetprocnameKeepsPrefixAndAppend: uwsgi.setprocname(name) titles the
// worker name between the prefix and the suffix, as uWSGI's does.
func TestSetprocnameKeepsPrefixAndAppend(t *testing.T) {
	dir := probeDir(t)
	inst := harness.StartIn(t, dir, "--wsgi-file", "uwsgi_probe.py", "--procname-prefix", "pre-", "--procname-append", "-post")
	resp, body := harness.Get(t, inst.URL+"/probe")
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	zygote := harness.ZygoteOf(t, inst)
	var workers []int
	harness.Eventually(t, harness.StartTimeout, func() bool {
		workers = harness.LiveChildren(t, zygote)
		return len(workers) == 1
	}, "one worker")
	title, err := procTitle(workers[0])
	require.NoError(t, err)
	assert.Equal(t, "pre-uwsgi_probe-post", title, "worker %s", strconv.Itoa(workers[0]))
}

// procnameDir is a working directory holding echo.py and a spool folder.
func procnameDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(harness.TestdataPath(t, "echo.py"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "echo.py"), b, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "spool"), 0o755))
	return dir
}
