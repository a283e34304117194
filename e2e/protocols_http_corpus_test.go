// Gunicorn's HTTP/1.x request-parser corpus through the real binary: every
// valid request, sent whole and in small pieces, must reach testdata/echo.py
// with the environ it describes; every invalid one must be refused without
// the app being called. The corpus lives beside the repository
// (shared/corpora/gunicorn-requests, see its README for the format).
package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// corpusValid is one request of expected.json. Strings are latin-1, one
// code point per byte.
type corpusValid struct {
	File     string         `json:"file"`
	Method   string         `json:"method"`
	URI      string         `json:"uri"`
	Path     string         `json:"path"`
	Query    string         `json:"query"`
	Version  [2]int         `json:"version"`
	Headers  [][2]string    `json:"headers"`
	Body     string         `json:"body"`
	Settings map[string]any `json:"settings"`
	RawB64   string         `json:"raw_b64"`
}

// corpusInvalid is one case of expected_invalid.json.
type corpusInvalid struct {
	File          string         `json:"file"`
	ExpectedError string         `json:"expected_error"`
	Settings      map[string]any `json:"settings"`
	RawB64        string         `json:"raw_b64"`
}

// verdict is what gowsgi does with a request.
type verdict int

const (
	accept verdict = iota + 1
	reject
)

// corpusDecisions records gowsgi's choice for every case gunicorn decides
// only under a non-default setting, and for the default cases that only
// exceed gunicorn's own size limits, with the reason.
var corpusDecisions = map[string]struct {
	verdict verdict
	why     string
}{
	// valid/ cases gunicorn accepts only with a setting.
	"valid/024.http":                  {accept, "8189-byte request line and 8204-byte field fit gowsgi's 64 KiB header block (--buffer-size)"},
	"valid/026.http":                  {accept, "an 8204-byte field fits the 64 KiB header block"},
	"valid/028.http":                  {reject, "whitespace between a field name and its colon: RFC 9112 section 5.1 requires a 400"},
	"valid/031compat.http":            {reject, "methods are case-sensitive tokens and gowsgi does not case-fold them; invalid/003c agrees"},
	"valid/031compat2.http":           {reject, "lower-case unconventional method, refused like invalid/003c"},
	"valid/040_compat.http":           {accept, "accepted, but header names with _ are dropped, never mapped: the app sees what valid/040 expects"},
	"valid/compat_obs_fold.http":      {reject, "obs-fold: RFC 9112 section 5.2 lets a server refuse it with 400; same bytes as invalid/obs_fold_01"},
	"valid/compat_obs_fold_huge.http": {reject, "obs-fold, refused as above"},
	"valid/pp_01.http":                {reject, "the PROXY protocol is not enabled, and a PROXY line is not an HTTP request line"},
	"valid/pp_02.http":                {reject, "PROXY line, as pp_01"},
	"valid/pp_03.http":                {accept, "no PROXY line at all: a plain HTTP request"},
	"valid/pp_04.http":                {reject, "PROXY v2 binary header, as pp_01"},
	"valid/pp_05.http":                {reject, "PROXY v2 binary header, as pp_01"},

	// invalid/ cases gunicorn refuses only with a setting.
	"invalid/010.http":                     {accept, "gunicorn's limit_request_field_size=10 is far below gowsgi's header block limit"},
	"invalid/011.http":                     {accept, "gowsgi does not limit the number of fields, only the header block size"},
	"invalid/012.http":                     {accept, "limit_request_field_size=98 is below gowsgi's limit"},
	"invalid/013.http":                     {reject, "obs-fold, refused as valid/compat_obs_fold"},
	"invalid/019.http":                     {accept, "gowsgi does not derive the scheme from X-Forwarded-*; they reach the app as HTTP_X_FORWARDED_*"},
	"invalid/040.http":                     {accept, "gowsgi drops header names with _ rather than refusing the request"},
	"invalid/chunked_07.http":              {accept, "Transfer_Encoding is dropped (it has a _); the chunked body is read normally"},
	"invalid/limit_header_default_01.http": {accept, "an 8190-byte field fits the 64 KiB header block"},
	"invalid/pp_01.http":                   {reject, "PROXY line, not HTTP"},
	"invalid/pp_02.http":                   {reject, "PROXY line, not HTTP"},
	"invalid/pp_03.http":                   {reject, "PROXY line, not HTTP"},

	// invalid/ cases with default settings that only break gunicorn's size
	// limits (4094-byte request line, 8190-byte field, 100 fields); gowsgi's
	// documented limit is the 64 KiB header block, tested on its own below.
	"invalid/006.http": {accept, "a 4112-byte request line fits the 64 KiB header block"},
	"invalid/007.http": {accept, "an 8203-byte field fits the 64 KiB header block"},
	"invalid/008.http": {accept, "8189- and 4108-byte fields fit the 64 KiB header block"},
	"invalid/009.http": {accept, "105 fields: gowsgi does not limit the count"},
	"invalid/017.http": {accept, "an 8189-byte field fits the 64 KiB header block"},
}

