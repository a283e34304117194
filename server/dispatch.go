// Dispatch: the server's side of wsgi.Handler. A request is posted in the
// request table and sent on the shared queue (sched.go), which any idle
// slot takes it from; the gateway's goroutine then relays the response
// frames the slot's reader hands over. A response the worker wrote to an
// HTTP/1.x client itself ends lazily: the worker stores how it ended in the
// table, and the master reads it there when the client's next request, or
// its leaving, wakes the connection, or after lazyWait (lazy.go); it asks
// for a FrameEnd only when it has to wait.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gowsgi/gowsgi/wsgi"
)

// maxRetries bounds how often a request its worker never began is queued
// again, in case every worker is dying as it takes it.
const maxRetries = 3

var (
	errRetry          = errors.New("server: the worker died before beginning the request")
	errBrokenResponse = errors.New("server: the application's response broke after its head was sent")
	errWorkerLost     = errors.New("server: the worker died during the response")
	errCut            = errors.New("server: the graceful timeout passed during the response")
)

// job is one request travelling through a slot.
type job struct {
	resp *response

	// mu guards id, req and slot: harakiri reads a running job's request
	// from its own goroutine (markTimedOut) while the job may be released
	// and reused for the next request.
	mu   sync.Mutex
	id   uint32 // names its request table entry (requests_linux.go)
	req  *wsgi.Request
	slot *slot // the slot whose frames it takes, nil until one sends any

	// queue is the queue it was sent on; addressed the slot it was sent
	// to instead, for a frame too big for the queue; one of them is nil.
	queue     *genQueue
	addressed *slot
	// postedAt is when it was sent, for the queue-wait metric.
	postedAt time.Time
	// lostOnce keeps a worker's death from being told twice: each of its
	// slots finds the job.
	lostOnce atomic.Bool
	// lazy is the wait for the client's next bytes (lazy.go).
	lazy lazyWait

	// timedOut is set by harakiri (harakiri.go) before it kills the worker.
	timedOut atomic.Bool

	// client, for a direct request (the worker writes the response to the
	// client itself, wsgi.FlagDirect), is the connection whose descriptor
	// goes with the request frame; req then points at directReq, the
	// gateway's request with its framing set.
	client    syscall.RawConn
	directReq wsgi.Request
	// headLeft and headCode are the scoreboard's head-out words for a
	// lost direct request, read by the slot before its worker's board is
	// released: whether bytes of the response may have reached the client
	// from the worker, and the head's status code.
	headLeft bool
	headCode int
}

// jobs recycles jobs and their response queues: a request would otherwise
// allocate both, two channels and the queue's storage.
var jobs = sync.Pool{New: func() any { return &job{resp: newResponse()} }}

// newJob returns an empty job for req with a fresh id.
func (d *dispatcher) newJob(req *wsgi.Request) *job {
	j := jobs.Get().(*job)
	j.mu.Lock()
	j.id, j.req, j.client = 0, req, nil
	j.mu.Unlock()
	j.queue, j.addressed = nil, nil
	j.headLeft, j.headCode = false, 0
	j.timedOut.Store(false)
	j.lostOnce.Store(false)
	j.setSlot(nil)
	d.nextID.Add(1)
	j.resp.reset()
	j.resp.setSpoolLimit(d.spoolLimit, d.log)
	return j
}

// release gives j back for reuse once its relay has returned: no frame
// will come for it by then, and its entry is given back.
func (j *job) release(t *requestTable) {
	if j.id != 0 {
		t.put(j)
	}
	j.resp.closeSpool()
	j.mu.Lock()
	j.req, j.client, j.directReq, j.slot = nil, nil, wsgi.Request{}, nil
	j.mu.Unlock()
	jobs.Put(j)
}

// currentID returns j's id, read under its lock: a job found through the
// table may be being released and reused meanwhile.
func (j *job) currentID() uint32 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.id
}

// setSlot records the slot that took j.
func (j *job) setSlot(s *slot) {
	j.mu.Lock()
	j.slot = s
	j.mu.Unlock()
}

// taker returns the slot serving j, or nil.
func (j *job) taker() *slot {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.slot
}

