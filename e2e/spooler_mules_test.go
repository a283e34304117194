package e2e

// The spooler and mules (issue 12, items 4 and 5): jobs queued with
// uwsgidecorators' @spool run in a spooler process with their arguments,
// survive a restart as files and run again on SPOOL_RETRY; @mulefunc runs
// in a mule, mule_msg reaches a mule, a farm and any mule; a killed spooler
// or mule is respawned; and the raw API (job file bytes, return values,
// refusals) answers as Debian's uWSGI 2.0.21 does on the same probe
// (testdata/spool_probe.py).

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// auxWait bounds the wait for a job or a message to have run: a spooler
// scans at least every second in these tests, and is woken at once.
const auxWait = 20 * time.Second

// auxStats is the part of the stats JSON about the spoolers and mules.
type auxStats struct {
	Spoolers []struct {
		Dir      string `json:"dir"`
		PID      int    `json:"pid"`
		Respawns int    `json:"respawns"`
	} `json:"spoolers"`
	Mules []struct {
		ID       int    `json:"id"`
		PID      int    `json:"pid"`
		Program  string `json:"program"`
		Respawns int    `json:"respawns"`
	} `json:"mules"`
}

// auxDir is a working directory holding the spooler and mule test apps.
func auxDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"spooler_mules.py", "mule_echo.py", "spool_probe.py"} {
		b, err := os.ReadFile(harness.TestdataPath(t, name))
		require.NoError(t, err)
		harness.WriteFile(t, dir, name, string(b))
	}
	harness.CopyAppHelpers(t, dir)
	// The real path: the spooler names its folder so.
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	return real
}

// startAux starts spooler_mules.py in dir with args and a stats socket.
func startAux(t *testing.T, dir string, args ...string) *harness.Instance {
	t.Helper()
	base := []string{"--wsgi-file", "spooler_mules.py", "--stats", filepath.Join(dir, "stats.sock")}
	return harness.StartIn(t, dir, append(base, args...)...)
}

// readAuxStats reads the stats document of inst.
func readAuxStats(t *testing.T, inst *harness.Instance) auxStats {
	t.Helper()
	conn, err := net.Dial("unix", filepath.Join(inst.Dir, "stats.sock"))
	require.NoError(t, err)
	defer conn.Close()
	b, err := io.ReadAll(conn)
	require.NoError(t, err)
	var doc auxStats
	require.NoError(t, json.Unmarshal(b, &doc), "%s", b)
	return doc
}

// getOK GETs url and returns its body, which must come with 200.
func getOK(t *testing.T, url string) string {
	t.Helper()
	status, body := harness.GetText(t, url)
	require.Equal(t, http.StatusOK, status, "GET %s: %s", url, body)
	return body
}

// awaitRecord waits for the record name of inst and returns it.
func awaitRecord(t *testing.T, inst *harness.Instance, name string) string {
	t.Helper()
	var content string
	harness.Eventually(t, auxWait, func() bool {
		var ok bool
		content, ok = inst.Record(name)
		return ok
	}, "no record %s; stderr:\n%s", name, inst.Stderr())
	return content
}

// spoolFiles lists the job files left in a spooler folder.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "uwsgi_spoolfile_on_*"))
	require.NoError(t, err)
	return names
}

