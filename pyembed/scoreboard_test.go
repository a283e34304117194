// The worker's scoreboard stores, made by its own C code one at a time: the
// record after each, as harakiri and the stats read it. The id is in place
// before the app is called and stays until served counts the request, so a
// request that may be running always shows (harakiri finds it) and is
// never counted before it ran. Whether a request may have run when its
// worker dies is the request table's claim (requests_test.go).
package pyembed

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gowsgi/gowsgi/wsgi"
)

func TestScoreboardRecordAfterEachStore(t *testing.T) {
	const first, second = 7, 8
	requests := []uint32{first, second}
	states := []struct {
		after         string
		current       uint32
		served        uint64
		stores, ofReq int
	}{
		{"nothing", 0, 0, 0, 0},
		{"first: started", 0, 0, 1, 0},
		{"first: id (then the app runs)", first, 0, 2, 0},
		{"first: served", first, 1, 3, 0},
		{"first: idle", 0, 1, 4, 0},
		{"second: started", 0, 1, 1, 1},
		{"second: id (then the app runs)", second, 1, 2, 1},
		{"second: served", second, 2, 3, 1},
		{"second: idle", 0, 2, 4, 1},
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
			// first st.stores.
			for _, id := range requests[:st.ofReq] {
				storeRecord(board.Record(0), id, 0, recordStores)
			}
			storeRecord(board.Record(0), requests[st.ofReq], 0, st.stores)

			assert.Equal(t, st.current, board.CurrentID(0), "current id")
			assert.Equal(t, st.served, board.Served(0), "served")
		})
	}
}
