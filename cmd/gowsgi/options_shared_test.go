package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/pyembed"
)

// TestSharedSpec: --cache2, --cache, --cache-blocksize, --locks and
// --metric become the shared area's spec with uWSGI's defaults, the old
// --cache's cache first (uWSGI's default cache).
func TestSharedSpec(t *testing.T) {
	def := func(name string, items uint64) pyembed.CacheSpec {
		return pyembed.CacheSpec{Name: name, MaxItems: items, BlockSize: 65536, KeySize: 2048, HashSize: 65536}
	}
	tests := []struct {
		name string
		args []string
		want pyembed.SharedSpec
	}{
		{name: "nothing declared", want: pyembed.SharedSpec{}},
		{
			name: "cache2 defaults and keys",
			args: []string{"--cache2", "name=a,items=10", "--cache2",
				"name=b,items=4,blocksize=64,keysize=16,hashsize=7,blocks=8,math_initial=-3,ignore_full=1,clear_on_full=1,no_expire=1,lazy_expire=1,hash=djb33x"},
			want: pyembed.SharedSpec{Caches: []pyembed.CacheSpec{def("a", 10), {Name: "b", MaxItems: 4, BlockSize: 64,
				KeySize: 16, HashSize: 7, MathInitial: -3, IgnoreFull: true, ClearOnFull: true, NoExpire: true}}},
		},
		{
			name: "old cache first, its blocksize given after it",
			args: []string{"--cache2", "name=a,max_items=3", "--cache", "5", "--cache-blocksize", "100"},
			want: pyembed.SharedSpec{Caches: []pyembed.CacheSpec{
				{Name: "default", MaxItems: 5, BlockSize: 100, KeySize: 2048, HashSize: 65536}, def("a", 3)}},
		},
		{
			name: "a backslash keeps a comma in a name",
			args: []string{"--cache2", `name=a\,b,items=2`},
			want: pyembed.SharedSpec{Caches: []pyembed.CacheSpec{def("a,b", 2)}},
		},
		{
			name: "locks and metrics",
			args: []string{"--locks", "3", "--metric", "bare.name", "--metric", "name=g,type=gauge,initial_value=7",
				"--metric", "name=a-b_c,type=absolute"},
			want: pyembed.SharedSpec{Locks: 3, Metrics: []pyembed.MetricSpec{
				{Name: "bare.name", Type: pyembed.MetricCounter}, {Name: "g", Type: pyembed.MetricGauge, Initial: 7},
				{Name: "a-b_c", Type: pyembed.MetricAbsolute}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(append([]string{"--module", "m"}, tt.args...))
			require.NoError(t, err)
			assert.Equal(t, tt.want, o.sharedSpec())
		})
	}
}

// TestSharedOptionsErrors: what uWSGI refuses, and what gowsgi does not
// implement, stops the start naming it.
func TestSharedOptionsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--cache2", "items=10"}, "--cache2 items=10: the cache needs a name= (uWSGI: you have to specify a cache name)"},
		{[]string{"--cache2", "name=a"}, "--cache2 name=a: the cache needs items= (its maximum number of items)"},
		{[]string{"--cache2", "name=a,items=0"}, `--cache2 name=a,items=0: items="0" is not a number of at least 1`},
		{[]string{"--cache2", "name=a,items=x"}, `--cache2 name=a,items=x: items="x" is not a number of at least 1`},
		{[]string{"--cache2", "name=a,items=10,keysize=65535"}, "--cache2 name=a,items=10,keysize=65535: keysize must be under 65535"},
		{[]string{"--cache2", "name=a,items=10,blocks=5"}, "--cache2 name=a,items=10,blocks=5: blocks must be at least items (10)"},
		{[]string{"--cache2", "name=a,items=10,store=/tmp/c"}, "--cache2 name=a,items=10,store=/tmp/c: gowsgi does not implement a cache kept in a file (store=) yet"},
		{[]string{"--cache2", "name=a,items=10,bitmap=1"}, "--cache2 name=a,items=10,bitmap=1: gowsgi does not implement bitmap caches (values over several blocks) (bitmap=) yet"},
		{[]string{"--cache2", "name=a,items=10,purge_lru=1"}, "--cache2 name=a,items=10,purge_lru=1: gowsgi does not implement LRU purging (purge_lru=) yet"},
		{[]string{"--cache2", "name=a,items=10,nodes=127.0.0.1:4000"}, "--cache2 name=a,items=10,nodes=127.0.0.1:4000: gowsgi does not implement caches synced over UDP (nodes=) yet"},
		{[]string{"--cache2", "name=a,items=10,hash=murmur2"}, "--cache2 name=a,items=10,hash=murmur2: gowsgi hashes cache keys with djb33x (uWSGI's default) only"},
		{[]string{"--cache2", "name=a,items=10,color=red"}, `--cache2 name=a,items=10,color=red: unknown key "color"`},
		{[]string{"--cache2", "name=a,items"}, `--cache2 name=a,items: "items" is not KEY=VALUE`},
		{[]string{"--cache2", "name=a,items=1", "--cache2", "name=a,items=2"}, `--cache2: there is a cache named "a" already`},
		{[]string{"--locks", "-1"}, "--locks: -1 is out of range (0 to 65536)"},
		{[]string{"--metric", "name=m,type=alias"}, `--metric name=m,type=alias: gowsgi's metrics are of type counter, gauge or absolute, not "alias"`},
		{[]string{"--metric", "name=m,collector=file"}, "--metric name=m,collector=file: gowsgi does not implement metric collector= yet (its metrics are set by the app)"},
		{[]string{"--metric", "name=a b"}, "--metric name=a b: a metric name is letters, digits, '.', '-' and '_' (at most 127)"},
		{[]string{"--metric", "type=gauge"}, "--metric type=gauge: a metric name is letters, digits, '.', '-' and '_' (at most 127)"},
		{[]string{"--metric", "m", "--metric", "name=m"}, `--metric name=m: there is a metric named "m" already`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseOptions(append([]string{"--module", "m"}, tt.args...))
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}
