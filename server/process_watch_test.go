package server

import (
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
// does.
func (r moduleRig) replaceList(t *testing.T, paths ...string) {
	t.Helper()
	require.NoError(t, os.WriteFile(r.list+".tmp", []byte(strings.Join(paths, "\n")+"\n"), 0o644))
	require.NoError(t, os.Rename(r.list+".tmp", r.list))
	bumpMTime(t, r.list)
}

// appendList adds to the list, as a worker does for a module it imported
// while serving.
func (r moduleRig) appendList(t *testing.T, paths ...string) {
	t.Helper()
	f, err := os.OpenFile(r.list, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(strings.Join(paths, "\n") + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	bumpMTime(t, r.list)
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
