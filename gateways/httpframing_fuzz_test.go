// Fuzz targets for the HTTP front end: the request framing scanner on its
// own, and the whole HTTP gateway (scanner, net/http and the CGI-variable
// translation) on a loopback connection. Seeds are the scanner's table, the
// framing classes (httpframing_classes_test.go) and, when it is present
// beside the repository, the gunicorn request corpus.
package gateways

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// corpusRequests returns the raw requests of the gunicorn corpus, valid and
// invalid, or none when the corpus is not there. It is read at seed time
// and never copied into the repository.
func corpusRequests(f *testing.F) [][]byte {
	f.Helper()
	dir := filepath.Join("..", "..", "shared", "corpora", "gunicorn-requests")
	var raws [][]byte
	for _, name := range []string{"expected.json", "expected_invalid.json"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Logf("gunicorn request corpus not used: %v", err)
			return nil
		}
		var entries []struct {
			RawB64 string `json:"raw_b64"`
		}
		require.NoError(f, json.Unmarshal(data, &entries), name)
		for _, e := range entries {
			raw, err := base64.StdEncoding.DecodeString(e.RawB64)
			require.NoError(f, err, name)
			raws = append(raws, raw)
		}
	}
	return raws
}

// httpSeeds adds the scanner's table cases, the framing classes and the
// corpus, each with a cut point for the targets that split their input.
func httpSeeds(f *testing.F) {
	for _, tt := range scanCases {
		f.Add([]byte(tt.raw), uint16(len(tt.raw)/2))
	}
	for _, tt := range framingClasses {
		f.Add([]byte(tt.raw), uint16(len(tt.raw)/2))
	}
	for _, raw := range corpusRequests(f) {
		f.Add(raw, uint16(len(raw)/3))
	}
}

// FuzzFramingScanner feeds the same bytes whole, cut in two at a fuzzed
// point, and cut at a fuzzed stride: the verdict must not depend on how the
// reads split the stream, nor, while the stream is well-formed, anything
// the scanner keeps; and a verdict must name the last request begun.
func FuzzFramingScanner(f *testing.F) {
	httpSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte, cut uint16) {
		whole := scanAll(string(raw))
		at := int(cut) % (len(raw) + 1)
		assertSameScan(t, whole, scanAll(string(raw[:at]), string(raw[at:])), "split at %d", at)
		stride := int(cut)%13 + 1
		var pieces []string
		for p := raw; len(p) > 0; p = p[min(stride, len(p)):] {
			pieces = append(pieces, string(p[:min(stride, len(p))]))
		}
		assertSameScan(t, whole, scanAll(pieces...), "read %d bytes at a time", stride)

		if whole.malformed == 0 {
			assert.NoError(t, whole.why)
			assert.NotEqual(t, stMalformed, whole.state)
			return
		}
		assert.Equal(t, whole.request, whole.malformed, "the verdict is about the last request begun")
		assert.Error(t, whole.why)
		assert.Equal(t, stMalformed, whole.state)
	})
}

// assertSameScan compares two scans of the same bytes. Once a request is
// malformed only the verdict counts: what the scanner was in the middle of
// when it stopped depends on where the read that stopped it began.
func assertSameScan(t *testing.T, want, got framingScanner, how string, args ...any) {
	t.Helper()
	if want.malformed == 0 {
		assert.Equal(t, want, got, append([]any{how}, args...)...)
		return
	}
	assert.Equal(t, [3]any{want.request, want.malformed, want.why}, [3]any{got.request, got.malformed, got.why},
		append([]any{how}, args...)...)
}

// httpVarName is an HTTP_* name as headerVarName builds it from a token
// (RFC 9110 section 5.6.2) without "_".
var httpVarName = regexp.MustCompile("^HTTP_[A-Z0-9!#$%&'*+.^`|~_]+$")

// countingHandler counts the requests that reach the application and checks
// their variables.
type countingHandler struct {
	calls atomic.Int64
	bad   atomic.Value // string: the first variable name that broke a rule
}

func (h *countingHandler) ServeWSGI(_ context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	h.calls.Add(1)
	_ = wsgi.EachVar(req.Vars.Block(), func(key, _ []byte) bool {
		if len(key) > 5 && string(key[:5]) == "HTTP_" && !httpVarName.Match(key) {
			h.bad.CompareAndSwap(nil, string(key))
		}
		return true
	})
	return w.WriteHead("200 OK", nil)
}

// FuzzHTTPGateway sends each input on a fresh connection to the HTTP
// gateway and checks, against the scanner's verdict on the same bytes, that
// the application is never called for a malformed request nor for one
// after it, never sees more requests than were begun, and gets HTTP_*
// names only in their canonical form. Each exchange is bounded by a
// deadline, so a hang fails the input instead of stalling the fuzzer.
func FuzzHTTPGateway(f *testing.F) {
	httpSeeds(f)
	h := &countingHandler{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(f, err)
	g := NewHTTP(h, HTTPOptions{MaxHeaderBytes: 64 << 10, SpoolThreshold: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	f.Cleanup(func() {
		g.Close()
		<-done
	})
	addr := ln.Addr().String()

	f.Fuzz(func(t *testing.T, raw []byte, _ uint16) {
		before := h.calls.Load()
		sendAndDrain(t, addr, raw)
		calls := h.calls.Load() - before
		verdict := scanAll(string(raw))
		assert.LessOrEqual(t, calls, verdict.request, "the application saw more requests than were sent")
		if verdict.malformed != 0 {
			assert.Less(t, calls, verdict.malformed, "the application was called for a malformed request (%v)", verdict.why)
		}
		assert.Nil(t, h.bad.Load(), "a header reached the application under a non-canonical name")
	})
}

// sendAndDrain writes raw, half-closes the connection and reads until the
// gateway closes it, all within a deadline; the gateway has then finished
// every request it took from the connection.
func sendAndDrain(t *testing.T, addr string, raw []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	written := make(chan error, 1)
	go func() {
		_, err := conn.Write(raw)
		if err == nil {
			err = conn.(*net.TCPConn).CloseWrite()
		}
		written <- err
	}()
	_, readErr := io.Copy(io.Discard, conn)
	// The gateway may close before reading everything: a refused request
	// leaves the rest unread, so a failed write is no failure here.
	<-written
	if ne, ok := readErr.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the gateway neither answered nor closed within the deadline")
	}
}
