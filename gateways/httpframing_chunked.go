// The chunked body's framing for the request framing scanner
// (httpframing.go): chunk-size lines with their extensions, chunk data and
// the trailer section, followed exactly as RFC 9112 section 7.1 defines
// them, so the scanner and net/http agree on where the next request starts,
// and so does any front end that reads them by the same grammar.
package gateways

// Phases of a chunk-size line after its size (framingScanner.extPhase),
// following RFC 9112 section 7.1.1:
//
//	chunk-ext      = *( BWS ";" BWS chunk-ext-name
//	                    [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-name = token
//	chunk-ext-val  = token / quoted-string
const (
	extBeforeName  = iota // after ";": whitespace, then the name
	extName               // in the name
	extAfterName          // whitespace after the name: "=" or ";" must follow
	extBeforeValue        // after "=": whitespace, then the value
	extToken              // in a token value
	extQuoted             // in a quoted-string value
	extEscaped            // after a backslash in a quoted-string
	extQuoteEnd           // after the closing quote
	extAfterValue         // whitespace after the value: ";" must follow
)

// bodyStep follows one byte of a chunked body's framing.
func (s *framingScanner) bodyStep(b byte) {
	switch s.state {
	case stChunkSize:
		s.chunkSizeByte(b)
	case stChunkExt:
		s.chunkExtByte(b)
	case stChunkLineLF:
		s.expectLF(b, errChunkLine, s.endChunkLine)
	case stChunkDataCR:
		if b != '\r' {
			s.fail(errChunkDataEnd)
			return
		}
		s.state = stChunkDataLF
	case stChunkDataLF:
		s.expectLF(b, errChunkDataEnd, s.beginChunk)
	default:
		s.trailerStep(b)
	}
}

// trailerStep follows one byte of the trailer section: field lines as in
// the head (RFC 9112 section 7.1.2), each a token, a colon and a value of
// visible bytes, spaces and tabs, ending in CRLF. net/http reads them with
// less care (a space before the colon passes), and a bare LF there would
// let the two of us disagree on where the next request starts.
func (s *framingScanner) trailerStep(b byte) {
	switch s.state {
	case stTrailerStart:
		switch {
		case b == '\r':
			s.state = stTrailerEndLF
		case isTokenByte(b):
			s.state = stTrailerName
		default: // obs-fold, an empty name, a bare LF
			s.fail(errTrailerLine)
		}
	case stTrailerName:
		switch {
		case b == ':':
			s.state = stTrailerValue
		case !isTokenByte(b):
			s.fail(errTrailerLine)
		}
	case stTrailerValue:
		switch {
		case b == '\r':
			s.state = stTrailerLineLF
		case !isFieldValueByte(b):
			s.fail(errTrailerLine)
		}
	case stTrailerLineLF:
		s.expectLF(b, errTrailerLine, func() { s.state = stTrailerStart })
	case stTrailerEndLF:
		s.expectLF(b, errTrailerLine, func() { s.state = stRequestStart })
	}
}

func (s *framingScanner) beginChunk() {
	s.state, s.remaining, s.chunkDigits = stChunkSize, 0, 0
}

// chunkSizeByte follows a chunk size: hex digits, then extensions or CRLF
// (RFC 9112 section 7.1). Whitespace before a ";" is BWS in the grammar,
// but net/http refuses it there, so the scanner does too and the two agree.
func (s *framingScanner) chunkSizeByte(b byte) {
	if v, ok := hexValue(b); ok {
		if s.chunkDigits == maxChunkSizeDigits {
			s.fail(errChunkLine)
			return
		}
		s.remaining = s.remaining<<4 | uint64(v)
		s.chunkDigits++
		return
	}
	switch {
	case s.chunkDigits == 0:
		s.fail(errChunkLine)
	case b == '\r':
		s.state = stChunkLineLF
	case b == ';':
		s.state, s.extPhase = stChunkExt, extBeforeName
	default:
		s.fail(errChunkLine)
	}
}

