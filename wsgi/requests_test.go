package wsgi

import (
	"unsafe"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestTable(t *testing.T, entries int) RequestTable {
	t.Helper()
	words := make([]uint64, entries*RequestEntryLen/8) // 8-byte aligned, as an mmap is
	mem := unsafeBytes(words)
	table, err := NewRequestTable(mem)
	require.NoError(t, err)
	return table
}

func TestRequestWordRoundTrips(t *testing.T) {
	for _, w := range []RequestWord{
		{ID: 1, Phase: PhaseQueued},
		{ID: 0xffffffff, Phase: PhaseQueued, Waiting: true},
		{ID: 77, Phase: PhaseTaken, PID: 1},
		{ID: 78, Phase: PhaseDone, Waiting: true, PID: maxTakerPID},
		{ID: 79, Phase: PhaseLost},
	} {
		assert.Equal(t, w, DecodeRequestWord(EncodeRequestWord(w)))
	}
}

func TestNewRequestTableWantsAPowerOfTwoOfEntries(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{0, false}, {RequestEntryLen, true}, {3 * RequestEntryLen, false}, {4 * RequestEntryLen, true}, {RequestEntryLen + 8, false},
	} {
		_, err := NewRequestTable(make([]byte, tc.size))
		assert.Equal(t, tc.ok, err == nil, "size %d", tc.size)
	}
}

func TestRequestTableIDsNameTheirEntry(t *testing.T) {
	table := newTestTable(t, 4)
	table.Post(5, false)  // entry 1
	table.Post(10, false) // entry 2
	assert.Equal(t, RequestWord{ID: 5, Phase: PhaseQueued}, table.Load(5))
	assert.Equal(t, RequestWord{ID: 5, Phase: PhaseQueued}, table.Load(1), "id 1 shares entry 1")
	assert.Equal(t, RequestWord{ID: 10, Phase: PhaseQueued}, table.Load(10))
}

func TestRequestTableWithdrawOnlyWhatNoWorkerClaimed(t *testing.T) {
	table := newTestTable(t, 4)
	for _, tc := range []struct {
		name  string
		word  RequestWord
		id    uint32
		taken bool // Withdraw's answer
	}{
		{"queued", RequestWord{ID: 6, Phase: PhaseQueued}, 6, true},
		{"queued and waited for", RequestWord{ID: 6, Phase: PhaseQueued, Waiting: true}, 6, true},
		{"claimed", RequestWord{ID: 6, Phase: PhaseTaken, PID: 4242}, 6, false},
		{"done", RequestWord{ID: 6, Phase: PhaseDone, PID: 4242}, 6, false},
		{"already given up", RequestWord{ID: 6, Phase: PhaseLost}, 6, false},
		{"the entry holds a later request", RequestWord{ID: 10, Phase: PhaseQueued}, 6, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeWord(table, tc.word)
			assert.Equal(t, tc.taken, table.Withdraw(tc.id))
			want := tc.word
			if tc.taken {
				want.Phase = PhaseLost
			}
			assert.Equal(t, want, table.Load(tc.word.ID))
		})
	}
}

func TestRequestTableAwaitSetsWaitingAndReturnsTheWordBefore(t *testing.T) {
	table := newTestTable(t, 4)
	storeWord(table, RequestWord{ID: 9, Phase: PhaseDone, PID: 4194304})
	before, err := table.Await(9)
	require.NoError(t, err)
	assert.Equal(t, RequestWord{ID: 9, Phase: PhaseDone, PID: 4194304}, before)
	assert.True(t, table.Load(9).Waiting)

	_, err = table.Await(13) // entry 1 holds request 9
	assert.ErrorIs(t, err, errNotThisRequest)
}

func storeWord(table RequestTable, w RequestWord) {
	*table.word(w.ID) = EncodeRequestWord(w)
}

func unsafeBytes(words []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
}
