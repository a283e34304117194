// FastCGI's wire format: record headers, the bodies of the fixed-size
// records, and name-value pairs, as the specification lays them out
// (https://fastcgi-archives.github.io/FastCGI_Specification.html, sections
// 3 and 8). Nothing here knows about connections or requests.
package gateways

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// fcgiVersion is FCGI_VERSION_1, the only version there is.
const fcgiVersion = 1

// fcgiHeaderLen is FCGI_HEADER_LEN: every record starts with 8 bytes.
const fcgiHeaderLen = 8

// fcgiMaxContent is the most content one record carries (a 16-bit length).
const fcgiMaxContent = 0xffff

// fcgiChunk is how much response body goes in one STDOUT record: the largest
// multiple of 8 a record can carry, so full records need no padding (the
// specification recommends 8-byte-aligned records, section 3.3).
const fcgiChunk = fcgiMaxContent &^ 7

// fcgiRecordType is a record's type byte (section 8).
type fcgiRecordType uint8

const (
	fcgiBeginRequest    fcgiRecordType = 1
	fcgiAbortRequest    fcgiRecordType = 2
	fcgiEndRequest      fcgiRecordType = 3
	fcgiParams          fcgiRecordType = 4
	fcgiStdin           fcgiRecordType = 5
	fcgiStdout          fcgiRecordType = 6
	fcgiStderr          fcgiRecordType = 7
	fcgiData            fcgiRecordType = 8
	fcgiGetValues       fcgiRecordType = 9
	fcgiGetValuesResult fcgiRecordType = 10
	fcgiUnknownType     fcgiRecordType = 11
)

// fcgiKeepConn is the FCGI_KEEP_CONN bit of a BEGIN_REQUEST's flags: without
// it the application closes the connection once the request has ended.
const fcgiKeepConn = 1

// fcgiResponder is FCGI_RESPONDER, the one role gowsgi plays; the Authorizer
// and Filter roles are refused.
const fcgiResponder = 1

// fcgiProtocolStatus is an END_REQUEST's protocolStatus (section 5.5).
type fcgiProtocolStatus uint8

const (
	fcgiRequestComplete fcgiProtocolStatus = 0
	fcgiOverloaded      fcgiProtocolStatus = 2
	fcgiUnknownRole     fcgiProtocolStatus = 3
)

// The variables FCGI_GET_VALUES may ask about (section 4.1).
const (
	fcgiMaxConnsName = "FCGI_MAX_CONNS"
	fcgiMaxReqsName  = "FCGI_MAX_REQS"
	fcgiMpxsConnName = "FCGI_MPXS_CONNS"
)

var (
	errFCGIVersion = errors.New("fastcgi: record version is not 1")
	errFCGIPairs   = errors.New("fastcgi: name-value pair overruns its stream")
)

// fcgiHeader is a decoded record header.
type fcgiHeader struct {
	kind      fcgiRecordType
	id        uint16
	contentLn int
	paddingLn int
}

// readFCGIRecord reads one record from r into buf, which must hold
// fcgiMaxContent+255 bytes, and returns its header and content (aliasing
// buf). The padding is read and dropped.
func readFCGIRecord(r io.Reader, buf []byte) (fcgiHeader, []byte, error) {
	raw := buf[:fcgiHeaderLen]
	if _, err := io.ReadFull(r, raw); err != nil {
		return fcgiHeader{}, nil, err
	}
	if raw[0] != fcgiVersion {
		return fcgiHeader{}, nil, fmt.Errorf("%w: %d", errFCGIVersion, raw[0])
	}
	h := fcgiHeader{
		kind:      fcgiRecordType(raw[1]),
		id:        binary.BigEndian.Uint16(raw[2:]),
		contentLn: int(binary.BigEndian.Uint16(raw[4:])),
		paddingLn: int(raw[6]),
	}
	body := buf[:h.contentLn+h.paddingLn]
	if _, err := io.ReadFull(r, body); err != nil {
		return fcgiHeader{}, nil, fmt.Errorf("fastcgi: record cut short: %w", err)
	}
	return h, body[:h.contentLn], nil
}

