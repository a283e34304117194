// The request framing scanner. It watches the bytes of an HTTP/1.x
// connection as they are read (http1conn.go), before the head parser
// (http1head.go) sees them, and walks them the way RFC 9112 frames requests
// (section 2.1: a head of lines up to an empty line, then a body framed by
// Content-Length or by the chunked coding, section 6.3), to catch what a
// lenient parser such as net/http's silently repairs or answers with the
// wrong status:
//   - obs-fold, a field line starting with SP or HTAB, which net/http joins
//     to the previous one; section 5.2 lets a server refuse it with 400;
//   - Content-Length beside Transfer-Encoding, where net/http drops
//     Content-Length; section 6.3 item 3 says this "ought to be handled as an
//     error", and a proxy that frames by the other field is the classic
//     request-smuggling setup;
//   - Transfer-Encoding on an HTTP/1.0 request, which net/http ignores;
//     section 6.1 says a server MUST treat its framing as faulty;
//   - a transfer-coding list whose final coding is not chunked (section 6.3
//     item 4: the server MUST answer 400 and close) or that applies chunked
//     twice (section 7: a sender MUST NOT), which net/http answers with 501;
//   - a line of the head ended by a bare LF, which net/http takes as a line
//     end. Section 2.2 only allows a recipient to; a front end that ends
//     lines on CRLF alone reads such a line and the next as one, so the two
//     frame the request differently (request smuggling). Refused, as
//     llhttp's strict mode does, and so is a CR anywhere but before an LF;
//   - a chunk extension outside section 7.1.1's grammar (an empty name or
//     value, say), and a trailer field line that is not a token, a colon
//     and a field value (section 7.1.2), all of which net/http passes over.
//
// It never copies or holds the bytes: per request it keeps a few counters,
// and it skips bodies by their length. Where the stream stops making sense to
// it, it marks that request malformed and stops scanning, so every later
// request on the connection is refused too rather than let through unseen.
package gateways

import (
	"bytes"
	"errors"
)

// Why the scanner marked a request malformed.
var (
	errObsFold            = errors.New("gateways: obs-fold field line (RFC 9112 section 5.2)")
	errFieldName          = errors.New("gateways: field line without a colon, or whitespace before it (RFC 9112 section 5.1)")
	errContentLength      = errors.New("gateways: invalid or conflicting Content-Length (RFC 9112 section 6.3)")
	errLengthWithTransfer = errors.New("gateways: Content-Length with Transfer-Encoding (RFC 9112 section 6.3)")
	errTransferOnHTTP10   = errors.New("gateways: Transfer-Encoding on an HTTP/1.0 request (RFC 9112 section 6.1)")
	errChunkedNotFinal    = errors.New("gateways: final transfer coding is not chunked (RFC 9112 section 6.3)")
	errChunkedTwice       = errors.New("gateways: chunked applied more than once (RFC 9112 section 7)")
	errBareLF             = errors.New("gateways: a line of the request head ends in a bare LF (RFC 9112 section 2.2)")
	errBareCR             = errors.New("gateways: a CR not followed by LF in the request head (RFC 9112 section 2.2)")
	errChunkLine          = errors.New("gateways: malformed chunk-size line (RFC 9112 section 7.1.1)")
	errChunkDataEnd       = errors.New("gateways: chunk data not followed by CRLF (RFC 9112 section 7.1)")
	errTrailerLine        = errors.New("gateways: malformed trailer section (RFC 9112 section 7.1.2)")
)

// scanState is where in a request's framing the next byte falls.
type scanState uint8

