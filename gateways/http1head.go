// Reading and checking an HTTP/1.x request head for the plain-HTTP server
// (http1conn.go): the request line and field lines as RFC 9112 sections 3
// and 5 define them, bounded by --buffer-size, with the checks net/http made
// before this server had its own loop (so every request it refused is still
// refused with the same status), and the CGI variables the head makes. The
// framing scanner (httpframing.go) has seen every byte first; this file
// relies on it for line endings, obs-fold and field-name syntax, and checks
// the rest.
package gateways

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gowsgi/gowsgi/wsgi"
)

var (
	errHeadTooLarge  = errors.New("gateways: request head over the buffer size (--buffer-size)")
	errHeadCutShort  = errors.New("gateways: the connection ended inside a request head")
	errRequestLine   = errors.New("gateways: malformed request line (RFC 9112 section 3)")
	errVersion       = errors.New("gateways: malformed HTTP version (RFC 9112 section 2.3)")
	errTarget        = errors.New("gateways: malformed request target (RFC 9112 section 3.2)")
	errFieldLine     = errors.New("gateways: malformed field line (RFC 9112 section 5)")
	errHost          = errors.New("gateways: missing, repeated or malformed Host (RFC 9112 section 3.2)")
	errLength        = errors.New("gateways: malformed Content-Length (RFC 9110 section 8.6)")
	errTrailerKey    = errors.New("gateways: Trailer names a framing field (RFC 9110 section 6.6.2)")
	errCoding        = errors.New("gateways: transfer coding other than chunked (RFC 9112 section 6.1)")
	errUnsupported   = errors.New("gateways: HTTP major version other than 1")
	errExpectation   = errors.New("gateways: Expect other than 100-continue (RFC 9110 section 10.1.1)")
	errTrailerFields = errors.New("gateways: malformed or forbidden trailer field (RFC 9110 section 6.5.1)")
)

// headError is a request the server refuses, and the status it answers.
type headError struct {
	status int
	err    error
}

func (e *headError) Error() string { return e.err.Error() }
func (e *headError) Unwrap() error { return e.err }

func refuseWith(status int, err error) *headError { return &headError{status: status, err: err} }

// headField is one field line of a head, its value trimmed of the optional
// whitespace around it (RFC 9112 section 5.1).
type headField struct {
	name, value []byte
}

// requestHead is one parsed request head. Its slices point into the buffer
// the head was read into and are valid until the next head is read there.
type requestHead struct {
	method, target, proto []byte
	minor                 int // of HTTP/1.minor
	// host is what HTTP_HOST carries: an absolute-form target's authority,
	// else the Host field (RFC 9112 section 3.2.2).
	host           []byte
	hostFromTarget bool
	hosts          int         // Host field lines
	fields         []headField // in the order sent, Host and framing fields included
	length         int64       // Content-Length; -1 when absent
	chunked        bool
	hasTE          bool // Transfer-Encoding was sent (and is chunked, or refused)
	types          int  // Content-Type fields
	expect         bool // Expect: 100-continue
	close          bool // the client asked to close after this response
	keep10         bool // an HTTP/1.0 client asked to keep the connection
	noCache        bool // Pragma: no-cache without Cache-Control (fixPragma)
	hasCache       bool
}

// readHead reads one request head into buf, from the request line through
// the empty line, and returns it. A head of more than limit bytes is
// errHeadTooLarge; a connection that ends inside one, errHeadCutShort.
func readHead(r *bufio.Reader, buf []byte, limit int) ([]byte, error) {
	buf = buf[:0]
	lineStart := 0
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > limit {
			return buf, errHeadTooLarge
		}
		buf = append(buf, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			if len(buf) > 0 && errors.Is(err, io.EOF) {
				return buf, errHeadCutShort
			}
			return buf, err
		}
		line := buf[lineStart:]
		if lineStart > 0 && (len(line) == 1 || len(line) == 2 && line[0] == '\r') {
			return buf, nil
		}
		lineStart = len(buf)
	}
}

