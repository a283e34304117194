package pyembed

// The shared area's Go side (gw_shared.h): what the master asks for, its
// size and its formatting, which run in C without Python, and reading a
// metric's value from it.

/*
#include <stdlib.h>
#include "gw_shared.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"
)

// SharedNameCap bounds the length of a cache's or metric's name.
const SharedNameCap = C.GW_SHARED_NAME_CAP - 1

// SharedFDEnv is the variable that tells a zygote which of its descriptors
// is the shared area, added to ZygoteEnv's; the master puts the area there.
const SharedFDEnv = "GOWSGI_APP_SHARED_FD=5"

// RequestsFDEnv and QueueFDEnv name the variables that tell a zygote which
// of its descriptors are the request table and its generation's queue
// (gw_worker_requests.c), followed by "=" and the number.
const (
	RequestsFDEnv = "GOWSGI_APP_REQUESTS_FD"
	QueueFDEnv    = "GOWSGI_APP_QUEUE_FD"
)

// SharedSpec is what a generation's shared area holds.
type SharedSpec struct {
	// Locks is uWSGI's --locks: user locks 0 to Locks exist.
	Locks int
	// Workers is the most worker numbers the pool may use, each with a
	// line of uwsgi.workers() (the master sets it).
	Workers int
	// Caches are the caches, the default (first) one first.
	Caches []CacheSpec
	// Metrics are the --metric metrics.
	Metrics []MetricSpec
}

// CacheSpec is one cache, as uWSGI's --cache2 describes it.
type CacheSpec struct {
	Name string
	// MaxItems is uWSGI's items: the cache holds MaxItems - 1 keys.
	MaxItems, BlockSize, KeySize, HashSize uint64
	// MathInitial is where cache_inc and friends start a missing key.
	MathInitial int64
	// NoExpire keeps expired items; ClearOnFull empties a full cache;
	// IgnoreFull does not log that it is full.
	NoExpire, ClearOnFull, IgnoreFull bool
}

// MetricType is a metric's kind, as uWSGI's --metric type=.
type MetricType int

// The metric types uWSGI knows for a metric the app sets.
const (
	MetricCounter  MetricType = C.GW_METRIC_COUNTER
	MetricGauge    MetricType = C.GW_METRIC_GAUGE
	MetricAbsolute MetricType = C.GW_METRIC_ABSOLUTE
)

// MetricSpec is one --metric.
type MetricSpec struct {
	Name    string
	Type    MetricType
	Initial int64
}

// errSharedTooLarge is returned for an area that would not fit in memory.
var errSharedTooLarge = errors.New("pyembed: the caches asked for do not fit in memory")

// cSharedSpec builds spec in C memory, which free releases.
func cSharedSpec(spec SharedSpec) (cspec *C.gw_shared_spec, free func()) {
	var allocs []unsafe.Pointer
	alloc := func(n uintptr) unsafe.Pointer {
		p := C.calloc(1, C.size_t(max(n, 1)))
		allocs = append(allocs, p)
		return p
	}
	cstr := func(s string) *C.char {
		p := C.CString(s)
		allocs = append(allocs, unsafe.Pointer(p))
		return p
	}
	cspec = (*C.gw_shared_spec)(alloc(unsafe.Sizeof(C.gw_shared_spec{})))
	cspec.locks, cspec.workers = C.int(spec.Locks), C.int(spec.Workers)
	caches := unsafe.Slice((*C.gw_cache_spec)(alloc(uintptr(len(spec.Caches))*unsafe.Sizeof(C.gw_cache_spec{}))), len(spec.Caches))
	for i, c := range spec.Caches {
		caches[i] = C.gw_cache_spec{
			name: cstr(c.Name), max_items: C.uint64_t(c.MaxItems), blocksize: C.uint64_t(c.BlockSize),
			keysize: C.uint64_t(c.KeySize), hashsize: C.uint64_t(c.HashSize), math_initial: C.int64_t(c.MathInitial),
			no_expire: cBool(c.NoExpire), clear_on_full: cBool(c.ClearOnFull), ignore_full: cBool(c.IgnoreFull),
		}
	}
	metrics := unsafe.Slice((*C.gw_metric_spec)(alloc(uintptr(len(spec.Metrics))*unsafe.Sizeof(C.gw_metric_spec{}))), len(spec.Metrics))
	for i, m := range spec.Metrics {
		metrics[i] = C.gw_metric_spec{name: cstr(m.Name), _type: C.int(m.Type), initial: C.int64_t(m.Initial)}
	}
	if len(caches) > 0 {
		cspec.caches, cspec.ncaches = &caches[0], C.int(len(caches))
	}
	if len(metrics) > 0 {
		cspec.metrics, cspec.nmetrics = &metrics[0], C.int(len(metrics))
	}
	return cspec, func() {
		for _, p := range allocs {
			C.free(p)
		}
	}
}

// SharedSize returns the size of the shared area spec describes.
func SharedSize(spec SharedSpec) (int, error) {
	cspec, free := cSharedSpec(spec)
	defer free()
	size := uint64(C.gw_shared_size(cspec))
	if size == 0 || size > 1<<46 {
		return 0, errSharedTooLarge
	}
	return int(size), nil
}

// FormatShared lays spec out in mem, a zeroed shared mapping of
// SharedSize(spec) bytes (not Go memory), and makes its locks.
func FormatShared(mem []byte, spec SharedSpec) error {
	cspec, free := cSharedSpec(spec)
	defer free()
	if rc := C.gw_shared_format(unsafe.Pointer(&mem[0]), C.uint64_t(len(mem)), cspec); rc != 0 {
		return fmt.Errorf("pyembed: formatting the shared area: %w", syscall.Errno(rc))
	}
	return nil
}

// SharedMetric returns the value of metric number index (in the spec's
// order) in mem, a formatted shared area.
func SharedMetric(mem []byte, index int) int64 {
	return int64(C.gw_shared_metric_value(unsafe.Pointer(&mem[0]), C.int(index)))
}

// SharedWorkerSpawned records in mem, a formatted shared area, that worker
// num (from 1) was started as pid at when (Unix seconds).
func SharedWorkerSpawned(mem []byte, num, pid int, when int64) {
	C.gw_shared_worker_spawned(unsafe.Pointer(&mem[0]), C.int(num), C.int64_t(pid), C.int64_t(when))
}

// SetSharedListenQueue records in mem, a formatted shared area, how many
// requests wait for a slot: uwsgi.listen_queue().
func SetSharedListenQueue(mem []byte, n int64) {
	C.gw_shared_set_listen_queue(unsafe.Pointer(&mem[0]), C.int64_t(n))
}

// sharePrivately gives a process without a master (CGI mode, tests) a
// shared area of its own, so the caches, locks and metrics its options
// declare work within it.
func sharePrivately(spec SharedSpec) error {
	cspec, free := cSharedSpec(spec)
	defer free()
	if rc, err := C.gw_shared_private(cspec); rc != 0 {
		return fmt.Errorf("pyembed: the shared area: %w", err)
	}
	return nil
}
