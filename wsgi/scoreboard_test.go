package wsgi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScoreboardBegun reads request 7, to begin once the slot has served
// 3, from records a worker can leave; pyembed's tests make the same
// records with the worker's own stores.
func TestScoreboardBegun(t *testing.T) {
	tests := []struct {
		name    string
		current uint32
		served  uint64
		want    bool
	}{
		{"the request ahead still runs", 6, 2, false},
		{"the request ahead counted, not yet idle", 6, 3, false},
		{"idle, the request not begun", 0, 3, false},
		{"running it", 7, 3, true},
		{"counted it, not yet idle", 7, 4, true},
		{"done with it", 0, 4, true},
		{"running the next one", 8, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			board, err := NewScoreboard(make([]byte, SlotRecordLen))
			require.NoError(t, err)
			for range tt.served {
				board.Begin(0, 1, 1)
				board.Finish(0)
			}
			if tt.current != 0 {
				board.Begin(0, tt.current, 1)
			}
			require.Equal(t, tt.served, board.Served(0))
			assert.Equal(t, tt.want, board.Begun(0, 7, 3))
		})
	}
}
