// A response's spool: when more of one response waits in memory for a slow
// client than memoryMark, its next body frames go to a temporary file with
// no name (gateways.OpenSpoolFile), so the slot's reader goes on reading the
// worker and the worker takes its next request, as nginx's proxy buffering
// does (proxy_max_temp_file_size). The frames stay in the response's one
// queue, in order, as items naming a range of the file; the relay sends
// each range with SendFile and then gives its disk space back.
package server

import (
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/gateways"
	"github.com/gowsgi/gowsgi/wsgi"
)

// spoolSegmentMax bounds the bytes of consecutive body frames one queue item
// names, so the relay frees the file's space as it goes, not only after a
// whole burst has reached the client.
const spoolSegmentMax = 4 << 20

// spool is the file part of one response. Its fields are guarded by the
// response's mutex. The zero spool, with limit 0, never spools.
type spool struct {
	// limit bounds the bytes held (written, not yet sent): at it, the
	// slot's reader stops reading the worker until the client reads more
	// (--response-spool-limit). 0 turns spooling off.
	limit int64
	log   *slog.Logger

	file   *os.File // nil until the first frame is spooled
	end    int64    // where the next frame goes
	held   int64
	failed bool // the file could not be made or written: frames stay in memory
	warned bool // the limit has been logged for this response
}

// addLocked writes p, the payload of a body frame of kind (FrameBody, or
// FrameRaw after a direct response's hand-off), at the end of the file and
// returns items with the range appended, merged into the last item when
// that one names the bytes just before (a response's body frames are all
// of one kind). ok is false when p was not spooled
// (spooling off or broken) and is to be queued in memory instead.
func (s *spool) addLocked(kind wsgi.FrameKind, p []byte, items []item) (_ []item, ok bool) {
	if !s.onLocked() {
		return items, false
	}
	if err := s.writeLocked(p); err != nil {
		s.failed = true
		s.log.Error("cannot spool a response for a slow client; its worker waits for the client instead", "error", err)
		return items, false
	}
	start, end := int(s.end)-len(p), int(s.end)
	if n := len(items); n > 0 && items[n-1].spooled && items[n-1].end == start && end-items[n-1].start <= spoolSegmentMax {
		items[n-1].end = end
		return items, true
	}
	return append(items, item{kind: kind, spooled: true, start: start, end: end, file: s.file}), true
}

// writeLocked appends p to the file, making it first. The file only grows:
// bytes once written are never written over, since sendfile(2) to a TCP
// socket may still be reading their pages after it returned.
func (s *spool) writeLocked(p []byte) error {
	if s.file == nil {
		f, err := gateways.OpenSpoolFile()
		if err != nil {
			return fmt.Errorf("server: response spool: %w", err)
		}
		s.file = f
	}
	if _, err := s.file.WriteAt(p, s.end); err != nil {
		return fmt.Errorf("server: response spool: %w", err)
	}
	s.end += int64(len(p))
	s.held += int64(len(p))
	return nil
}

// freeLocked gives back the range of it, which the relay has sent or
// discarded. The whole pages inside it leave the file at once
// (fallocate(2)), so the disk holds about what is unsent; a page the range
// shares with its neighbours stays, since punching part of a page zeroes
// it in place, under a send that may not have read it yet. Where the file
// system cannot punch holes, the file keeps all until the response ends.
func (s *spool) freeLocked(it *item) {
	page := int64(os.Getpagesize())
	start := (int64(it.start) + page - 1) / page * page
	end := int64(it.end) / page * page
	if end > start {
		unix.Fallocate(int(s.file.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, start, end-start)
	}
	s.held -= int64(it.end - it.start)
}

// onLocked reports whether frames past the memory mark go to the spool.
func (s *spool) onLocked() bool { return s.limit > 0 && !s.failed }

// fullLocked reports whether the limit is reached, logging it the first
// time for this response.
func (s *spool) fullLocked() bool {
	if s.held < s.limit {
		return false
	}
	if !s.warned {
		s.warned = true
		s.log.Warn("a slow client's response reached --response-spool-limit; its worker waits until the client reads more",
			"limit", s.limit)
	}
	return true
}

// closeLocked removes the file, whose bytes no item names any more, and
// readies s for another response.
func (s *spool) closeLocked() {
	if s.file != nil {
		s.file.Close()
	}
	*s = spool{limit: s.limit, log: s.log}
}
