// The master↔worker framing. Every frame is a 12-byte header followed by its
// payload; all integers are little-endian. pyembed/gw_frame.h mirrors these
// numbers for the worker's C side, and a test there checks they agree.
//
//	offset 0  kind    uint8   FrameRequest, FrameHead, ...
//	offset 1  flags   uint8   per kind, below
//	offset 2  -       uint16  zero
//	offset 4  id      uint32  request id, chosen by the master, echoed back
//	offset 8  length  uint32  payload bytes that follow
//
// Master → worker, one socketpair per worker slot, requests in the order the
// slot must serve them:
//
//	FrameRequest  uint32 vars length, the vars block (see Vars), then the
//	              body. With FlagBodySpooled nothing follows the vars block:
//	              the body is in a file whose descriptor travels with the
//	              frame as SCM_RIGHTS ancillary data. The file has no name
//	              (it is unlinked as it is made), so it is gone once the
//	              last process holding it is, however that process ends.
//	              With FlagDirect the worker writes the response to the
//	              client itself (see Direct): the payload starts with 4
//	              bytes of framing parameters (uint8 Framing, three zero
//	              bytes) before the vars length, and the client connection's
//	              descriptor travels with the frame as SCM_RIGHTS, before
//	              the spooled body's when there is one.
//
// Worker → master, the frames of each response in order, responses in the
// order their requests were sent:
//
//	FrameHead     uint16 status length, the status line ("200 OK"), then the
//	              headers as a vars block (name, value pairs).
//	FrameBody     a chunk of the body.
//	FrameFile     uint64 offset, int64 count (-1: to end of file); the file's
//	              descriptor travels with the frame as SCM_RIGHTS ancillary
//	              data, and the master sends it with sendfile(2).
//	FrameEnd      the response is complete. FlagEndBroken: it broke after the
//	              head was sent, so the client's connection must be closed
//	              rather than the response ended cleanly. For a FlagDirect
//	              request its payload is the completion record (Completion).
//	              Then, when the app set any with uwsgi.set_logvar, a vars
//	              block of its log variables, for the access log.
//
// A FlagDirect request's response is written by the worker to the client,
// so no FrameHead or FrameBody comes back for it: only the FrameEnd, unless
// the client's socket would block. Then the worker hands the rest to the
// master, which is never held up by a slow reader, with
//
//	FrameHandoff  uint64: the bytes the worker wrote to the client itself.
//	FrameRaw      bytes already framed for the client, which the master
//	              writes to the connection as they are.
//	FrameFile     as above, its bytes also going to the connection as they
//	              are.
//
// and then the FrameEnd with the completion record.
package wsgi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// FrameKind says what a frame carries.
type FrameKind uint8

// The frame kinds; the letters make hex dumps readable.
const (
	FrameRequest FrameKind = 'Q'
	FrameHead    FrameKind = 'H'
	FrameBody    FrameKind = 'B'
	FrameFile    FrameKind = 'F'
	FrameEnd     FrameKind = 'E'
	FrameHandoff FrameKind = 'D'
	FrameRaw     FrameKind = 'R'
)

// Frame flags.
const (
	FlagBodySpooled uint8 = 1 << 0 // FrameRequest: the body is a file whose descriptor comes with the frame
	FlagEndBroken   uint8 = 1 << 0 // FrameEnd: close the client connection
	FlagDirect      uint8 = 1 << 1 // FrameRequest: the worker writes the response to the client
	FlagPosted      uint8 = 1 << 2 // FrameRequest: claim it in the request table (requests.go) before running it
)

// FrameHeaderLen is the size of a frame header.
const FrameHeaderLen = 12

// MaxFramePayload bounds a single frame's payload; a reader refuses more, so
// a corrupt stream cannot make the master allocate without limit. Bodies
// larger than this are spooled or sent in several FrameBody frames.
const MaxFramePayload = 64 << 20

// Frame is one decoded frame. Payload aliases the reader's buffer and is valid
// until the next call to Next.
type Frame struct {
	Kind    FrameKind
	Flags   uint8
	ID      uint32
	Payload []byte
}

var (
	errFrameTooLarge = errors.New("wsgi: frame payload over the limit")
	errShortPayload  = errors.New("wsgi: frame payload too short")
)

// AppendFrameHeader appends a frame header to buf.
func AppendFrameHeader(buf []byte, kind FrameKind, flags uint8, id uint32, length int) []byte {
	buf = append(buf, byte(kind), flags, 0, 0)
	buf = binary.LittleEndian.AppendUint32(buf, id)
	return binary.LittleEndian.AppendUint32(buf, uint32(length))
}

// Request is one request as a gateway hands it to the server: CGI variables
// and a body that has fully arrived. The zero Request is a request with no
// variables and an empty body.
type Request struct {
	Vars Vars
	// Body is the whole body when it is small enough to travel inline.
	Body []byte
	// BodyFile, when not nil, holds the body instead, from its start: a
	// spooled file with no name, which the gateway closes once the
	// response has ended. Body is then unused.
	BodyFile *os.File
	// Framing, when not FramingNone, asks the worker to write the response
	// to the client itself, framed so (FlagDirect); the caller sends the
	// connection's descriptor with the frame.
	Framing Framing
	// HTTPFlags go with FramingHTTP1.
	HTTPFlags HTTPFlags
}

