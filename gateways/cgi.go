// The CGI gateway (RFC 3875): gowsgi started by a web server as a CGI
// program serves the one request its environment and stdin describe and
// writes the response to stdout, as wsgiref.handlers.CGIHandler does.
package gateways

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gowsgi/gowsgi/wsgi"
)

// CGIOptions configures a CGI gateway.
type CGIOptions struct {
	// SpoolThreshold is the largest body kept in memory; a larger one goes
	// to a temporary file. Zero spools every non-empty body.
	SpoolThreshold int64
}

// CGI serves the single request of a CGI invocation with a wsgi.Handler.
type CGI struct {
	handler   wsgi.Handler
	threshold int64
}

// NewCGI returns a CGI gateway that serves its request with handler.
func NewCGI(handler wsgi.Handler, opts CGIOptions) *CGI {
	return &CGI{handler: handler, threshold: opts.SpoolThreshold}
}

// Serve builds the request from env (os.Environ's "NAME=value" form) and
// the body on stdin, serves it and writes the response to stdout. A request
// the web server described wrongly is answered with 400 and reported as an
// error; so is a response that broke after its head went out, which a CGI
// program can only signal by its exit status.
func (g *CGI) Serve(ctx context.Context, env []string, stdin io.Reader, stdout io.Writer) error {
	resp := &plainResponse{w: bufio.NewWriterSize(stdout, 64<<10), raw: stdout, appendHead: appendCGIHead}
	var req wsgi.Request
	contentLength, err := addCGIVars(&req.Vars, env)
	var b body
	if err == nil {
		b, err = readCGIBody(stdin, contentLength, g.threshold)
	}
	if err != nil {
		return errors.Join(err, refuseCGI(resp))
	}
	defer b.close()
	req.Body, req.BodyFile = b.data, b.file
	err = g.handler.ServeWSGI(ctx, resp, &req)
	if ferr := resp.Flush(); err == nil {
		err = ferr
	}
	return err
}

// addCGIVars puts every environment variable into v, as CGIHandler puts
// all of os.environ into environ: the request's meta-variables (RFC 3875
// section 4.1) and the process's own, which PEP 3333 allows ("environ
// Variables"). It returns CONTENT_LENGTH, -1 when absent.
func addCGIVars(v *wsgi.Vars, env []string) (int64, error) {
	p := newParams(v)
	p.scriptIsMount = true
	for _, kv := range env {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			continue
		}
		if err := p.add([]byte(key), []byte(value)); err != nil {
			return 0, err
		}
	}
	return p.contentLength, p.finish()
}

// readCGIBody reads the body from stdin. The web server need not close
// stdin after it, so exactly CONTENT_LENGTH bytes are read, and none when it
// is absent (RFC 3875 section 4.2).
func readCGIBody(stdin io.Reader, contentLength, threshold int64) (body, error) {
	if contentLength <= 0 {
		return body{}, nil
	}
	b, err := readBody(io.LimitReader(stdin, contentLength), contentLength, threshold, nil)
	if err == nil && b.size != contentLength {
		b.close()
		err = fmt.Errorf("gateways: stdin ended after %d of CONTENT_LENGTH %d bytes", b.size, contentLength)
	}
	return b, err
}

// refuseCGI answers a request the web server described wrongly.
func refuseCGI(w *plainResponse) error {
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain; charset=utf-8")
	if err := w.WriteHead("400 Bad Request", headers.Block()); err != nil {
		return err
	}
	if err := w.WriteBody([]byte("400 Bad Request\n")); err != nil {
		return err
	}
	return w.Flush()
}
