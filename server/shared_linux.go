// The shared area of a generation of workers (pyembed's gw_shared.h): a
// memfd the master creates and formats before the generation's zygote
// starts, which the zygote maps and its workers inherit. It holds uWSGI's
// user locks, caches and metrics; the master reads the metrics from it
// without ever running Python. Each generation gets a new one, as a
// uWSGI reload starts with empty caches.
package server

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/pyembed"
)

// sharedArea is the master's mapping of one generation's shared area.
type sharedArea struct {
	file *os.File // for the zygote to inherit
	spec pyembed.SharedSpec

	mu  sync.RWMutex // release may run while the stats read
	mem []byte       // nil once released
}

// newSharedArea creates and formats the area spec describes.
func newSharedArea(spec pyembed.SharedSpec) (*sharedArea, error) {
	size, err := pyembed.SharedSize(spec)
	if err != nil {
		return nil, fmt.Errorf("server: shared area: %w", err)
	}
	fd, err := unix.MemfdCreate("gowsgi-shared", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("server: shared area: %w", err)
	}
	f := os.NewFile(uintptr(fd), "shared")
	mem, err := mapShared(fd, size, "shared area")
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := pyembed.FormatShared(mem, spec); err != nil {
		unix.Munmap(mem)
		f.Close()
		return nil, fmt.Errorf("server: shared area: %w", err)
	}
	return &sharedArea{file: f, spec: spec, mem: mem}, nil
}

// metrics returns each metric's name and value, in the spec's order; none
// once released.
func (a *sharedArea) metrics() []metricValue {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.mem == nil {
		return nil
	}
	values := make([]metricValue, len(a.spec.Metrics))
	for i, m := range a.spec.Metrics {
		values[i] = metricValue{spec: m, value: pyembed.SharedMetric(a.mem, i)}
	}
	return values
}

// workerSpawned records worker num's new process for uwsgi.workers().
func (a *sharedArea) workerSpawned(num, pid int) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.mem != nil {
		pyembed.SharedWorkerSpawned(a.mem, num, pid, time.Now().Unix())
	}
}

// setListenQueue records the requests waiting for a slot, for
// uwsgi.listen_queue().
func (a *sharedArea) setListenQueue(n int64) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.mem != nil {
		pyembed.SetSharedListenQueue(a.mem, n)
	}
}

// metricValue is one --metric as the master reads it.
type metricValue struct {
	spec  pyembed.MetricSpec
	value int64
}

// release unmaps the area and closes its file; the workers of its
// generation that still run keep their own mappings.
func (a *sharedArea) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mem != nil {
		unix.Munmap(a.mem)
		a.file.Close()
		a.mem = nil
	}
}