// truncatedErrors are corpus errors for a request cut short: closing the
// connection without an answer is as right as a 4xx.
var truncatedErrors = map[string]bool{"NoMoreData": true, "ChunkMissingTerminator": true}

// echoed is what testdata/echo.py answers.
type echoed struct {
	Environ         map[string]string `json:"environ"`
	BodyHex         string            `json:"body_hex"`
	InputTerminated *bool             `json:"input_terminated"`
}

func corpusDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "shared", "corpora", "gunicorn-requests"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "expected.json")); err != nil {
		t.Skipf("gunicorn request corpus not found at %s", dir)
	}
	return dir
}

func loadJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v), path)
}

func TestGunicornCorpus(t *testing.T) {
	t.Parallel()
	dir := corpusDir(t)
	var valid []corpusValid
	var invalid []corpusInvalid
	loadJSON(t, filepath.Join(dir, "expected.json"), &valid)
	loadJSON(t, filepath.Join(dir, "expected_invalid.json"), &invalid)
	echo := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "echo.py"), "-p", "2")

	byFile := map[string][]corpusValid{}
	var files []string
	for _, req := range valid {
		if len(byFile[req.File]) == 0 {
			files = append(files, req.File)
		}
		byFile[req.File] = append(byFile[req.File], req)
	}
	// The subtests share one server and count its app calls, so they run
	// one after another.
	for _, split := range []bool{false, true} {
		for _, file := range files {
			reqs := byFile[file]
			t.Run(fmt.Sprintf("valid/%s/split=%v", file, split), func(t *testing.T) {
				if file == "099.http" {
					t.Skip("its Content-Length exceeds its body: a truncated request over a socket (corpus README)")
				}
				raw := decodeRaw(t, reqs[0].RawB64)
				switch decide(t, "valid/"+file, len(reqs[0].Settings) > 0, accept) {
				case accept:
					if file == "040_compat.http" {
						reqs = byFile["040.http"]
					}
					expectServed(t, echo, raw, split, reqs)
				case reject:
					expectRefused(t, echo, raw, split, "")
				}
			})
		}
		for _, c := range invalid {
			t.Run(fmt.Sprintf("invalid/%s/split=%v", c.File, split), func(t *testing.T) {
				raw := decodeRaw(t, c.RawB64)
				switch decide(t, "invalid/"+c.File, len(c.Settings) > 0, reject) {
				case accept:
					expectAccepted(t, echo, raw, split)
				case reject:
					expectRefused(t, echo, raw, split, c.ExpectedError)
				}
			})
		}
	}

	t.Run("header block over --buffer-size is refused", func(t *testing.T) {
		raw := []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n")
		status := expectRefused(t, echo, raw, false, "")
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, status)
	})
}

// decide returns the verdict for a case: the corpus's own when it needs no
// setting, else the one recorded in corpusDecisions, which must exist.
func decide(t *testing.T, name string, hasSettings bool, corpusVerdict verdict) verdict {
	t.Helper()
	d, ok := corpusDecisions[name]
	if !ok {
		require.False(t, hasSettings, "%s needs a non-default gunicorn setting: record gowsgi's decision in corpusDecisions", name)
		return corpusVerdict
	}
	t.Logf("decision: %s", d.why)
	return d.verdict
}

func decodeRaw(t *testing.T, b64 string) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	return raw
}

// send writes raw to a new connection, whole or in pieces of 1 to 7 bytes,
// while a goroutine already reads the answer: a server may refuse a request
// before it has all arrived and close, and bytes read late would be lost to
// the reset the rest of the request then causes. Writing stops at the
// first error for the same reason.
func send(t *testing.T, inst *harness.Instance, raw []byte, split bool) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	conn := harness.Dial(t, inst.Addr)
	answer := harness.NewBackgroundReader(conn)
	if !split {
		_, _ = conn.Write(raw)
		return conn, bufio.NewReader(answer)
	}
	rng := rand.New(rand.NewSource(int64(len(raw))))
	for rest := raw; len(rest) > 0; {
		n := min(1+rng.Intn(7), len(rest))
		if _, err := conn.Write(rest[:n]); err != nil {
			break
		}
		rest = rest[n:]
	}
	return conn, bufio.NewReader(answer)
}

// calls returns how many times echo.py has been called.
func calls(inst *harness.Instance) int {
	log, _ := inst.Record("calls.log")
	return strings.Count(log, "\n")
}

