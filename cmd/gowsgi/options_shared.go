// The options of uWSGI's shared state, which the uwsgi module reaches:
// --cache2 and the older --cache/--cache-blocksize, --locks and --metric,
// read as uWSGI 2.0 reads them (keyval lists, its defaults and limits)
// into the pyembed.SharedSpec each generation's shared area is made from.
// A keyval key that asks for something gowsgi does not do (a persistent
// store, UDP sync, a bitmap cache) stops the start naming it.
package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gowsgi/gowsgi/pyembed"
)

// uWSGI's cache defaults (core/cache.c).
const (
	defaultCacheBlockSize = 65536
	defaultCacheKeySize   = 2048
	defaultCacheHashSize  = 65536
	maxCacheKeySize       = 65535 // exclusive: a key's length is a uint16
	maxLocks              = 1 << 16
)

// sharedOptions are the rows of the option table for the shared state.
func sharedOptions(o *options) []option {
	return []option{
		{names: []string{"--cache2"}, kind: kindString, arg: "name=N,items=N[,KEY=VALUE…]", check: o.cache2,
			help: "create a shared cache for uwsgi.cache_*: name, items (holds items - 1 keys), blocksize (largest value, 65536), keysize (2048), hashsize, blocks, math_initial, ignore_full, clear_on_full, no_expire; repeatable"},
		{names: []string{"--cache"}, kind: kindInt, arg: "N", min: 0, max: 1 << 40, target: &o.CacheItems,
			help: "create the shared cache \"default\" of N items (uWSGI's first-generation cache)"},
		{names: []string{"--cache-blocksize"}, kind: kindInt, arg: "BYTES", min: 1, max: 1 << 40, target: &o.CacheBlockSize,
			help: "the largest value --cache's cache holds; default 65536"},
		{names: []string{"--locks"}, kind: kindInt, arg: "N", min: 0, max: maxLocks, target: &o.Locks,
			help: "create user locks 1 to N for uwsgi.lock(n), besides lock 0"},
		{names: []string{"--metric"}, kind: kindString, arg: "name=NAME[,type=T,initial_value=N]", check: o.metric,
			help: "declare a metric for uwsgi.metric_*, shown in --stats and --metrics: type counter (default), gauge or absolute; repeatable"},
	}
}

// keyval reads uWSGI's "key=value,key=value" list; a backslash keeps the
// next character, so a value may hold a comma.
func keyval(name, value string) ([][2]string, error) {
	var items [][2]string
	var b strings.Builder
	flush := func() error {
		item := b.String()
		b.Reset()
		k, v, ok := strings.Cut(item, "=")
		if !ok || k == "" {
			return fmt.Errorf("%s %s: %q is not KEY=VALUE", name, value, item)
		}
		items = append(items, [2]string{k, v})
		return nil
	}
	for i := 0; i < len(value); i++ {
		switch c := value[i]; {
		case c == '\\' && i+1 < len(value):
			i++
			b.WriteByte(value[i])
		case c == ',':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			b.WriteByte(c)
		}
	}
	return items, flush()
}

// cacheRefused are the --cache2 keys of uWSGI features gowsgi lacks, and
// what each is.
var cacheRefused = map[string]string{
	"store": "a cache kept in a file", "store_sync": "a cache kept in a file", "storesync": "a cache kept in a file",
	"store_delete": "a cache kept in a file", "storedelete": "a cache kept in a file",
	"node": "caches synced over UDP", "nodes": "caches synced over UDP", "sync": "caches synced over UDP",
	"udp": "caches synced over UDP", "udp_servers": "caches synced over UDP", "udp_server": "caches synced over UDP",
	"udpservers": "caches synced over UDP", "udpserver": "caches synced over UDP",
	"bitmap": "bitmap caches (values over several blocks)", "lastmod": "the caches' last-modified time",
	"purge_lru": "LRU purging", "lru": "LRU purging",
}

