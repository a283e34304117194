// What a client gets when a response breaks after part of its body went
// out, and when a request outlasts --graceful-timeout: the same answer
// through every gateway (HTTP, uwsgi, SCGI, FastCGI over loopback TCP, each
// read off a raw socket by a small client written here; CGI mode; nginx in
// front), with testdata/answers.py.
//
// PEP 3333 ("Buffering and Streaming"): a block the app yielded, or passed
// to write(), must be transmitted. A response that breaks after its head
// went out therefore carries every such block and then ends in the way its
// protocol marks as incomplete: an HTTP chunked body without its last
// chunk or a body short of its Content-Length, a uwsgi or SCGI connection
// reset rather than closed, a FastCGI connection closed without
// END_REQUEST.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answer is what a client got, in its protocol's terms.
type answer struct {
	status string // "200 OK"
	header http.Header
	body   string // the body bytes that arrived, de-chunked
	whole  bool   // the protocol says the response ended complete
}

func (a answer) String() string {
	return fmt.Sprintf("%q %q whole=%v", a.status, a.body, a.whole)
}

// answerGateway is one protocol: the socket option that serves it, the
// request a client sends for a target and how the client reads the reply.
type answerGateway struct {
	name    string // also the banner's scheme
	flag    string // "" for the harness's HTTP socket
	request func(target string) []byte
	// read turns all a connection carried until it ended (reset: by a
	// reset) into an answer.
	read func(t *testing.T, raw []byte, reset bool) answer
}

var answerGateways = []answerGateway{
	{name: "http", request: httpAnswerRequest, read: readHTTPAnswer},
	{name: "uwsgi", flag: "--uwsgi-socket", request: uwsgiAnswerRequest, read: readUWSGIAnswer},
	{name: "scgi", flag: "--scgi-socket", request: scgiAnswerRequest, read: readSCGIAnswer},
	{name: "fastcgi", flag: "--fastcgi-socket", request: fastcgiAnswerRequest, read: readFastCGIAnswer},
}

// answerRequest is the request every protocol carries for target.
func answerRequest(target string) sockRequest {
	path, query, _ := strings.Cut(target, "?")
	return sockRequest{method: "GET", path: path, query: query, host: "example.test"}
}

// httpAnswerRequest asks for the connection to close after the response,
// so a whole response too ends with the connection.
func httpAnswerRequest(target string) []byte {
	return []byte("GET " + target + " HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
}

// uwsgiAnswerRequest is a uwsgi packet (modifier1 0) without a body.
func uwsgiAnswerRequest(target string) []byte {
	var block []byte
	for _, s := range answerRequest(target).uwsgiVars() {
		block = binary.LittleEndian.AppendUint16(block, uint16(len(s)))
		block = append(block, s...)
	}
	packet := append([]byte{0}, binary.LittleEndian.AppendUint16(nil, uint16(len(block)))...)
	return append(append(packet, 0), block...)
}

// scgiAnswerRequest is an SCGI netstring of NUL-terminated strings.
func scgiAnswerRequest(target string) []byte {
	headers := strings.Join(answerRequest(target).scgiVars(), "\x00") + "\x00"
	return fmt.Appendf(nil, "%d:%s,", len(headers), headers)
}

// fastcgiAnswerRequest is request 1 without FCGI_KEEP_CONN, so a whole
// response ends with END_REQUEST and then the connection's close.
func fastcgiAnswerRequest(target string) []byte {
	vars := answerRequest(target).fastcgiVars()
	var params strings.Builder
	for i := 0; i < len(vars); i += 2 {
		params.WriteString(e2eLength(len(vars[i])) + e2eLength(len(vars[i+1])) + vars[i] + vars[i+1])
	}
	begin := e2eRecord(e2eBeginRequest, 1, "\x00\x01\x00\x00\x00\x00\x00\x00")
	return []byte(begin + e2eStream(e2eParams, 1, params.String(), 1000) + e2eStream(e2eStdin, 1, "", 1))
}

// readHTTPAnswer reads an HTTP response: whole when its framing (chunked or
// Content-Length) completed.
func readHTTPAnswer(t *testing.T, raw []byte, _ bool) answer {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), &http.Request{Method: http.MethodGet})
	require.NoError(t, err, "no HTTP response head in %q", raw)
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.Status, header: resp.Header, body: string(body), whole: err == nil}
}