// refusals returns the statuses gowsgi may refuse a corpus request with
// instead of serving it, each with its reason; none when it serves it.
func refusals(req corpusValid) map[int]string {
	why := map[int]string{}
	if req.Version == [2]int{1, 1} && headerValue(req, "HOST") == "" {
		why[http.StatusBadRequest] = "HTTP/1.1 without Host: RFC 9112 section 3.2 says a server MUST answer 400"
	}
	te := headerValue(req, "TRANSFER-ENCODING")
	if te != "" && !strings.EqualFold(te, "chunked") {
		why[http.StatusNotImplemented] = fmt.Sprintf("transfer coding %q is not plain chunked: "+
			"RFC 9112 section 6.1 says a server SHOULD answer 501 to codings it does not implement", te)
	}
	if te != "" && (!endsInChunked(te) || headerValue(req, "CONTENT-LENGTH") != "") {
		reason := fmt.Sprintf("transfer coding %q does not end in chunked, or comes with Content-Length: "+
			"RFC 9112 section 6.3 says a server MUST answer 400, or ought to treat it as an error", te)
		if host, ok := why[http.StatusBadRequest]; ok {
			reason = host + "; " + reason
		}
		why[http.StatusBadRequest] = reason
	}
	return why
}

// endsInChunked reports whether a Transfer-Encoding value's final coding
// is chunked.
func endsInChunked(te string) bool {
	codings := strings.Split(te, ",")
	return strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked")
}

func expectServed(t *testing.T, inst *harness.Instance, raw []byte, split bool, reqs []corpusValid) {
	t.Helper()
	before := calls(inst)
	conn, r := send(t, inst, raw, split)
	served := 0
	for i, req := range reqs {
		resp := harness.ReadResponses(t, r, 1, req.Method)[0]
		if why := refusals(req); len(why) > 0 {
			t.Logf("decision for request %d: refused, for any of %v", i, why)
			assert.Contains(t, why, resp.StatusCode, "request %d: %s", i, resp.Body)
			closed, rest := harness.WaitEOF(conn, r, 10*time.Second)
			assert.True(t, closed, "the connection must close after a refusal; then came %q", rest)
			break
		}
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d: %s", i, resp.Body)
		var got echoed
		require.NoError(t, json.Unmarshal(resp.Body, &got), "request %d: %q", i, resp.Body)
		checkEnviron(t, req, got)
		served++
		if i == len(reqs)-1 && wantsClose(req) {
			closed, rest := harness.WaitEOF(conn, r, 10*time.Second)
			assert.True(t, closed, "the connection must close after %s %s; then came %q", protocol(req), req.URI, rest)
		}
	}
	assert.Equal(t, before+served, calls(inst), "app calls")
}

// expectAccepted checks that a request the corpus calls invalid, which
// gowsgi decided to accept, reaches the app once.
func expectAccepted(t *testing.T, inst *harness.Instance, raw []byte, split bool) {
	t.Helper()
	if lacksHost(raw) {
		t.Log("decision overridden: HTTP/1.1 without Host gets 400 (RFC 9112 section 3.2)")
		assert.Equal(t, http.StatusBadRequest, expectRefused(t, inst, raw, split, ""))
		return
	}
	before := calls(inst)
	_, r := send(t, inst, raw, split)
	resp := harness.ReadResponses(t, r, 1, http.MethodGet)[0]
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", resp.Body)
	assert.Equal(t, before+1, calls(inst), "app calls")
}

// lacksHost reports whether raw is an HTTP/1.1 request with no Host field.
func lacksHost(raw []byte) bool {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	line, fields, _ := bytes.Cut(head, []byte("\r\n"))
	return bytes.HasSuffix(line, []byte(" HTTP/1.1")) &&
		!bytes.Contains(bytes.ToLower(append([]byte("\r\n"), fields...)), []byte("\r\nhost:"))
}

// expectRefused checks that the request gets a 4xx and never reaches the
// app. corpusError, the corpus's error class when known, allows more: a
// close without an answer for a truncated request, and 505 (RFC 9110
// section 15.6.6) for a version the server does not support. It returns the
// status, 0 when there was no answer.
func expectRefused(t *testing.T, inst *harness.Instance, raw []byte, split bool, corpusError string) int {
	t.Helper()
	before := calls(inst)
	conn, r := send(t, inst, raw, split)
	// Half-close: a server still waiting for the rest of a cut-short
	// request sees the end instead of waiting for its timeout.
	_ = conn.CloseWrite()
	got, err := io.ReadAll(r)
	var netErr net.Error
	require.False(t, errors.As(err, &netErr) && netErr.Timeout(), "no answer and no close; got %q", got)
	status := 0
	if len(got) == 0 {
		assert.True(t, truncatedErrors[corpusError], "the connection closed without an answer (%v)", err)
	} else {
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
		require.NoError(t, err, "answer %q", got)
		status = resp.StatusCode
		versionRefused := corpusError == "InvalidHTTPVersion" && status == http.StatusHTTPVersionNotSupported
		assert.True(t, status >= 400 && status < 500 || versionRefused, "want a 4xx, got %d", status)
	}
	assert.Equal(t, before, calls(inst), "the app was called for a refused request")
	return status
}

