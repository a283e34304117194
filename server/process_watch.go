// --touch-reload: a graceful reload, as SIGHUP does, whenever one of the
// named files changes its modification time, polled every second as uWSGI
// does (a file that does not exist yet counts as time zero, so creating it
// reloads too). --py-autoreload: the same for the source files of the
// modules the app imported, which the zygote lists after each import.
package server

import (
	"bytes"
	"os"
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
// workers import modules while serving, and a reload's zygote replaces it:
// a file new to the list gets its current time as baseline, and one already
// watched keeps its own, so an edit made while the list changed is seen.
type moduleWatch struct {
	list    string
	listing listState
	paths   []string
	last    map[string]time.Time
}

// listState tells one version of the module list from another. The size
// is in it because a modification time is only as fine as the kernel's
// clock tick, and two appends within one tick leave the same time.
type listState struct {
	mtime time.Time
	size  int64
}

// poll rereads the list if it changed and returns the listed files
// modified since the last poll.
func (w *moduleWatch) poll() []string {
	if now := statList(w.list); !now.same(w.listing) {
		w.listing, w.paths = now, readModuleList(w.list)
		for _, p := range w.paths {
			if _, ok := w.last[p]; !ok {
				w.last[p] = modTime(p)
			}
		}
	}
	return changedFiles(w.paths, w.last)
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

// readModuleList reads the list of module source files, one a line,
// without repeats (lazy workers each list the app's modules); a list that
// cannot be read is empty.
func readModuleList(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var paths []string
	seen := map[string]bool{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if p := string(line); p != "" && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	return paths
}
