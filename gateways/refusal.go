// Cheap checks for requests net/http accepts but that must not reach an
// application, because a proxy in front could frame or route them
// differently (request smuggling). This is not a second HTTP parser: each
// check looks at what net/http already parsed.
package gateways

import (
	"net/http"
	"strings"
)

// refusal returns the status to refuse r with before its body is read, or
// 0 to serve it.
func refusal(r *http.Request) int {
	switch {
	case !validTargetForm(r):
		return http.StatusBadRequest
	case len(r.Header["Content-Type"]) > 1:
		// Two media types for one body: which one a proxy used is
		// anyone's guess (RFC 9110 section 5.3 allows a field to repeat
		// only when it is defined as a list, and Content-Type is not).
		return http.StatusBadRequest
	}
	return 0
}

// validTargetForm checks the request target's form against the method
// (RFC 9112 section 3.2): "*" only for OPTIONS, host:port only for CONNECT.
func validTargetForm(r *http.Request) bool {
	target := r.RequestURI
	switch {
	case strings.HasPrefix(target, "/"):
		return r.Method != http.MethodConnect
	case target == "*":
		return r.Method == http.MethodOptions
	case strings.Contains(target, "://"):
		return r.Method != http.MethodConnect
	default:
		return r.Method == http.MethodConnect
	}
}

// forbiddenTrailers are fields a chunked body's trailer section must not
// carry, because they control framing or routing (RFC 9110 section 6.5.1).
var forbiddenTrailers = []string{"Content-Length", "Transfer-Encoding", "Host", "Te", "Trailer", "Content-Type", "Content-Encoding", "Content-Range"}

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
