// Tests of the shared queue when a worker dies: what it claimed may have
// run and is answered 502; what it read and never claimed, and what still
// waits in the queue, goes to another worker under a new id.
package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDispatchRetriesARequestQueuedBehindOneWhoseWorkerDied(t *testing.T) {
	rig := newDispatchRig(t, 2)
	recA, recB := &recorder{}, &recorder{}
	doneA := rig.serve(context.Background(), recA, "/a", "")
	idA, _, _ := rig.workers[0].nextRequest()
	doneB := rig.serve(context.Background(), recB, "/b", "")
	idB, _, _ := rig.workers[0].peekRequest()
	// The worker dies running A: A may have run, so it gets 502; B never
	// began, so it goes to the other worker.
	require.NoError(t, rig.workers[0].conn.Close())
	require.NoError(t, wait(t, doneA))
	assert.Equal(t, "head 502 Bad Gateway", recA.log()[0])
	id, vars, _ := rig.workers[1].nextRequest()
	assert.Equal(t, "/b", vars["PATH_INFO"])
	assert.NotContains(t, []uint32{idA, idB}, id)
	rig.workers[1].write(append(head(id, "200 OK"), end(id, 0)...))
	require.NoError(t, wait(t, doneB))
	assert.Equal(t, []string{"head 200 OK"}, recB.log())
}
