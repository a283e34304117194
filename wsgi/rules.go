// The rules PEP 3333 sets for what an application hands start_response. The
// worker's C side enforces them as the app calls it; these Go versions let
// the master refuse a malformed head from a worker and document the rules in
// one readable place. The two must agree: pyembed's
// TestStatusAndHeaderRulesMatchWSGI runs one table through both.
package wsgi

import (
	"errors"
	"fmt"
	"strings"
)

// hopByHop lists the headers an application must not send
// (PEP 3333, "Other HTTP Features"; RFC 9110 section 7.6.1).
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"TE", "Trailers", "Transfer-Encoding", "Upgrade",
}

// IsHopByHop reports whether name is a hop-by-hop header, in any case. It
// runs for every response header, so it compares without allocating.
func IsHopByHop(name string) bool {
	for _, h := range hopByHop {
		if len(h) == len(name) && strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

var (
	// ErrBadStatus reports a status that is not "NNN reason".
	ErrBadStatus = errors.New("wsgi: status must be a three-digit code, a space and a reason phrase")
	// ErrBadHeader reports a header name or value that cannot go on the wire.
	ErrBadHeader = errors.New("wsgi: invalid header")
)

// CheckStatus checks a status line such as "200 OK": PEP 3333 asks for "a
// status code and a reason phrase, separated by a single space"; RFC 9112
// section 4 makes the code three digits (100 to 999 here: no leading zero)
// and the reason phrase HTAB, SP, VCHAR and obs-text, possibly empty.
func CheckStatus(status string) error {
	if len(status) < 4 || status[3] != ' ' || !isDigits(status[:3]) || status[0] == '0' {
		return fmt.Errorf("%w: %q", ErrBadStatus, status)
	}
	if hasControl(status[4:]) {
		return fmt.Errorf("%w: control character in %q", ErrBadStatus, status)
	}
	return nil
}

// CheckHeader checks one response header: a token name that is not
// hop-by-hop, and a value of HTAB, SP, VCHAR and obs-text (RFC 9110
// section 5.5).
func CheckHeader(name, value string) error {
	if name == "" || !isToken(name) {
		return fmt.Errorf("%w: name %q is not an HTTP token", ErrBadHeader, name)
	}
	if IsHopByHop(name) {
		return fmt.Errorf("%w: %q is a hop-by-hop header, which PEP 3333 does not allow an application to set", ErrBadHeader, name)
	}
	if hasControl(value) {
		return fmt.Errorf("%w: control character in the value of %q", ErrBadHeader, name)
	}
	return nil
}

// hasControl reports whether s holds a control character other than HTAB:
// what a reason phrase and a field value may not contain (RFC 9112 section
// 4, RFC 9110 section 5.5). Bytes 0x80-0xFF (obs-text) are allowed.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
