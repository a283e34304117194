// The worker's scoreboard stores against the master's reading of them: a
// worker can die between any two stores, and the master then decides from
// the record as it was left whether a request may have run (502) or may go
// to another worker (run again). A request whose app may have been called
// must never look as if it never began, or a POST runs twice.
package pyembed

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

func TestScoreboardNeverShowsABegunRequestAsNotBegun(t *testing.T) {
	// Two requests sent to one slot back to back: the second was sent while
	// the first ran, so it is to begin once the slot has served one.
	const first, second = 7, 8
	requests := []struct {
		id           uint32
		servedBefore uint64
	}{{first, 0}, {second, 1}}
	// The record after each of the worker's stores, and what the master
	// must conclude from it. The app is called once the id is stored, so
	// from that row on its request may have run.
	states := []struct {
		after         string
		current       uint32
		served        uint64
		begunFirst    bool
		begunSecond   bool
		stores, ofReq int
	}{
		{"nothing", 0, 0, false, false, 0, 0},
		{"first: started", 0, 0, false, false, 1, 0},
		{"first: id (then the app runs)", first, 0, true, false, 2, 0},
		{"first: served", first, 1, true, false, 3, 0},
		{"first: idle", 0, 1, true, false, 4, 0},
		{"second: started", 0, 1, true, false, 1, 1},
		{"second: id (then the app runs)", second, 1, true, true, 2, 1},
		{"second: served", second, 2, true, true, 3, 1},
		{"second: idle", 0, 2, true, true, 4, 1},
	}
	require.Equal(t, 4, recordStores, "the table lists every store of gw_record_stores")
	require.Equal(t, 2, recordStoresBeforeApp)
	for _, st := range states {
		t.Run(st.after, func(t *testing.T) {
			mem, err := unix.Mmap(-1, 0, wsgi.SlotRecordLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_SHARED)
			require.NoError(t, err)
			defer unix.Munmap(mem)
			board, err := wsgi.NewScoreboard(mem)
			require.NoError(t, err)
			// Every store of the requests before this one, then this one's
			// first st.stores: the worker died right after them.
			for _, r := range requests[:st.ofReq] {
				storeRecord(board.Record(0), r.id, 0, recordStores)
			}
			storeRecord(board.Record(0), requests[st.ofReq].id, 0, st.stores)

			assert.Equal(t, st.current, board.CurrentID(0), "current id")
			assert.Equal(t, st.served, board.Served(0), "served")
			assert.Equal(t, st.begunFirst, board.Begun(0, first, requests[0].servedBefore), "first request begun")
			assert.Equal(t, st.begunSecond, board.Begun(0, second, requests[1].servedBefore), "second request begun")
		})
	}
}
