// --fs-reload: a graceful reload, as SIGHUP does, on any change the kernel
// reports (inotify, through fsnotify) to one of the named files or
// directories: for a directory, a file in it created, written, renamed or
// removed, as uWSGI's file monitor sees them. --touch-reload looks at a
// path's own modification time only, which a file written inside a
// directory leaves alone.
package server

import (
	"fmt"
	"log/slog"

	"github.com/fsnotify/fsnotify"
)

// fsWatch watches the --fs-reload paths. Its zero value is not usable;
// call newFSWatch.
type fsWatch struct {
	watcher *fsnotify.Watcher
	names   map[string]string // the watched path as the option gave it, by the name fsnotify reports
}

// newFSWatch starts watching paths, each of which must exist.
func newFSWatch(paths []string) (*fsWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("server: --fs-reload: %w", err)
	}
	fw := &fsWatch{watcher: w, names: make(map[string]string, len(paths))}
	for _, p := range paths {
		if err := w.Add(p); err != nil {
			w.Close()
			return nil, fmt.Errorf("server: --fs-reload %s: %w", p, err)
		}
		fw.names[p] = p
	}
	return fw, nil
}

// run calls reload with the watched path for each change, until stop is
// closed; then it stops watching.
func (fw *fsWatch) run(reload func(path string), log *slog.Logger, stop <-chan struct{}) {
	defer fw.watcher.Close()
	for {
		select {
		case <-stop:
			return
		case ev, ok := <-fw.watcher.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
				continue // an atime or mode change is not new code
			}
			reload(fw.watched(ev.Name))
		case err, ok := <-fw.watcher.Errors:
			if !ok {
				return
			}
			log.Warn("--fs-reload: watching failed", "error", err)
		}
	}
}

// watched returns the --fs-reload path an event's name belongs to: the
// path itself, or the directory holding it.
func (fw *fsWatch) watched(name string) string {
	if p, ok := fw.names[name]; ok {
		return p
	}
	for p := range fw.names {
		if len(name) > len(p) && name[:len(p)] == p && name[len(p)] == '/' {
			return p
		}
	}
	return name
}