// chunkExtByte follows a byte of a chunk-size line's extensions. net/http
// drops them unread; they are checked all the same, since a front end that
// parses them may frame the body differently when they are malformed: an
// empty name, an empty value, a quoted-string left open, whitespace before
// the line's end.
func (s *framingScanner) chunkExtByte(b byte) {
	ok := true
	switch s.extPhase {
	case extBeforeName:
		ok = s.extEnter(b, isTokenByte(b), extName)
	case extName:
		ok = s.extAfterToken(b, extAfterName, true)
	case extAfterName:
		ok = s.extBetween(b, true)
	case extBeforeValue:
		if b == '"' {
			s.extPhase = extQuoted
		} else {
			ok = s.extEnter(b, isTokenByte(b), extToken)
		}
	case extToken:
		ok = s.extAfterToken(b, extAfterValue, false)
	case extQuoted:
		switch {
		case b == '"':
			s.extPhase = extQuoteEnd
		case b == '\\':
			s.extPhase = extEscaped
		default:
			ok = isQuotedTextByte(b)
		}
	case extEscaped:
		// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
		ok = isFieldValueByte(b)
		s.extPhase = extQuoted
	case extQuoteEnd:
		ok = s.extAfterToken(b, extAfterValue, false)
	case extAfterValue:
		ok = s.extBetween(b, false)
	}
	if !ok {
		s.fail(errChunkLine)
	}
}

// extEnter skips whitespace before a name or value and enters next at its
// first byte, which must be one (isFirst).
func (s *framingScanner) extEnter(b byte, isFirst bool, next uint8) bool {
	switch {
	case b == ' ' || b == '\t':
	case isFirst:
		s.extPhase = next
	default:
		return false
	}
	return true
}

// extAfterToken follows a byte in or just after a name or a value: more of
// a token, whitespace (then phase ws), ";", "=" after a name, or the CR
// ending the line.
func (s *framingScanner) extAfterToken(b byte, ws uint8, isName bool) bool {
	switch {
	case isTokenByte(b):
		return s.extPhase == extName || s.extPhase == extToken
	case b == ' ' || b == '\t':
		s.extPhase = ws
	case b == ';':
		s.extPhase = extBeforeName
	case b == '=' && isName:
		s.extPhase = extBeforeValue
	case b == '\r':
		s.state = stChunkLineLF
	default:
		return false
	}
	return true
}

// extBetween follows whitespace after a name or a value, which only ";",
// or "=" after a name, may end.
func (s *framingScanner) extBetween(b byte, afterName bool) bool {
	switch {
	case b == ' ' || b == '\t':
	case b == ';':
		s.extPhase = extBeforeName
	case b == '=' && afterName:
		s.extPhase = extBeforeValue
	default:
		return false
	}
	return true
}

func (s *framingScanner) endChunkLine() {
	if s.remaining == 0 {
		s.state = stTrailerStart
		return
	}
	s.state = stChunkData
}

func hexValue(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

// tokenBytes holds the tchar set of RFC 9110 section 5.6.2.
var tokenBytes = func() (set [256]bool) {
	for _, b := range []byte("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		set[b] = true
	}
	return set
}()

// isTokenByte reports whether b is a tchar.
func isTokenByte(b byte) bool { return tokenBytes[b] }

// isFieldValueByte reports whether b may appear in a field value (RFC 9110
// section 5.5): a visible byte, obs-text, SP or HTAB.
func isFieldValueByte(b byte) bool { return b == '\t' || b >= ' ' && b != 0x7f }

// isQuotedTextByte reports whether b is qdtext (RFC 9110 section 5.6.4):
// what a quoted-string holds besides its quotes and backslashes.
func isQuotedTextByte(b byte) bool { return isFieldValueByte(b) && b != '"' && b != '\\' }
