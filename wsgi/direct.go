// The direct response: for the gateways whose bytes the master does not
// transform, the worker writes the response to the client's connection
// itself, and the master, which keeps its own descriptor of the connection,
// learns how it ended from a completion record (frame.go's FrameEnd). Taking
// the master off the response path removes the relay's cost per request.
package wsgi

import (
	"encoding/binary"
	"errors"
)

// Framing says how a worker frames a response it writes to the client.
type Framing uint8

// The framings; pyembed/gw_frame.h mirrors the numbers.
const (
	// FramingNone: the response travels through the master (FrameHead,
	// FrameBody, ...).
	FramingNone Framing = 0
	// FramingHTTPHead: an HTTP/1.1 status line and the headers, then the
	// body as it is, ended by the end of the connection: what the uwsgi
	// modules of nginx, lighttpd and Apache read back (gateways/head.go).
	FramingHTTPHead Framing = 1
	// FramingCGI: a CGI head (RFC 3875 section 6.3, "Status:"), then the
	// body as it is, ended by the end of the connection: SCGI.
	FramingCGI Framing = 2
	// FramingHTTP1: HTTP/1.x as the plain-HTTP socket frames it
	// (gateways/http1response.go): keep-alive, chunked encoding, Date and
	// Server, decided with the request's HTTPFlags.
	FramingHTTP1 Framing = 3
)

// HTTPFlags are what an HTTP/1.x request decides about its response, sent
// with a FramingHTTP1 request as its second parameter byte; a
// FramingHTTPHead (uwsgi) request carries only HTTPUpgrade there.
type HTTPFlags uint8

// The HTTP flags; pyembed/gw_frame.h mirrors the numbers.
const (
	HTTP11         HTTPFlags = 1 << iota // HTTP/1.1 or later: chunked allowed, keep-alive by default
	HTTPHead                             // a HEAD request: no body goes out
	HTTPWantsClose                       // the client asked to close, or is HTTP/1.0 without keep-alive
	HTTPKeep10                           // an HTTP/1.0 client asked for keep-alive
	HTTPStopping                         // the server is shutting down: close after this response
	HTTPUpgrade                          // the client asked to switch protocols (RFC 9110 section 7.8): a 101 may answer, and the connection closes after
)

// directParamsLen is the size of a FlagDirect request's framing
// parameters.
const directParamsLen = 4

// ParseDirect splits a FlagDirect request payload into its framing, its
// HTTP flags and the rest, which ParseRequest reads.
func ParseDirect(payload []byte) (Framing, HTTPFlags, []byte, error) {
	if len(payload) < directParamsLen {
		return FramingNone, 0, nil, errShortPayload
	}
	return Framing(payload[0]), HTTPFlags(payload[1]), payload[directParamsLen:], nil
}

// Completion is how a response the worker wrote to the client ended: the
// FrameEnd payload of a FlagDirect request.
//
//	offset 0   status     uint32  the status code sent, 0 when no head was
//	offset 4   flags      uint32  CompletionKeepAlive; from bit
//	                              CompletionFieldsShift up: the head's
//	                              header fields
//	offset 8   head bytes uint64  the head's size as sent
//	offset 16  body bytes uint64  the body's size as sent, hand-off included
type Completion struct {
	Status    int
	KeepAlive bool // the connection may carry another request
	HeadBytes int64
	BodyBytes int64
	// HeadFields is the number of header fields in the head, for the
	// access line's "N headers in M bytes".
	HeadFields int
	// Broken is the FrameEnd's FlagEndBroken: the response did not end
	// cleanly and the connection must be closed.
	Broken bool
}

// CompletionLen is the size of a completion record.
const CompletionLen = 24

// CompletionKeepAlive is the flags bit of Completion.KeepAlive.
const CompletionKeepAlive = 1

// CompletionFieldsShift is where Completion.HeadFields starts in the flags.
const CompletionFieldsShift = 8

var errCompletionLen = errors.New("wsgi: completion record of the wrong size")

// AppendCompletion appends c as a FrameEnd to buf.
func AppendCompletion(buf []byte, id uint32, c Completion) []byte {
	flags, bits := uint8(0), uint32(0)
	if c.Broken {
		flags = FlagEndBroken
	}
	if c.KeepAlive {
		bits = CompletionKeepAlive
	}
	bits |= uint32(c.HeadFields) << CompletionFieldsShift
	buf = AppendFrameHeader(buf, FrameEnd, flags, id, CompletionLen)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(c.Status))
	buf = binary.LittleEndian.AppendUint32(buf, bits)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(c.HeadBytes))
	return binary.LittleEndian.AppendUint64(buf, uint64(c.BodyBytes))
}

// ParseCompletion reads the completion record of a FrameEnd with flags.
func ParseCompletion(flags uint8, payload []byte) (Completion, error) {
	if len(payload) != CompletionLen {
		return Completion{}, errCompletionLen
	}
	bits := binary.LittleEndian.Uint32(payload[4:])
	return Completion{
		Status:     int(binary.LittleEndian.Uint32(payload)),
		KeepAlive:  bits&CompletionKeepAlive != 0,
		HeadBytes:  int64(binary.LittleEndian.Uint64(payload[8:])),
		BodyBytes:  int64(binary.LittleEndian.Uint64(payload[16:])),
		HeadFields: int(bits >> CompletionFieldsShift),
		Broken:     flags&FlagEndBroken != 0,
	}, nil
}

// ParseHandoff returns how many bytes the worker wrote to the client before
// it handed the rest of the response to the master.
func ParseHandoff(payload []byte) (int64, error) {
	if len(payload) != 8 {
		return 0, errShortPayload
	}
	return int64(binary.LittleEndian.Uint64(payload)), nil
}
