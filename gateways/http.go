// The HTTP gateway. Plain HTTP/1.x is served by gowsgi's own connection
// loop (http1conn.go), which reads and checks each request itself and owns
// the socket, so that a worker can later be handed it. HTTPS, with HTTP/2
// or HTTP/1.1 negotiated by ALPN, is served by Go's net/http: this file
// turns each of its requests into CGI variables and a fully read body,
// hands it to the server, and writes the WSGI response back through
// net/http.
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
	// 431. Zero means 1 MiB. Over HTTPS, where net/http reads the head, it
	// is at least 4097 bytes, the least net/http can bound a head to.
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
	// IdleTimeout, when not 0, is how long a keep-alive connection may
	// wait for its next request (--http-keepalive-timeout); else Timeout,
	// else 90 s: longer than the 60 s load balancers keep an idle
	// connection, so that the balancer, not gowsgi, closes it first and
	// never sends a request on a connection gowsgi is closing.
	IdleTimeout time.Duration
	// ProxyProtocol makes every connection open with a PROXY protocol
	// header, version 1 or 2, whose source becomes REMOTE_ADDR and
	// REMOTE_PORT; a plain HTTP connection without one is refused with
	// 400, an HTTPS one (the header comes before TLS) is closed.
	ProxyProtocol bool
	// ForwardedAllow, when not nil, lists the peers whose X-Forwarded-For
	// and X-Forwarded-Proto set REMOTE_ADDR and wsgi.url_scheme.
	ForwardedAllow *ForwardedAllow
	// Logger receives the gateway's and net/http's messages; nil means
	// slog's default logger.
	Logger *slog.Logger
}

// HTTP serves HTTP/1.x, or HTTPS with HTTP/2, on any number of listeners
// and hands every well-formed request to a wsgi.Handler.
type HTTP struct {
	handler   wsgi.Handler
	threshold int64
	limit     int64       // --limit-post; 0 for none
	tls       *tls.Config // nil for plain HTTP/1.x
	trust     *ForwardedAllow
	// proxyProtocol: HTTPS connections open with a PROXY header.
	proxyProtocol bool
	log           *slog.Logger
	srv           *http.Server // HTTPS only
	plain         *http1Server // plain HTTP/1.x only
	requests      sync.Pool    // *httpRequest, reused across HTTPS requests
}

// httpRequest is the per-request state a net/http goroutine reuses.
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
	g := &HTTP{handler: handler, threshold: opts.SpoolThreshold, limit: opts.LimitPost, log: logger,
		trust: opts.ForwardedAllow, proxyProtocol: opts.ProxyProtocol}
	if opts.TLSConfig == nil {
		g.plain = newHTTP1Server(handler, opts, logger)
		return g
	}
	g.tls = opts.TLSConfig.Clone()
	// net/http serves HTTP/2 on a *tls.Conn that negotiated "h2".
	g.tls.NextProtos = []string{"h2", "http/1.1"}
	g.requests.New = func() any { return new(httpRequest) }
	g.srv = &http.Server{
		Handler:           g,
		MaxHeaderBytes:    netHTTPMaxHeaderBytes(opts.MaxHeaderBytes),
		ReadHeaderTimeout: orDefault(opts.Timeout, readHeaderTimeout),
		IdleTimeout:       orDefault(opts.IdleTimeout, orDefault(opts.Timeout, idleTimeout)),
		// "OPTIONS *" asks about the server as a whole (RFC 9110 section
		// 9.3.7); the application answers it, as under uWSGI and Gunicorn.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
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
	if g.plain != nil {
		return g.plain.Serve(ln)
	}
	var accepted net.Listener = newPatientListener(ln, g.log, "https")
	if g.proxyProtocol {
		accepted = &proxyListener{Listener: accepted, timeout: g.srv.ReadHeaderTimeout, log: g.log}
	}
	if err := g.srv.Serve(tls.NewListener(accepted, g.tls)); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateways: serving https on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections and waits, until ctx is done, for
// the requests in flight to finish.
func (g *HTTP) Shutdown(ctx context.Context) error {
	if g.plain != nil {
		return g.plain.Shutdown(ctx)
	}
	return g.srv.Shutdown(ctx)
}

// Close closes every listener and connection at once.
func (g *HTTP) Close() error {
	if g.plain != nil {
		return g.plain.Close()
	}
	return g.srv.Close()
}

// ServeHTTP turns r, an HTTPS request, into a wsgi.Request and serves it.
func (g *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if code := refusal(r.Method, r.RequestURI, len(r.Header["Content-Type"])); code != 0 {
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
	if code := trailerRefusal(r); code != 0 {
		refuse(w, code)
		return
	}
	x.req.Vars.Reset()
	x.name = addHTTPVars(&x.req.Vars, r, b.size, g.trust, x.name)
	if x.req.Vars.Err() != nil {
		refuse(w, http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	x.req.Body, x.req.BodyFile = b.data, b.file
	x.resp = httpResponse{w: w}
	err = g.handler.ServeWSGI(r.Context(), &x.resp, &x.req)
	if err != nil {
		// The head is out but the body is not whole: what was written
		// goes out (PEP 3333), then the stream or connection is reset.
		x.resp.flushWritten()
		x.req.Body, x.resp = nil, httpResponse{}
		panic(http.ErrAbortHandler)
	}
	x.req.Body, x.resp = nil, httpResponse{}
}

// addHTTPVars adds r's CGI variables to v through the translator the
// plain-HTTP server uses (addHeadVars), so both give the same environ.
func addHTTPVars(v *wsgi.Vars, r *http.Request, bodySize int64, trust *ForwardedAllow, scratch []byte) []byte {
	h := requestHead{
		method: []byte(r.Method), target: []byte(r.RequestURI), proto: []byte(r.Proto),
		host: []byte(r.Host), length: -1, hasTE: len(r.TransferEncoding) > 0,
		types: len(r.Header["Content-Type"]),
	}
	if _, ok := r.Header["Content-Length"]; ok {
		h.length = r.ContentLength
	}
	for name, values := range r.Header {
		if name == "Content-Type" {
			h.fields = append(h.fields, headField{name: []byte(name), value: []byte(strings.Join(values, ","))})
			continue
		}
		for _, value := range values {
			h.fields = append(h.fields, headField{name: []byte(name), value: []byte(value)})
		}
	}
	c := connInfo{trust: trust}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		c.serverName, c.serverPort = hostPort(local.String())
	}
	c.remoteAddr, c.remotePort = hostPort(r.RemoteAddr)
	c.https = r.TLS != nil
	return addHeadVars(v, &h, &c, bodySize, scratch)
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
	headWritten bool // WriteHead has passed the head to net/http
}

// serverHeader is shared by every response that does not name its server;
// net/http only reads header values, never changes them.
var serverHeader = []string{"gowsgi"}

// WriteHead sets the status and headers; net/http adds Date, and chooses
// Content-Length or chunked framing when the application set neither.
func (h *httpResponse) WriteHead(status string, headers []byte) error {
	code, err := strconv.Atoi(status[:min(3, len(status))])
	if err != nil || code < 100 || code > 999 {
		return fmt.Errorf("gateways: bad status %q", status)
	}
	if code < 200 {
		return errInterimStatus
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
	// HTTP/2 has no reason phrase, and over HTTP/1.1 with TLS net/http
	// writes its own.
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