func TestSpoolerRunsASpoolJobWithItsArguments(t *testing.T) {
	tests := []struct {
		name  string
		ini   string
		args  []string
		quiet bool
	}{
		{name: "command line", args: []string{"--spooler", "spool", "--spooler-frequency", "1"}},
		{name: "ini file", ini: "[uwsgi]\nspooler = spool\nspooler-freq = 1\nspooler-processes = 2\n"},
		{name: "quiet", args: []string{"-Q", "spool", "--spooler-quiet"}, quiet: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := auxDir(t)
			args := tt.args
			if tt.ini != "" {
				harness.WriteFile(t, dir, "spool.ini", tt.ini)
				args = []string{"--ini", "spool.ini"}
			}
			inst := startAux(t, dir, args...)
			path := getOK(t, inst.URL+"/spool?tag=a&n=42")
			assert.Regexp(t, "^"+regexp.QuoteMeta(filepath.Join(dir, "spool"))+"/uwsgi_spoolfile_on_", path)

			fields := strings.Fields(awaitRecord(t, inst, "job-a"))
			require.Len(t, fields, 3)
			assert.Equal(t, []string{"42", "True"}, fields[1:], "the job's arguments, and i_am_the_spooler()")
			pid, err := strconv.Atoi(fields[0])
			require.NoError(t, err)
			var spoolers []int
			for _, s := range readAuxStats(t, inst).Spoolers {
				assert.Equal(t, filepath.Join(dir, "spool"), s.Dir)
				spoolers = append(spoolers, s.PID)
			}
			assert.Contains(t, spoolers, pid, "the job ran in a spooler")
			harness.Eventually(t, auxWait, func() bool { return len(spoolFiles(t, filepath.Join(dir, "spool"))) == 0 },
				"the done job's file was not deleted")
			// uWSGI's lines, which --spooler-quiet leaves out.
			lines := []string{"[spooler] written ", "] managing request uwsgi_spoolfile_on_", "] done with task uwsgi_spoolfile_on_"}
			if !tt.quiet {
				inst.AwaitLogged(t, lines...)
				return
			}
			inst.Stop(t)
			for _, line := range lines {
				assert.NotContains(t, inst.Stderr(), line)
			}
		})
	}
}

// TestSpoolerJobSurvivesARestart: a job queued while the only spooler is
// busy is still a file after SIGTERM, and the next gowsgi on the folder
// runs it (and the job that was cut, again).
func TestSpoolerJobSurvivesARestart(t *testing.T) {
	dir := auxDir(t)
	first := startAux(t, dir, "--spooler", "spool", "--spooler-frequency", "1")
	getOK(t, first.URL+"/block?tag=busy")
	harness.Eventually(t, auxWait, func() bool {
		names, _ := filepath.Glob(filepath.Join(dir, "block-busy-*"))
		return len(names) == 1
	}, "the blocking job did not start; stderr:\n%s", first.Stderr())
	getOK(t, first.URL+"/spool?tag=kept&n=7")
	assert.Len(t, strings.Fields(getOK(t, first.URL+"/jobs")), 2, "both jobs wait as files")
	first.Stop(t)
	_, ran := first.Record("job-kept")
	require.False(t, ran, "the job ran before the stop")
	require.Len(t, spoolFiles(t, filepath.Join(dir, "spool")), 2, "the jobs are still files after the stop")

	first.Release(t, "busy")
	second := startAux(t, dir, "--spooler", "spool", "--spooler-frequency", "1")
	assert.Equal(t, "7 True", strings.SplitN(awaitRecord(t, second, "job-kept"), " ", 2)[1])
	harness.Eventually(t, auxWait, func() bool { return len(spoolFiles(t, filepath.Join(dir, "spool"))) == 0 },
		"the jobs' files were not deleted; stderr:\n%s", second.Stderr())
}

// TestSpoolerRetryKeepsTheJob: a job whose function returns SPOOL_RETRY
// stays for the next scan, until it returns SPOOL_OK.
func TestSpoolerRetryKeepsTheJob(t *testing.T) {
	dir := auxDir(t)
	inst := startAux(t, dir, "--spooler", "spool", "--spooler-frequency", "1")
	getOK(t, inst.URL+"/retry?tag=r&n=3")
	awaitRecord(t, inst, "attempt-r-1")
	awaitRecord(t, inst, "attempt-r-3")
	_, ok := inst.Record("attempt-r-2")
	assert.True(t, ok, "the second run")
	harness.Eventually(t, auxWait, func() bool { return len(spoolFiles(t, filepath.Join(dir, "spool"))) == 0 },
		"the job's file was not deleted after SPOOL_OK")
	_, ok = inst.Record("attempt-r-4")
	assert.False(t, ok, "the job ran after SPOOL_OK")
}

