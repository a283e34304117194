// The uwsgi gateway: the binary protocol nginx's uwsgi_pass, Apache's
// mod_proxy_uwsgi and lighttpd's mod_scgi (scgi.protocol = "uwsgi") speak
// (https://uwsgi-docs.readthedocs.io/en/latest/Protocol.html). A request is
// a 4-byte header, a vars block and CONTENT_LENGTH bytes of body; the
// response is an HTTP status line, headers and the body, ended by closing
// the connection.
package gateways

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/gowsgi/gowsgi/wsgi"
)

// uwsgiHeaderLen is the size of a packet header: modifier1 (1 byte),
// datasize (little-endian uint16), modifier2 (1 byte).
const uwsgiHeaderLen = 4

// The modifier1 values that carry a request's vars block. 0 is WSGI; 5 is
// PSGI, whose packet is the same and which some web server configurations
// send for every application.
const (
	uwsgiModifierWSGI = 0
	uwsgiModifierPSGI = 5
)

// UWSGI serves the uwsgi protocol on any number of listeners and hands every
// well-formed request to a wsgi.Handler.
type UWSGI struct {
	*streamServer
}

// NewUWSGI returns a uwsgi gateway that serves requests with handler.
func NewUWSGI(handler wsgi.Handler, opts StreamOptions) *UWSGI {
	proto := streamProtocol{name: "uwsgi", readHead: readUWSGIHead, appendHead: appendHTTPHead, framing: wsgi.FramingHTTPHead}
	return &UWSGI{newStreamServer(proto, handler, opts)}
}

// readUWSGIHead reads a packet header and its vars block into p. A modifier1
// other than a request's, a datasize over limit, or a vars block whose
// lengths overrun the packet is an error.
func readUWSGIHead(r *bufio.Reader, buf []byte, limit int, p *params) ([]byte, error) {
	buf = growTo(buf, uwsgiHeaderLen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, fmt.Errorf("gateways: uwsgi: reading the packet header: %w", err)
	}
	modifier1, size := buf[0], int(binary.LittleEndian.Uint16(buf[1:3]))
	if modifier1 != uwsgiModifierWSGI && modifier1 != uwsgiModifierPSGI {
		return buf, fmt.Errorf("gateways: uwsgi: modifier1 %d is not a request", modifier1)
	}
	if size > limit {
		return buf, fmt.Errorf("gateways: uwsgi: a %d-byte vars block is over the buffer size of %d (--buffer-size)", size, limit)
	}
	buf = growTo(buf, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, fmt.Errorf("gateways: uwsgi: reading the vars block: %w", err)
	}
	var addErr error
	err := wsgi.EachVar(buf, func(key, value []byte) bool {
		addErr = p.add(key, value)
		return addErr == nil
	})
	if err != nil {
		return buf, fmt.Errorf("gateways: uwsgi: the vars block overruns its packet: %w", err)
	}
	return buf, addErr
}
