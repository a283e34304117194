// --log-json: every line gowsgi writes becomes one JSON object, for log
// tools that read JSON lines. The master's events and access lines come
// from slog's JSON handler; the master's plain lines (the banner, a start
// that failed) and each line the zygote and the workers write on stdout or
// stderr (print, tracebacks, logging) are wrapped into objects here, with
// encoding/json's escaping, so no path, quote or byte the app sends can
// break a line. Each request gets an id: its X-Request-Id when that is
// sane, else a new one, given to the app as environ["gowsgi.request_id"]
// and written on its access line.
package server

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gowsgi/gowsgi/wsgi"
)

// RequestIDVar is the environ key that carries a request's id under
// --log-json (PEP 3333: a server's own keys carry its name).
const RequestIDVar = "gowsgi.request_id"

// maxLogLine bounds one wrapped line; a longer one is split into objects
// of this many bytes, so a runaway print cannot hold the relay's memory.
const maxLogLine = 64 << 10

// logObject is one wrapped line; slog's JSON handler writes the same
// time, level and msg keys.
type logObject struct {
	Time   string `json:"time"`
	Level  string `json:"level"`
	Msg    string `json:"msg"`
	Source string `json:"source"`
	Stream string `json:"stream,omitempty"`
}

// writeLogObject writes line as one JSON object and a newline in one
// write, so lines from several writers never interleave within a line.
// Bytes that are not UTF-8 become U+FFFD (encoding/json's rule).
func writeLogObject(w io.Writer, level, source, stream string, line []byte) error {
	obj := logObject{Time: time.Now().Format(time.RFC3339Nano), Level: level,
		Msg: strings.TrimRight(string(line), "\r\n"), Source: source, Stream: stream}
	out, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	_, err = w.Write(append(out, '\n'))
	return err
}

// jsonLines is the master's own plain output (the banner, the one line of
// a failed start, the option warnings) as JSON objects. Every line it is
// given ends in "\n".
type jsonLines struct {
	mu  sync.Mutex
	out io.Writer
}

// MasterOutput is where the master's plain lines go: stderr, or with
// --log-json stderr through jsonLines.
func MasterOutput(logJSON bool) io.Writer {
	if !logJSON {
		return os.Stderr
	}
	return &jsonLines{out: os.Stderr}
}

func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for line := range strings.Lines(string(p)) {
		if err := writeLogObject(j.out, masterLineLevel(line), "master", "", []byte(line)); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// masterLineLevel reads the level of a master's plain line from its
// wording: "gowsgi: warning: …" warns, any other "gowsgi: …" is the error
// that stops a start, the rest (the banner) is information.
func masterLineLevel(line string) string {
	switch {
	case strings.HasPrefix(line, "gowsgi: warning: "):
		return "WARN"
	case strings.HasPrefix(line, "gowsgi: "):
		return "ERROR"
	}
	return "INFO"
}

// relayJSONLines copies r, a child's stdout or stderr, to w, one JSON
// object per line, until r ends.
func relayJSONLines(r io.Reader, w io.Writer, stream string) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			writeLogObject(w, "INFO", "app", stream, line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// requestIDs gives every request an id, under RequestIDVar, before next
// serves it.
type requestIDs struct {
	next wsgi.Handler
}

func (h requestIDs) ServeWSGI(ctx context.Context, w wsgi.ResponseWriter, req *wsgi.Request) error {
	id, _ := req.Vars.Get("HTTP_X_REQUEST_ID")
	if !saneRequestID(id) {
		id = newRequestID()
	}
	req.Vars.Add(RequestIDVar, id)
	return h.next.ServeWSGI(ctx, w, req)
}

// maxRequestID bounds an X-Request-Id taken from a client.
const maxRequestID = 128

// saneRequestID reports whether a client's X-Request-Id may be used as
// the request's id: visible ASCII without quotes or backslashes, so it can
// be searched for as it was sent, and not too long.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// newRequestID returns 32 random hex digits, the shape of a W3C trace id,
// so tracing tools take it as one. math/rand/v2's generator is seeded from
// the system and safe to share; an id needs to be unique, not secret.
func newRequestID() string {
	var b [16]byte
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return hex.EncodeToString(b[:])
}