const (
	stRequestStart   scanState = iota // before a request line; empty lines skipped
	stRequestStartLF                  // the CR of an empty line before a request line was seen
	stRequestLine
	stFieldStart // start of a field line, or of the empty line ending the head
	stFieldName
	stFieldValue
	stFieldValueLF // the CR ending a framing field's line was seen
	stHeadEndLF    // the empty line's CR was seen
	stBody         // Content-Length body bytes
	stChunkSize
	stChunkExt    // after the chunk size: extensions up to CR (extPhase)
	stChunkLineLF // a chunk-size line's CR was seen
	stChunkData
	stChunkDataCR
	stChunkDataLF
	stTrailerStart
	stTrailerName
	stTrailerValue
	stTrailerLineLF
	stTrailerEndLF
	stMalformed // scanning has stopped
)

// fieldKind is which framing field a field line is.
type fieldKind uint8

const (
	fieldOther fieldKind = iota
	fieldContentLength
	fieldTransferEncoding
)

// Bits of framingScanner.nameMatch: the field names the current name may
// still turn out to be.
const (
	mayBeContentLength = 1 << iota
	mayBeTransferEncoding
)

const (
	contentLengthName    = "content-length"
	transferEncodingName = "transfer-encoding"
	chunkedName          = "chunked"
	// maxChunkSizeDigits is the most hex digits a chunk size may have: the
	// size must fit in 64 bits, as net/http also requires.
	maxChunkSizeDigits = 16
	// maxContentLength is the largest Content-Length net/http accepts (63 bits).
	maxContentLength = 1<<63 - 1
	// httpSlash is "HTTP/" as the high bytes of a request line's last 8.
	httpSlash = uint64('H')<<56 | uint64('T')<<48 | uint64('T')<<40 | uint64('P')<<32 | uint64('/')<<24
)

// Phases of a transfer coding in a Transfer-Encoding value.
const (
	codingName      = iota // in the coding's name (empty so far at the start)
	codingAfterName        // whitespace after the name
	codingParams           // after ";"
	codingQuoted           // in a quoted parameter value
	codingEscaped          // after a backslash in a quoted value
)

// framingScanner follows the requests of one connection. Its zero value
// expects the first request.
type framingScanner struct {
	state scanState
	// request is the number of the request being scanned, from 1.
	request int64
	// malformed is the number of the first request whose framing is wrong,
	// 0 while there is none; why says what is wrong with it.
	malformed int64
	why       error
	// remaining is what is left of a Content-Length body or of a chunk.
	remaining uint64

	// versionTail is the request line's last 8 bytes (CR left out), which
	// are "HTTP/x.y" in a well-formed one.
	versionTail uint64
	// pendingCR says the head line being passed over ended, so far, in CR.
	pendingCR bool
	// nameLen and nameMatch follow a field name against the framing fields.
	nameLen   int
	nameMatch uint8
	field     fieldKind

	// Content-Length: every field seen must carry the same number.
	lengthSeen  bool
	length      uint64
	value       uint64
	valueDigits int
	valueDone   bool // whitespace followed the digits
	valueBad    bool

	// Transfer-Encoding: codings across every field, in order.
	transferSeen  bool
	chunkedCount  int
	lastIsChunked bool
	codingPhase   uint8
	codingLen     int
	codingChunked bool // the name so far matches "chunked"
	codingBroken  bool // something besides parameters follows the name

	chunkDigits int
	extPhase    uint8 // where in a chunk-size line's extensions
}

// scan follows p, the next bytes of the connection. Bodies, request lines,
// field names and the values of fields that do not frame the body are
// passed over with bytes.IndexByte; the rest goes a byte at a time.
func (s *framingScanner) scan(p []byte) {
	for len(p) > 0 && s.state != stMalformed {
		switch {
		case s.state == stBody || s.state == stChunkData:
			p = s.skipData(p)
		case s.state == stRequestLine:
			p = s.skipRequestLine(p)
		case s.state == stFieldStart:
			p = s.fieldStart(p)
		case s.state == stFieldName:
			p = s.scanFieldName(p)
		case s.state == stFieldValue && s.field == fieldOther:
			p = s.skipFieldValue(p)
		default:
			s.step(p[0])
			p = p[1:]
		}
	}
}

