package wsgi

import (
	"context"
	"os"
)

// ResponseWriter is what a gateway gives the server so a response goes back
// in the gateway's own protocol. Calls come from one goroutine, in order:
// WriteHead once, then any number of WriteBody and SendFile, with Flush
// whenever the server has no more bytes at hand for now.
type ResponseWriter interface {
	// WriteHead sends the status line ("200 OK") and headers, a vars block of
	// name/value pairs already checked by CheckStatus and CheckHeader.
	WriteHead(status string, headers []byte) error
	// WriteBody sends a chunk of the body. p is only valid during the call.
	WriteBody(p []byte) error
	// SendFile sends count bytes of f from offset (count -1: to its end),
	// with sendfile(2) where the protocol allows. The callee does not close f.
	SendFile(f *os.File, offset, count int64) error
	// Flush pushes buffered bytes to the client.
	Flush() error
}

// Handler serves WSGI requests; the server implements it for the gateways.
type Handler interface {
	// ServeWSGI runs req and writes the response to w, returning once the
	// response has ended. ctx is done when the client has gone away. A
	// non-nil error means the response could not be completed after its head
	// went out, so the gateway must close the connection rather than end
	// the response cleanly, once what was written to w, flushed or not, has
	// been sent: PEP 3333 has every block the app yielded transmitted.
	ServeWSGI(ctx context.Context, w ResponseWriter, req *Request) error
}