// parse fills h from raw, a head readHead returned, and refuses what
// net/http refused: a malformed request line, version or target (400), a
// major version other than 1 (505), a field line that is not a token, a
// colon and visible bytes (400), a missing, repeated or malformed Host on
// HTTP/1.1 (400), a Content-Length that is not one number (400), and a
// transfer coding other than a single chunked (501).
func (h *requestHead) parse(raw []byte) *headError {
	fields := h.fields[:0]
	*h = requestHead{fields: fields, length: -1}
	line, rest := cutLine(raw)
	if err := h.parseRequestLine(line); err != nil {
		return err
	}
	for {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			break
		}
		if err := h.addField(line); err != nil {
			return err
		}
	}
	return h.check()
}

// cutLine returns the first line of b without its line ending, and the rest.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseRequestLine splits "method SP target SP version" (RFC 9112 section
// 3), each part checked as net/http checked it.
func (h *requestHead) parseRequestLine(line []byte) *headError {
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, proto, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || len(method) == 0 || !allTokenBytes(method) {
		return refuseWith(http.StatusBadRequest, errRequestLine)
	}
	major, minor, ok := parseVersion(proto)
	if !ok {
		return refuseWith(http.StatusBadRequest, errVersion)
	}
	h.method, h.target, h.proto, h.minor = method, target, proto, minor
	if major != 1 {
		if major == 2 && minor == 0 && string(method) == "PRI" && string(target) == "*" {
			// HTTP/2's connection preface (RFC 9113 section 3.4), sent
			// to an HTTP/1.x server: a malformed request here.
			return refuseWith(http.StatusBadRequest, errRequestLine)
		}
		return refuseWith(http.StatusHTTPVersionNotSupported, errUnsupported)
	}
	return h.checkTarget()
}