// goDirect makes j a direct request on conn, framed so.
func (j *job) goDirect(conn syscall.RawConn, framing wsgi.Framing, flags wsgi.HTTPFlags) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.directReq = *j.req
	j.directReq.Framing, j.directReq.HTTPFlags = framing, flags
	j.req, j.client = &j.directReq, conn
}

// from reports whether a frame from slot s may be j's: s's worker took
// it (word), or it was sent to s.
func (j *job) from(s *slot, w wsgi.RequestWord) bool {
	return j.addressed == s || (w.ID == j.id && w.PID == s.pid && w.PID != 0)
}

// lost tells j's relay that the worker went away before the response ended;
// begun says whether the worker may have started running it. Only the
// first call tells.
func (j *job) lost(begun bool) {
	if j.lostOnce.Swap(true) {
		return
	}
	kind := frameRetry
	if begun {
		kind = frameLost
	}
	j.resp.push(wsgi.Frame{Kind: kind}, nil)
	j.resp.notify()
}

// dispatcher implements wsgi.Handler over the slots its scheduler holds.
type dispatcher struct {
	sched    scheduler     // the slots and the current queue (sched.go)
	requests *requestTable // every request in flight (requests_linux.go)
	stopped  chan struct{} // closed once no worker will take a request again
	stopOnce sync.Once
	nextID   atomic.Uint32 // requests served, for the stats line
	log      *slog.Logger
	totals   *workerTotals // per-worker counts for --stats, nil without it
	// maxWaiting (--listen), when not 0, bounds the requests sent and not
	// yet claimed: past it a request gets 503 at once instead of queueing.
	maxWaiting int64
	metrics    *metrics // nil without --metrics (metrics.go)
	// cutting is set when the graceful timeout has passed: the requests
	// still in flight lose their workers then and are cut (relay.cut).
	cutting atomic.Bool
	// spoolLimit is the most of one response held in its spool file for a
	// slow client (--response-spool-limit); 0, the default, spools nothing.
	spoolLimit int64
}

func newDispatcher(log *slog.Logger) (*dispatcher, error) {
	t, err := newRequestTable()
	if err != nil {
		return nil, err
	}
	return &dispatcher{
		sched:    scheduler{ready: make(chan struct{})},
		requests: t,
		stopped:  make(chan struct{}),
		log:      log,
	}, nil
}

// stop makes every request from now on get 503, for when no worker is left;
// those sent and not yet claimed are withdrawn, and get it too.
func (d *dispatcher) stop() {
	d.stopOnce.Do(func() {
		close(d.stopped)
		d.requeue(func(*job) bool { return true })
	})
}

// cut ends the graceful wait for requests in flight: those still queued get
// 503 at once, and those whose workers the caller then kills are cut.
func (d *dispatcher) cut() {
	d.cutting.Store(true)
	d.stop()
}

// ServeWSGI sends req to an idle slot, or queues it for the next slot to
// take it when none is idle, and relays its response to w.
func (d *dispatcher) ServeWSGI(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	start := time.Now()
	r := relay{w: w, log: d.log, cutting: &d.cutting, d: d}
	conn, framing, flags, direct := directTo(w)
	if direct {
		r.direct = w.(wsgi.DirectResponder)
	}
	var err error
	for attempt := 0; ; attempt++ {
		if r.job != nil {
			r.job.release(d.requests)
		}
		r.job = d.newJob(req)
		if direct {
			r.job.goDirect(conn, framing, flags)
		}
		r.lastAttempt = attempt == maxRetries
		err = d.dispatch(ctx, &r)
		if errors.Is(err, errLeftQueued) {
			r.job.release(d.requests)
			return err
		}
		if !errors.Is(err, errRetry) {
			break
		}
	}
	d.finished(w, &r, start)
	r.job.release(d.requests)
	return err
}

var errLeftQueued = errors.New("server: client left while its request was queued")

