// Tests of a busy slot taking a second request: only one that found every
// slot busy, and one its worker never began goes to another slot when the
// worker dies.
package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newWaitingRig is a dispatchRig whose requests wait until the test starts
// a slot, as they do when every slot is busy.
func newWaitingRig(t *testing.T, slots int) (*dispatchRig, func(i int)) {
	return newRig(t, slots)
}

func TestDispatchSendsAWaitingRequestToABusySlot(t *testing.T) {
	rig, start := newWaitingRig(t, 1)
	w := rig.workers[0]
	recA, recB := &recorder{}, &recorder{}
	doneA := rig.serve(context.Background(), recA, "/a", "")
	eventually(t, func() bool { return rig.d.waiting.Load() == 1 }, "A waits")
	doneB := rig.serve(context.Background(), recB, "/b", "")
	eventually(t, func() bool { return rig.d.waiting.Load() == 2 }, "B waits")
	start(0)
	idA, _, _ := w.nextRequest()
	// B reaches the worker while A is still unanswered.
	idB, vars, _ := w.peekRequest()
	assert.Equal(t, "/b", vars["PATH_INFO"])
	assert.Equal(t, 2, rig.slots[0].pending())
	w.write(append(head(idA, "200 OK"), end(idA, 0)...))
	require.NoError(t, wait(t, doneA))
	w.write(append(head(idB, "201 Created"), end(idB, 0)...))
	require.NoError(t, wait(t, doneB))
	assert.Equal(t, []string{"head 200 OK"}, recA.log())
	assert.Equal(t, []string{"head 201 Created"}, recB.log())
}

func TestDispatchPrefersAnIdleSlotToABusyOne(t *testing.T) {
	rig := newDispatchRig(t, 2)
	recA, recB := &recorder{}, &recorder{}
	doneA := rig.serve(context.Background(), recA, "/a", "")
	eventually(t, func() bool { return rig.slots[0].busy() || rig.slots[1].busy() }, "a slot took A")
	busy := 0
	if rig.slots[1].busy() {
		busy = 1
	}
	idA, _, _ := rig.workers[busy].nextRequest()
	doneB := rig.serve(context.Background(), recB, "/b", "")
	// The idle slot gets B, not the busy one.
	idB, vars, _ := rig.workers[1-busy].nextRequest()
	assert.Equal(t, "/b", vars["PATH_INFO"])
	assert.Equal(t, 1, rig.slots[busy].pending())
	rig.workers[busy].write(append(head(idA, "200 OK"), end(idA, 0)...))
	rig.workers[1-busy].write(append(head(idB, "200 OK"), end(idB, 0)...))
	require.NoError(t, wait(t, doneA))
	require.NoError(t, wait(t, doneB))
}

func TestDispatchRetriesARequestQueuedBehindOneWhoseWorkerDied(t *testing.T) {
	rig, start := newWaitingRig(t, 2)
	recA, recB := &recorder{}, &recorder{}
	doneA := rig.serve(context.Background(), recA, "/a", "")
	eventually(t, func() bool { return rig.d.waiting.Load() == 1 }, "A waits")
	doneB := rig.serve(context.Background(), recB, "/b", "")
	eventually(t, func() bool { return rig.d.waiting.Load() == 2 }, "B waits")
	start(0)
	rig.workers[0].nextRequest()
	rig.workers[0].peekRequest()
	// The worker dies running A: A may have run, so it gets 502; B never
	// began, so it goes to the other slot.
	require.NoError(t, rig.workers[0].conn.Close())
	require.NoError(t, wait(t, doneA))
	assert.Equal(t, "head 502 Bad Gateway", recA.log()[0])
	start(1)
	id, vars, _ := rig.workers[1].nextRequest()
	assert.Equal(t, "/b", vars["PATH_INFO"])
	rig.workers[1].write(append(head(id, "200 OK"), end(id, 0)...))
	require.NoError(t, wait(t, doneB))
	assert.Equal(t, []string{"head 200 OK"}, recB.log())
}
