package gateways

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/wsgi"
)

// cgiHandler is a fake server: it records the request and answers with a
// fixed head and the body it was given, or with its own respond function.
type cgiHandler struct {
	vars     map[string]string
	body     []byte
	bodyFile *os.File
	spooled  spooledBody
	respond  func(w wsgi.ResponseWriter) error
}

func (h *cgiHandler) ServeWSGI(_ context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	h.vars = req.Vars.Map()
	h.body = append([]byte(nil), req.Body...)
	h.bodyFile = req.BodyFile
	if req.BodyFile != nil {
		var err error
		if h.spooled, err = inspectSpooled(req.BodyFile); err != nil {
			return err
		}
		h.body = []byte(h.spooled.content)
	}
	if h.respond != nil {
		return h.respond(w)
	}
	var headers wsgi.Vars
	headers.Add("Content-Type", "text/plain")
	headers.Add("X-Echo", "1")
	if err := w.WriteHead("200 OK", headers.Block()); err != nil {
		return err
	}
	return w.WriteBody(h.body)
}

// cgiEnv is the environment of a CGI request as Apache would set it, plus
// an unrelated variable of the process.
func cgiEnv(extra ...string) []string {
	return append([]string{
		"PATH=/usr/bin:/bin",
		"GATEWAY_INTERFACE=CGI/1.1",
		"SERVER_SOFTWARE=Apache",
		"SERVER_NAME=example.org",
		"SERVER_PORT=8080",
		"SERVER_PROTOCOL=HTTP/1.1",
		"SCRIPT_NAME=/app.wsgi",
		"PATH_INFO=/a b",
		"QUERY_STRING=x=1",
		"REMOTE_ADDR=127.0.0.1",
		"HTTP_HOST=example.org:8080",
	}, extra...)
}

func TestCGIServe(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		stdin    string
		wantOut  string
		wantBody string
		wantVars map[string]string
		wantErr  bool
	}{
		{
			name:     "GET",
			env:      cgiEnv("REQUEST_METHOD=GET"),
			wantOut:  "Status: 200 OK\r\nContent-Type: text/plain\r\nX-Echo: 1\r\n\r\n",
			wantVars: map[string]string{"REQUEST_METHOD": "GET", "PATH_INFO": "/a b", "SCRIPT_NAME": "/app.wsgi", "QUERY_STRING": "x=1", "PATH": "/usr/bin:/bin", "wsgi.url_scheme": "http"},
		},
		{
			name:     "POST reads CONTENT_LENGTH bytes and no more",
			env:      cgiEnv("REQUEST_METHOD=POST", "CONTENT_LENGTH=5", "CONTENT_TYPE=text/plain"),
			stdin:    "hello, and what the web server did not mean to send",
			wantOut:  "Status: 200 OK\r\nContent-Type: text/plain\r\nX-Echo: 1\r\n\r\nhello",
			wantBody: "hello",
			wantVars: map[string]string{"CONTENT_LENGTH": "5", "CONTENT_TYPE": "text/plain"},
		},
		{
			name:    "no CONTENT_LENGTH means no body",
			env:     cgiEnv("REQUEST_METHOD=POST"),
			stdin:   "ignored",
			wantOut: "Status: 200 OK\r\nContent-Type: text/plain\r\nX-Echo: 1\r\n\r\n",
		},
		{
			name:     "HTTPS=on",
			env:      cgiEnv("REQUEST_METHOD=GET", "HTTPS=on"),
			wantOut:  "Status: 200 OK\r\nContent-Type: text/plain\r\nX-Echo: 1\r\n\r\n",
			wantVars: map[string]string{"wsgi.url_scheme": "https", "HTTPS": "on"},
		},
		{
			name:    "stdin shorter than CONTENT_LENGTH",
			env:     cgiEnv("REQUEST_METHOD=POST", "CONTENT_LENGTH=10"),
			stdin:   "short",
			wantOut: "Status: 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n400 Bad Request\n",
			wantErr: true,
		},
		{
			name:    "bad CONTENT_LENGTH",
			env:     cgiEnv("REQUEST_METHOD=POST", "CONTENT_LENGTH=-3"),
			wantOut: "Status: 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n400 Bad Request\n",
			wantErr: true,
		},
		{
			name:    "no REQUEST_METHOD",
			env:     cgiEnv(),
			wantOut: "Status: 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n400 Bad Request\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &cgiHandler{}
			var out bytes.Buffer
			err := NewCGI(h, CGIOptions{SpoolThreshold: 1 << 20}).Serve(context.Background(), tt.env, strings.NewReader(tt.stdin), &out)
			if tt.wantErr {
				assert.Error(t, err)
				assert.Nil(t, h.vars, "a bad request reached the handler")
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.wantBody, string(h.body))
			}
			assert.Equal(t, tt.wantOut, out.String())
			for k, v := range tt.wantVars {
				assert.Equal(t, v, h.vars[k], k)
			}
		})
	}
}

