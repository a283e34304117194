// The SCGI gateway: the protocol of nginx's scgi_pass, Apache's
// mod_proxy_scgi and lighttpd's mod_scgi (https://python.ca/scgi/protocol.txt).
// A request is a netstring of NUL-separated headers, CONTENT_LENGTH first,
// then the body; the response is a CGI head ("Status:" line and headers)
// and the body, ended by closing the connection.
package gateways

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/gowsgi/gowsgi/wsgi"
)

// maxNetstringDigits bounds the length prefix, whatever the head limit.
const maxNetstringDigits = 9

var (
	errSCGINotNetstring   = errors.New("gateways: scgi: the request does not start with a netstring length")
	errSCGINoComma        = errors.New("gateways: scgi: the header netstring does not end with ','")
	errSCGIUnterminated   = errors.New("gateways: scgi: a header name or value is not NUL-terminated")
	errSCGILengthNotFirst = errors.New("gateways: scgi: CONTENT_LENGTH is not the first header")
	errSCGIMissingVersion = errors.New("gateways: scgi: no SCGI header")
	errSCGIUnknownVersion = errors.New(`gateways: scgi: the SCGI header is not "1"`)
)

// SCGI serves the SCGI protocol on any number of listeners and hands every
// well-formed request to a wsgi.Handler.
type SCGI struct {
	*streamServer
}

// NewSCGI returns an SCGI gateway that serves requests with handler.
func NewSCGI(handler wsgi.Handler, opts StreamOptions) *SCGI {
	proto := streamProtocol{name: "scgi", readHead: readSCGIHead, appendHead: appendCGIHead, framing: wsgi.FramingCGI}
	return &SCGI{newStreamServer(proto, handler, opts)}
}

// readSCGIHead reads the header netstring ("len:headers,") into p.
func readSCGIHead(r *bufio.Reader, buf []byte, limit int, p *params) ([]byte, error) {
	n, err := readNetstringLength(r, limit)
	if err != nil {
		return buf, err
	}
	buf = growTo(buf, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, fmt.Errorf("gateways: scgi: reading the headers: %w", err)
	}
	if buf[n] != ',' {
		return buf, errSCGINoComma
	}
	return buf, addSCGIHeaders(buf[:n], p)
}

// readNetstringLength reads a netstring's decimal length and its ':'. A
// leading zero is refused, as netstrings allow none (and it would let a
// peer send zeros without end).
func readNetstringLength(r *bufio.Reader, limit int) (int, error) {
	n := 0
	for digits := 0; digits <= maxNetstringDigits; digits++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("gateways: scgi: reading the netstring length: %w", err)
		}
		switch {
		case c == ':' && digits > 0:
			return n, nil
		case c < '0' || c > '9', digits > 0 && n == 0:
			return 0, errSCGINotNetstring
		}
		n = n*10 + int(c-'0')
		if n > limit {
			return 0, fmt.Errorf("gateways: scgi: headers of more than %d bytes are over the buffer size (--buffer-size)", limit)
		}
	}
	return 0, errSCGINotNetstring
}

// addSCGIHeaders adds the NUL-terminated name/value pairs of block to p,
// checking what the protocol requires: CONTENT_LENGTH first and "SCGI: 1".
func addSCGIHeaders(block []byte, p *params) error {
	nul := []byte{0}
	first, versioned := true, false
	for len(block) > 0 {
		name, rest, ok := bytes.Cut(block, nul)
		if !ok {
			return errSCGIUnterminated
		}
		value, rest, ok := bytes.Cut(rest, nul)
		if !ok {
			return errSCGIUnterminated
		}
		if first && string(name) != "CONTENT_LENGTH" {
			return errSCGILengthNotFirst
		}
		first = false
		if string(name) == "SCGI" {
			if string(value) != "1" {
				return errSCGIUnknownVersion
			}
			versioned = true
		}
		if err := p.add(name, value); err != nil {
			return err
		}
		block = rest
	}
	switch {
	case first:
		return errSCGILengthNotFirst
	case !versioned:
		return errSCGIMissingVersion
	}
	return nil
}
