package wsgi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVarsEncoding(t *testing.T) {
	cases := []struct {
		name  string
		pairs [][2]string
		block []byte
	}{
		{"empty", nil, nil},
		{"one pair", [][2]string{{"A", "bc"}}, []byte{1, 0, 'A', 2, 0, 'b', 'c'}},
		{"empty value", [][2]string{{"QUERY_STRING", ""}}, append(append([]byte{12, 0}, "QUERY_STRING"...), 0, 0)},
		{"order kept", [][2]string{{"B", "1"}, {"A", "2"}}, []byte{1, 0, 'B', 1, 0, '1', 1, 0, 'A', 1, 0, '2'}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v Vars
			for _, p := range tc.pairs {
				v.Add(p[0], p[1])
			}
			require.NoError(t, v.Err())
			assert.Equal(t, tc.block, v.Block())
			var got [][2]string
			require.NoError(t, EachVar(v.Block(), func(k, val []byte) bool {
				got = append(got, [2]string{string(k), string(val)})
				return true
			}))
			assert.Equal(t, tc.pairs, got)
		})
	}
}

func TestVarsGetAndMap(t *testing.T) {
	var v Vars
	v.Add("PATH_INFO", "/a")
	v.Add("HTTP_X", "1")
	v.Add("HTTP_X", "2")
	got, ok := v.Get("HTTP_X")
	assert.True(t, ok)
	assert.Equal(t, "1", got, "Get returns the first value")
	_, ok = v.Get("MISSING")
	assert.False(t, ok)
	assert.Equal(t, map[string]string{"PATH_INFO": "/a", "HTTP_X": "2"}, v.Map())

	v.Reset()
	assert.Empty(t, v.Block())
	assert.Empty(t, v.Map())
}

func TestVarsRefusesOverlongFields(t *testing.T) {
	long := strings.Repeat("x", maxVarLen+1)
	cases := []struct{ name, key, value string }{
		{"key", long, "v"},
		{"value", "HTTP_COOKIE", long},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v Vars
			v.Add(tc.key, tc.value)
			assert.ErrorIs(t, v.Err(), ErrVarTooLong)
			assert.Empty(t, v.Block(), "an overlong pair is not added")
		})
	}
	var v Vars
	v.Add("HTTP_COOKIE", strings.Repeat("x", maxVarLen))
	assert.NoError(t, v.Err(), "exactly 65535 bytes fit")
}

func TestEachVarRejectsOverrunningBlocks(t *testing.T) {
	cases := []struct {
		name  string
		block []byte
	}{
		{"half a length", []byte{1}},
		{"key overruns", []byte{5, 0, 'A'}},
		{"value length missing", []byte{1, 0, 'A'}},
		{"value overruns", []byte{1, 0, 'A', 9, 0, 'b'}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, EachVar(tc.block, func(_, _ []byte) bool { return true }), ErrBadVarsBlock)
		})
	}
}

func TestEachVarStopsWhenAsked(t *testing.T) {
	var v Vars
	v.Add("A", "1")
	v.Add("B", "2")
	calls := 0
	require.NoError(t, EachVar(v.Block(), func(_, _ []byte) bool { calls++; return false }))
	assert.Equal(t, 1, calls)
}
