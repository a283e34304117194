// The HTTP/1.x gateway. Go's net/http parses requests (keep-alive,
// pipelining, HTTP/1.0, HEAD, Expect: 100-continue, chunked bodies); this
// file turns each one into CGI variables and a fully read body, hands it to
// the server, and writes the WSGI response back through net/http. Requests
// whose framing net/http would silently repair are refused first
// (framedconn.go, httpframing.go).
package gateways

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

// Timeouts for the parts of a connection no application is involved in.
const (
	// readHeaderTimeout bounds how long a client may take to send a request
	// head, so idle half-open connections cannot pile up (slowloris).
	readHeaderTimeout = 30 * time.Second
	// idleTimeout closes a keep-alive connection that sends nothing more.
	idleTimeout = 90 * time.Second
)

// orDefault returns d, or def when d is 0.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// keptBodyCap is the largest inline body buffer kept for reuse; larger ones
// are left to the garbage collector so a rare big upload does not pin memory.
const keptBodyCap = 64 << 10

// HTTPOptions configures an HTTP gateway.
type HTTPOptions struct {
	// MaxHeaderBytes bounds a request's line and headers; a larger head gets
	// 431. Zero means net/http's default of 1 MiB. Below 4097 it is 4097,
	// the least net/http can bound a head to.
	MaxHeaderBytes int
	// SpoolThreshold is the largest body kept in memory; a larger one goes
	// to a temporary file. Zero spools every non-empty body.
	SpoolThreshold int64
	// LimitPost, when not 0, is the largest request body accepted; a
	// larger one gets 413 (limits.go).
	LimitPost int64
	// TLSConfig, when set, makes the gateway serve HTTPS: TLS with HTTP/2
	// or HTTP/1.1 negotiated by ALPN (RFC 7301), and wsgi.url_scheme
	// "https". Nil serves plain HTTP/1.x.
	TLSConfig *tls.Config
	// Timeout, when not 0, replaces the default bounds on how long a client
	// may take to send a request head and how long a keep-alive connection
	// may stay idle (--http-timeout).
	Timeout time.Duration
	// Logger receives net/http's own error messages; nil means slog's
	// default logger.
	Logger *slog.Logger
}

// HTTP serves HTTP/1.x, or HTTPS with HTTP/2, on any number of listeners
// and hands every well-formed request to a wsgi.Handler.
type HTTP struct {
	handler   wsgi.Handler
	threshold int64
	limit     int64       // --limit-post; 0 for none
	tls       *tls.Config // nil for plain HTTP/1.x
	log       *slog.Logger
	srv       *http.Server
	requests  sync.Pool // *httpRequest, reused across requests
}

// httpRequest is the per-request state a gateway goroutine reuses.
type httpRequest struct {
	req  wsgi.Request
	name []byte // scratch for building HTTP_* names
	body []byte // reused inline body storage
	resp httpResponse
}

// NewHTTP returns an HTTP gateway that serves requests with handler.
func NewHTTP(handler wsgi.Handler, opts HTTPOptions) *HTTP {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	g := &HTTP{handler: handler, threshold: opts.SpoolThreshold, limit: opts.LimitPost, log: logger}
	if opts.TLSConfig != nil {
		g.tls = opts.TLSConfig.Clone()
		// net/http serves HTTP/2 on a *tls.Conn that negotiated "h2".
		g.tls.NextProtos = []string{"h2", "http/1.1"}
	}
	g.requests.New = func() any { return new(httpRequest) }
	g.srv = &http.Server{
		Handler:           g,
		MaxHeaderBytes:    netHTTPMaxHeaderBytes(opts.MaxHeaderBytes),
		ReadHeaderTimeout: orDefault(opts.Timeout, readHeaderTimeout),
		IdleTimeout:       orDefault(opts.Timeout, idleTimeout),
		// "OPTIONS *" asks about the server as a whole (RFC 9110 section
		// 9.3.7); the application answers it, as under uWSGI and Gunicorn.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if g.tls == nil {
		g.srv.ConnContext, g.srv.ConnState = withFramedConn, noteConnState
	}
	return g
}

// netHTTPSlack is what net/http lets a request head run past
// http.Server.MaxHeaderBytes: it reads up to MaxHeaderBytes + 4096 bytes
// ("bufio slop") before answering 431.
const netHTTPSlack = 4096

