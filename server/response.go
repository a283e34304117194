// The per-request hand-off between a slot's reader goroutine and the
// request's own goroutine. The reader must never wait for a slow client, so
// it copies each frame into this queue and moves on; the request's goroutine
// drains the queue into the gateway's ResponseWriter. Past memoryMark, body
// frames go to the response's spool file (response_spool.go) and the queue
// names their place there, so the order of frames is the queue's.
package server

import (
	"log/slog"
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

// memoryMark bounds the bytes of one response queued in memory for a slow
// client: past it, body frames go to the response's spool file. Without a
// spool (--response-spool-limit 0, or a file that cannot be written) the
// slot's reader waits for the relay to catch up instead, which holds back
// that slot's worker.
const memoryMark = 4 << 20

// item is one queued frame; its payload is data[start:end] of the batch it
// was taken with, or, spooled, bytes start to end of file.
type item struct {
	kind       wsgi.FrameKind
	flags      uint8
	spooled    bool
	start, end int
	// file is the descriptor that came with a FrameFile, or the spool.
	file *os.File
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
	spool spool
	wake  chan struct{} // one token: the queue has grown since the last take
	room  chan struct{} // one token: the queue has been taken, or spooled bytes sent, since

	// The relay's own storage, kept here between requests so a recycled
	// response allocates nothing.
	spareItems []item
	spareData  []byte
}

func newResponse() *response {
	return &response{wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// setSpoolLimit sets the bytes r may hold in its spool file (0: none).
func (r *response) setSpoolLimit(limit int64, log *slog.Logger) {
	r.mu.Lock()
	r.spool.limit, r.spool.log = limit, log
	r.mu.Unlock()
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

// push queues a copy of f (with file, for a FrameFile), in memory or, for a
// body frame past memoryMark, in the spool. It does not wake the consumer;
// notify does, so a burst of frames read at once is taken at once.
func (r *response) push(f wsgi.Frame, file *os.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if (f.Kind == wsgi.FrameBody || f.Kind == wsgi.FrameRaw) && len(r.data)+len(f.Payload) > memoryMark {
		var spooled bool
		if r.items, spooled = r.spool.addLocked(f.Kind, f.Payload, r.items); spooled {
			return
		}
	}
	start := len(r.data)
	r.data = append(r.data, f.Payload...)
	r.items = append(r.items, item{kind: f.Kind, flags: f.Flags, start: start, end: len(r.data), file: file})
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
	r.madeRoom()
	return items, data
}

// unspool gives back the spool's range of it once the relay has sent or
// discarded it.
func (r *response) unspool(it *item) {
	r.mu.Lock()
	r.spool.freeLocked(it)
	r.mu.Unlock()
	r.madeRoom()
}

// madeRoom wakes a reader waiting for room, if one is.
func (r *response) madeRoom() {
	select {
	case r.room <- struct{}{}:
	default:
	}
}

// waitForRoom blocks while r holds all it may: the spool's limit or, with no
// spool, memoryMark bytes in memory. (With a spool, only frames without a
// body to spool, a few bytes each, are queued past the mark.) The relay
// always takes what is queued and sends or discards what is spooled, even
// after its client left, so the wait ends.
func (r *response) waitForRoom() {
	for r.full() {
		r.notify()
		<-r.room
	}
}

func (r *response) full() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spool.onLocked() {
		return r.spool.fullLocked()
	}
	return len(r.data) > memoryMark
}

// closeSpool removes r's spool file once the relay has returned.
func (r *response) closeSpool() {
	r.mu.Lock()
	r.spool.closeLocked()
	r.mu.Unlock()
}

// empty reports whether nothing is queued.
func (r *response) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items) == 0
}
