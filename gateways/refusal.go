// Cheap checks for requests that parse but must not reach an application,
// because a proxy in front could frame or route them differently (request
// smuggling). Both HTTP servers run them: the plain-HTTP/1.x one on its
// parsed head, net/http's (HTTPS, HTTP/2) on its *http.Request.
package gateways

import (
	"net/http"
	"strings"
)

// refusal returns the status to refuse a request with before its body is
// read, or 0 to serve it. contentTypes is its number of Content-Type fields.
func refusal(method, target string, contentTypes int) int {
	switch {
	case !validTargetForm(method, target):
		return http.StatusBadRequest
	case contentTypes > 1:
		// Two media types for one body: which one a proxy used is
		// anyone's guess (RFC 9110 section 5.3 allows a field to repeat
		// only when it is defined as a list, and Content-Type is not).
		return http.StatusBadRequest
	}
	return 0
}

// validTargetForm checks the request target's form against the method
// (RFC 9112 section 3.2): "*" only for OPTIONS, host:port only for CONNECT.
func validTargetForm(method, target string) bool {
	switch {
	case strings.HasPrefix(target, "/"):
		return method != http.MethodConnect
	case target == "*":
		return method == http.MethodOptions
	case strings.Contains(target, "://"):
		return method != http.MethodConnect
	default:
		return method == http.MethodConnect
	}
}

// forbiddenTrailers are fields a chunked body's trailer section must not
// carry, because they control framing or routing (RFC 9110 section 6.5.1).
var forbiddenTrailers = []string{"Content-Length", "Transfer-Encoding", "Host", "Te", "Trailer", "Content-Type", "Content-Encoding", "Content-Range"}

// forbiddenTrailer reports whether a trailer field may not be accepted.
func forbiddenTrailer(name []byte) bool {
	for _, f := range forbiddenTrailers {
		if asciiEqualFold(name, f) {
			return true
		}
	}
	return false
}

// trailerRefusal returns the status to refuse r with once its body has been
// read and its trailers are known, or 0.
func trailerRefusal(r *http.Request) int {
	for _, name := range forbiddenTrailers {
		if _, ok := r.Trailer[name]; ok {
			return http.StatusBadRequest
		}
	}
	return 0
}