// readUWSGIAnswer reads the HTTP response a uwsgi peer sends: its body runs
// to the connection's end unless a Content-Length says otherwise, so only a
// reset, or a body short of its Content-Length, says it is incomplete.
func readUWSGIAnswer(t *testing.T, raw []byte, reset bool) answer {
	t.Helper()
	a := readHTTPAnswer(t, raw, reset)
	a.whole = a.whole && !reset
	return a
}

// readSCGIAnswer reads a CGI response ("Status:" line) as uwsgi's.
func readSCGIAnswer(t *testing.T, raw []byte, reset bool) answer {
	t.Helper()
	status, rest, ok := bytes.Cut(raw, []byte("\r\n"))
	require.True(t, ok && bytes.HasPrefix(status, []byte("Status: ")), "CGI response: %q", raw)
	asHTTP := append([]byte("HTTP/1.1 "+string(status[len("Status: "):])+"\r\n"), rest...)
	return readUWSGIAnswer(t, asHTTP, reset)
}

// readFastCGIAnswer reads request 1's records: its STDOUT is a CGI
// response, whole only when END_REQUEST came.
func readFastCGIAnswer(t *testing.T, raw []byte, _ bool) answer {
	t.Helper()
	var stdout []byte
	ended := false
	for len(raw) >= 8 && !ended {
		n := 8 + int(binary.BigEndian.Uint16(raw[4:6])) + int(raw[6])
		require.GreaterOrEqual(t, len(raw), n, "a FastCGI record cut short")
		content := raw[8 : n-int(raw[6])]
		switch raw[1] {
		case e2eStdout:
			stdout = append(stdout, content...)
		case e2eEndRequest:
			ended = true
		default:
			require.Failf(t, "unexpected record", "type %d", raw[1])
		}
		raw = raw[n:]
	}
	require.Empty(t, raw, "bytes after the last record")
	a := readSCGIAnswer(t, stdout, false)
	a.whole = a.whole && ended
	return a
}

// fetchAnswer sends gw's request for target to addr and reads the reply.
func fetchAnswer(t *testing.T, gw answerGateway, addr, target string) answer {
	t.Helper()
	conn := harness.Dial(t, addr)
	defer conn.Close()
	_, err := conn.Write(gw.request(target))
	require.NoError(t, err)
	return readAnswer(t, gw, conn)
}

// readAnswer reads conn until it ends and returns the answer it carried.
func readAnswer(t *testing.T, gw answerGateway, conn net.Conn) answer {
	t.Helper()
	raw, reset := readUntilClosed(t, conn)
	return gw.read(t, raw, reset)
}

// readUntilClosed returns what conn carried until it ended, and whether
// it ended with a reset rather than a close.
func readUntilClosed(t *testing.T, conn net.Conn) ([]byte, bool) {
	t.Helper()
	var raw bytes.Buffer
	_, err := io.Copy(&raw, conn)
	if errors.Is(err, syscall.ECONNRESET) {
		return raw.Bytes(), true
	}
	require.NoError(t, err, "reading until the connection ends; got %q", raw.Bytes())
	return raw.Bytes(), false
}

// startAnswers runs testdata/answers.py with every gateway on a loopback
// TCP port and returns each gateway's address.
func startAnswers(t *testing.T, args ...string) (*harness.Instance, map[string]string) {
	t.Helper()
	args = append([]string{"--wsgi-file", harness.TestdataPath(t, "answers.py")}, args...)
	for _, gw := range answerGateways {
		if gw.flag != "" {
			args = append(args, gw.flag, "127.0.0.1:0")
		}
	}
	inst := harness.Start(t, args...)
	addrs := bannerSockets(t, inst.Stderr())
	for _, gw := range answerGateways {
		require.Contains(t, addrs, gw.name, "banner: %s", inst.Stderr())
	}
	return inst, addrs
}

// brokenResponses are the responses that break, and what a client must get.
var brokenResponses = []struct {
	target string
	want   answer
	length string // the Content-Length the client must see, if any
	logged string // the log must say this about it
}{
	{target: "/yield-raise?blocks=1", want: answer{status: "200 OK", body: "block-0;"},
		logged: "RuntimeError: answers: raised after 1 blocks"},
	{target: "/yield-raise?blocks=3", want: answer{status: "200 OK", body: "block-0;block-1;block-2;"},
		logged: "RuntimeError: answers: raised after 3 blocks"},
	{target: "/yield-raise?blocks=2&length=100", want: answer{status: "200 OK", body: "block-0;block-1;"},
		length: "100", logged: "RuntimeError: answers: raised after 2 blocks"},
	{target: "/write-raise", want: answer{status: "200 OK", body: "written;"},
		logged: "RuntimeError: answers: raised after write()"},
	{target: "/list-bad-item", want: answer{status: "200 OK", body: "listed;"},
		logged: "app returned str in its body for GET /list-bad-item"},
	// Nothing of the body was yielded: the master can still answer 500.
	{target: "/yield-raise?blocks=0", want: answer{status: "500 Internal Server Error", body: "Internal Server Error", whole: true},
		logged: "RuntimeError: answers: raised after 0 blocks"},
}