// TestMulefuncRunsInAMule: a @mulefunc call runs in one of the mules.
func TestMulefuncRunsInAMule(t *testing.T) {
	inst := startAux(t, auxDir(t), "--spooler", "spool", "--mules", "2")
	assert.Equal(t, "called\n", getOK(t, inst.URL+"/mulefunc?tag=m"))
	fields := strings.Fields(awaitRecord(t, inst, "mulefunc-m"))
	require.Len(t, fields, 2)
	mules := map[string]string{} // pid -> id
	for _, m := range readAuxStats(t, inst).Mules {
		mules[strconv.Itoa(m.PID)] = strconv.Itoa(m.ID)
	}
	require.Len(t, mules, 2)
	assert.Contains(t, mules, fields[0], "the function ran in a mule")
	assert.Equal(t, mules[fields[0]], fields[1], "uwsgi.mule_id() in the mule")
}

// TestMuleMessagesReachTheirMule: mule_msg to a mule's number, to a farm
// and to any mule reaches a mule program's mule_get_msg.
func TestMuleMessagesReachTheirMule(t *testing.T) {
	inst := startAux(t, auxDir(t), "--spooler", "spool", "--mule=mule_echo.py", "--mule=mule_echo.py", "--farm", "echoes:2")
	pids := map[int]string{}
	for _, m := range readAuxStats(t, inst).Mules {
		pids[m.ID] = strconv.Itoa(m.PID)
	}
	tests := []struct {
		to, msg  string
		wantMule int // 0: any
	}{
		{to: "1", msg: "one", wantMule: 1},
		{to: "2", msg: "two", wantMule: 2},
		{to: "echoes", msg: "farmed", wantMule: 2},
		{to: "", msg: "anyone"},
	}
	for _, tt := range tests {
		assert.Equal(t, "True", getOK(t, inst.URL+"/msg?to="+tt.to+"&msg="+tt.msg), tt.msg)
		fields := strings.Fields(awaitRecord(t, inst, "echo-"+tt.msg))
		require.Len(t, fields, 2)
		if tt.wantMule != 0 {
			assert.Equal(t, []string{pids[tt.wantMule], strconv.Itoa(tt.wantMule)}, fields, tt.msg)
		} else {
			assert.Contains(t, []string{pids[1], pids[2]}, fields[0], tt.msg)
		}
	}
}

// TestSpoolerAndMuleRespawnWhenKilled: a spooler and a mule killed with
// SIGKILL come back as new processes that go on working.
func TestSpoolerAndMuleRespawnWhenKilled(t *testing.T) {
	dir := auxDir(t)
	inst := startAux(t, dir, "--spooler", "spool", "--spooler-frequency", "1", "--mules", "1")
	before := readAuxStats(t, inst)
	require.Len(t, before.Spoolers, 1)
	require.Len(t, before.Mules, 1)
	require.NoError(t, syscall.Kill(before.Spoolers[0].PID, syscall.SIGKILL))
	require.NoError(t, syscall.Kill(before.Mules[0].PID, syscall.SIGKILL))
	var after auxStats
	harness.Eventually(t, auxWait, func() bool {
		after = readAuxStats(t, inst)
		return after.Spoolers[0].PID != 0 && after.Spoolers[0].PID != before.Spoolers[0].PID &&
			after.Mules[0].PID != 0 && after.Mules[0].PID != before.Mules[0].PID
	}, "not respawned; stderr:\n%s", inst.Stderr())
	assert.Equal(t, 1, after.Spoolers[0].Respawns)
	assert.Equal(t, 1, after.Mules[0].Respawns)
	inst.AwaitLogged(t, "spooler exited, respawning", "mule exited, respawning")

	getOK(t, inst.URL+"/spool?tag=after&n=1")
	assert.Equal(t, strconv.Itoa(after.Spoolers[0].PID), strings.Fields(awaitRecord(t, inst, "job-after"))[0])
	getOK(t, inst.URL+"/mulefunc?tag=after")
	assert.Equal(t, strconv.Itoa(after.Mules[0].PID), strings.Fields(awaitRecord(t, inst, "mulefunc-after"))[0])
}

