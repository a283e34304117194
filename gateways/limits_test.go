// Tests of the request body limit (limits.go).
package gateways

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
)

func TestLimitBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		limit   int64
		want    string
		tooLong bool
	}{
		{name: "no limit", body: "abcdef", limit: 0, want: "abcdef"},
		{name: "under the limit", body: "abc", limit: 5, want: "abc"},
		{name: "at the limit", body: "abcde", limit: 5, want: "abcde"},
		{name: "one byte over", body: "abcdef", limit: 5, want: "abcde", tooLong: true},
		{name: "far over", body: strings.Repeat("x", 1000), limit: 10, want: strings.Repeat("x", 10), tooLong: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte per read, as a trickling client sends it.
			got, err := io.ReadAll(limitBody(iotest.OneByteReader(strings.NewReader(tt.body)), tt.limit))
			assert.Equal(t, tt.want, string(got))
			if tt.tooLong {
				assert.ErrorIs(t, err, errBodyTooLarge)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestReadBodyOverLimitLeavesNoSpoolFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	_, err := readBody(limitBody(strings.NewReader(strings.Repeat("x", 100)), 50), -1, 10, nil)
	assert.ErrorIs(t, err, errBodyTooLarge)
	left, err := filepath.Glob(filepath.Join(dir, "*"))
	assert.NoError(t, err)
	assert.Empty(t, left)
}

func TestOverLimit(t *testing.T) {
	tests := []struct {
		declared, limit int64
		want            bool
	}{
		{declared: 10, limit: 0, want: false},
		{declared: -1, limit: 5, want: false},
		{declared: 5, limit: 5, want: false},
		{declared: 6, limit: 5, want: true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, overLimit(tt.declared, tt.limit), "declared %d, limit %d", tt.declared, tt.limit)
	}
}