// parseVersion parses "HTTP/x.y", one digit each (RFC 9112 section 2.3).
func parseVersion(v []byte) (major, minor int, ok bool) {
	if len(v) != len("HTTP/1.1") || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		!isDigit(v[5]) || !isDigit(v[7]) {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func allTokenBytes(b []byte) bool {
	for _, c := range b {
		if !isTokenByte(c) {
			return false
		}
	}
	return true
}

// checkTarget checks the request target. The origin form ("/path?query"),
// nearly every request, is checked here: no control bytes, and a path whose
// percent-escapes are whole (RFC 3986 section 2.1). The other forms are
// rare and go through net/url, which also gives an absolute form's host.
func (h *requestHead) checkTarget() *headError {
	t := h.target
	if len(t) == 0 {
		return refuseWith(http.StatusBadRequest, errTarget)
	}
	for _, c := range t {
		if c < ' ' || c == 0x7f {
			return refuseWith(http.StatusBadRequest, errTarget)
		}
	}
	if t[0] == '/' {
		path, _, _ := bytes.Cut(t, []byte{'?'})
		if !wholeEscapes(path) {
			return refuseWith(http.StatusBadRequest, errTarget)
		}
		return nil
	}
	raw := string(t)
	authorityOnly := string(h.method) == http.MethodConnect
	if authorityOnly {
		raw = "http://" + raw
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return refuseWith(http.StatusBadRequest, errTarget)
	}
	if u.Host != "" {
		h.host, h.hostFromTarget = []byte(u.Host), true
	}
	return nil
}

// wholeEscapes reports whether every "%" in path starts a two-hex-digit
// escape.
func wholeEscapes(path []byte) bool {
	for i := bytes.IndexByte(path, '%'); i >= 0; {
		if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
			return false
		}
		path = path[i+3:]
		i = bytes.IndexByte(path, '%')
	}
	return true
}

// addField takes one field line: a token name, a colon, a value of visible
// bytes, spaces and tabs (RFC 9110 section 5.5), trimmed.
func (h *requestHead) addField(line []byte) *headError {
	name, value, ok := bytes.Cut(line, []byte{':'})
	if !ok || len(name) == 0 || !allTokenBytes(name) {
		return refuseWith(http.StatusBadRequest, errFieldLine)
	}
	value = bytes.Trim(value, " \t")
	for _, c := range value {
		if !isFieldValueByte(c) {
			return refuseWith(http.StatusBadRequest, errFieldLine)
		}
	}
	h.fields = append(h.fields, headField{name: name, value: value})
	return h.noteField(name, value)
}

// noteField notes what a field says about the request's framing, host and
// connection.
func (h *requestHead) noteField(name, value []byte) *headError {
	switch {
	case asciiEqualFold(name, "Host"):
		if h.hosts++; h.hosts > 1 {
			return refuseWith(http.StatusBadRequest, errHost)
		}
		if !h.hostFromTarget {
			h.host = value
		}
	case asciiEqualFold(name, "Content-Length"):
		n, err := strconv.ParseUint(string(value), 10, 63)
		if err != nil || h.length >= 0 && int64(n) != h.length {
			return refuseWith(http.StatusBadRequest, errLength)
		}
		h.length = int64(n)
	case asciiEqualFold(name, "Transfer-Encoding"):
		if h.hasTE || h.minor >= 1 && !asciiEqualFold(value, "chunked") {
			// net/http serves only a single "chunked" (RFC 9112
			// section 6.1 lets a server answer 501 to others).
			return refuseWith(http.StatusNotImplemented, errCoding)
		}
		h.hasTE, h.chunked = true, h.minor >= 1
	case asciiEqualFold(name, "Content-Type"):
		h.types++
	case asciiEqualFold(name, "Connection"):
		h.close = h.close || hasToken(value, "close")
		h.keep10 = h.keep10 || hasToken(value, "keep-alive")
	case asciiEqualFold(name, "Expect"):
		if !hasToken(value, "100-continue") {
			return refuseWith(http.StatusExpectationFailed, errExpectation)
		}
		h.expect = true
	case asciiEqualFold(name, "Pragma"):
		h.noCache = h.noCache || string(value) == "no-cache"
	case asciiEqualFold(name, "Cache-Control"):
		h.hasCache = true
	}
	return nil
}

// check applies the rules that need the whole head.
func (h *requestHead) check() *headError {
	switch {
	case h.hosts == 0 && h.minor >= 1 && string(h.method) != http.MethodConnect:
		// RFC 9112 section 3.2: a server MUST answer 400.
		return refuseWith(http.StatusBadRequest, errHost)
	case h.hosts == 1 && !validHost(h.firstValue("Host")):
		return refuseWith(http.StatusBadRequest, errHost)
	}
	if h.chunked {
		h.length = -1
		if err := h.checkTrailerDeclaration(); err != nil {
			return err
		}
	}
	if h.minor == 0 {
		h.close = h.close || !h.keep10
	} else {
		h.keep10 = false
	}
	return nil
}

// checkTrailerDeclaration refuses a chunked request whose Trailer field
// names a field that frames the message, as net/http did.
func (h *requestHead) checkTrailerDeclaration() *headError {
	for _, f := range h.fields {
		if !asciiEqualFold(f.name, "Trailer") {
			continue
		}
		for _, name := range strings.Split(string(f.value), ",") {
			switch http.CanonicalHeaderKey(strings.TrimSpace(name)) {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return refuseWith(http.StatusBadRequest, errTrailerKey)
			}
		}
	}
	return nil
}

// hostBytes holds what a Host value may contain: RFC 3986 section 3.2.2's
// reg-name (unreserved, sub-delims, percent-escapes), an IP literal's
// brackets, and the colon before a port.
var hostBytes = func() (set [256]bool) {
	for _, b := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%:[]") {
		set[b] = true
	}
	return set
}()

func validHost(v []byte) bool {
	for _, b := range v {
		if !hostBytes[b] {
			return false
		}
	}
	return true
}

// asciiEqualFold compares b with the ASCII name s, ignoring case.
func asciiEqualFold[T string | []byte](b []byte, s T) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d := s[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token,
// ignoring case (RFC 9110 section 5.6.1).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var elem []byte
		elem, v, _ = bytes.Cut(v, []byte{','})
		if asciiEqualFold(bytes.Trim(elem, " \t"), token) {
			return true
		}
	}
	return false
}

// wantsBody reports whether a body follows the head.
func (h *requestHead) wantsBody() bool { return h.chunked || h.length > 0 }

// connInfo is what a connection adds to each request's CGI variables.
type connInfo struct {
	serverName, serverPort string
	remoteAddr, remotePort string
	https                  bool
	// trust, when not nil, lists the proxies whose X-Forwarded-For and
	// X-Forwarded-Proto are believed (forwarded.go).
	trust *ForwardedAllow
}

