// Tests of the scheduler: a waiting request goes to the slot whose request
// ends, and only a small frame waits behind another in a slot's socket.
package server

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDispatchSendsAWaitingRequestWhenOneEnds(t *testing.T) {
	rig := newDispatchRig(t, 1)
	w := rig.workers[0]
	recA, recB, recC := &recorder{}, &recorder{}, &recorder{}
	doneA := rig.serve(context.Background(), recA, "/a", "")
	idA, _, _ := w.nextRequest()
	doneB := rig.serve(context.Background(), recB, "/b", "")
	eventually(t, func() bool { return rig.slots[0].pending() == 2 }, "B goes behind A")
	doneC := rig.serve(context.Background(), recC, "/c", "")
	eventually(t, func() bool { return rig.d.waiting.Load() == 1 }, "C waits")

	w.write(append(head(idA, "200 OK"), end(idA, 0)...))
	require.NoError(t, wait(t, doneA))
	// C reaches the worker while B is still unanswered.
	idB, _, _ := w.nextRequest()
	idC, vars, _ := w.peekRequest()
	assert.Equal(t, "/c", vars["PATH_INFO"])
	assert.Equal(t, int64(0), rig.d.waiting.Load())
	w.write(append(head(idB, "201 Created"), end(idB, 0)...))
	w.write(append(head(idC, "202 Accepted"), end(idC, 0)...))
	require.NoError(t, wait(t, doneB))
	require.NoError(t, wait(t, doneC))
	assert.Equal(t, []string{"head 201 Created"}, recB.log())
	assert.Equal(t, []string{"head 202 Accepted"}, recC.log())
}

func TestDispatchKeepsALargeFrameFromABusySlot(t *testing.T) {
	rig := newDispatchRig(t, 1)
	w := rig.workers[0]
	recA, recB := &recorder{}, &recorder{}
	doneA := rig.serve(context.Background(), recA, "/a", "")
	idA, _, _ := w.nextRequest()
	large := strings.Repeat("x", pipelineFrameCap)
	doneB := rig.serve(context.Background(), recB, "/b", large)
	eventually(t, func() bool { return rig.d.waiting.Load() == 1 }, "B waits")
	assert.Equal(t, 1, rig.slots[0].pending(), "B's frame is not behind A's")

	w.write(append(head(idA, "200 OK"), end(idA, 0)...))
	require.NoError(t, wait(t, doneA))
	idB, vars, body := w.nextRequest()
	assert.Equal(t, "/b", vars["PATH_INFO"])
	assert.Equal(t, large, body)
	w.write(append(head(idB, "200 OK"), end(idB, 0)...))
	require.NoError(t, wait(t, doneB))
}
