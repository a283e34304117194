// The per-request hand-off between a slot's reader goroutine and the
// request's own goroutine. The reader must never wait for a slow client, so
// it copies each frame into this queue and moves on; the request's goroutine
// drains the queue into the gateway's ResponseWriter.
package server

import (
	"os"
	"sync"

	"github.com/gowsgi/gowsgi/wsgi"
)

// Pseudo frame kinds the master queues itself when a worker dies with a
// request on its slot.
const (
	frameLost  wsgi.FrameKind = 0 // the worker may have run the request
	frameRetry wsgi.FrameKind = 1 // the worker never began it: it can go to another slot
)

// queueHighWater bounds the bytes queued for one slow client: past it, the
// slot's reader waits for the relay to catch up, which holds back only that
// slot's worker, instead of buffering a large streamed body in the master.
const queueHighWater = 4 << 20

// item is one queued frame; its payload is data[start:end] of the batch it
// was taken with.
type item struct {
	kind       wsgi.FrameKind
	flags      uint8
	start, end int
	file       *os.File // FrameFile: the descriptor that came with the frame
}

// keptQueueCap is the largest queue storage a response keeps for the next
// request; a larger one, from a big streamed body, goes to the collector.
const keptQueueCap = 64 << 10

// response is a queue of frames for one request. The zero response is not
// usable; call newResponse.
type response struct {
	mu    sync.Mutex
	items []item
	data  []byte
	wake  chan struct{} // one token: the queue has grown since the last take
	room  chan struct{} // one token: the queue has been taken since

	// The relay's own storage, kept here between requests so a recycled
	// response allocates nothing.
	spareItems []item
	spareData  []byte
}

func newResponse() *response {
	return &response{wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// reset empties r for another request. A token left in wake or room by the
// previous request's last notify is dropped; one that arrives later only
// makes the relay look at an empty queue once.
func (r *response) reset() {
	r.mu.Lock()
	r.items, r.data = keptItems(r.items), keptData(r.data)
	r.mu.Unlock()
	r.spareItems, r.spareData = keptItems(r.spareItems), keptData(r.spareData)
	select {
	case <-r.wake:
	default:
	}
	select {
	case <-r.room:
	default:
	}
}

// keptItems returns items emptied for reuse, without the files it held.
func keptItems(items []item) []item {
	clear(items[:cap(items)])
	return items[:0]
}

// keptData returns data emptied for reuse, or nil when it grew too large
// to keep.
func keptData(data []byte) []byte {
	if cap(data) > keptQueueCap {
		return nil
	}
	return data[:0]
}

// push queues a copy of f (with file, for a FrameFile). It does not wake the
// consumer; notify does, so a burst of frames read at once is taken at once.
func (r *response) push(f wsgi.Frame, file *os.File) {
	r.mu.Lock()
	start := len(r.data)
	r.data = append(r.data, f.Payload...)
	r.items = append(r.items, item{kind: f.Kind, flags: f.Flags, start: start, end: len(r.data), file: file})
	r.mu.Unlock()
}

// notify wakes the consumer if it is not already due to wake.
func (r *response) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take swaps the queued frames for the caller's emptied storage, so the two
// sides reuse two sets of buffers instead of allocating per frame.
func (r *response) take(items []item, data []byte) ([]item, []byte) {
	r.mu.Lock()
	items, r.items = r.items, items[:0]
	data, r.data = r.data, data[:0]
	r.mu.Unlock()
	select {
	case r.room <- struct{}{}:
	default:
	}
	return items, data
}

// waitForRoom blocks while more than queueHighWater bytes are queued. The
// relay always takes what is queued, even after its client left, so the
// wait ends.
func (r *response) waitForRoom() {
	for r.queued() > queueHighWater {
		r.notify()
		<-r.room
	}
}

func (r *response) queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.data)
}

// empty reports whether nothing is queued.
func (r *response) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items) == 0
}
