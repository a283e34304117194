package e2e

// Command crons (cron, unique-cron, cron2): the master runs the command
// when the clock matches, and logs uWSGI's own lines for it; a cron whose
// fields match every minute runs at the start, as under uWSGI.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// cronINI runs three crons that each touch a file in dir: every minute, so
// at the start too.
func cronINI(t *testing.T, dir, socket string) string {
	t.Helper()
	return harness.WriteFile(t, dir, "crons.ini", fmt.Sprintf(`[uwsgi]
%s
module = hello_world_app
master = true
cron = -1 -1 -1 -1 -1 touch %s
unique-cron = -1 -1 -1 -1 -1 touch %s
cron2 = minute=-1,unique=1 touch %s
`, socket, filepath.Join(dir, "cron"), filepath.Join(dir, "unique-cron"), filepath.Join(dir, "cron2")))
}

// awaitCronFiles waits for the crons' three files.
func awaitCronFiles(t *testing.T, dir string, log func() string) {
	t.Helper()
	for _, name := range []string{"cron", "unique-cron", "cron2"} {
		harness.Eventually(t, 15*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(dir, name))
			return err == nil
		}, "the %s command did not run:\n%s", name, log())
	}
}

func TestCronsRunAsUnderUWSGI(t *testing.T) {
	servers := map[string]func(t *testing.T, dir string) func() string{
		"gowsgi": func(t *testing.T, dir string) func() string {
			inst := harness.StartIn(t, harness.ExamplesDir(t), "--ini", cronINI(t, dir, "http-socket = 127.0.0.1:0"))
			return inst.Stderr
		},
		"uwsgi": func(t *testing.T, dir string) func() string {
			bin := requireUWSGI(t)
			_, out := startUWSGIForTest(t, bin, harness.ExamplesDir(t), "--plugin", "python3,http",
				"--ini", cronINI(t, dir, "http-socket = "+freeAddr(t)))
			return out.String
		},
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			log := start(t, dir)
			awaitCronFiles(t, dir, log)
			want := fmt.Sprintf(`[uwsgi-cron] running "touch %s" (pid `, filepath.Join(dir, "cron"))
			harness.Eventually(t, 10*time.Second, func() bool { return strings.Contains(log(), want) },
				"no %q line:\n%s", want, log())
			exited := fmt.Sprintf(`[uwsgi-cron] command "touch %s" running with pid `, filepath.Join(dir, "cron2"))
			harness.Eventually(t, 10*time.Second, func() bool { return strings.Contains(log(), exited) },
				"no %q line:\n%s", exited, log())
		})
	}
}

func TestCronRefusesAMalformedLine(t *testing.T) {
	for _, args := range [][]string{
		{"--cron", "-1 -1 -1 touch /nowhere"},
		{"--cron", "x -1 -1 -1 -1 touch /nowhere"},
		{"--cron2", "minute=-1,legion=x touch /nowhere"},
		{"--cron2", "minute=-1"},
	} {
		code, out := harness.RunToExit(t, append([]string{"--chdir", harness.ExamplesDir(t), "--module", "hello_world_app",
			"--http-socket", "127.0.0.1:0"}, args...)...)
		assert.Equal(t, 2, code, "%v: %s", args, out)
		assert.Contains(t, out, args[0]+": ", "%v", args)
	}
}
