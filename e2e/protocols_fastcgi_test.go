// End-to-end tests of the FastCGI gateway: the real binary with
// --fastcgi-socket, driven by a small FastCGI client written here from the
// specification (https://fastcgi-archives.github.io/FastCGI_Specification.html),
// running the PEP 3333 probe.
package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// bannerFastCGI finds the FastCGI address in the banner.
var bannerFastCGI = regexp.MustCompile(`fastcgi://(\S+)`)

// FastCGI record types used here (specification section 8).
const (
	e2eBeginRequest = 1
	e2eAbortRequest = 2
	e2eEndRequest   = 3
	e2eParams       = 4
	e2eStdin        = 5
	e2eStdout       = 6
	e2eGetValues    = 9
	e2eValuesResult = 10
)

func e2eRecord(kind byte, id uint16, content string) string {
	h := []byte{1, kind, byte(id >> 8), byte(id), byte(len(content) >> 8), byte(len(content)), 0, 0}
	return string(h) + content
}

func e2eLength(n int) string {
	if n < 128 {
		return string([]byte{byte(n)})
	}
	return string(binary.BigEndian.AppendUint32(nil, uint32(n)|1<<31))
}

// e2eStream cuts data into records of at most size bytes and ends the stream.
func e2eStream(kind byte, id uint16, data string, size int) string {
	var b strings.Builder
	for len(data) > 0 {
		n := min(len(data), size)
		b.WriteString(e2eRecord(kind, id, data[:n]))
		data = data[n:]
	}
	b.WriteString(e2eRecord(kind, id, ""))
	return b.String()
}

// e2eFastCGIRequest is a keep-conn responder request with nginx's stock
// fastcgi_params: SCRIPT_NAME is the whole path and there is no PATH_INFO.
func e2eFastCGIRequest(id uint16, method, target, body string) string {
	path, query, _ := strings.Cut(target, "?")
	decoded, _ := url.PathUnescape(path) // nginx's $document_uri is decoded
	kv := []string{"QUERY_STRING", query, "REQUEST_METHOD", method, "CONTENT_TYPE", "application/octet-stream",
		"CONTENT_LENGTH", strconv.Itoa(len(body)), "SCRIPT_NAME", path, "REQUEST_URI", target, "DOCUMENT_URI", decoded,
		"SERVER_PROTOCOL", "HTTP/1.1", "REQUEST_SCHEME", "https", "HTTPS", "on", "GATEWAY_INTERFACE", "CGI/1.1",
		"REMOTE_ADDR", "127.0.0.1", "REMOTE_PORT", "5000", "SERVER_ADDR", "127.0.0.1", "SERVER_PORT", "443",
		"SERVER_NAME", "example.test", "HTTP_HOST", "example.test", "HTTP_X_LONG", strings.Repeat("l", 200)}
	var params strings.Builder
	for i := 0; i < len(kv); i += 2 {
		params.WriteString(e2eLength(len(kv[i])) + e2eLength(len(kv[i+1])) + kv[i] + kv[i+1])
	}
	begin := e2eRecord(e2eBeginRequest, id, "\x00\x01\x01\x00\x00\x00\x00\x00")
	return begin + e2eStream(e2eParams, id, params.String(), 100) + e2eStream(e2eStdin, id, body, 65535)
}