// skipData passes over body bytes: a Content-Length body or chunk data.
func (s *framingScanner) skipData(p []byte) []byte {
	n := uint64(len(p))
	if n < s.remaining {
		s.remaining -= n
		return nil
	}
	p = p[s.remaining:]
	s.remaining = 0
	if s.state == stBody {
		s.state = stRequestStart
	} else {
		s.state = stChunkDataCR
	}
	return p
}

// skipRequestLine passes over the request line, keeping its last 8 bytes
// for the version. What the line holds is the head parser's to judge; only
// how it ends is the scanner's.
func (s *framingScanner) skipRequestLine(p []byte) []byte {
	end := bytes.IndexByte(p, '\n')
	line := p
	if end >= 0 {
		line = p[:end]
	}
	if !s.lineBytes(line, end >= 0) {
		return nil
	}
	for _, b := range line {
		if b != '\r' {
			s.versionTail = s.versionTail<<8 | uint64(b)
		}
	}
	if end < 0 {
		return nil
	}
	s.state = stFieldStart
	return p[end+1:]
}

// lineBytes follows the bytes of a head line passed over in bulk: seg is
// the part of the line in this read, up to its LF when ended says the LF
// is there. Only a line's last byte may be CR, and it must be: a bare CR is
// invalid (RFC 9112 section 2.2), and a bare LF is refused (see the file
// comment). It reports whether the line is still well-formed.
func (s *framingScanner) lineBytes(seg []byte, ended bool) bool {
	if n := len(seg); n > 0 {
		if s.pendingCR || bytes.IndexByte(seg[:n-1], '\r') >= 0 {
			s.fail(errBareCR)
			return false
		}
		s.pendingCR = seg[n-1] == '\r'
	}
	if !ended {
		return true
	}
	if !s.pendingCR {
		s.fail(errBareLF)
		return false
	}
	s.pendingCR = false
	return true
}

// fieldStart looks at the first byte of a head line: the end of the head,
// obs-fold, or a field name, which it leaves for scanFieldName.
func (s *framingScanner) fieldStart(p []byte) []byte {
	switch p[0] {
	case '\r':
		s.state = stHeadEndLF
	case '\n':
		s.fail(errBareLF)
	case ' ', '\t':
		// Also whitespace before the first field line, which RFC 9112
		// section 2.2 says a recipient must refuse or skip.
		s.fail(errObsFold)
	default:
		s.state = stFieldName
		s.nameLen, s.nameMatch = 0, mayBeContentLength|mayBeTransferEncoding
		return p
	}
	return p[1:]
}

// scanFieldName follows a field name up to its colon: a token (RFC 9110
// section 5.1), so not empty, with no whitespace before the colon (RFC 9112
// section 5.1: a server MUST answer 400) and no CR or LF. Only
// Content-Length and Transfer-Encoding matter beyond that, so once the name
// can be neither, its bytes are no longer compared.
func (s *framingScanner) scanFieldName(p []byte) []byte {
	colon := bytes.IndexByte(p, ':')
	name := p
	if colon >= 0 {
		name = p[:colon]
	}
	for _, b := range name {
		if !isTokenByte(b) {
			s.fail(errFieldName)
			return nil
		}
	}
	s.matchName(name)
	if colon < 0 {
		return nil
	}
	if s.nameLen == 0 {
		s.fail(errFieldName)
		return nil
	}
	s.beginFieldValue()
	return p[colon+1:]
}

