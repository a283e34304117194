package wsgi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckStatus(t *testing.T) {
	cases := []struct {
		status string
		ok     bool
	}{
		{"200 OK", true},
		{"404 Not Found", true},
		{"599 Custom Reason", true},
		{"200", false},
		{"200OK", false},
		{"20 OK", false},
		{"abc OK", false},
		{"099 Low", false},
		{"200 OK\r\nX-Injected: 1", false},
		{"", false},
	}
	for _, tc := range cases {
		err := CheckStatus(tc.status)
		if tc.ok {
			assert.NoError(t, err, "%q", tc.status)
		} else {
			assert.ErrorIs(t, err, ErrBadStatus, "%q", tc.status)
		}
	}
}

func TestCheckHeader(t *testing.T) {
	cases := []struct {
		name, value string
		ok          bool
	}{
		{"Content-Type", "text/html; charset=utf-8", true},
		{"X-Tab", "a\tb", true},
		{"Set-Cookie", "a=1; Path=/", true},
		{"Connection", "close", false},
		{"transfer-encoding", "chunked", false},
		{"Keep-Alive", "timeout=5", false},
		{"Bad Name", "v", false},
		{"X-Split", "a\r\nInjected: 1", false},
		{"X-Nul", "a\x00b", false},
		{"", "v", false},
	}
	for _, tc := range cases {
		err := CheckHeader(tc.name, tc.value)
		if tc.ok {
			assert.NoError(t, err, "%q: %q", tc.name, tc.value)
		} else {
			assert.ErrorIs(t, err, ErrBadHeader, "%q: %q", tc.name, tc.value)
		}
	}
}

func TestScoreboardRecords(t *testing.T) {
	_, err := NewScoreboard(make([]byte, SlotRecordLen+1))
	assert.Error(t, err)

	board, err := NewScoreboard(make([]byte, 2*SlotRecordLen))
	assert.NoError(t, err)
	assert.Equal(t, 2, board.Slots())
	board.Begin(1, 42, 1_000)
	assert.Equal(t, uint32(42), board.CurrentID(1))
	assert.Equal(t, uint32(0), board.CurrentID(0), "slots do not share a record")
	assert.Equal(t, int64(1_000), board.StartedNS(1))
	board.Finish(1)
	assert.Equal(t, uint32(0), board.CurrentID(1))
	assert.Equal(t, uint64(1), board.Served(1))
	board.Abort(0, 7)
	assert.Equal(t, []byte{7, 0, 0, 0}, board.Record(0)[slotAbortID:slotAbortID+4])
}

func BenchmarkCheckHeader(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = CheckHeader("Content-Type", "text/plain; charset=utf-8")
	}
}
