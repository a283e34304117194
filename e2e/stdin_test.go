package e2e

// Standard input: uWSGI points the master's, and so the workers', at
// /dev/null unless --honour-stdin. Both servers are started with a pipe as
// their standard input and asked what their processes read.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// stdinLine is what the test writes into the servers' standard input.
const stdinLine = "from the pipe\n"

// stdinAnswers is what a server's processes make of their standard input.
type stdinAnswers struct {
	Master string // where the master's fd 0 points: "/dev/null" or "pipe"
	Worker string // stdin_app.py's GET /
	Line   string // its GET /line, when the worker reads the pipe
}

// serveWithPipedStdin runs bin with args in dir, a pipe holding
// stdinLine as its standard input, until the test ends, and returns the
// master's PID once it answers on addr.
func serveWithPipedStdin(t *testing.T, bin, dir, addr string, args ...string) int {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	_, err = w.WriteString(stdinLine)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdin = dir, r
	out, stop := startInGroup(t, cmd)
	r.Close()
	t.Cleanup(func() {
		w.Close() // held open so far: EOF is not what a worker should read
		stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out)
		}
	})
	harness.Eventually(t, harness.StartTimeout, func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, "%s did not answer; output:\n%s", bin, out)
	return cmd.Process.Pid
}

// askStdin collects what the server at addr, master pid, reads as stdin.
func askStdin(t *testing.T, pid int, addr string, honour bool) stdinAnswers {
	t.Helper()
	fd0, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid))
	require.NoError(t, err)
	if strings.HasPrefix(fd0, "pipe:") {
		fd0 = "pipe"
	}
	var a stdinAnswers
	a.Master = fd0
	_, a.Worker = harness.GetText(t, "http://"+addr+"/")
	if honour {
		_, a.Line = harness.GetText(t, "http://"+addr+"/line")
	}
	return a
}

// stdinAppDir returns a fresh directory holding stdin_app.py, for one
// server (uWSGI or gowsgi) to run it from.
func stdinAppDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(harness.TestdataPath(t, "stdin_app.py"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stdin_app.py"), b, 0o644))
	return dir
}

func TestStdinAsUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	for _, tc := range []struct {
		name   string
		honour bool
		want   stdinAnswers
	}{
		{"by default /dev/null", false, stdinAnswers{Master: "/dev/null", Worker: "null"}},
		{"honour-stdin keeps the pipe", true, stdinAnswers{Master: "pipe", Worker: "fifo", Line: stdinLine}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, server := range []string{bin, harness.GowsgiBin} {
				dir := stdinAppDir(t)
				addr := freeAddr(t)
				args := []string{"--plugin", "python3,http", "--http-socket", addr, "--wsgi-file", "stdin_app.py", "--master", "-p", "1"}
				if tc.honour {
					args = append(args, "--honour-stdin")
				}
				pid := serveWithPipedStdin(t, server, dir, addr, args...)
				assert.Equal(t, tc.want, askStdin(t, pid, addr, tc.honour), filepath.Base(server))
			}
		})
	}
}

// TestDaemonsHonourStdinAsUnderUWSGI: an attached daemon reads the
// master's standard input with --daemons-honour-stdin (and --honour-stdin,
// without which the master's is /dev/null), else /dev/null.
func TestDaemonsHonourStdinAsUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	for _, tc := range []struct {
		name   string
		honour bool
		want   string
	}{
		{"by default /dev/null", false, ""},
		{"daemons-honour-stdin passes the pipe on", true, stdinLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, server := range []string{bin, harness.GowsgiBin} {
				dir := stdinAppDir(t)
				read, started := filepath.Join(dir, "daemon-read"), filepath.Join(dir, "daemon-started")
				// cat copies what it reads until EOF: the pipe's line (the
				// pipe stays open), or nothing from /dev/null, after which it
				// exits and is started again: a second start shows it read
				// to the end.
				addr := freeAddr(t)
				args := []string{"--plugin", "python3,http", "--http-socket", addr, "--wsgi-file", "stdin_app.py", "--master",
					"--honour-stdin", "--attach-daemon", "echo >> " + started + "; exec cat >> " + read}
				if tc.honour {
					args = append(args, "--daemons-honour-stdin")
				}
				serveWithPipedStdin(t, server, dir, addr, args...)
				var got []byte
				harness.Eventually(t, harness.StartTimeout, func() bool {
					starts, _ := os.ReadFile(started)
					got, _ = os.ReadFile(read)
					return tc.want == "" && len(starts) >= 2 || tc.want != "" && string(got) == tc.want
				}, "%s: the daemon read %q", filepath.Base(server), &got)
				assert.Equal(t, tc.want, string(got), filepath.Base(server))
			}
		})
	}
}
