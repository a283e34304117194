package e2e

// --fs-reload: a change to a file inside a watched directory reloads, as
// under uWSGI, whose file monitor sees it; the directory's own
// modification time, all --touch-reload looks at, stays the same.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// appendTo appends a line to the file at path.
func appendTo(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("changed\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// watchedDir is a directory holding one file, and that file.
func watchedDir(t *testing.T) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = harness.WriteFile(t, dir, "settings.py", "DEBUG = False\n")
	return dir, file
}

func TestFSReloadSeesAFileWrittenInTheDirectory(t *testing.T) {
	watched, file := watchedDir(t)
	before, err := os.Stat(watched)
	require.NoError(t, err)
	inst := harness.Start(t, "--chdir", harness.ExamplesDir(t), "--module", "hello_world_app", "--fs-reload", watched)
	appendTo(t, file)
	inst.AwaitLogged(t, "reload requested", "touched="+watched)
	after, err := os.Stat(watched)
	require.NoError(t, err)
	require.Equal(t, before.ModTime(), after.ModTime(), "the directory's own time did not change: only a watch sees this")
	inst.AwaitLogged(t, "reloaded")
	assertHello(t, inst)
}

func TestFSReloadUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	watched, file := watchedDir(t)
	addr := freeAddr(t)
	_, out := startUWSGIForTest(t, bin, harness.ExamplesDir(t), "--plugin", "python3,http", "--http-socket", addr,
		"--module", "hello_world_app", "--master", "--fs-reload", watched)
	harness.Eventually(t, harness.StartTimeout, func() bool { return strings.Contains(out.String(), "registered monitor for") },
		"uWSGI did not watch %s:\n%s", watched, out)
	appendTo(t, file)
	harness.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(out.String(), "detected event on \""+filepath.Clean(watched)+"\"")
	}, "uWSGI did not see the change:\n%s", out)
}

func TestFSReloadRefusesAMissingPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nowhere")
	code, out := harness.RunToExit(t, "--chdir", harness.ExamplesDir(t), "--module", "hello_world_app", "--http-socket", "127.0.0.1:0", "--fs-reload", missing)
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "--fs-reload "+missing+": ")
}
