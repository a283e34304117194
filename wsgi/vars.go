// Package wsgi holds the parts of the WSGI contract that do not need Python:
// the request as CGI variables plus a body, the response head, the rules a
// status line and headers must follow, and the framing the master and its
// workers speak over their socketpairs.
package wsgi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxVarLen is the longest key or value a vars block can carry: lengths are
// 16-bit, as in the uwsgi protocol's vars block
// (https://uwsgi-docs.readthedocs.io/en/latest/Protocol.html).
const maxVarLen = 0xffff

// ErrVarTooLong reports a key or value longer than a vars block can carry.
var ErrVarTooLong = errors.New("wsgi: variable longer than 65535 bytes")

// Vars is an ordered list of CGI variables kept in its wire form: for each
// pair a little-endian uint16 key length, the key, a uint16 value length and
// the value. Keeping the encoded form means a request crosses to a worker
// with one copy and no per-variable allocation. The zero Vars is empty and
// ready to use.
type Vars struct {
	block []byte
	err   error
}

// Add appends one variable. A key or value over 65535 bytes is not added;
// Err reports it.
func (v *Vars) Add(key, value string) { addVar(v, key, value) }

// AddBytes is Add for a key and value held as bytes, as protocol parsers
// have them, without converting them to strings.
func (v *Vars) AddBytes(key, value []byte) { addVar(v, key, value) }

func addVar[T string | []byte](v *Vars, key, value T) {
	if len(key) > maxVarLen || len(value) > maxVarLen {
		if v.err == nil {
			v.err = fmt.Errorf("%w: %.40q", ErrVarTooLong, key)
		}
		return
	}
	v.block = binary.LittleEndian.AppendUint16(v.block, uint16(len(key)))
	v.block = append(v.block, key...)
	v.block = binary.LittleEndian.AppendUint16(v.block, uint16(len(value)))
	v.block = append(v.block, value...)
}

// Err returns the first error met by Add, or nil.
func (v *Vars) Err() error { return v.err }

// Reset empties v, keeping its storage for reuse.
func (v *Vars) Reset() {
	v.block = v.block[:0]
	v.err = nil
}

// Block returns the encoded vars block. It aliases v's storage.
func (v *Vars) Block() []byte { return v.block }

// Get returns the value of the first variable named key.
func (v *Vars) Get(key string) (string, bool) {
	var value string
	found := false
	_ = EachVar(v.block, func(k, val []byte) bool {
		if string(k) == key {
			value, found = string(val), true
			return false
		}
		return true
	})
	return value, found
}

// Map returns the variables as a map, the last value winning; for tests and
// logs, not for the request path.
func (v *Vars) Map() map[string]string {
	m := make(map[string]string)
	_ = EachVar(v.block, func(k, val []byte) bool {
		m[string(k)] = string(val)
		return true
	})
	return m
}

// ErrBadVarsBlock reports a vars block whose lengths overrun it.
var ErrBadVarsBlock = errors.New("wsgi: vars block overruns its length")

// EachVar calls fn for each key/value pair of an encoded vars block, in
// order, until fn returns false. The slices alias block. It returns
// ErrBadVarsBlock when a length overruns the block.
func EachVar(block []byte, fn func(key, value []byte) bool) error {
	for len(block) > 0 {
		key, rest, ok := cutVar(block)
		if !ok {
			return ErrBadVarsBlock
		}
		value, rest, ok := cutVar(rest)
		if !ok {
			return ErrBadVarsBlock
		}
		if !fn(key, value) {
			return nil
		}
		block = rest
	}
	return nil
}

func cutVar(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}