// dispatch posts r's job and sends it (sched.go), then relays its
// response. A client that leaves before any worker took its request gets
// errLeftQueued; past --listen requests waiting, and once no worker is
// left, the answer is 503.
func (d *dispatcher) dispatch(ctx context.Context, r *relay) error {
	if d.isStopped() || d.maxWaiting > 0 && d.requests.queued() >= d.maxWaiting {
		return d.unavailable(r)
	}
	select {
	case <-d.sched.ready:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errLeftQueued, context.Cause(ctx))
	case <-d.stopped:
		return d.unavailable(r)
	}
	j := r.job
	if err := d.requests.take(ctx, d.stopped, j); err != nil {
		if errors.Is(err, errStopped) {
			return d.unavailable(r)
		}
		return fmt.Errorf("%w: %w", errLeftQueued, err)
	}
	lazy := r.lazyAllowed()
	frame := framePool.Get().(*[]byte)
	*frame = wsgi.AppendRequest((*frame)[:0], j.id, j.req)
	(*frame)[1] |= wsgi.FlagPosted
	q, s := d.route(len(*frame))
	if q == nil && s == nil {
		putFrame(frame)
		return d.unavailable(r)
	}
	j.queue, j.addressed, j.postedAt = q, s, time.Now()
	d.requests.table.Post(j.id, !lazy)
	d.requests.sent.Add(1)
	var sent bool
	if q != nil {
		sent = q.send(*frame, j.client, j.req.BodyFile) == nil
	} else {
		sent = s.sendFrame(j, *frame)
	}
	putFrame(frame)
	if !sent && d.requests.withdraw(j) {
		j.lost(false) // its queue or slot is gone: sent again
	}
	if lazy && r.awaitLazy(ctx) {
		return nil
	}
	return r.run(ctx)
}

// framePool recycles request frame buffers; one is kept only up to
// keptFrameCap.
var framePool = sync.Pool{New: func() any { return new([]byte) }}

// keptFrameCap is the largest request frame buffer kept for reuse.
const keptFrameCap = 256 << 10

func putFrame(frame *[]byte) {
	if cap(*frame) <= keptFrameCap {
		framePool.Put(frame)
	}
}

func (d *dispatcher) isStopped() bool {
	select {
	case <-d.stopped:
		return true
	default:
		return false
	}
}

// unavailable answers 503: no worker will take the request, or too many
// wait.
func (d *dispatcher) unavailable(r *relay) error {
	if d.cutting.Load() {
		r.logCut("503")
	}
	return r.answer(503, "Service Unavailable")
}

// lostWorker withdraws what the worker of s, whose socket ended, may have
// read without taking it, to be sent again: a request sent to s itself; on
// a crash, every request waiting on its generation's queue; once its
// generation is no longer the current one, every request left on that
// queue, which no worker may read. When s was the worker's last slot
// (gone), what the worker had taken and not ended fails: it may have run.
func (d *dispatcher) lostWorker(s *slot, gone bool) {
	crashed := !s.retiring.Load()
	d.sched.mu.Lock()
	stale := s.queue != nil && s.queue != d.sched.queue
	d.sched.mu.Unlock()
	d.requests.each(func(j *job) {
		w := d.requests.table.Load(j.id)
		if w.ID != j.id {
			return
		}
		switch {
		case gone && w.Phase == wsgi.PhaseTaken && w.PID == s.pid:
			if j.client != nil {
				// Read now: the board is released once the worker is gone.
				j.headLeft, j.headCode = s.board.headOutAnywhere(j.id)
			}
			j.lost(true)
		case w.Phase == wsgi.PhaseQueued && (j.addressed == s || j.queue != nil && j.queue == s.queue && (crashed || stale)):
			if d.requests.withdraw(j) {
				j.lost(false)
			}
		}
	})
}

// takerOf returns the slot running j, or the one whose frames it had, or
// nil when no worker took it.
func (d *dispatcher) takerOf(j *job) *slot {
	w := d.requests.table.Load(j.id)
	if w.ID == j.id && w.PID != 0 {
		if s := d.sched.slotOf(w.PID, j.id); s != nil {
			return s
		}
	}
	return j.taker()
}