// TestSpoolerAndMuleOptionsRefused: a mule or farm that cannot run stops
// the start with one line naming it.
func TestSpoolerAndMuleOptionsRefused(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--mule=worker:main"}, `--mule: "worker:main": gowsgi runs a Python file as a mule's program (--mule=FILE.py), not MODULE:CALLABLE`},
		{[]string{"--mule=missing.py"}, "--mule=missing.py: stat missing.py: no such file or directory"},
		{[]string{"--mules", "1", "--farm", "f:2"}, `--farm f:2: "2" is not a mule's number (1 to 1`},
		{[]string{"--mules", "1", "--farm", "f"}, `--farm: "f" is not NAME:MULE[,MULE...]`},
	}
	for _, tt := range tests {
		code, out := harness.RunToExit(t, append([]string{"--wsgi-file", harness.TestdataPath(t, "echo.py")}, tt.args...)...)
		assert.Equal(t, 2, code, "%v: %s", tt.args, out)
		assert.Contains(t, out, tt.want, "%v", tt.args)
	}
}

// serveUWSGI runs Debian's uWSGI with args in dir until it answers GET
// path, and stops it when the test ends.
func serveUWSGI(t *testing.T, bin, dir, addr, path string, args ...string) {
	t.Helper()
	_, out := startUWSGIForTest(t, bin, dir, args...)
	harness.Eventually(t, harness.StartTimeout, func() bool {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "uwsgi did not answer; output:\n%s", out)
}

// spoolProbe is what spool_probe.py answers on one server.
type spoolProbe struct {
	spool            map[string]any
	refused, handled map[string]any
	api              map[string]any
}

// probeSpooler queries spool_probe.py at base.
func probeSpooler(t *testing.T, base string) spoolProbe {
	t.Helper()
	var p spoolProbe
	getJSON(t, base+"/spool", &p.spool)
	getJSON(t, base+"/refused", &p.refused)
	getJSON(t, base+"/api", &p.api)
	harness.Eventually(t, auxWait, func() bool {
		resp, err := http.Get(base + "/handled")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&p.handled) == nil
	}, "the spooler function did not get the job")
	return p
}

func TestSpoolAPIAsUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	hostname, err := os.Hostname()
	require.NoError(t, err)
	args := func(addr string) []string {
		return []string{"--plugin", "python3,http", "--http-socket", addr, "--wsgi-file", "spool_probe.py",
			"--master", "--spooler", "spool", "--mule"}
	}
	var under [2]spoolProbe // uWSGI's, then gowsgi's
	dirs := [2]string{auxDir(t), auxDir(t)}
	// uWSGI needs its spooler folder made.
	require.NoError(t, os.Mkdir(filepath.Join(dirs[0], "spool"), 0o750))
	addr := freeAddr(t)
	serveUWSGI(t, bin, dirs[0], addr, "/api", args(addr)...)
	under[0] = probeSpooler(t, "http://"+addr)
	inst := harness.LaunchConfigured(t, dirs[1], nil, args("127.0.0.1:0")...)
	under[1] = probeSpooler(t, inst.URL)

	for i, p := range under {
		server := []string{"uwsgi", "gowsgi"}[i]
		spoolDir := filepath.Join(dirs[i], "spool")
		// HOST_PID_COUNTER_RANDOM_SECONDS_MICROSECONDS; the worker's first
		// job, then its second.
		name := func(counter int) string {
			return fmt.Sprintf(`^%s/uwsgi_spoolfile_on_%s_\d+_%d_\d+_\d+_\d+$`,
				regexp.QuoteMeta(spoolDir), regexp.QuoteMeta(hostname), counter)
		}
		assert.Regexp(t, name(1), p.spool["path"], server)
		assert.Regexp(t, name(2), p.spool["now"], server)
		assert.Equal(t, spoolDir, p.spool["dir"], server)
		task, _ := p.handled["'spooler_task_name'"].(string)
		assert.Equal(t, "b'"+filepath.Base(p.spool["now"].(string))+"'", task, "%s: the job's spooler_task_name", server)
		delete(p.handled, "'spooler_task_name'")
		delete(p.spool, "path")
		delete(p.spool, "now")
		delete(p.spool, "dir")
	}
	uwsgi, gowsgi := under[0], under[1]
	assert.Equal(t, 4102444800.0, gowsgi.spool["mtime"], "a job's at is its file's time")
	assert.Equal(t, uwsgi.spool, gowsgi.spool, "spool(): the job file's bytes and time, the result's type, the body key")
	assert.Equal(t, uwsgi.handled, gowsgi.handled, "the job the spooler function gets")
	assert.Equal(t, uwsgi.refused, gowsgi.refused, "what spool() and mule_msg() refuse")
	assert.Equal(t, uwsgi.api, gowsgi.api, "the rest of the API")
}

