package wsgi

import (
	"context"
	"os"
	"syscall"
	"time"
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

// DirectResponder is a ResponseWriter whose connection the worker may write
// the response to itself (frame.go, FlagDirect). The master then sends the
// connection's descriptor with the request and keeps writing through the
// ResponseWriter only what it answers on its own (502, 504, 503) and what
// the worker hands back, already framed, when the client reads slowly.
type DirectResponder interface {
	ResponseWriter
	// Direct returns the connection, whose descriptor the master sends to
	// the worker, and how the response must be framed; ok is false when
	// the worker may not write to it (the response goes through the
	// master).
	Direct() (conn syscall.RawConn, framing Framing, flags HTTPFlags, ok bool)
	// WriteRaw writes bytes already framed for the client.
	WriteRaw(p []byte) error
	// SendFileRaw sends count bytes of f from offset as they are, as
	// SendFile does for a body sent unframed.
	SendFileRaw(f *os.File, offset, count int64) error
	// Completed is told how a response the worker wrote ended, once.
	Completed(c Completion)
}

// PeerAwaiter is a DirectResponder whose connection may carry the
// client's next request: the master may wait for it to learn, without a
// frame from the worker, that the response has ended (requests.go).
type PeerAwaiter interface {
	DirectResponder
	// AwaitPeer waits at most d for the client's next bytes, which it
	// keeps for the next request, or its leaving, which cancels the
	// request's context; not at all when ready reports true once the wait
	// is armed, or when the connection is already being read. It calls
	// done when the wait is over and before the connection can be read
	// otherwise, so an InterruptAwait after done has no effect; done
	// reports whether the request goes on (its response has not ended),
	// and only then is the connection watched again as before the wait.
	AwaitPeer(d time.Duration, ready func() bool, done func() (more bool))
	// InterruptAwait ends a wait of AwaitPeer early; call it only between
	// AwaitPeer's start and its done.
	InterruptAwait()
}