// markTimedOut flags the request id, so that its relay answers 504 once its
// worker is gone, and returns its method and path for the log.
func (d *dispatcher) markTimedOut(id uint32) (method, path string) {
	j := d.requests.holder(id)
	if j == nil {
		return "", ""
	}
	// Under the job's lock the request cannot be released: the gateway
	// reuses it only after release, which waits for the lock.
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.id != id || j.req == nil {
		return "", "" // it ended meanwhile; the entry serves another
	}
	j.timedOut.Store(true)
	method, _ = j.req.Vars.Get("REQUEST_METHOD")
	path, _ = j.req.Vars.Get("PATH_INFO")
	return method, path
}

// directTo returns the connection a worker may write w's response to, and
// its framing; ok is false when the response must go through the master.
func directTo(w wsgi.ResponseWriter) (conn syscall.RawConn, framing wsgi.Framing, flags wsgi.HTTPFlags, ok bool) {
	dr, ok := w.(wsgi.DirectResponder)
	if !ok {
		return nil, wsgi.FramingNone, 0, false
	}
	return dr.Direct()
}

// finished counts a request that has ended for --stats, and tells the
// access log which worker served it.
func (d *dispatcher) finished(w wsgi.ResponseWriter, r *relay, start time.Time) {
	word := d.requests.table.Load(r.job.id)
	taken := word.ID == r.job.id && word.Phase >= wsgi.PhaseTaken && word.Phase != wsgi.PhaseLost
	if taken && d.metrics != nil {
		d.metrics.observeQueueWait(max(time.Duration(d.requests.table.TakenNS(r.job.id)-r.job.postedAt.UnixNano()), 0))
	}
	noter, logged := w.(workerNoter)
	if !logged && d.totals == nil {
		return
	}
	s := r.job.taker()
	if s == nil && taken {
		s = d.sched.anySlotOf(word.PID)
	}
	if s == nil {
		return
	}
	if logged {
		noter.servedBy(s.worker, s.pid)
	}
	d.totals.add(s.worker, r.bytes+r.headBytes, time.Since(start))
}

// relay writes one job's queued frames to the gateway's ResponseWriter. It
// runs in the gateway's goroutine, so a slow client blocks only it.
type relay struct {
	job         *job
	lastAttempt bool // a request its worker never began is not queued again
	w           wsgi.ResponseWriter
	log         *slog.Logger
	bytes       int64
	headBytes   int64 // the head's size as HTTP, for --stats
	headSent    bool
	dirty       bool  // written to w since its last Flush
	failure     error // set once the client is gone: the rest is discarded
	replaced    bool  // the worker's head was invalid and a 502 went instead: the rest is discarded
	// cutting is the dispatcher's flag of the same name; nil for a relay
	// that only answers.
	cutting *atomic.Bool
	// direct is w when the worker writes the response to the client
	// itself; the relay then writes only what the worker hands back.
	direct wsgi.DirectResponder
	// d is the dispatcher whose job it relays; nil for a relay that only
	// answers.
	d *dispatcher
}

// taker returns the slot running the job, or nil.
func (r *relay) taker() *slot {
	if r.d == nil {
		return r.job.taker()
	}
	return r.d.takerOf(r.job)
}

// run relays frames until the response ends. When ctx is done or the client
// cannot be written to, it tells the worker to stop through the scoreboard
// and drains the remaining frames, so the slot is idle again only once the
// worker has closed the application's iterable.
func (r *relay) run(ctx context.Context) error {
	resp := r.job.resp
	items, data := resp.spareItems, resp.spareData
	defer func() { resp.spareItems, resp.spareData = items, data }()
	done := ctx.Done()
	for {
		select {
		case <-resp.wake:
		case <-done:
			done = nil
			r.fail(fmt.Errorf("server: client went away: %w", context.Cause(ctx)))
			continue
		}
		items, data = resp.take(items, data)
		for i := range items {
			if end, err := r.handle(&items[i], data); end {
				return err
			}
		}
		if r.failure == nil && r.dirty && resp.empty() {
			r.dirty = false
			if err := r.w.Flush(); err != nil {
				r.fail(err)
			}
		}
	}
}

