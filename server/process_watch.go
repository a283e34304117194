// --touch-reload: a graceful reload, as SIGHUP does, whenever one of the
// named files changes its modification time, polled every second as uWSGI
// does (a file that does not exist yet counts as time zero, so creating it
// reloads too). --py-autoreload: the same for the source files of the
// modules the app imported, which the zygote lists after each import and
// the workers as they import more, each with the time the import saw.
package server

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// touchPollInterval is how often --touch-reload looks at its files.
const touchPollInterval = time.Second

// modTimes returns the modification time of each path.
func modTimes(paths []string) map[string]time.Time {
	times := make(map[string]time.Time, len(paths))
	for _, p := range paths {
		times[p] = modTime(p)
	}
	return times
}

// watchTouched calls reload whenever a file of paths changes its
// modification time from last, until stop is closed.
func watchTouched(paths []string, last map[string]time.Time, reload func(path string), stop <-chan struct{}) {
	tick := time.NewTicker(touchPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for _, p := range changedFiles(paths, last) {
			reload(p)
		}
	}
}

// modTime is path's modification time, or the zero time when it cannot be
// read.
func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// watchModules calls reload whenever a source file named in the module
// list changes, checking every interval until stop is closed.
func watchModules(list string, interval time.Duration, reload func(path string), stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	w := moduleWatch{list: list, last: map[string]time.Time{}}
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if changed := w.poll(); len(changed) > 0 {
			reload(changed[0]) // one reload for every file edited at once
		}
	}
}

// moduleWatch follows --py-autoreload's module list. The list grows as
// workers import modules while serving, and a reload's zygote replaces it.
// Each line has the modification time the file had when a worker imported
// it, so a line whose time is not the file's now shows a worker running
// older code than the file holds: an edit made before the master read the
// line, which the file's own time, taken then, would hide for good. A file
// already watched keeps its own baseline too, so an edit made while the
// list changed is seen.
type moduleWatch struct {
	list    string
	listing listState
	paths   []string
	last    map[string]time.Time
	// seen holds the lines already compared, so a reload's new list, which
	// repeats most of them, is not taken as news.
	seen map[listedModule]bool
}

// listedModule is one line of the module list.
type listedModule struct {
	path string
	// importedNS is the file's modification time in nanoseconds when a
	// worker imported it; 0 when the worker could not read it.
	importedNS int64
}

// listState tells one version of the module list from another. The size
// is in it because a modification time is only as fine as the kernel's
// clock tick, and two appends within one tick leave the same time.
type listState struct {
	mtime time.Time
	size  int64
}

// poll rereads the list if it changed and returns the listed files
// modified since the last poll, or since a worker imported them.
func (w *moduleWatch) poll() []string {
	var changed []string
	if now := statList(w.list); !now.same(w.listing) {
		w.listing = now
		changed = w.reread()
	}
	return append(changed, changedFiles(w.paths, w.last)...)
}

// reread takes the files the list names, and returns those a new line
// shows a worker imported in another version than the file's now.
func (w *moduleWatch) reread() []string {
	if w.seen == nil {
		w.seen = map[listedModule]bool{}
	}
	var outdated []string
	w.paths = w.paths[:0]
	listed := map[string]bool{}
	for _, m := range readModuleList(w.list) {
		if !listed[m.path] {
			listed[m.path] = true
			w.paths = append(w.paths, m.path)
		}
		if w.seen[m] {
			continue
		}
		w.seen[m] = true
		now := modTime(m.path)
		_, watched := w.last[m.path]
		if m.importedNS != 0 && !now.Equal(time.Unix(0, m.importedNS)) && !slices.Contains(outdated, m.path) {
			outdated = append(outdated, m.path)
			watched = false // the change is reported here, not again by changedFiles
		}
		if !watched {
			w.last[m.path] = now
		}
	}
	return outdated
}

func (s listState) same(o listState) bool { return s.size == o.size && s.mtime.Equal(o.mtime) }

// statList returns the list's state; the zero state when it is missing.
func statList(path string) listState {
	fi, err := os.Stat(path)
	if err != nil {
		return listState{}
	}
	return listState{fi.ModTime(), fi.Size()}
}

// changedFiles returns the paths whose modification time differs from
// last, and records their new times there.
func changedFiles(paths []string, last map[string]time.Time) []string {
	var changed []string
	for _, p := range paths {
		if t := modTime(p); !t.Equal(last[p]) {
			last[p] = t
			changed = append(changed, p)
		}
	}
	return changed
}

// readModuleList reads the module list: a line a module, its file's
// modification time in nanoseconds as the import saw it, a tab, and the
// file. Lazy workers each list the app's modules, so a file can be there
// more than once. A list that cannot be read is empty.
func readModuleList(path string) []listedModule {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var modules []listedModule
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) > 0 {
			modules = append(modules, parseListed(string(line)))
		}
	}
	return modules
}

// parseListed reads one line of the module list; a line without a time is
// all path.
func parseListed(line string) listedModule {
	stamp, path, ok := strings.Cut(line, "\t")
	ns, err := strconv.ParseInt(stamp, 10, 64)
	if !ok || err != nil {
		return listedModule{path: line}
	}
	return listedModule{path: path, importedNS: ns}
}
