// Helpers every gateway shares to turn a protocol's request into CGI
// variables (RFC 3875 section 4.1, PEP 3333 "environ Variables").
package gateways

import (
	"net"
	"strings"
)

// headerVarName appends the CGI name of an HTTP header ("X-Real-IP" →
// "HTTP_X_REAL_IP") to dst. ok is false for a name containing "_": once
// dashes become underscores, "X_Forwarded_For" would be indistinguishable
// from "X-Forwarded-For", so such headers are dropped as nginx and Gunicorn
// drop them (CVE-2015-0219).
func headerVarName(dst []byte, name string) (out []byte, ok bool) {
	if strings.IndexByte(name, '_') >= 0 {
		return dst, false
	}
	dst = append(dst, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// unescapePath percent-decodes a request path into raw bytes. Decoded bytes
// are kept as they are, not checked as UTF-8, because PEP 3333 carries them
// to the application as latin-1 ("Unicode Issues"); a "%" not followed by
// two hex digits stays literal, as Python's urllib.parse.unquote leaves it.
func unescapePath(path string) string {
	i := strings.IndexByte(path, '%')
	if i < 0 {
		return path
	}
	b := make([]byte, 0, len(path))
	b = append(b, path[:i]...)
	for ; i < len(path); i++ {
		c := path[i]
		if c == '%' && i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]) {
			b = append(b, unhex(path[i+1])<<4|unhex(path[i+2]))
			i += 2
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// splitTarget splits a request target (RFC 9112 section 3.2) into its path
// and query. An absolute-form target ("http://host/p?q") is reduced to its
// path, and a fragment, which a client must not send but some do, is cut.
func splitTarget(target string) (path, query string) {
	if i := strings.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	if !strings.HasPrefix(target, "/") && target != "*" {
		if i := strings.Index(target, "://"); i >= 0 {
			rest := target[i+3:]
			switch j := strings.IndexAny(rest, "/?"); {
			case j < 0:
				target = "/"
			case rest[j] == '?':
				target = "/" + rest[j:]
			default:
				target = rest[j:]
			}
		}
	}
	path, query, _ = strings.Cut(target, "?")
	return path, query
}

// hostPort splits a socket address into host and port; an address it cannot
// split (a Unix socket path) is all host.
func hostPort(addr string) (host, port string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return host, port
}