// TestSpoolerAndMuleFollowAReload: after SIGHUP the spooler and the mule
// are forked again from the reloaded generation, and go on working.
func TestSpoolerAndMuleFollowAReload(t *testing.T) {
	inst := startAux(t, auxDir(t), "--spooler", "spool", "--spooler-frequency", "1", "--mules", "1")
	before := readAuxStats(t, inst)
	inst.Signal(t, syscall.SIGHUP)
	inst.AwaitLogged(t, "reloaded")
	var after auxStats
	harness.Eventually(t, auxWait, func() bool {
		after = readAuxStats(t, inst)
		return after.Spoolers[0].PID != 0 && after.Spoolers[0].PID != before.Spoolers[0].PID &&
			after.Mules[0].PID != 0 && after.Mules[0].PID != before.Mules[0].PID
	}, "not forked again after the reload; stderr:\n%s", inst.Stderr())
	assert.NotContains(t, inst.Stderr(), "exited, respawning", "a reload's restart is no crash")
	getOK(t, inst.URL+"/spool?tag=reloaded&n=1")
	assert.Equal(t, strconv.Itoa(after.Spoolers[0].PID), strings.Fields(awaitRecord(t, inst, "job-reloaded"))[0])
	getOK(t, inst.URL+"/mulefunc?tag=reloaded")
	assert.Equal(t, strconv.Itoa(after.Mules[0].PID), strings.Fields(awaitRecord(t, inst, "mulefunc-reloaded"))[0])
}

// TestSpoolerOrderedRunsPriorityFoldersFirst: with --spooler-ordered the
// jobs due at once run priority folder by priority folder, lowest number
// first, then the folder's own, in --spooler-chdir's folder; none runs
// before its "at".
func TestSpoolerOrderedRunsPriorityFoldersFirst(t *testing.T) {
	dir := auxDir(t)
	inst := startAux(t, dir, "--spooler", "spool", "--spooler-ordered", "--spooler-frequency", "1",
		"--spooler-chdir", dir)
	assert.Equal(t, "queued\n", getOK(t, inst.URL+"/ordered?tag=o"))
	_, ran := inst.Record("order-o")
	assert.False(t, ran, "a job ran before its at")
	assert.Len(t, strings.Fields(getOK(t, inst.URL+"/jobs")), 1, "the job outside a priority folder waits")
	harness.Eventually(t, auxWait, func() bool {
		order, _ := inst.Record("order-o")
		return strings.Count(order, "\n") == 3
	}, "the jobs did not all run; stderr:\n%s", inst.Stderr())
	order, _ := inst.Record("order-o")
	assert.Equal(t, fmt.Sprintf("high %[1]s\nlow %[1]s\nplain %[1]s\n", dir), order, "the order, and --spooler-chdir")
	_, err := os.Stat(filepath.Join(dir, "spool", "1"))
	assert.NoError(t, err, "the priority folder")
}