// AppendRequest appends req as a FrameRequest with the given id to buf.
// With a BodyFile, the caller sends the file's descriptor with the frame.
func AppendRequest(buf []byte, id uint32, req *Request) []byte {
	vars := req.Vars.Block()
	body, flags, params := req.Body, uint8(0), 0
	if req.BodyFile != nil {
		body, flags = nil, FlagBodySpooled
	}
	if req.Framing != FramingNone {
		flags |= FlagDirect
		params = directParamsLen
	}
	buf = AppendFrameHeader(buf, FrameRequest, flags, id, params+4+len(vars)+len(body))
	if params != 0 {
		buf = append(buf, byte(req.Framing), byte(req.HTTPFlags), 0, 0)
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(vars)))
	buf = append(buf, vars...)
	return append(buf, body...)
}

// ParseRequest splits a FrameRequest payload into its vars block and its body
// (empty with FlagBodySpooled). Both alias payload. A FlagDirect payload's
// framing parameters are read with ParseDirect first.
func ParseRequest(payload []byte) (vars, body []byte, err error) {
	if len(payload) < 4 {
		return nil, nil, errShortPayload
	}
	n := binary.LittleEndian.Uint32(payload)
	if uint64(n) > uint64(len(payload)-4) {
		return nil, nil, fmt.Errorf("%w: vars length %d", ErrBadVarsBlock, n)
	}
	return payload[4 : 4+n], payload[4+n:], nil
}

// AppendHead appends a FrameHead carrying status and headers to buf; headers
// is a vars block of name/value pairs.
func AppendHead(buf []byte, id uint32, status string, headers []byte) []byte {
	buf = AppendFrameHeader(buf, FrameHead, 0, id, 2+len(status)+len(headers))
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(status)))
	buf = append(buf, status...)
	return append(buf, headers...)
}

// ParseHead splits a FrameHead payload into the status line and the headers'
// vars block, which aliases payload.
func ParseHead(payload []byte) (status string, headers []byte, err error) {
	if len(payload) < 2 {
		return "", nil, errShortPayload
	}
	n := int(binary.LittleEndian.Uint16(payload))
	if len(payload) < 2+n {
		return "", nil, errShortPayload
	}
	return string(payload[2 : 2+n]), payload[2+n:], nil
}

// AppendFile appends a FrameFile to buf; the caller sends the descriptor with
// it.
func AppendFile(buf []byte, id uint32, offset, count int64) []byte {
	buf = AppendFrameHeader(buf, FrameFile, 0, id, 16)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(offset))
	return binary.LittleEndian.AppendUint64(buf, uint64(count))
}

// ParseFile returns a FrameFile's offset and count (-1: to end of file).
func ParseFile(payload []byte) (offset, count int64, err error) {
	if len(payload) != 16 {
		return 0, 0, errShortPayload
	}
	return int64(binary.LittleEndian.Uint64(payload)), int64(binary.LittleEndian.Uint64(payload[8:])), nil
}

// FrameReader reads frames from a stream, reusing one buffer. The zero
// FrameReader is not usable; call NewFrameReader.
type FrameReader struct {
	r          io.Reader
	buf        []byte
	start, end int // unread bytes are buf[start:end]
}

// NewFrameReader returns a FrameReader on r.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r, buf: make([]byte, frameReaderBuffer)}
}

// frameReaderBuffer is a FrameReader's usual buffer. A larger frame grows it
// for as long as that frame is read; it shrinks back once the frame has
// been consumed, so one large response does not pin its size in every
// slot's reader for the life of the master.
const frameReaderBuffer = 64 << 10

// Next reads the next frame. It returns io.EOF at a clean end of stream and
// io.ErrUnexpectedEOF when the stream ends inside a frame.
func (fr *FrameReader) Next() (Frame, error) {
	if err := fr.fill(FrameHeaderLen); err != nil {
		return Frame{}, err
	}
	h := fr.buf[fr.start:]
	length := binary.LittleEndian.Uint32(h[8:])
	if length > MaxFramePayload {
		return Frame{}, fmt.Errorf("%w: %d bytes", errFrameTooLarge, length)
	}
	total := FrameHeaderLen + int(length)
	if err := fr.fill(total); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	h = fr.buf[fr.start:]
	f := Frame{
		Kind:    FrameKind(h[0]),
		Flags:   h[1],
		ID:      binary.LittleEndian.Uint32(h[4:]),
		Payload: h[FrameHeaderLen:total:total],
	}
	fr.start += total
	return f, nil
}

// Buffered reports whether a whole frame is already buffered, so that Next
// will not block. A writer uses it to delay a flush while more work is at
// hand.
func (fr *FrameReader) Buffered() bool {
	n := fr.end - fr.start
	if n < FrameHeaderLen {
		return false
	}
	return n >= FrameHeaderLen+int(binary.LittleEndian.Uint32(fr.buf[fr.start+8:]))
}

// fill makes at least n unread bytes available, reading as much as one read
// gives.
func (fr *FrameReader) fill(n int) error {
	if fr.end-fr.start >= n {
		return nil
	}
	if len(fr.buf) > frameReaderBuffer && fr.end-fr.start <= frameReaderBuffer && n <= frameReaderBuffer {
		// The large frame that grew the buffer has been consumed (its
		// payload is valid only until this call).
		small := make([]byte, frameReaderBuffer)
		fr.end = copy(small, fr.buf[fr.start:fr.end])
		fr.buf, fr.start = small, 0
	}
	if fr.start > 0 {
		fr.end = copy(fr.buf, fr.buf[fr.start:fr.end])
		fr.start = 0
	}
	if n > len(fr.buf) {
		grown := make([]byte, n)
		copy(grown, fr.buf[:fr.end])
		fr.buf = grown
	}
	for fr.end < n {
		m, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += m
		if err != nil {
			if err == io.EOF && fr.end > 0 && fr.end < n {
				return io.ErrUnexpectedEOF
			}
			if fr.end >= n {
				return nil
			}
			return err
		}
	}
	return nil
}