// appendFCGIHeader appends the header of a record carrying contentLn bytes,
// padded to a multiple of 8, and returns the padding length to append after
// the content.
func appendFCGIHeader(dst []byte, kind fcgiRecordType, id uint16, contentLn int) ([]byte, int) {
	padding := -contentLn & 7
	dst = append(dst, fcgiVersion, byte(kind))
	dst = binary.BigEndian.AppendUint16(dst, id)
	dst = binary.BigEndian.AppendUint16(dst, uint16(contentLn))
	return append(dst, byte(padding), 0), padding
}

// fcgiPadding is the zero bytes padding is taken from.
var fcgiPadding [8]byte

// appendFCGIRecord appends one record carrying content (at most
// fcgiMaxContent bytes).
func appendFCGIRecord(dst []byte, kind fcgiRecordType, id uint16, content []byte) []byte {
	dst, padding := appendFCGIHeader(dst, kind, id, len(content))
	dst = append(dst, content...)
	return append(dst, fcgiPadding[:padding]...)
}

// appendFCGIStream appends p as records of kind, fcgiChunk bytes at most
// each. An empty p appends nothing: an empty record would end the stream.
func appendFCGIStream(dst []byte, kind fcgiRecordType, id uint16, p []byte) []byte {
	for len(p) > 0 {
		n := min(len(p), fcgiChunk)
		dst = appendFCGIRecord(dst, kind, id, p[:n])
		p = p[n:]
	}
	return dst
}

// appendFCGIEndRequest appends an END_REQUEST record (section 5.5).
func appendFCGIEndRequest(dst []byte, id uint16, appStatus uint32, status fcgiProtocolStatus) []byte {
	var body [8]byte
	binary.BigEndian.PutUint32(body[:], appStatus)
	body[4] = byte(status)
	return appendFCGIRecord(dst, fcgiEndRequest, id, body[:])
}

// appendFCGIUnknownType appends the UNKNOWN_TYPE answer to a record of kind
// (section 4.2).
func appendFCGIUnknownType(dst []byte, kind fcgiRecordType) []byte {
	body := [8]byte{byte(kind)}
	return appendFCGIRecord(dst, fcgiUnknownType, 0, body[:])
}

// fcgiBeginBody is a decoded BEGIN_REQUEST body (section 5.1).
type fcgiBeginBody struct {
	role  uint16
	flags uint8
}

var errFCGIBeginLen = errors.New("fastcgi: BEGIN_REQUEST body is not 8 bytes")

func parseFCGIBegin(content []byte) (fcgiBeginBody, error) {
	if len(content) != 8 {
		return fcgiBeginBody{}, errFCGIBeginLen
	}
	return fcgiBeginBody{role: binary.BigEndian.Uint16(content), flags: content[2]}, nil
}

// eachFCGIPair calls fn for each name-value pair of b (section 3.4): each
// length is one byte below 128, else four bytes with the top bit set.
func eachFCGIPair(b []byte, fn func(name, value []byte) error) error {
	for len(b) > 0 {
		nameLn, rest, ok := cutFCGILength(b)
		if !ok {
			return errFCGIPairs
		}
		valueLn, rest, ok := cutFCGILength(rest)
		if !ok || uint64(len(rest)) < uint64(nameLn)+uint64(valueLn) {
			return errFCGIPairs
		}
		if err := fn(rest[:nameLn], rest[nameLn:nameLn+valueLn]); err != nil {
			return err
		}
		b = rest[nameLn+valueLn:]
	}
	return nil
}

func cutFCGILength(b []byte) (n uint32, rest []byte, ok bool) {
	switch {
	case len(b) >= 1 && b[0] < 0x80:
		return uint32(b[0]), b[1:], true
	case len(b) >= 4:
		return binary.BigEndian.Uint32(b) & 0x7fffffff, b[4:], true
	}
	return 0, nil, false
}

// appendFCGIPair appends one name-value pair.
func appendFCGIPair(dst []byte, name, value string) []byte {
	dst = appendFCGILength(dst, len(name))
	dst = appendFCGILength(dst, len(value))
	dst = append(dst, name...)
	return append(dst, value...)
}

func appendFCGILength(dst []byte, n int) []byte {
	if n < 0x80 {
		return append(dst, byte(n))
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n)|0x80000000)
}