// matchName compares more of a field name with the framing fields' names,
// case-insensitively, and counts its bytes.
func (s *framingScanner) matchName(name []byte) {
	for i, b := range name {
		if s.nameMatch == 0 {
			break
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		at := s.nameLen + i
		if at >= len(contentLengthName) || contentLengthName[at] != b {
			s.nameMatch &^= mayBeContentLength
		}
		if at >= len(transferEncodingName) || transferEncodingName[at] != b {
			s.nameMatch &^= mayBeTransferEncoding
		}
	}
	s.nameLen += len(name)
}

// skipFieldValue passes over the value of a field that does not frame the
// body, up to the end of its line. Its bytes are the head parser's to judge.
func (s *framingScanner) skipFieldValue(p []byte) []byte {
	end := bytes.IndexByte(p, '\n')
	if end < 0 {
		s.lineBytes(p, false)
		return nil
	}
	if s.lineBytes(p[:end], true) {
		s.state = stFieldStart
	}
	return p[end+1:]
}

// step follows one byte of a framing field's value, the head's end or a
// chunked body's framing.
func (s *framingScanner) step(b byte) {
	switch s.state {
	case stRequestStart:
		s.betweenRequests(b)
	case stRequestStartLF:
		if b != '\n' {
			s.beginRequest()
			s.fail(errBareCR)
			return
		}
		s.state = stRequestStart
	case stFieldValue:
		s.framingValueByte(b)
	case stFieldValueLF:
		s.expectLF(b, errBareCR, s.endFramingField)
	case stHeadEndLF:
		s.expectLF(b, errBareCR, s.endHead)
	default:
		s.bodyStep(b)
	}
}

// betweenRequests follows a byte where a request line may begin. Empty
// lines are skipped (RFC 9112 section 2.2: a server SHOULD ignore at least
// one, which old clients send after a POST body), but only CRLF ones: the
// bare CR or LF is laid to the next request, which is refused.
func (s *framingScanner) betweenRequests(b byte) {
	switch b {
	case '\r':
		s.state = stRequestStartLF
	case '\n':
		s.beginRequest()
		s.fail(errBareLF)
	default:
		s.beginRequest()
		s.versionTail = uint64(b)
	}
}

// framingValueByte follows a byte of a Content-Length or Transfer-Encoding
// value; its line must end in CRLF like every other.
func (s *framingScanner) framingValueByte(b byte) {
	switch {
	case b == '\r':
		s.state = stFieldValueLF
	case b == '\n':
		s.fail(errBareLF)
	case s.field == fieldContentLength:
		s.lengthByte(b)
	default:
		s.transferByte(b)
	}
}

// endFramingField checks the framing field whose line just ended.
func (s *framingScanner) endFramingField() {
	if s.field == fieldContentLength {
		s.endLengthField()
	} else {
		s.endTransferField()
	}
}

// expectLF calls then when b is the LF that must follow a CR, and marks the
// request malformed with why otherwise.
func (s *framingScanner) expectLF(b byte, why error, then func()) {
	if b != '\n' {
		s.fail(why)
		return
	}
	then()
}

// fail marks the current request malformed and stops scanning.
func (s *framingScanner) fail(why error) {
	s.malformed, s.why = s.request, why
	s.state = stMalformed
}

// beginRequest resets what the scanner knows of a request's head.
func (s *framingScanner) beginRequest() {
	request := s.request + 1
	*s = framingScanner{request: request, state: stRequestLine}
}

func (s *framingScanner) beginFieldValue() {
	s.state = stFieldValue
	switch {
	case s.nameMatch&mayBeContentLength != 0 && s.nameLen == len(contentLengthName):
		s.field = fieldContentLength
		s.value, s.valueDigits, s.valueDone, s.valueBad = 0, 0, false, false
	case s.nameMatch&mayBeTransferEncoding != 0 && s.nameLen == len(transferEncodingName):
		s.field = fieldTransferEncoding
		s.transferSeen = true
		s.beginCoding()
	default:
		s.field = fieldOther
	}
}

// lengthByte follows a Content-Length value: decimal digits between
// optional whitespace, as net/http accepts (RFC 9110 section 8.6).
func (s *framingScanner) lengthByte(b byte) {
	switch {
	case b == ' ' || b == '\t':
		s.valueDone = s.valueDigits > 0
	case '0' <= b && b <= '9' && !s.valueDone:
		d := uint64(b - '0')
		if s.value > (maxContentLength-d)/10 {
			s.valueBad = true
		}
		s.value = s.value*10 + d
		s.valueDigits++
	default:
		s.valueBad = true
	}
}

func (s *framingScanner) endLengthField() {
	if s.valueBad || s.valueDigits == 0 || s.lengthSeen && s.value != s.length {
		s.fail(errContentLength)
		return
	}
	s.lengthSeen, s.length = true, s.value
	s.state = stFieldStart
}

// transferByte follows a Transfer-Encoding value: a comma-separated list
// of codings, each a name and optional ";" parameters (RFC 9110 section
// 10.1.4), empty elements allowed (RFC 9110 section 5.6.1).
func (s *framingScanner) transferByte(b byte) {
	switch s.codingPhase {
	case codingQuoted:
		switch b {
		case '\\':
			s.codingPhase = codingEscaped
		case '"':
			s.codingPhase = codingParams
		}
		return
	case codingEscaped:
		s.codingPhase = codingQuoted
		return
	}
	switch b {
	case ',':
		s.endCoding()
		s.beginCoding()
	case ' ', '\t':
		if s.codingPhase == codingName && s.codingLen > 0 {
			s.codingPhase = codingAfterName
		}
	case ';':
		s.codingPhase = codingParams
	case '"':
		if s.codingPhase == codingParams {
			s.codingPhase = codingQuoted
		}
	default:
		s.codingNameByte(b)
	}
}

func (s *framingScanner) codingNameByte(b byte) {
	switch s.codingPhase {
	case codingName:
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if s.codingLen >= len(chunkedName) || chunkedName[s.codingLen] != b {
			s.codingChunked = false
		}
		s.codingLen++
	case codingAfterName:
		s.codingBroken = true
	}
}

func (s *framingScanner) beginCoding() {
	s.codingPhase, s.codingLen, s.codingChunked, s.codingBroken = codingName, 0, true, false
}

// endCoding records the coding just read; an empty list element is none.
func (s *framingScanner) endCoding() {
	if s.codingLen == 0 && !s.codingBroken {
		return
	}
	chunked := s.codingChunked && s.codingLen == len(chunkedName) && !s.codingBroken
	if chunked {
		s.chunkedCount++
	}
	s.lastIsChunked = chunked
}

func (s *framingScanner) endTransferField() {
	if s.codingPhase == codingQuoted || s.codingPhase == codingEscaped {
		s.codingBroken = true // a quoted string the line cut short
	}
	s.endCoding()
	s.state = stFieldStart
}

// endHead checks the head's framing fields (RFC 9112 section 6.3) and moves
// on to the body they describe.
func (s *framingScanner) endHead() {
	switch {
	case !s.transferSeen:
		if s.length > 0 {
			s.remaining = s.length
			s.state = stBody
			return
		}
		s.state = stRequestStart
	case s.lengthSeen:
		s.fail(errLengthWithTransfer)
	case s.olderThanHTTP11():
		s.fail(errTransferOnHTTP10)
	case s.chunkedCount > 1:
		s.fail(errChunkedTwice)
	case !s.lastIsChunked:
		s.fail(errChunkedNotFinal)
	default:
		// Codings before the final chunked are net/http's to refuse (501,
		// RFC 9112 section 6.1); it never reads such a body.
		s.beginChunk()
	}
}

// olderThanHTTP11 reports whether the request line ends in HTTP/1.0 or
// HTTP/0.x. Any other ending is left to net/http to judge.
func (s *framingScanner) olderThanHTTP11() bool {
	t := s.versionTail
	if t&^0xffffff != httpSlash || byte(t>>8) != '.' {
		return false
	}
	major, minor := byte(t>>16), byte(t)
	return major == '0' || major == '1' && minor == '0'
}