// handle relays one frame; end reports the response is over, with err
// non-nil when it did not end cleanly.
func (r *relay) handle(it *item, data []byte) (end bool, err error) {
	switch it.kind {
	case wsgi.FrameEnd:
		if s := r.taker(); s != nil {
			s.board.responseEnded()
		}
		// The payload: a direct response's completion record, then the
		// log variables the app set, if it set any.
		payload := data[it.start:it.end]
		if r.direct != nil && len(payload) >= wsgi.CompletionLen {
			r.complete(it.flags, payload[:wsgi.CompletionLen])
			payload = payload[wsgi.CompletionLen:]
		}
		if noter, ok := r.w.(logvarNoter); ok && len(payload) > 0 {
			noter.noteLogvars(payload)
		}
		switch {
		case r.failure != nil:
			return true, r.failure
		case it.flags&wsgi.FlagEndBroken != 0:
			return true, errBrokenResponse
		}
		return true, nil
	case frameRetry:
		if !r.lastAttempt && r.failure == nil && !r.isCut() {
			return true, errRetry
		}
		fallthrough
	case frameLost:
		// Bytes of the head may have reached the client from the worker
		// of a direct request: then only closing the connection tells the
		// client the response is incomplete.
		r.headSent = r.headSent || r.workerWrote()
		switch {
		case r.failure != nil:
			return true, r.failure
		case r.isCut():
			return true, r.cut()
		case !r.headSent && r.job.timedOut.Load():
			// Killed by harakiri: the worker did not answer in time (RFC
			// 9110 section 15.6.5).
			return true, r.answer(504, "Gateway Timeout")
		case !r.headSent:
			// The master still owns the connection, so it can answer for
			// the worker (RFC 9110 section 15.6.3).
			return true, r.answer(502, "Bad Gateway")
		}
		return true, errWorkerLost
	}
	switch {
	case r.failure != nil || r.replaced:
		r.discard(it)
	case it.spooled:
		err = r.sendSpooled(it)
	default:
		err = r.write(it, data[it.start:it.end])
	}
	if err != nil {
		r.fail(err)
	}
	return false, nil
}

// discard drops a frame of a response that is not going to the client,
// letting go of its descriptor or its place in the spool.
func (r *relay) discard(it *item) {
	switch {
	case it.spooled:
		r.job.resp.unspool(it)
	case it.file != nil:
		it.file.Close()
	}
}

// sendSpooled sends body frames the reader spooled, then frees their place.
func (r *relay) sendSpooled(it *item) error {
	defer r.job.resp.unspool(it)
	r.dirty = true
	n := int64(it.end - it.start)
	if it.kind == wsgi.FrameRaw && r.direct != nil {
		return r.direct.SendFileRaw(it.file, int64(it.start), n)
	}
	r.bytes += n
	return r.w.SendFile(it.file, int64(it.start), n)
}

// write sends one head, body or file frame to the client.
func (r *relay) write(it *item, payload []byte) error {
	r.dirty = true
	switch it.kind {
	case wsgi.FrameHead:
		status, headers, err := wsgi.ParseHead(payload)
		if err == nil {
			err = checkHead(status, headers)
		}
		if err != nil {
			return r.replaceHead(err)
		}
		r.headSent, r.headBytes = true, headSize(status, headers)
		return r.w.WriteHead(status, headers)
	case wsgi.FrameBody:
		r.bytes += int64(len(payload))
		return r.w.WriteBody(payload)
	case wsgi.FrameFile:
		defer it.file.Close()
		offset, count, err := wsgi.ParseFile(payload)
		if err != nil {
			return fmt.Errorf("server: file frame: %w", err)
		}
		if r.direct != nil {
			return r.direct.SendFileRaw(it.file, offset, count)
		}
		r.bytes += fileBytes(it.file, offset, count)
		return r.w.SendFile(it.file, offset, count)
	case wsgi.FrameHandoff:
		if r.direct == nil {
			break
		}
		// The client's socket was full: the worker hands the rest over,
		// having written the start of the response itself.
		r.headSent = true
		return nil
	case wsgi.FrameRaw:
		if r.direct == nil {
			break
		}
		return r.direct.WriteRaw(payload)
	}
	return fmt.Errorf("server: unexpected frame kind %q from a worker", byte(it.kind))
}