// netHTTPMaxHeaderBytes is the http.Server.MaxHeaderBytes that bounds a
// request head to limit bytes, as --buffer-size does for every other
// gateway, rather than to limit plus net/http's slack.
func netHTTPMaxHeaderBytes(limit int) int {
	if limit <= 0 {
		return 0
	}
	return max(limit-netHTTPSlack, 1)
}

// Serve accepts connections on ln until Shutdown or Close; it returns nil
// then, and the listener's error otherwise. Accept errors that pass are
// waited out as for every gateway (conncore.go), before net/http, which
// would end on some of them, sees them.
func (g *HTTP) Serve(ln net.Listener) error {
	patient := newPatientListener(ln, g.log, "http")
	served := net.Listener(framingListener{patient})
	if g.tls != nil {
		// Not under the framing scanner: it would see only ciphertext,
		// and HTTP/2 frames its messages itself (RFC 9113 section 4).
		served = tls.NewListener(patient, g.tls)
	}
	if err := g.srv.Serve(served); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateways: serving http on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections and waits, until ctx is done, for
// the requests in flight to finish.
func (g *HTTP) Shutdown(ctx context.Context) error { return g.srv.Shutdown(ctx) }

// Close closes every listener and connection at once.
func (g *HTTP) Close() error { return g.srv.Close() }

// ServeHTTP turns r into a wsgi.Request and serves it.
func (g *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var conn *framedConn // nil over TLS, which has no framing scanner
	var n int64
	if g.tls == nil {
		conn = framedConnOf(r)
		n = conn.beginRequest()
	}
	if conn != nil && conn.malformedFrom(n) {
		refuse(w, http.StatusBadRequest)
		return
	}
	if code := refusal(r); code != 0 {
		refuse(w, code)
		return
	}
	if overLimit(r.ContentLength, g.limit) {
		refuseUnread(w)
		return
	}
	x := g.requests.Get().(*httpRequest)
	defer g.requests.Put(x)
	b, err := readBody(limitBody(r.Body, g.limit), r.ContentLength, g.threshold, x.body)
	if errors.Is(err, errBodyTooLarge) {
		refuseUnread(w)
		return
	}
	if err != nil {
		refuse(w, http.StatusBadRequest)
		return
	}
	if b.file != nil {
		defer b.file.Close()
	} else if cap(b.data) <= keptBodyCap {
		x.body = b.data[:0]
	}
	// The scanner has now seen the body and its trailers too.
	if conn != nil && conn.malformedFrom(n) {
		refuse(w, http.StatusBadRequest)
		return
	}
	if code := trailerRefusal(r); code != 0 {
		refuse(w, code)
		return
	}
	x.req.Vars.Reset()
	x.name = addHTTPVars(&x.req.Vars, r, b.size, x.name)
	if x.req.Vars.Err() != nil {
		refuse(w, http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	x.req.Body, x.req.BodyFile = b.data, b.file
	x.resp = httpResponse{w: w, conn: conn}
	err = g.handler.ServeWSGI(r.Context(), &x.resp, &x.req)
	if err != nil {
		// The head is out but the body is not whole. What was written
		// still goes out (PEP 3333: every block the app yielded is
		// transmitted), then only closing the connection tells the client
		// the response is broken: a chunked body lacks its last chunk, a
		// Content-Length one is short (RFC 9112 section 8).
		x.resp.flushWritten()
		x.req.Body, x.resp = nil, httpResponse{}
		panic(http.ErrAbortHandler)
	}
	x.req.Body, x.resp = nil, httpResponse{}
}

// addHTTPVars adds r's CGI variables to v (PEP 3333 "environ Variables").
// bodySize is the body's decoded length, which CONTENT_LENGTH carries even
// for a chunked request since the whole body has been read. scratch is
// reused storage for header names; the grown slice is returned.
func addHTTPVars(v *wsgi.Vars, r *http.Request, bodySize int64, scratch []byte) []byte {
	path, query := splitTarget(r.RequestURI)
	v.Add("REQUEST_METHOD", r.Method)
	v.Add("SCRIPT_NAME", "")
	v.Add("PATH_INFO", unescapePath(path))
	v.Add("QUERY_STRING", query)
	v.Add("REQUEST_URI", r.RequestURI)
	if ct, ok := r.Header["Content-Type"]; ok {
		v.Add("CONTENT_TYPE", strings.Join(ct, ","))
	}
	if _, ok := r.Header["Content-Length"]; ok || bodySize > 0 || len(r.TransferEncoding) > 0 {
		v.Add("CONTENT_LENGTH", strconv.FormatInt(bodySize, 10))
	}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		host, port := hostPort(local.String())
		v.Add("SERVER_NAME", host)
		v.Add("SERVER_PORT", port)
	}
	v.Add("SERVER_PROTOCOL", r.Proto)
	host, port := hostPort(r.RemoteAddr)
	v.Add("REMOTE_ADDR", host)
	v.Add("REMOTE_PORT", port)
	if r.TLS != nil {
		v.Add("wsgi.url_scheme", "https")
	} else {
		v.Add("wsgi.url_scheme", "http")
	}
	if r.Host != "" {
		v.Add("HTTP_HOST", r.Host)
	}
	for name, values := range r.Header {
		switch name {
		case "Content-Type", "Content-Length", "Transfer-Encoding":
			// CONTENT_TYPE and CONTENT_LENGTH carry the first two (RFC 3875
			// section 4.1.18); the body is already de-chunked, so telling the
			// app it is chunked would make it look for chunks.
			continue
		}
		var ok bool
		if scratch, ok = headerVarName(scratch[:0], name); !ok {
			continue
		}
		v.Add(string(scratch), joinValues(values))
	}
	return scratch
}

// joinValues joins a repeated header's values with "," (RFC 9110 section
// 5.3), which is how a CGI variable carries a field sent more than once.
func joinValues(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values, ",")
}

// refuse answers a request that never reaches the application and closes
// the connection, since what follows on it cannot be trusted.
func refuse(w http.ResponseWriter, code int) {
	w.Header().Set("Connection", "close")
	http.Error(w, http.StatusText(code), code)
}

// httpResponse is a wsgi.ResponseWriter over net/http.
type httpResponse struct {
	w           http.ResponseWriter
	conn        *framedConn // nil over TLS
	headWritten bool        // WriteHead has passed the head to net/http
}

// serverHeader is shared by every response that does not name its server;
// net/http only reads header values, never changes them.
var serverHeader = []string{"gowsgi"}

var errInformational = errors.New("gateways: a 1xx status cannot end a response")

// WriteHead sets the status and headers; net/http adds Date, and chooses
// Content-Length or chunked framing when the application set neither.
func (h *httpResponse) WriteHead(status string, headers []byte) error {
	code, err := strconv.Atoi(status[:min(3, len(status))])
	if err != nil || code < 100 || code > 999 {
		return fmt.Errorf("gateways: bad status %q", status)
	}
	if code < 200 {
		return errInformational
	}
	hdr := h.w.Header()
	named := false
	err = wsgi.EachVar(headers, func(name, value []byte) bool {
		key := string(name)
		named = named || strings.EqualFold(key, "Server")
		hdr.Add(key, string(value))
		return true
	})
	if err != nil {
		return fmt.Errorf("gateways: response headers: %w", err)
	}
	if !named {
		hdr["Server"] = serverHeader
	}
	// net/http writes its own reason phrase; the connection puts the
	// application's back ("200 Fine" stays "200 Fine", as under uWSGI and
	// Gunicorn). HTTP/2 has no reason phrase, and over TLS net/http's stays.
	if reason := status[min(4, len(status)):]; h.conn != nil && reason != "" && reason != http.StatusText(code) {
		h.conn.reason = reason
	}
	h.w.WriteHeader(code)
	h.headWritten = true
	return nil
}

// WriteBody writes a chunk of the body.
func (h *httpResponse) WriteBody(p []byte) error {
	_, err := h.w.Write(p)
	return err
}

// SendFile copies count bytes of f from offset; net/http hands an
// io.LimitedReader over an *os.File to sendfile(2).
func (h *httpResponse) SendFile(f *os.File, offset, count int64) error {
	return copyFile(h.w, f, offset, count)
}

// flushWritten sends what a broken response wrote before it broke. Without
// a head nothing is flushed: net/http would invent a 200 for it.
func (h *httpResponse) flushWritten() {
	if h.headWritten {
		_ = h.Flush()
	}
}

// Flush sends what net/http has buffered to the client.
func (h *httpResponse) Flush() error {
	if f, ok := h.w.(interface{ FlushError() error }); ok {
		return f.FlushError()
	}
	if f, ok := h.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}
