// Response heads for the gateways whose peer is a web server: a CGI head
// (RFC 3875 section 6.3: a "Status:" line, the headers, an empty line) for
// SCGI, FastCGI and CGI, and an HTTP status line for uwsgi, which is what
// nginx's and lighttpd's uwsgi modules expect back.
package gateways

import (
	"fmt"

	"github.com/gowsgi/gowsgi/wsgi"
)

// appendCGIHead appends the CGI head for status and headers (a vars block
// of name/value pairs) to dst.
func appendCGIHead(dst []byte, status string, headers []byte) ([]byte, error) {
	dst = append(dst, "Status: "...)
	dst = append(dst, status...)
	dst = append(dst, "\r\n"...)
	return appendHeaderLines(dst, headers)
}

// appendHTTPHead appends an HTTP/1.1 status line and the headers to dst.
func appendHTTPHead(dst []byte, status string, headers []byte) ([]byte, error) {
	dst = append(dst, "HTTP/1.1 "...)
	dst = append(dst, status...)
	dst = append(dst, "\r\n"...)
	return appendHeaderLines(dst, headers)
}

// appendHeaderLines appends "Name: value" lines and the empty line that ends
// a head.
func appendHeaderLines(dst []byte, headers []byte) ([]byte, error) {
	err := wsgi.EachVar(headers, func(name, value []byte) bool {
		dst = append(dst, name...)
		dst = append(dst, ": "...)
		dst = append(dst, value...)
		dst = append(dst, "\r\n"...)
		return true
	})
	if err != nil {
		return dst, fmt.Errorf("gateways: response headers: %w", err)
	}
	return append(dst, "\r\n"...), nil
}
