// The chunked body's framing for the request framing scanner
// (httpframing.go): chunk-size lines, chunk data and the trailer section,
// followed exactly as RFC 9112 section 7.1 defines them, so the scanner and
// net/http agree on where the next request starts.
package gateways

// bodyStep follows one byte of a chunked body's framing.
func (s *framingScanner) bodyStep(b byte) {
	switch s.state {
	case stChunkSize:
		s.chunkSizeByte(b)
	case stChunkExt:
		// net/http ignores extensions but refuses a CR or LF in them.
		switch b {
		case '\r':
			s.state = stChunkLineLF
		case '\n':
			s.fail(errChunkLine)
		}
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

// trailerStep follows one byte of the trailer section. Its lines must end
// in CRLF: net/http finds the section's end by looking for CRLF CRLF, and a
// bare LF there would let the two of us disagree on where the next request
// starts.
func (s *framingScanner) trailerStep(b byte) {
	switch s.state {
	case stTrailerStart:
		switch b {
		case '\r':
			s.state = stTrailerEndLF
		case '\n', ' ', '\t':
			s.fail(errTrailerLine)
		default:
			s.state = stTrailerLine
		}
	case stTrailerLine:
		switch b {
		case '\r':
			s.state = stTrailerLineLF
		case '\n':
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
// (RFC 9112 section 7.1).
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
	case b == ';' || b == ' ' || b == '\t':
		s.state = stChunkExt
	default:
		s.fail(errChunkLine)
	}
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