// workerWrote reports whether the worker of a direct request, lost, may
// have written bytes of its response to the client, which the scoreboard
// records before the worker's first write; if so, the writer learns the
// status that went out, since no completion record will come.
func (r *relay) workerWrote() bool {
	if r.direct == nil || !r.job.headLeft {
		return false
	}
	r.direct.Completed(wsgi.Completion{Status: r.job.headCode, Broken: true})
	return true
}

// complete takes the completion record of a response the worker wrote, for
// --stats and for the access log and metrics, which the writer tells.
func (r *relay) complete(flags uint8, payload []byte) {
	c, err := wsgi.ParseCompletion(flags, payload)
	if err != nil {
		return
	}
	r.headSent = r.headSent || c.Status != 0
	r.headBytes, r.bytes = c.HeadBytes, c.BodyBytes
	r.direct.Completed(c)
}

// checkHead applies PEP 3333's rules to a head from a worker. The worker's C
// side enforces them as the app calls start_response, so a failure here
// means a worker whose memory the app corrupted; the master must not pass
// its bytes to a client.
func checkHead(status string, headers []byte) error {
	if err := wsgi.CheckStatus(status); err != nil {
		return err
	}
	var bad error
	err := wsgi.EachVar(headers, func(name, value []byte) bool {
		// Views, not copies: CheckHeader keeps neither string, and an error
		// it returns quotes them into a message of its own.
		bad = wsgi.CheckHeader(unsafe.String(unsafe.SliceData(name), len(name)),
			unsafe.String(unsafe.SliceData(value), len(value)))
		return bad == nil
	})
	if err != nil {
		return err
	}
	return bad
}

// replaceHead answers 502 in place of an invalid head and discards the rest
// of that response, stopping the worker from producing more of it.
func (r *relay) replaceHead(cause error) error {
	r.log.Error("worker sent an invalid response head", "error", cause)
	r.replaced = true
	if s := r.taker(); s != nil {
		s.abort(r.job.id)
	}
	return r.answer(502, "Bad Gateway")
}

// fileBytes returns how many bytes SendFile(f, offset, count) sends, for
// the access log and --stats.
func fileBytes(f *os.File, offset, count int64) int64 {
	if count >= 0 {
		return count
	}
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return max(fi.Size()-offset, 0)
}

// fail records that the client is gone and asks the worker to stop.
func (r *relay) fail(err error) {
	if r.failure != nil {
		return
	}
	r.failure = err
	if r.d != nil && r.d.requests.withdraw(r.job) {
		r.job.lost(false) // no worker took it: nothing to stop
		return
	}
	if s := r.taker(); s != nil {
		s.abort(r.job.id)
	}
}

// isCut reports whether the graceful timeout has passed, in which case a
// lost worker was killed by the stop rather than by a fault.
func (r *relay) isCut() bool { return r.cutting != nil && r.cutting.Load() }

// cut ends a request whose worker the stop killed at the graceful timeout:
// with 503 while nothing of its response was sent (RFC 9110 section
// 15.6.4), else by closing the connection, which tells the client the
// response is incomplete. Either way the log names the request.
func (r *relay) cut() error {
	if r.headSent {
		r.logCut("connection closed")
		return errCut
	}
	r.logCut("503")
	return r.answer(503, "Service Unavailable")
}

// logCut logs a request cut at the graceful timeout and what its client got.
func (r *relay) logCut(answer string) {
	method, _ := r.job.req.Vars.Get("REQUEST_METHOD")
	path, _ := r.job.req.Vars.Get("PATH_INFO")
	r.log.Warn("graceful timeout passed, request cut", "method", method, "path", path, "answer", answer)
}

// answer sends a short plain-text response on the master's own behalf.
func (r *relay) answer(code int, reason string) error {
	status := strconv.Itoa(code) + " " + reason
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain; charset=utf-8")
	r.headSent, r.headBytes = true, headSize(status, headers.Block())
	if err := r.w.WriteHead(status, headers.Block()); err != nil {
		return err
	}
	body := status + "\n"
	r.bytes = int64(len(body))
	return r.w.WriteBody([]byte(body))
}
