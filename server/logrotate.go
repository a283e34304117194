// Log rotation by size (uWSGI's --log-maxsize and --log-backupname): the
// master checks the --logto file's size once a second, as uWSGI's master
// does on each of its cycles, and past the limit renames the file to the
// backup name (or FILE.UNIXTIME) and carries on in a new file.
package server

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"
)

// logRotateInterval is how often the log file's size is checked.
const logRotateInterval = time.Second

// watchLogSize rotates path whenever it grows past maxSize bytes, until
// stop is closed.
func watchLogSize(path string, maxSize int64, backup string, log *slog.Logger, stop <-chan struct{}) {
	tick := time.NewTicker(logRotateInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if info, err := os.Stat(path); err == nil && info.Size() > maxSize {
				if err := rotateLog(path, info.Size(), backup); err != nil {
					log.Error("cannot rotate the log", "error", err)
				}
			}
		case <-stop:
			return
		}
	}
}

// rotateLog renames path to backup (path.UNIXTIME when empty) and opens a
// new path for the master and, through the log relay, its children.
func rotateLog(path string, size int64, backup string) error {
	if backup == "" {
		backup = path + "." + strconv.FormatInt(time.Now().Unix(), 10)
	}
	// The last line of the old file says where the log went, as uWSGI's.
	fmt.Fprintf(os.Stderr, "logsize: %d, triggering rotation to %s...\n", size, backup)
	if err := os.Rename(path, backup); err != nil {
		return fmt.Errorf("server: --log-maxsize: %w", err)
	}
	return openLog(path)
}
