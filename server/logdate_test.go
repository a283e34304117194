package server

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDatedWriter(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 5, 7, 0, time.Local)
	tests := []struct {
		format string
		writes []string
		want   string
	}{
		{"", []string{"one\ntwo\n"}, "Thu Dec  3 09:05:07 2026 - one\nThu Dec  3 09:05:07 2026 - two\n"},
		{"", []string{"a line ", "in two writes\n"}, "Thu Dec  3 09:05:07 2026 - a line in two writes\n"},
		{"%Y-%m-%d %H:%M", []string{"x\n"}, "2026-12-03 09:05 - x\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		d, err := newDatedWriter(&out, tt.format)
		require.NoError(t, err)
		d.dateOfNow = func() time.Time { return at }
		for _, w := range tt.writes {
			n, err := d.Write([]byte(w))
			require.NoError(t, err)
			assert.Equal(t, len(w), n)
		}
		assert.Equal(t, tt.want, out.String(), tt.format)
	}
}