func protocol(req corpusValid) string {
	return fmt.Sprintf("HTTP/%d.%d", req.Version[0], req.Version[1])
}

// wantsClose reports whether the server must close the connection after
// answering req (RFC 9112 section 9.3).
func wantsClose(req corpusValid) bool {
	connection := strings.ToLower(headerValue(req, "CONNECTION"))
	if req.Version == [2]int{1, 0} {
		return !strings.Contains(connection, "keep-alive")
	}
	return strings.Contains(connection, "close")
}

func headerValue(req corpusValid, name string) string {
	var values []string
	for _, h := range req.Headers {
		if h[0] == name {
			values = append(values, h[1])
		}
	}
	return strings.Join(values, ",")
}

// checkEnviron compares what the app saw with what the corpus describes.
func checkEnviron(t *testing.T, want corpusValid, got echoed) {
	t.Helper()
	env := got.Environ
	assert.Equal(t, want.Method, env["REQUEST_METHOD"], "REQUEST_METHOD")
	assert.Equal(t, want.URI, env["REQUEST_URI"], "REQUEST_URI is the raw request target")
	// For "*" and CONNECT's authority form the corpus's path is an artefact
	// of Python's URL splitter (corpus README); the raw target is compared above.
	if strings.HasPrefix(want.URI, "/") || strings.Contains(want.URI, "://") {
		assert.Equal(t, latin1(percentDecode(latin1Bytes(want.Path))), env["PATH_INFO"], "PATH_INFO")
	}
	assert.Equal(t, want.Query, env["QUERY_STRING"], "QUERY_STRING")
	assert.Equal(t, protocol(want), env["SERVER_PROTOCOL"], "SERVER_PROTOCOL")
	assert.Equal(t, wantHTTPVars(want), gotHTTPVars(env), "HTTP_* variables")
	assert.Equal(t, headerValue(want, "CONTENT-TYPE"), env["CONTENT_TYPE"], "CONTENT_TYPE")
	body, err := hex.DecodeString(got.BodyHex)
	require.NoError(t, err)
	assert.Equal(t, want.Body, latin1(body), "body")
	contentLength := env["CONTENT_LENGTH"]
	switch {
	case headerValue(want, "CONTENT-LENGTH") != "":
		assert.Equal(t, headerValue(want, "CONTENT-LENGTH"), contentLength, "CONTENT_LENGTH")
	case contentLength != "":
		// A chunked body arrives whole, so a server may state its size.
		assert.Equal(t, fmt.Sprint(len(body)), contentLength, "CONTENT_LENGTH of a chunked body")
	}
	if strings.EqualFold(headerValue(want, "TRANSFER-ENCODING"), "chunked") {
		require.NotNil(t, got.InputTerminated, "wsgi.input_terminated missing for a chunked body")
		assert.True(t, *got.InputTerminated, "wsgi.input_terminated for a chunked body")
	}
}

// wantHTTPVars builds the HTTP_* variables the corpus's headers make:
// repeated fields joined with ",", names holding "_" dropped (they could
// pose as their "-" twins), Content-Type and Content-Length under their CGI
// names, and Transfer-Encoding left out because the server decodes the
// framing itself and may or may not pass it on.
func wantHTTPVars(req corpusValid) map[string]string {
	vars := map[string]string{}
	for _, h := range req.Headers {
		name := h[0]
		if strings.Contains(name, "_") || name == "CONTENT-TYPE" || name == "CONTENT-LENGTH" || name == "TRANSFER-ENCODING" {
			continue
		}
		key := "HTTP_" + strings.ReplaceAll(name, "-", "_")
		if v, ok := vars[key]; ok {
			vars[key] = v + "," + h[1]
		} else {
			vars[key] = h[1]
		}
	}
	return vars
}

func gotHTTPVars(env map[string]string) map[string]string {
	vars := map[string]string{}
	for k, v := range env {
		if strings.HasPrefix(k, "HTTP_") && k != "HTTP_TRANSFER_ENCODING" {
			vars[k] = v
		}
	}
	return vars
}

// latin1Bytes is the inverse of latin1: one byte per code point.
func latin1Bytes(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// percentDecode decodes %XX escapes and leaves anything else as it is, as a
// server does for PATH_INFO.
func percentDecode(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			if v, err := hex.DecodeString(string(b[i+1 : i+3])); err == nil {
				out = append(out, v[0])
				i += 2
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}