// fcgiPeer is a FastCGI client connection to gowsgi.
type fcgiPeer struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialFastCGI(t *testing.T, addr string) *fcgiPeer {
	t.Helper()
	conn := harness.Dial(t, addr)
	return &fcgiPeer{t: t, conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
}

func (p *fcgiPeer) send(raw string) {
	p.t.Helper()
	_, err := io.WriteString(p.conn, raw)
	require.NoError(p.t, err)
}

// read returns the next record's type, request id and content.
func (p *fcgiPeer) read() (byte, uint16, string) {
	p.t.Helper()
	var h [8]byte
	_, err := io.ReadFull(p.br, h[:])
	require.NoError(p.t, err)
	content := make([]byte, int(binary.BigEndian.Uint16(h[4:]))+int(h[6]))
	_, err = io.ReadFull(p.br, content)
	require.NoError(p.t, err)
	return h[1], binary.BigEndian.Uint16(h[2:]), string(content[:len(content)-int(h[6])])
}

// response reads request id's records until its END_REQUEST and returns
// the CGI head, the body and END_REQUEST's appStatus.
func (p *fcgiPeer) response(id uint16) (head, body string, appStatus uint32) {
	p.t.Helper()
	stdout, appStatus := p.rest(id)
	head, body, _ = strings.Cut(stdout, "\r\n\r\n")
	return head, body, appStatus
}

// rest reads request id's STDOUT until its END_REQUEST and returns it with
// the appStatus. Records of other requests are not expected.
func (p *fcgiPeer) rest(id uint16) (stdout string, appStatus uint32) {
	p.t.Helper()
	var b strings.Builder
	for {
		kind, got, content := p.read()
		require.Equal(p.t, id, got, "record for another request")
		switch kind {
		case e2eStdout:
			b.WriteString(content)
		case e2eEndRequest:
			require.Len(p.t, content, 8)
			return b.String(), binary.BigEndian.Uint32([]byte(content))
		default:
			require.Failf(p.t, "unexpected record", "type %d", kind)
		}
	}
}

// startFastCGIProbe runs the probe with a FastCGI socket and returns the
// instance and the FastCGI address from the banner.
func startFastCGIProbe(t *testing.T) (*harness.Instance, string) {
	t.Helper()
	inst := harness.Start(t, "--fastcgi-socket", "127.0.0.1:0", "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--threads", "2")
	m := bannerFastCGI.FindStringSubmatch(inst.Stderr())
	require.NotNil(t, m, "no fastcgi:// address in the banner:\n%s", inst.Stderr())
	return inst, m[1]
}

func TestFastCGIProbe(t *testing.T) {
	t.Parallel()
	probe, addr := startFastCGIProbe(t)
	c := dialFastCGI(t, addr)

	t.Run("GET_VALUES", func(t *testing.T) {
		ask := "\x0e\x00FCGI_MAX_CONNS\x0d\x00FCGI_MAX_REQS\x0f\x00FCGI_MPXS_CONNS"
		c.send(e2eRecord(e2eGetValues, 0, ask))
		kind, id, content := c.read()
		assert.Equal(t, byte(e2eValuesResult), kind)
		assert.Equal(t, uint16(0), id)
		assert.Contains(t, content, "\x0d\x01FCGI_MAX_REQS2", "1 process × 2 threads")
		assert.Contains(t, content, "\x0f\x01FCGI_MPXS_CONNS1")
	})

	t.Run("environ", func(t *testing.T) {
		c.send(e2eFastCGIRequest(1, "GET", "/environ/caf%C3%A9?q=%20a", ""))
		head, body, status := c.response(1)
		assert.Equal(t, uint32(0), status)
		assert.Contains(t, head, "Status: 200 OK")
		env := decodeEnviron(t, []byte(body))
		assert.Equal(t, "", env.Vars["SCRIPT_NAME"])
		assert.Equal(t, latin1([]byte("/environ/café")), env.Vars["PATH_INFO"])
		assert.Equal(t, "q=%20a", env.Vars["QUERY_STRING"])
		assert.Equal(t, "https", env.WSGI.URLScheme)
		assert.Equal(t, strings.Repeat("l", 200), env.Vars["HTTP_X_LONG"])
		assert.Equal(t, "example.test", env.Vars["SERVER_NAME"])
		assert.True(t, env.Latin1)
	})

	t.Run("5 MiB POST", func(t *testing.T) {
		body := strings.Repeat("gowsgi fastcgi\n", 5<<20/15)
		c.send(e2eFastCGIRequest(2, "POST", "/input/sha256", body))
		_, got, status := c.response(2)
		assert.Equal(t, uint32(0), status)
		var digest struct {
			Size   int    `json:"size"`
			SHA256 string `json:"sha256"`
		}
		require.NoError(t, json.Unmarshal([]byte(got), &digest), "%s", got)
		sum := sha256.Sum256([]byte(body))
		assert.Equal(t, len(body), digest.Size)
		assert.Equal(t, hex.EncodeToString(sum[:]), digest.SHA256)
	})

	t.Run("file_wrapper", func(t *testing.T) {
		want, err := os.ReadFile(harness.TestdataPath(t, "probe.py"))
		require.NoError(t, err)
		c.send(e2eFastCGIRequest(1, "GET", "/file", ""))
		head, body, _ := c.response(1)
		assert.Contains(t, head, "Content-Length: "+strconv.Itoa(len(want)))
		assert.Equal(t, string(want), body)
	})

	t.Run("multiplexed", func(t *testing.T) {
		c.send(e2eFastCGIRequest(1, "GET", "/stream?tag=mux", ""))
		kind, id, first := c.read()
		for kind == e2eStdout && id == 1 && !strings.Contains(first, "first") {
			kind, id, first = c.read()
		}
		require.Contains(t, first, "first")
		// Request 1 waits for its release file; request 2 is answered meanwhile.
		c.send(e2eFastCGIRequest(2, "GET", "/hello", ""))
		_, body, _ := c.response(2)
		assert.Equal(t, "Hello World!\n", body)
		probe.Release(t, "mux")
		rest, status := c.rest(1)
		assert.Equal(t, "second\n", rest)
		assert.Equal(t, uint32(0), status)
	})

	t.Run("abort closes the iterable", func(t *testing.T) {
		c.send(e2eFastCGIRequest(3, "GET", "/forever?tag=abort", ""))
		kind, _, _ := c.read()
		require.Equal(t, byte(e2eStdout), kind)
		c.send(e2eRecord(e2eAbortRequest, 3, ""))
		// The records already on their way come first; the connection's
		// deadline bounds the wait.
		for {
			kind, id, content := c.read()
			require.Equal(t, uint16(3), id)
			if kind == e2eEndRequest {
				assert.NotEqual(t, uint32(0), binary.BigEndian.Uint32([]byte(content)), "appStatus of an aborted request")
				break
			}
		}
		harness.Eventually(t, 30*time.Second, func() bool { _, ok := probe.Record("closed-abort"); return ok },
			"close() was not called on the aborted request's iterable")
	})
}