// brokenTries is how often each broken response is fetched: whether the
// master relays the end of a response together with its last blocks or
// apart from them depends on timing, and both must give the same answer.
const brokenTries = 30

// TestBrokenResponseCarriesWhatWasYielded: through every gateway, a
// response that breaks after its head went out brings the client every
// block yielded or written before the break and then ends as incomplete;
// one that breaks before any block is a whole 500. The traceback is logged.
func TestBrokenResponseCarriesWhatWasYielded(t *testing.T) {
	t.Parallel()
	inst, addrs := startAnswers(t, "-p", "1", "--threads", "2")
	for _, gw := range answerGateways {
		t.Run(gw.name, func(t *testing.T) {
			for _, tc := range brokenResponses {
				t.Run(tc.target, func(t *testing.T) {
					for try := range brokenTries {
						got := fetchAnswer(t, gw, addrs[gw.name], tc.target)
						if !assert.Equal(t, tc.want.String(), got.String(), "try %d", try) {
							break
						}
						if tc.length != "" {
							assert.Equal(t, tc.length, got.header.Get("Content-Length"))
						}
					}
				})
			}
		})
	}
	t.Run("logged", func(t *testing.T) {
		want := []string{"Traceback (most recent call last)", "exception in the app's iterable for GET /yield-raise",
			"exception in app for GET /write-raise"}
		for _, tc := range brokenResponses {
			want = append(want, tc.logged)
		}
		inst.AwaitLogged(t, want...)
	})
}

// TestBrokenResponseInCGIMode: a CGI program writes the same blocks, and
// its exit status says the response broke.
func TestBrokenResponseInCGIMode(t *testing.T) {
	t.Parallel()
	got := gowsgiCGI(t, t.TempDir(), harness.TestdataPath(t, "answers.py"),
		cgiRequest{method: "GET", pathInfo: "/yield-raise", query: "blocks=2"})
	assert.Equal(t, "200 OK", got.status)
	assert.Equal(t, "block-0;block-1;", string(got.body))
	assert.Equal(t, 1, got.code, "exit status of a broken response")
	assert.Contains(t, got.stderr, "Traceback (most recent call last)")
	assert.Contains(t, got.stderr, "RuntimeError: answers: raised after 2 blocks")
}

// nginxAnswerSite passes every request to gowsgi over uwsgi, SCGI and
// FastCGI on TCP, one server block each, unbuffered as examples/nginx.conf
// is (buffered, nginx 1.22 keeps a short tail of a broken response to
// itself, whatever the backend does); the app sees SCRIPT_NAME "" and the
// whole path.
const nginxAnswerSite = `
server {
    listen {{uwsgi}};
    location / {
        uwsgi_pass {{uwsgi_backend}};
        uwsgi_buffering off;
        uwsgi_param REQUEST_METHOD $request_method;
        uwsgi_param REQUEST_URI $request_uri;
        uwsgi_param QUERY_STRING $query_string;
        uwsgi_param PATH_INFO $document_uri;
        uwsgi_param SERVER_PROTOCOL $server_protocol;
        uwsgi_param SERVER_NAME $host;
        uwsgi_param SERVER_PORT $server_port;
        uwsgi_param REMOTE_ADDR $remote_addr;
    }
}
server {
    listen {{scgi}};
    location / {
        scgi_pass {{scgi_backend}};
        scgi_buffering off;
        scgi_param SCGI 1;
        scgi_param REQUEST_METHOD $request_method;
        scgi_param REQUEST_URI $request_uri;
        scgi_param QUERY_STRING $query_string;
        scgi_param PATH_INFO $document_uri;
        scgi_param SERVER_PROTOCOL $server_protocol;
        scgi_param SERVER_NAME $host;
        scgi_param SERVER_PORT $server_port;
        scgi_param REMOTE_ADDR $remote_addr;
    }
}
server {
    listen {{fastcgi}};
    location / {
        fastcgi_pass {{fastcgi_backend}};
        fastcgi_buffering off;
        fastcgi_param REQUEST_METHOD $request_method;
        fastcgi_param REQUEST_URI $request_uri;
        fastcgi_param QUERY_STRING $query_string;
        fastcgi_param SCRIPT_NAME "";
        fastcgi_param PATH_INFO $document_uri;
        fastcgi_param SERVER_PROTOCOL $server_protocol;
        fastcgi_param SERVER_NAME $host;
        fastcgi_param SERVER_PORT $server_port;
        fastcgi_param REMOTE_ADDR $remote_addr;
    }
}
`

