// --touch-reload: a graceful reload, as SIGHUP does, whenever one of the
// named files changes its modification time, polled every second as uWSGI
// does (a file that does not exist yet counts as time zero, so creating it
// reloads too).
package server

import (
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