// cache2 reads one --cache2.
func (o *options) cache2(name, value string) error {
	items, err := keyval(name, value)
	if err != nil {
		return err
	}
	c := pyembed.CacheSpec{BlockSize: defaultCacheBlockSize, KeySize: defaultCacheKeySize, HashSize: defaultCacheHashSize}
	var blocks uint64
	num := func(key, v string, min uint64) (uint64, error) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < min {
			return 0, fmt.Errorf("%s %s: %s=%q is not a number of at least %d", name, value, key, v, min)
		}
		return n, nil
	}
	for _, kv := range items {
		key, v := kv[0], kv[1]
		switch key {
		case "name":
			c.Name = v
		case "items", "max_items", "maxitems":
			c.MaxItems, err = num(key, v, 1)
		case "blocksize":
			c.BlockSize, err = num(key, v, 1)
		case "blocks":
			blocks, err = num(key, v, 1)
		case "keysize", "key_size":
			c.KeySize, err = num(key, v, 1)
		case "hashsize", "hash_size":
			c.HashSize, err = num(key, v, 1)
		case "hash":
			if v != "djb33x" {
				err = fmt.Errorf("%s %s: gowsgi hashes cache keys with djb33x (uWSGI's default) only", name, value)
			}
		case "math_initial":
			c.MathInitial, err = strconv.ParseInt(leadingNumber(v), 10, 64)
		case "ignore_full":
			c.IgnoreFull = true
		case "clear_on_full":
			c.ClearOnFull = true
		case "no_expire":
			c.NoExpire = true
		case "lazy_expire", "lazy", "sweep_on_full":
			// What gowsgi always does: an item expires when it is next
			// seen, and a full cache reuses its expired items first.
		default:
			if what, ok := cacheRefused[key]; ok {
				return fmt.Errorf("%s %s: gowsgi does not implement %s (%s=) yet", name, value, what, key)
			}
			return fmt.Errorf("%s %s: unknown key %q", name, value, key)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case c.Name == "":
		return fmt.Errorf("%s %s: the cache needs a name= (uWSGI: you have to specify a cache name)", name, value)
	case c.MaxItems == 0:
		return fmt.Errorf("%s %s: the cache needs items= (its maximum number of items)", name, value)
	case c.KeySize >= maxCacheKeySize:
		return fmt.Errorf("%s %s: keysize must be under %d", name, value, maxCacheKeySize)
	case blocks != 0 && blocks < c.MaxItems:
		return fmt.Errorf("%s %s: blocks must be at least items (%d)", name, value, c.MaxItems)
	}
	return o.addCache(name, c)
}

// addCache appends c, refusing a second cache of the same name (uWSGI
// would keep it and never find it).
func (o *options) addCache(name string, c pyembed.CacheSpec) error {
	if len(c.Name) > pyembed.SharedNameCap {
		return fmt.Errorf("%s: the cache name %q is longer than %d bytes", name, c.Name, pyembed.SharedNameCap)
	}
	if slices.ContainsFunc(o.Caches, func(other pyembed.CacheSpec) bool { return other.Name == c.Name }) {
		return fmt.Errorf("%s: there is a cache named %q already", name, c.Name)
	}
	o.Caches = append(o.Caches, c)
	return nil
}

// metricTypes are the --metric types an app can change.
var metricTypes = map[string]pyembed.MetricType{
	"counter": pyembed.MetricCounter, "gauge": pyembed.MetricGauge, "absolute": pyembed.MetricAbsolute,
}

// metric reads one --metric: a bare NAME, or a keyval list.
func (o *options) metric(name, value string) error {
	m := pyembed.MetricSpec{Name: value, Type: pyembed.MetricCounter}
	if strings.Contains(value, "=") {
		items, err := keyval(name, value)
		if err != nil {
			return err
		}
		m.Name = ""
		for _, kv := range items {
			key, v := kv[0], kv[1]
			switch key {
			case "name":
				m.Name = v
			case "type":
				t, ok := metricTypes[v]
				if !ok {
					return fmt.Errorf("%s %s: gowsgi's metrics are of type counter, gauge or absolute, not %q", name, value, v)
				}
				m.Type = t
			case "initial_value":
				if m.Initial, err = strconv.ParseInt(leadingNumber(v), 10, 64); err != nil {
					return fmt.Errorf("%s %s: initial_value=%q is not a number", name, value, v)
				}
			case "oid", "collector", "freq", "arg1", "arg2", "arg3", "arg1n", "arg2n", "arg3n", "children", "alias", "reset_after_push":
				return fmt.Errorf("%s %s: gowsgi does not implement metric %s= yet (its metrics are set by the app)", name, value, key)
			default:
				return fmt.Errorf("%s %s: unknown key %q", name, value, key)
			}
		}
	}
	return o.addMetric(name, value, m)
}

// addMetric appends m once its name is one uWSGI accepts.
func (o *options) addMetric(name, value string, m pyembed.MetricSpec) error {
	valid := m.Name != "" && len(m.Name) <= pyembed.SharedNameCap && strings.Trim(m.Name,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
	if !valid {
		return fmt.Errorf("%s %s: a metric name is letters, digits, '.', '-' and '_' (at most %d)", name, value, pyembed.SharedNameCap)
	}
	if slices.ContainsFunc(o.MetricSpecs, func(other pyembed.MetricSpec) bool { return other.Name == m.Name }) {
		return fmt.Errorf("%s %s: there is a metric named %q already", name, value, m.Name)
	}
	o.MetricSpecs = append(o.MetricSpecs, m)
	return nil
}

// sharedSpec is what each generation's shared area holds: --cache's cache
// first, as uWSGI creates it before the --cache2 ones, so it is the
// default one.
func (o *options) sharedSpec() pyembed.SharedSpec {
	caches := o.Caches
	if o.CacheItems > 0 {
		old := pyembed.CacheSpec{Name: "default", MaxItems: uint64(o.CacheItems), BlockSize: defaultCacheBlockSize,
			KeySize: defaultCacheKeySize, HashSize: defaultCacheHashSize}
		if o.CacheBlockSize > 0 {
			old.BlockSize = uint64(o.CacheBlockSize)
		}
		caches = append([]pyembed.CacheSpec{old}, caches...)
	}
	return pyembed.SharedSpec{Locks: o.Locks, Caches: caches, Metrics: o.MetricSpecs}
}
