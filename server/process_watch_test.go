package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// moduleRig is a module list and its sources in a temporary folder.
type moduleRig struct {
	dir, list string
}

// source creates a module file and returns its path.
func (r moduleRig) source(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(r.dir, name)
	require.NoError(t, os.WriteFile(p, []byte("x = 1\n"), 0o644))
	return p
}

// replaceList writes the list whole, as the process that imports the app
// does, each file with the time it has now, as when it was imported.
func (r moduleRig) replaceList(t *testing.T, paths ...string) {
	t.Helper()
	require.NoError(t, os.WriteFile(r.list+".tmp", []byte(listLines(t, paths)), 0o644))
	require.NoError(t, os.Rename(r.list+".tmp", r.list))
	bumpMTime(t, r.list)
}

// appendList adds to the list, as a worker does for a module it imported
// while serving, each file with the time it has now.
func (r moduleRig) appendList(t *testing.T, paths ...string) {
	t.Helper()
	r.appendLines(t, listLines(t, paths))
}

// appendLines adds lines to the list as they are.
func (r moduleRig) appendLines(t *testing.T, lines string) {
	t.Helper()
	f, err := os.OpenFile(r.list, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(lines)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	bumpMTime(t, r.list)
}

// listLines returns the list's lines for paths, as a worker that imports
// them now writes them: the file's modification time, a tab, the file.
func listLines(t *testing.T, paths []string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		fmt.Fprintf(&b, "%d\t%s\n", fi.ModTime().UnixNano(), p)
	}
	return b.String()
}

// bumpMTime moves path's modification time a second on, so a change is
// seen whatever the file system's time granularity.
func bumpMTime(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	next := fi.ModTime().Add(time.Second)
	require.NoError(t, os.Chtimes(path, next, next))
}

func TestModuleWatchSeesEditsToListedSources(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change acts on a watch whose baseline lists app.py and returns
		// the files the next poll must report.
		change func(t *testing.T, r moduleRig, app string) []string
	}{
		{"nothing edited", func(t *testing.T, r moduleRig, app string) []string {
			return nil
		}},
		{"a source listed at the import", func(t *testing.T, r moduleRig, app string) []string {
			bumpMTime(t, app)
			return []string{app}
		}},
		{"a file that is not listed", func(t *testing.T, r moduleRig, app string) []string {
			bumpMTime(t, r.source(t, "other.py"))
			return nil
		}},
		{"edited as the list is replaced", func(t *testing.T, r moduleRig, app string) []string {
			// A reload's zygote writes a new list; an edit made meanwhile
			// is not taken as the new baseline.
			bumpMTime(t, app)
			r.replaceList(t, app)
			return []string{app}
		}},
		{"listed twice", func(t *testing.T, r moduleRig, app string) []string {
			r.appendList(t, app) // lazy workers each list the app's modules
			bumpMTime(t, app)
			return []string{app}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := moduleRig{dir: t.TempDir()}
			r.list = filepath.Join(r.dir, "modules")
			app := r.source(t, "app.py")
			r.replaceList(t, app)
			w := moduleWatch{list: r.list, last: map[string]time.Time{}}
			require.Empty(t, w.poll(), "the first poll takes the baseline")

			want := tc.change(t, r, app)
			assert.Equal(t, want, w.poll())
			assert.Empty(t, w.poll(), "a change is reported once")
		})
	}
}

func TestModuleWatchFollowsAModuleImportedLater(t *testing.T) {
	for _, sameTick := range []bool{false, true} {
		t.Run(map[bool]string{false: "appended", true: "appended within the clock tick of the last write"}[sameTick], func(t *testing.T) {
			r := moduleRig{dir: t.TempDir()}
			r.list = filepath.Join(r.dir, "modules")
			r.replaceList(t, r.source(t, "app.py"))
			w := moduleWatch{list: r.list, last: map[string]time.Time{}}
			require.Empty(t, w.poll())

			before, err := os.Stat(r.list)
			require.NoError(t, err)
			lazy := r.source(t, "lazy.py")
			r.appendList(t, lazy)
			if sameTick {
				require.NoError(t, os.Chtimes(r.list, before.ModTime(), before.ModTime()))
			}
			require.Empty(t, w.poll(), "listing is not an edit")
			bumpMTime(t, lazy)
			assert.Equal(t, []string{lazy}, w.poll())
		})
	}
}

// TestModuleWatchSeesEditsMadeBeforeTheListIsRead: the master compares a
// file with the time it had when a worker imported it, not with the time
// it has when the master first reads its line, so an edit made in between
// reloads (before, a worker kept the old code with no reload).
func TestModuleWatchSeesEditsMadeBeforeTheListIsRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		// imports acts on a watch whose baseline lists app.py, lists
		// views.py as workers do, and returns what the next poll must
		// report.
		imports func(t *testing.T, r moduleRig, views string) []string
	}{
		{"imported, then edited before the poll", func(t *testing.T, r moduleRig, views string) []string {
			r.appendList(t, views)
			bumpMTime(t, views)
			return []string{views}
		}},
		{"imported, edited, imported again by another worker", func(t *testing.T, r moduleRig, views string) []string {
			old := listLines(t, []string{views})
			bumpMTime(t, views)
			r.appendList(t, views)
			r.appendLines(t, old) // the first worker's line comes last
			return []string{views}
		}},
		{"imported and not edited", func(t *testing.T, r moduleRig, views string) []string {
			r.appendList(t, views)
			return nil
		}},
		{"imported with no time", func(t *testing.T, r moduleRig, views string) []string {
			// A worker that could not read the time: the file's own, as
			// the master reads it, is the baseline.
			r.appendLines(t, "0\t"+views+"\n")
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := moduleRig{dir: t.TempDir()}
			r.list = filepath.Join(r.dir, "modules")
			r.replaceList(t, r.source(t, "app.py"))
			w := moduleWatch{list: r.list, last: map[string]time.Time{}}
			require.Empty(t, w.poll(), "the first poll takes the baseline")

			want := tc.imports(t, r, r.source(t, "views.py"))
			assert.Equal(t, want, w.poll())
			assert.Empty(t, w.poll(), "a change is reported once")
		})
	}
}

func TestModuleWatchTakesALineOnce(t *testing.T) {
	// An edit is reported; the list then grows before the reload's zygote
	// replaces it, and the line with the time before the edit is still in
	// it: not news, so no second reload.
	r := moduleRig{dir: t.TempDir()}
	r.list = filepath.Join(r.dir, "modules")
	app := r.source(t, "app.py")
	r.replaceList(t, app)
	w := moduleWatch{list: r.list, last: map[string]time.Time{}}
	require.Empty(t, w.poll())
	bumpMTime(t, app)
	require.Equal(t, []string{app}, w.poll())
	r.appendList(t, r.source(t, "views.py"))
	assert.Empty(t, w.poll())
	r.replaceList(t, app)
	assert.Empty(t, w.poll(), "the reload's list")
}

func TestParseListed(t *testing.T) {
	for _, tc := range []struct {
		line string
		want listedModule
	}{
		{"1700000000123456789\t/srv/app/views.py", listedModule{"/srv/app/views.py", 1700000000123456789}},
		{"5\t/srv/a\tb.py", listedModule{"/srv/a\tb.py", 5}},
		{"0\t/srv/app.py", listedModule{"/srv/app.py", 0}},
		{"/srv/old.py", listedModule{"/srv/old.py", 0}},
	} {
		assert.Equal(t, tc.want, parseListed(tc.line), tc.line)
	}
}
