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
func modTimes(paths []string) []time.Time {
	times := make([]time.Time, len(paths))
	for i, p := range paths {
		times[i] = modTime(p)
	}
	return times
}

// watchTouched calls reload whenever a file of paths changes its
// modification time from last, until stop is closed.
func watchTouched(paths []string, last []time.Time, reload func(path string), stop <-chan struct{}) {
	tick := time.NewTicker(touchPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for i, p := range paths {
			if t := modTime(p); !t.Equal(last[i]) {
				last[i] = t
				reload(p)
			}
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

// watchModules calls reload whenever a source file named in the zygote's
// module list changes, checking every interval until stop is closed. A new
// list (a reload's zygote writes one) sets a new baseline. Modules a worker
// imports only later, while serving, are not in the list.
func watchModules(list string, interval time.Duration, reload func(path string), stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var listTime time.Time
	var paths []string
	var last []time.Time
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if t := modTime(list); !t.Equal(listTime) {
			listTime, paths = t, readModuleList(list)
			last = modTimes(paths)
			continue
		}
		for i, p := range paths {
			if t := modTime(p); !t.Equal(last[i]) {
				last[i] = t
				reload(p)
				break
			}
		}
	}
}

// readModuleList reads the zygote's list of module source files, one a
// line; a list that cannot be read is empty.
func readModuleList(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var paths []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) > 0 {
			paths = append(paths, string(line))
		}
	}
	return paths
}
