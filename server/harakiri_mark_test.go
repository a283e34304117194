package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// TestMarkTimedOutOnlyMarksTheRequestItNames: harakiri names a request by
// id from its own goroutine, while the job that ran it may have ended and
// been reused. Only the live request with that id is marked for a 504 and
// named in the log; an ended one, or a later request in the same entry, is
// left alone.
func TestMarkTimedOutOnlyMarksTheRequestItNames(t *testing.T) {
	d, err := newDispatcher(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	request := func(path string) *wsgi.Request {
		req := &wsgi.Request{}
		req.Vars.Add("REQUEST_METHOD", "GET")
		req.Vars.Add("PATH_INFO", path)
		return req
	}
	start := func(path string) *job {
		j := d.newJob(request(path))
		require.NoError(t, d.requests.take(context.Background(), nil, j))
		return j
	}

	tests := []struct {
		name string
		// run returns the id harakiri names, and the job now in its entry
		// with whether harakiri should mark it.
		run        func() (id uint32, inEntry *job, marked bool)
		wantMethod string
		wantPath   string
	}{
		{"a running request", func() (uint32, *job, bool) {
			j := start("/slow")
			return j.id, j, true
		}, "GET", "/slow"},
		{"a request that ended", func() (uint32, *job, bool) {
			j := start("/done")
			id := j.id
			j.release(d.requests)
			return id, nil, false
		}, "", ""},
		{"a later request in the same entry", func() (uint32, *job, bool) {
			j := start("/earlier")
			id := j.id
			j.release(d.requests)
			for range requestEntries {
				later := start("/later")
				if later.id&(requestEntries-1) == id&(requestEntries-1) {
					return id, later, false
				}
				later.release(d.requests)
			}
			require.FailNow(t, "the entry was never handed out again")
			return 0, nil, false
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, inEntry, marked := tt.run()
			method, path := d.markTimedOut(id)
			assert.Equal(t, tt.wantMethod, method)
			assert.Equal(t, tt.wantPath, path)
			if inEntry != nil {
				assert.Equal(t, marked, inEntry.timedOut.Load())
				inEntry.release(d.requests)
			}
		})
	}
}

// TestMarkTimedOutWhileJobsAreReused: harakiri's reads race the requests
// ending and the gateway rewriting its request for the next one; under the
// job's lock they never see a request being rewritten (go test -race finds
// the race without the lock).
func TestMarkTimedOutWhileJobsAreReused(t *testing.T) {
	d, err := newDispatcher(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	req := &wsgi.Request{} // one request, reused as a gateway reuses it
	ids := make(chan uint32, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for id := range ids {
			if method, _ := d.markTimedOut(id); method != "" {
				assert.Equal(t, "GET", method)
			}
		}
	}()
	for i := range 2000 {
		req.Vars.Reset()
		req.Vars.Add("REQUEST_METHOD", "GET")
		req.Vars.Add("PATH_INFO", "/"+string(rune('a'+i%26)))
		j := d.newJob(req)
		require.NoError(t, d.requests.take(context.Background(), nil, j))
		select {
		case ids <- j.id:
		default:
		}
		j.release(d.requests)
	}
	close(ids)
	<-done
}
