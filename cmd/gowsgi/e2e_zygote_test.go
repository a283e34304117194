// Workers are forked from a zygote that imported the app, so they share it
// copy-on-write: they are the zygote's children, and most of what each one
// maps is shared with the others.
package main_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxPrivateShare bounds a worker's private dirty memory as a share of its
// RSS. A forked Flask worker measured about 0.13 on the development machine
// and one that imports Flask itself (--lazy-apps), 0.64; 0.30 leaves margin
// both ways.
const maxPrivateShare = 0.30

func TestWorkersShareTheAppCopyOnWrite(t *testing.T) {
	t.Parallel()
	app := startIn(t, examplesDir(t), "--wsgi-file", "flask_app.py", "-p", "4")
	for range 40 {
		resp, body := get(t, app.URL+"/")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	}

	workers := liveChildren(t, zygoteOf(t, app))
	require.Len(t, workers, 4, "the workers are the zygote's children")
	for _, pid := range workers {
		rollup := smapsRollup(t, pid)
		share := float64(rollup["Private_Dirty"]) / float64(rollup["Rss"])
		assert.Less(t, share, maxPrivateShare, "worker %d: Private_Dirty %d kB of Rss %d kB", pid, rollup["Private_Dirty"], rollup["Rss"])
	}
}

// smapsRollup reads pid's memory totals in kB (proc(5), smaps_rollup).
func smapsRollup(t *testing.T, pid int) map[string]int {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	require.NoError(t, err)
	defer f.Close()
	totals := make(map[string]int)
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 3 && fields[2] == "kB" {
			totals[strings.TrimSuffix(fields[0], ":")], _ = strconv.Atoi(fields[1])
		}
	}
	require.NoError(t, lines.Err())
	require.Positive(t, totals["Rss"], "no Rss for %d", pid)
	return totals
}

// A file the app opens while it is imported belongs to the app in every
// forked worker: the worker's own descriptors must not take its place.
func TestFilesOpenedAtImportSurviveTheFork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := startIn(t, dir, "--wsgi-file", testdataPath(t, "opens_at_import.py"), "-p", "2", "--threads", "4")
	var want []string
	for i := range 20 {
		line := fmt.Sprintf("line-%d", i)
		resp, body := get(t, app.URL+"/write?line="+line)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s\nstderr:\n%s", body, app.Stderr())
		want = append(want, line)
	}
	written, err := os.ReadFile(filepath.Join(dir, "import-time.log"))
	require.NoError(t, err)
	assert.ElementsMatch(t, want, strings.Fields(string(written)), "every line reached the file the app opened")
}

// With --lazy-apps (or lazy-apps = true in an ini file) each worker imports
// the app itself, as uWSGI's workers then do: what the import opens or
// starts is the worker's own. Without it the zygote's one import is shared.
func TestLazyAppsImportInEachWorker(t *testing.T) {
	t.Parallel()
	app := testdataPath(t, "process_app.py")
	for _, tc := range []struct {
		name string
		args func(dir string) []string
		lazy bool
	}{
		{"default", func(string) []string { return []string{"--wsgi-file", app} }, false},
		{"--lazy-apps", func(string) []string { return []string{"--wsgi-file", app, "--lazy-apps"} }, true},
		{"--lazy", func(string) []string { return []string{"--wsgi-file", app, "--lazy"} }, true},
		{"ini", func(dir string) []string {
			return []string{"--ini", writeFile(t, dir, "app.ini", "[uwsgi]\nwsgi-file = "+app+"\nlazy-apps = true\n")}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			inst := startIn(t, dir, append(tc.args(dir), "-p", "2")...)
			zygote := zygoteOf(t, inst)
			importers := map[string]string{} // serving worker -> importing process
			eventually(t, 10*time.Second, func() bool {
				status, body := getText(t, inst.URL+"/import-pid")
				require.Equal(t, http.StatusOK, status, body)
				imported, serving, ok := strings.Cut(body, " ")
				require.True(t, ok, body)
				importers[serving] = imported
				return len(importers) == 2
			}, "two workers never answered; stderr:\n%s", inst.Stderr())
			for serving, imported := range importers {
				if tc.lazy {
					assert.Equal(t, serving, imported, "worker %s serves another process's import", serving)
				} else {
					assert.Equal(t, strconv.Itoa(zygote), imported, "worker %s did not inherit the zygote's import", serving)
				}
			}
		})
	}
}