// TestBrokenResponseBehindNginx: nginx passes on what gowsgi sent of a
// broken response and ends its own response to the client as incomplete,
// instead of a 502 or a body that looks whole.
func TestBrokenResponseBehindNginx(t *testing.T) {
	t.Parallel()
	nginx := harness.WebServerKinds[0]
	require.Equal(t, "nginx", nginx.Name)
	_, backends := startAnswers(t, "-p", "1", "--threads", "2")
	fronts := map[string]string{}
	pairs := []string{}
	for _, front := range []string{"uwsgi", "scgi", "fastcgi"} {
		fronts[front] = harness.FreeAddr(t)
		pairs = append(pairs, "{{"+front+"}}", fronts[front])
	}
	for _, gw := range []string{"uwsgi", "scgi", "fastcgi"} {
		pairs = append(pairs, "{{"+gw+"_backend}}", backends[gw])
	}
	var addrs []string
	for _, addr := range fronts {
		addrs = append(addrs, addr)
	}
	harness.StartWebServerSite(t, nginx, strings.NewReplacer(pairs...).Replace(nginxAnswerSite), addrs)

	client := answerGateways[0]
	for _, front := range []string{"uwsgi", "scgi", "fastcgi"} {
		t.Run(front, func(t *testing.T) {
			for _, tc := range brokenResponses {
				t.Run(tc.target, func(t *testing.T) {
					for try := range brokenTries {
						got := fetchAnswer(t, client, fronts[front], tc.target)
						if !assert.Equal(t, tc.want.String(), got.String(), "try %d", try) {
							break
						}
					}
				})
			}
		})
	}
}

// TestGracefulTimeoutCutsRequests: a request still running when the
// graceful timeout passes is answered 503 through every gateway when
// nothing of its response was sent, and its connection is cut when the
// head was; each cut is logged with the request's path.
func TestGracefulTimeoutCutsRequests(t *testing.T) {
	t.Parallel()
	inst, addrs := startAnswers(t, "-p", "1", "--threads", "8", "--graceful-timeout", "1")
	type held struct {
		gw     answerGateway
		target string
		conn   net.Conn
		want   answer
	}
	var requests []held
	for _, gw := range answerGateways {
		requests = append(requests,
			held{gw: gw, target: "/hold?tag=h" + gw.name,
				want: answer{status: "503 Service Unavailable", body: "503 Service Unavailable\n", whole: true}},
			held{gw: gw, target: "/stream-hold?tag=s" + gw.name, want: answer{status: "200 OK", body: "streamed;"}})
	}
	for i := range requests {
		requests[i].conn = harness.Dial(t, addrs[requests[i].gw.name])
		_, err := requests[i].conn.Write(requests[i].gw.request(requests[i].target))
		require.NoError(t, err)
	}
	for _, r := range requests {
		tag := r.target[strings.Index(r.target, "tag=")+len("tag="):]
		harness.Eventually(t, 30*time.Second, func() bool { _, ok := inst.Record("started-" + tag); return ok },
			"%s never reached the app; stderr:\n%s", r.target, inst.Stderr())
	}

	inst.Signal(t, syscall.SIGTERM)
	for _, r := range requests {
		t.Run(r.gw.name+r.target, func(t *testing.T) {
			assert.Equal(t, r.want.String(), readAnswer(t, r.gw, r.conn).String())
		})
	}
	assert.Equal(t, 0, inst.Wait(t, harness.StopTimeout), "exit status after SIGTERM")
	inst.AwaitLogged(t,
		`msg="graceful timeout passed, request cut" method=GET path=/hold answer=503`,
		`msg="graceful timeout passed, request cut" method=GET path=/stream-hold answer="connection closed"`,
		"] GET /hold?tag=")
	for _, l := range harness.RequestLines(inst.Stderr()) {
		assert.NotZero(t, l.Status, "a cut request logged without a status: %s", l.Line)
		if strings.HasPrefix(l.URI, "/hold?") {
			assert.Equal(t, 503, l.Status, l.Line)
		}
	}
}