// addHeadVars adds the CGI variables of h (PEP 3333 "environ Variables") to
// v. bodySize is the body's decoded length, which CONTENT_LENGTH carries
// even for a chunked request since the whole body has been read. scratch is
// reused storage for names; the grown slice is returned. Header fields
// become HTTP_* in the order they came, a repeated one joined with ","
// (RFC 9110 section 5.3).
func addHeadVars(v *wsgi.Vars, h *requestHead, c *connInfo, bodySize int64, scratch []byte) []byte {
	path, query := splitTarget(string(h.target))
	v.AddBytes([]byte("REQUEST_METHOD"), h.method)
	v.Add("SCRIPT_NAME", "")
	v.Add("PATH_INFO", unescapePath(path))
	v.Add("QUERY_STRING", query)
	v.AddBytes([]byte("REQUEST_URI"), h.target)
	if h.types > 0 {
		v.AddBytes([]byte("CONTENT_TYPE"), h.firstValue("Content-Type"))
	}
	if h.length >= 0 || bodySize > 0 || h.hasTE {
		v.Add("CONTENT_LENGTH", strconv.FormatInt(bodySize, 10))
	}
	if c.serverName != "" || c.serverPort != "" {
		v.Add("SERVER_NAME", c.serverName)
		v.Add("SERVER_PORT", c.serverPort)
	}
	v.AddBytes([]byte("SERVER_PROTOCOL"), h.proto)
	remoteAddr, remotePort, https := c.remoteAddr, c.remotePort, c.https
	if c.trust != nil {
		remoteAddr, remotePort, https = c.applyForwarded(h)
	}
	v.Add("REMOTE_ADDR", remoteAddr)
	v.Add("REMOTE_PORT", remotePort)
	if https {
		v.Add("wsgi.url_scheme", "https")
	} else {
		v.Add("wsgi.url_scheme", "http")
	}
	if len(h.host) > 0 {
		v.AddBytes([]byte("HTTP_HOST"), h.host)
	}
	return addFieldVars(v, h, scratch)
}

// addFieldVars adds a HTTP_* variable per field name.
func addFieldVars(v *wsgi.Vars, h *requestHead, scratch []byte) []byte {
	for i, f := range h.fields {
		if skipFieldVar(f.name, h.chunked) || h.seenBefore(i) {
			continue
		}
		var ok bool
		if scratch, ok = headerVarName(scratch[:0], string(f.name)); !ok {
			continue
		}
		n := len(scratch)
		scratch = append(scratch, f.value...)
		for _, g := range h.fields[i+1:] {
			if asciiEqualFold(g.name, f.name) {
				scratch = append(append(scratch, ','), g.value...)
			}
		}
		v.AddBytes(scratch[:n], scratch[n:])
	}
	if h.noCache && !h.hasCache {
		// net/http added this for an HTTP/1.0 cache's sake (RFC 9111
		// section 5.4), and applications have seen it since.
		v.Add("HTTP_CACHE_CONTROL", "no-cache")
	}
	return scratch
}

// skipFieldVar reports the fields that do not become HTTP_* variables:
// Host (HTTP_HOST is added on its own), Content-Type and Content-Length
// (CONTENT_TYPE and CONTENT_LENGTH carry them, RFC 3875 section 4.1.18),
// Transfer-Encoding (the body is already de-chunked, so telling the app it
// is chunked would make it look for chunks) and, for a chunked request,
// Trailer, which only described that framing.
func skipFieldVar(name []byte, chunked bool) bool {
	return asciiEqualFold(name, "Host") || asciiEqualFold(name, "Content-Type") ||
		asciiEqualFold(name, "Content-Length") || asciiEqualFold(name, "Transfer-Encoding") ||
		chunked && asciiEqualFold(name, "Trailer")
}

// seenBefore reports whether field i's name came earlier in the head.
func (h *requestHead) seenBefore(i int) bool {
	for _, f := range h.fields[:i] {
		if asciiEqualFold(f.name, h.fields[i].name) {
			return true
		}
	}
	return false
}

func (h *requestHead) firstValue(name string) []byte {
	for _, f := range h.fields {
		if asciiEqualFold(f.name, name) {
			return f.value
		}
	}
	return nil
}
