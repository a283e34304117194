// The worker's request-table operations (gw_worker_requests.c) raced
// against the master's (wsgi.RequestTable), on a shared mapping as the
// processes share it: a request is run by at most one worker, and a
// response is finalized exactly once — from the entry, or from the FrameEnd
// the worker sends because the master waits — however the two interleave.
package pyembed

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

// raceRounds bounds each race; both sides start together on a spin.
const raceRounds = 20000

func sharedRequestTable(t *testing.T, entries int) wsgi.RequestTable {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, entries*wsgi.RequestEntryLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Munmap(mem) })
	table, err := wsgi.NewRequestTable(mem)
	require.NoError(t, err)
	return table
}

// race runs a and b at the same moment, each on its own thread.
func race(a, b func()) {
	var ready atomic.Int32
	var wg sync.WaitGroup
	for _, f := range []func(){a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Add(1)
			for ready.Load() < 2 {
				runtime.Gosched()
			}
			f()
		}()
	}
	wg.Wait()
}

func TestRequestTableCompletionComesThroughTheEntry(t *testing.T) {
	table := sharedRequestTable(t, 8)
	want := wsgi.Completion{Status: 404, KeepAlive: true, HeadBytes: 120, BodyBytes: 1 << 33, HeadFields: 5}
	for _, tc := range []struct {
		name         string
		eager        bool // the master wanted the FrameEnd from the start
		frameFollows bool // the app set log variables
		frameSent    int
	}{
		{"lazy: the master reads the entry", false, false, 0},
		{"eager: the worker sends the FrameEnd", true, false, 1},
		{"lazy with log variables: the worker sends the FrameEnd", false, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table.Post(11, tc.eager)
			require.True(t, claimRequest(table.Entry(11), 11, 4194304))
			assert.Equal(t, wsgi.RequestWord{ID: 11, Phase: wsgi.PhaseTaken, Waiting: tc.eager, PID: 4194304}, table.Load(11))
			assert.NotZero(t, table.TakenNS(11))
			assert.Equal(t, tc.frameSent, endRequest(table.Entry(11), 11, want, tc.frameFollows))
			assert.Equal(t, wsgi.PhaseDone, table.Load(11).Phase)
			assert.Equal(t, tc.frameFollows, table.FrameFollows(11))
			assert.Equal(t, want, table.Completion(11))
		})
	}
	broken := wsgi.Completion{Status: 200, Broken: true}
	table.Post(12, false)
	require.True(t, claimRequest(table.Entry(12), 12, 100))
	endRequest(table.Entry(12), 12, broken, false)
	assert.Equal(t, broken, table.Completion(12))
}

func TestRequestTableClaimRefusesWhatIsNotQueued(t *testing.T) {
	table := sharedRequestTable(t, 8)
	table.Post(3, false)
	require.True(t, table.Withdraw(3))
	assert.False(t, claimRequest(table.Entry(3), 3, 100), "a copy of a request the master gave up")

	table.Post(11, false) // entry 3 again, a later request
	assert.False(t, claimRequest(table.Entry(3), 3, 100), "a copy of an earlier request in the same entry")
	require.True(t, claimRequest(table.Entry(11), 11, 100))
	assert.False(t, claimRequest(table.Entry(11), 11, 200), "a request another worker claimed")
	assert.Equal(t, -1, endRequest(table.Entry(3), 3, wsgi.Completion{}, false), "ending a request the slot did not claim")
}

func TestRequestTableRunsARequestAtMostOnce(t *testing.T) {
	table := sharedRequestTable(t, 1)
	var claimed, withdrawn int
	for id := uint32(1); id <= raceRounds; id++ {
		table.Post(id, false)
		var c, w bool
		race(func() { c = claimRequest(table.Entry(id), id, 100) },
			func() { w = table.Withdraw(id) })
		require.NotEqual(t, c, w, "round %d: claimed %v, withdrawn %v", id, c, w)
		if c {
			claimed++
		} else {
			withdrawn++
		}
	}
	t.Logf("%d claimed first, %d withdrawn first", claimed, withdrawn)
}

func TestRequestTableFinalizesAResponseExactlyOnce(t *testing.T) {
	table := sharedRequestTable(t, 1)
	var fromEntry, fromFrame int
	for id := uint32(1); id <= raceRounds; id++ {
		table.Post(id, false)
		require.True(t, claimRequest(table.Entry(id), id, 100))
		var sent int
		var before wsgi.RequestWord
		var err error
		race(func() { sent = endRequest(table.Entry(id), id, wsgi.Completion{Status: 200, KeepAlive: true}, false) },
			func() { before, err = table.Await(id) })
		require.NoError(t, err)
		require.NotEqual(t, -1, sent)
		readsEntry := before.Phase == wsgi.PhaseDone
		require.NotEqual(t, readsEntry, sent == 1, "round %d: the master reads the entry %v, the worker sends the FrameEnd %v", id, readsEntry, sent == 1)
		if readsEntry {
			require.Equal(t, wsgi.Completion{Status: 200, KeepAlive: true}, table.Completion(id))
			fromEntry++
		} else {
			fromFrame++
		}
	}
	t.Logf("%d finalized from the entry, %d from the FrameEnd", fromEntry, fromFrame)
}
