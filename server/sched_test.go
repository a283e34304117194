// Tests of where a request goes: the shared queue, or for a frame too big
// for one queue message an idle slot's own socket; a request no worker took
// is withdrawn when its client leaves, and --listen bounds what waits.
package server

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

func TestDispatchSendsAFrameTooBigForTheQueueToAnIdleSlot(t *testing.T) {
	rig := newDispatchRig(t, 2)
	recA, recB := &recorder{}, &recorder{}
	doneA := rig.serve(context.Background(), recA, "/a", "")
	idA, _, _ := rig.workers[0].nextRequest()
	large := strings.Repeat("x", wsgi.QueueFrameCap)
	doneB := rig.serve(context.Background(), recB, "/b", large)
	// Worker 0 is busy with A: B goes to worker 1's socket.
	idB, vars, body := rig.workers[1].nextAddressed()
	assert.Equal(t, "/b", vars["PATH_INFO"])
	assert.Equal(t, large, body)
	rig.workers[0].write(append(head(idA, "200 OK"), end(idA, 0)...))
	rig.workers[1].write(append(head(idB, "200 OK"), end(idB, 0)...))
	require.NoError(t, wait(t, doneA))
	require.NoError(t, wait(t, doneB))
}

func TestDispatchWithdrawsARequestWhoseClientLeftBeforeAnyWorkerTookIt(t *testing.T) {
	rig := newDispatchRig(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := rig.serve(ctx, &recorder{}, "/left", "")
	eventually(t, func() bool { return rig.d.notBegun() == 1 }, "request queued")
	cancel()
	assert.ErrorIs(t, wait(t, done), context.Canceled)
	assert.Zero(t, rig.d.notBegun())
	// The copy in the queue is dropped by the worker that reads it.
	id, _, _ := rig.workers[0].peekRequest()
	assert.False(t, rig.workers[0].claim(id))
}

func TestDispatchListenBoundsWhatWaits(t *testing.T) {
	rig := newDispatchRig(t, 1)
	rig.d.maxWaiting = 1
	waiting := rig.serve(context.Background(), &recorder{}, "/first", "")
	eventually(t, func() bool { return rig.d.notBegun() == 1 }, "first request queued")
	rec := &recorder{}
	require.NoError(t, wait(t, rig.serve(context.Background(), rec, "/second", "")))
	assert.Equal(t, "head 503 Service Unavailable", rec.log()[0])
	id, _, _ := rig.workers[0].nextRequest()
	rig.workers[0].write(append(head(id, "200 OK"), end(id, 0)...))
	require.NoError(t, wait(t, waiting))
}