func TestCGISpoolsALargeBody(t *testing.T) {
	body := strings.Repeat("0123456789", 1000)
	h := &cgiHandler{respond: func(w wsgi.ResponseWriter) error { return w.WriteHead("204 No Content", nil) }}
	var out bytes.Buffer
	env := cgiEnv("REQUEST_METHOD=PUT", "CONTENT_LENGTH=10000")
	err := NewCGI(h, CGIOptions{SpoolThreshold: 100}).Serve(context.Background(), env, strings.NewReader(body+"tail"), &out)
	require.NoError(t, err)
	assert.Equal(t, body, string(h.body))
	assert.Equal(t, spooledBody{content: body, nameless: true}, h.spooled)
	assertClosed(t, h.bodyFile)
	assert.Equal(t, "Status: 204 No Content\r\n\r\n", out.String())
}

func TestCGIResponseWriter(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(file, []byte("0123456789"), 0o644))
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()

	h := &cgiHandler{respond: func(w wsgi.ResponseWriter) error {
		var headers wsgi.Vars
		headers.Add("Content-Type", "application/octet-stream")
		headers.Add("Set-Cookie", "a=1")
		headers.Add("Set-Cookie", "b=2")
		for _, step := range []func() error{
			func() error { return w.WriteHead("206 Partial Content", headers.Block()) },
			func() error { return w.WriteBody([]byte("<")) },
			func() error { return w.SendFile(f, 2, 3) },
			func() error { return w.WriteBody([]byte("|")) },
			func() error { return w.SendFile(f, 7, -1) },
			func() error { return w.WriteBody([]byte(">")) },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	}}
	var out bytes.Buffer
	err = NewCGI(h, CGIOptions{}).Serve(context.Background(), cgiEnv("REQUEST_METHOD=GET"), strings.NewReader(""), &out)
	require.NoError(t, err)
	want := "Status: 206 Partial Content\r\nContent-Type: application/octet-stream\r\n" +
		"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n<234|789>"
	assert.Equal(t, want, out.String())
}

func TestCGIPassesOnABrokenResponse(t *testing.T) {
	h := &cgiHandler{respond: func(w wsgi.ResponseWriter) error {
		if err := w.WriteHead("200 OK", nil); err != nil {
			return err
		}
		if err := w.WriteBody([]byte("partial")); err != nil {
			return err
		}
		return os.ErrClosed // what a server reports when the app broke mid-body
	}}
	var out bytes.Buffer
	err := NewCGI(h, CGIOptions{}).Serve(context.Background(), cgiEnv("REQUEST_METHOD=GET"), strings.NewReader(""), &out)
	assert.ErrorIs(t, err, os.ErrClosed)
	assert.Equal(t, "Status: 200 OK\r\n\r\npartial", out.String(), "what was written before the break still goes out")
}
