// Every kind of socket through the real binary: one master listening on an
// HTTP port, a uwsgi Unix socket, an SCGI port and a FastCGI port at once,
// each driven by a small client written here from its protocol's
// specification and sending what nginx's stock *_params files send; the
// FastCGI socket a web server hands over on fd 0; HTTPS with HTTP/2; a
// socket that will not bind; --chown-socket (the socket file's owner) and
// --http (the master's HTTP front end, keep-alive included).
package e2e

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// bannerSocket finds each socket the banner lists: "uwsgi:///run/u.sock",
// "scgi://127.0.0.1:4000".
var bannerSocket = regexp.MustCompile(`\b(https?|uwsgi|scgi|fastcgi)://(\S+)`)

// bannerSockets returns the first address the banner lists for each
// protocol.
func bannerSockets(t *testing.T, stderr string) map[string]string {
	t.Helper()
	line, _, _ := strings.Cut(stderr[strings.Index(stderr, "gowsgi "):], "\n")
	found := make(map[string]string)
	for _, m := range bannerSocket.FindAllStringSubmatch(line, -1) {
		if _, ok := found[m[1]]; !ok {
			found[m[1]] = m[2]
		}
	}
	return found
}

// sockRequest is the request every protocol carries in these tests.
type sockRequest struct {
	method, path, query, contentType, body string
	host                                   string // the Host the client sent, HTTP_HOST
}

func (r sockRequest) uri() string { return r.path + "?" + r.query }

// decodedPath is the path as a web server's $document_uri has it; the
// tests' paths are valid escapes.
func (r sockRequest) decodedPath() string {
	p, _ := url.PathUnescape(r.path)
	return p
}

// common are the variables all of nginx's *_params files send.
func (r sockRequest) common() []string {
	return []string{"QUERY_STRING", r.query, "REQUEST_METHOD", r.method, "CONTENT_TYPE", r.contentType,
		"REQUEST_URI", r.uri(), "DOCUMENT_ROOT", "/srv", "SERVER_PROTOCOL", "HTTP/1.1", "REQUEST_SCHEME", "http",
		"HTTPS", "", "REMOTE_ADDR", "127.0.0.1", "REMOTE_PORT", "40000", "SERVER_PORT", "80", "SERVER_NAME", "localhost",
		"HTTP_HOST", r.host, "HTTP_X_PROBE", "yes"}
}

// uwsgiVars is what uwsgi_params sends: PATH_INFO is the decoded path.
func (r sockRequest) uwsgiVars() []string {
	return append(r.common(), "CONTENT_LENGTH", strconv.Itoa(len(r.body)), "PATH_INFO", r.decodedPath())
}

// scgiVars is what scgi_pass sends: CONTENT_LENGTH first, SCGI, no PATH_INFO.
func (r sockRequest) scgiVars() []string {
	head := []string{"CONTENT_LENGTH", strconv.Itoa(len(r.body)), "SCGI", "1"}
	return append(append(head, r.common()...), "DOCUMENT_URI", r.decodedPath())
}

// fastcgiVars is what fastcgi_params sends: SCRIPT_NAME is the whole path,
// no PATH_INFO.
func (r sockRequest) fastcgiVars() []string {
	return append(r.common(), "CONTENT_LENGTH", strconv.Itoa(len(r.body)), "SCRIPT_NAME", r.decodedPath(),
		"DOCUMENT_URI", r.decodedPath(), "GATEWAY_INTERFACE", "CGI/1.1", "SERVER_SOFTWARE", "nginx", "REDIRECT_STATUS", "200")
}

// sockDial connects to a banner address: a path is a Unix socket.
func sockDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	conn, err := net.DialTimeout(network, addr, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// uwsgiRoundTrip sends a uwsgi packet (modifier1 0, a vars block of uint16
// little-endian lengths) and the body, and reads the HTTP response to EOF.
func uwsgiRoundTrip(t *testing.T, addr string, vars []string, body string) (*http.Response, []byte) {
	t.Helper()
	var block []byte
	for _, s := range vars {
		block = binary.LittleEndian.AppendUint16(block, uint16(len(s)))
		block = append(block, s...)
	}
	packet := append([]byte{0}, binary.LittleEndian.AppendUint16(nil, uint16(len(block)))...)
	packet = append(append(append(packet, 0), block...), body...)
	conn := sockDial(t, addr)
	_, err := conn.Write(packet)
	require.NoError(t, err)
	raw, err := io.ReadAll(conn)
	require.NoError(t, err)
	return parseHTTPResponse(t, raw)
}

// scgiRoundTrip sends the headers as a netstring of NUL-terminated strings
// and the body, and reads the CGI response to EOF.
func scgiRoundTrip(t *testing.T, addr string, vars []string, body string) (*http.Response, []byte) {
	t.Helper()
	headers := strings.Join(vars, "\x00") + "\x00"
	conn := sockDial(t, addr)
	_, err := fmt.Fprintf(conn, "%d:%s,%s", len(headers), headers, body)
	require.NoError(t, err)
	raw, err := io.ReadAll(conn)
	require.NoError(t, err)
	return parseCGIResponse(t, raw)
}

// FastCGI record types and the responder role (FastCGI specification,
// section 8).
const (
	fcgiBeginRequest = 1
	fcgiEndRequest   = 3
	fcgiParams       = 4
	fcgiStdin        = 5
	fcgiStdout       = 6
	fcgiResponder    = 1
)

// fastcgiRecord appends one record of request 1.
func fastcgiRecord(dst []byte, kind byte, content []byte) []byte {
	dst = append(dst, 1, kind, 0, 1)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(content)))
	return append(append(dst, 0, 0), content...)
}

// fastcgiLength appends a name-value length: one byte below 128, else four
// with the high bit set.
func fastcgiLength(dst []byte, n int) []byte {
	if n < 128 {
		return append(dst, byte(n))
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n)|1<<31)
}

// fastcgiRoundTrip sends BEGIN_REQUEST, the PARAMS and STDIN streams, and
// reads STDOUT until END_REQUEST.
func fastcgiRoundTrip(t *testing.T, addr string, vars []string, body string) (*http.Response, []byte) {
	t.Helper()
	var params []byte
	for i := 0; i < len(vars); i += 2 {
		params = fastcgiLength(fastcgiLength(params, len(vars[i])), len(vars[i+1]))
		params = append(append(params, vars[i]...), vars[i+1]...)
	}
	msg := fastcgiRecord(nil, fcgiBeginRequest, []byte{0, fcgiResponder, 0, 0, 0, 0, 0, 0})
	msg = fastcgiRecord(msg, fcgiParams, params)
	msg = fastcgiRecord(msg, fcgiParams, nil)
	for rest := []byte(body); len(rest) > 0; {
		n := min(len(rest), 0xffff) // a record carries at most 65535 bytes
		msg = fastcgiRecord(msg, fcgiStdin, rest[:n])
		rest = rest[n:]
	}
	msg = fastcgiRecord(msg, fcgiStdin, nil)
	conn := sockDial(t, addr)
	_, err := conn.Write(msg)
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	var stdout []byte
	for range 10000 {
		var header [8]byte
		_, err := io.ReadFull(r, header[:])
		require.NoError(t, err, "reading a FastCGI record; stdout so far: %q", stdout)
		content := make([]byte, int(binary.BigEndian.Uint16(header[4:6]))+int(header[6]))
		_, err = io.ReadFull(r, content)
		require.NoError(t, err)
		content = content[:len(content)-int(header[6])]
		switch header[1] {
		case fcgiStdout:
			stdout = append(stdout, content...)
		case fcgiEndRequest:
			return parseCGIResponse(t, stdout)
		}
	}
	require.FailNow(t, "no END_REQUEST after 10000 records")
	return nil, nil
}

// parseHTTPResponse reads an HTTP response whose body runs to the end.
func parseHTTPResponse(t *testing.T, raw []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	require.NoError(t, err, "response: %q", raw)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// parseCGIResponse reads a CGI response ("Status: 200 OK" and headers,
// RFC 3875 section 6.3) by reading it as an HTTP response.
func parseCGIResponse(t *testing.T, raw []byte) (*http.Response, []byte) {
	t.Helper()
	status, rest, ok := bytes.Cut(raw, []byte("\r\n"))
	require.True(t, ok && bytes.HasPrefix(status, []byte("Status: ")), "CGI response: %q", raw)
	return parseHTTPResponse(t, append([]byte("HTTP/1.1 "+string(status[len("Status: "):])+"\r\n"), rest...))
}

// sameThroughEveryGateway lists the environ keys a request must set alike
// through every gateway (REMOTE_PORT, SERVER_* and the like legitimately
// differ).
var sameThroughEveryGateway = []string{"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
	"CONTENT_LENGTH", "HTTP_HOST", "HTTP_X_PROBE", "SERVER_PROTOCOL", "REMOTE_ADDR", "wsgi.url_scheme"}

// sockGateways is each web-server protocol with its client and variables.
var sockGateways = []struct {
	name      string
	roundTrip func(t *testing.T, addr string, vars []string, body string) (*http.Response, []byte)
	vars      func(sockRequest) []string
}{
	{"uwsgi", uwsgiRoundTrip, sockRequest.uwsgiVars},
	{"scgi", scgiRoundTrip, sockRequest.scgiVars},
	{"fastcgi", fastcgiRoundTrip, sockRequest.fastcgiVars},
}

func TestEverySocketAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	uwsgiPath := filepath.Join(dir, "uwsgi.sock")
	probe := harness.StartIn(t, dir, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--uwsgi-socket", uwsgiPath,
		"--scgi-socket", "127.0.0.1:0", "--fastcgi-socket", "127.0.0.1:0", "--chmod-socket=660", "--vacuum")
	addrs := bannerSockets(t, probe.Stderr())
	require.Equal(t, uwsgiPath, addrs["uwsgi"], "banner: %s", probe.Stderr())
	require.Contains(t, addrs, "scgi")
	require.Contains(t, addrs, "fastcgi")
	fi, err := os.Stat(uwsgiPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "--chmod-socket=660")

	req := sockRequest{method: "POST", path: "/environ/caf%C3%A9", query: "a=1&b=%20",
		contentType: "application/x-www-form-urlencoded", body: "hello=world", host: probe.Addr}
	httpReq := harness.MustRequest(t, req.method, probe.URL+req.uri(), strings.NewReader(req.body))
	httpReq.Header.Set("Content-Type", req.contentType)
	httpReq.Header.Set("X-Probe", "yes")
	resp, body := harness.Do(t, harness.Client(true), httpReq)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	want := decodeEnviron(t, body)

	for _, gw := range sockGateways {
		t.Run(gw.name, func(t *testing.T) {
			resp, body := gw.roundTrip(t, addrs[gw.name], gw.vars(req), req.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			got := decodeEnviron(t, body)
			for _, key := range sameThroughEveryGateway {
				assert.Equal(t, want.Vars[key], got.Vars[key], key)
			}
			assert.Equal(t, "/environ/caf\u00c3\u00a9", got.Vars["PATH_INFO"], "PEP 3333: bytes as latin-1")
			for key, kind := range want.Types {
				if strings.HasPrefix(key, "wsgi.") {
					assert.Equal(t, kind, got.Types[key], key)
				}
			}
			assert.Equal(t, want.WSGI, got.WSGI)
			assert.True(t, got.Latin1)
		})
	}

	// The body itself, read back through wsgi.input.
	echo := sockRequest{method: "POST", path: "/input/read", contentType: "application/octet-stream",
		body: strings.Repeat("0123456789", 10000), host: probe.Addr}
	for _, gw := range sockGateways {
		t.Run(gw.name+" body", func(t *testing.T) {
			resp, body := gw.roundTrip(t, addrs[gw.name], gw.vars(echo), echo.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			assert.Equal(t, echo.body, string(body))
		})
	}

	probe.Signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, probe.Wait(t, harness.StopTimeout))
	assert.NoFileExists(t, uwsgiPath, "--vacuum removes the socket file on exit")
}

func TestSocketThatWillNotBind(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing", "app.sock")
	code, out := harness.RunToExit(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--uwsgi-socket", path)
	assert.Equal(t, 2, code)
	assert.Equal(t, "gowsgi: --uwsgi-socket "+path+": no such file or directory\n", out,
		"one line naming the socket and why, and no worker started")
}

// TestFastCGIOnStdin starts gowsgi the way lighttpd's bin-path and Apache's
// mod_fcgid do: no socket option, a listening socket on fd 0.
func TestFastCGIOnStdin(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	lnFile, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	ln.Close()
	defer lnFile.Close()

	inst := &harness.Instance{Dir: t.TempDir(), Output: &harness.LockedBuffer{}, Exited: make(chan struct{})}
	inst.Cmd = exec.Command(harness.GowsgiBin, "--wsgi-file", harness.TestdataPath(t, "probe.py"))
	inst.Cmd.Dir = inst.Dir
	inst.Cmd.Stdin = lnFile
	inst.Cmd.Stdout, inst.Cmd.Stderr = inst.Output, inst.Output
	require.NoError(t, inst.Cmd.Start())
	lnFile.Close()
	go func() {
		inst.Err = inst.Cmd.Wait()
		close(inst.Exited)
	}()
	t.Cleanup(func() { inst.Stop(t) })
	harness.Eventually(t, harness.StartTimeout, func() bool { return strings.Contains(inst.Stderr(), "fastcgi://") },
		"no fastcgi:// in the banner; stderr:\n%s", inst.Stderr())
	addrs := bannerSockets(t, inst.Stderr())
	assert.NotContains(t, addrs, "http", "no default HTTP socket when one is inherited")

	req := sockRequest{method: "GET", path: "/environ", query: "x=1", host: "example.org"}
	resp, body := fastcgiRoundTrip(t, addrs["fastcgi"], req.fastcgiVars(), "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, "x=1", decodeEnviron(t, body).Vars["QUERY_STRING"])

	for _, pid := range childPIDs(t, inst.Cmd.Process.Pid) {
		stdin, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid))
		require.NoError(t, err)
		assert.Equal(t, os.DevNull, stdin, "worker %d must not inherit the FastCGI socket as fd 0", pid)
	}
	stdin, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", inst.Cmd.Process.Pid))
	require.NoError(t, err)
	assert.Equal(t, os.DevNull, stdin, "the master keeps the socket only in its listener")
}

// childPIDs lists pid's children (proc(5), /proc/PID/task/TID/children).
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	require.NoError(t, err)
	var pids []int
	for _, task := range tasks {
		data, err := os.ReadFile(task)
		require.NoError(t, err)
		for _, field := range strings.Fields(string(data)) {
			n, err := strconv.Atoi(field)
			require.NoError(t, err)
			pids = append(pids, n)
		}
	}
	require.NotEmpty(t, pids, "the master has no worker")
	return pids
}

// writeCertificate writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files in dir, and returns their paths and a pool trusting it.
func writeCertificate(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gowsgi test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

func TestHTTPSSocket(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := writeCertificate(t, t.TempDir())
	probe := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--https-socket", "127.0.0.1:0,"+certFile+","+keyFile)
	addr := bannerSockets(t, probe.Stderr())["https"]
	require.NotEmpty(t, addr, "no https:// in the banner:\n%s", probe.Stderr())

	tests := []struct {
		name      string
		protocols []string // what the client offers by ALPN
		wantProto string
	}{
		{"HTTP/2 negotiated by ALPN", []string{"h2", "http/1.1"}, "HTTP/2.0"},
		{"HTTP/1.1 for a client without h2", []string{"http/1.1"}, "HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: tt.protocols},
				ForceAttemptHTTP2: slices.Contains(tt.protocols, "h2")}
			defer transport.CloseIdleConnections()
			c := &http.Client{Timeout: 30 * time.Second, Transport: transport}
			req := harness.MustRequest(t, http.MethodPost, "https://"+addr+"/environ/x?y=1", strings.NewReader("abc"))
			resp, body := harness.Do(t, c, req)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			assert.Equal(t, tt.wantProto, resp.Proto)
			env := decodeEnviron(t, body)
			assert.Equal(t, "https", env.WSGI.URLScheme)
			assert.Equal(t, tt.wantProto, env.Vars["SERVER_PROTOCOL"])
			assert.Equal(t, "/environ/x", env.Vars["PATH_INFO"])
			assert.Equal(t, "3", env.Vars["CONTENT_LENGTH"])
		})
	}
}

func TestHTTPSSocketWithoutItsCertificate(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.pem")
	code, out := harness.RunToExit(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--https-socket", "127.0.0.1:0,"+missing+","+missing)
	assert.Equal(t, 2, code)
	assert.Equal(t, "gowsgi: --https-socket 127.0.0.1:0: open "+missing+": no such file or directory\n", out)
}

// --buffer-size bounds a request's head through the HTTP and FastCGI
// gateways alike: a larger one is answered 431 and never reaches the app.
// (uwsgi and SCGI, which have no way to answer before the head is read,
// log it and close: gateways' own tests.)
func TestBufferSizeBoundsTheHeadOfHTTPAndFastCGI(t *testing.T) {
	t.Parallel()
	probe := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--fastcgi-socket", "127.0.0.1:0", "--buffer-size", "8192")
	fastcgi := bannerSockets(t, probe.Stderr())["fastcgi"]
	require.NotEmpty(t, fastcgi, "banner: %s", probe.Stderr())
	for _, tc := range []struct {
		header int // bytes of one X-Big header
		status int
	}{
		{4000, http.StatusOK},
		{12000, http.StatusRequestHeaderFieldsTooLarge},
	} {
		big := strings.Repeat("b", tc.header)
		t.Run(fmt.Sprintf("http %d", tc.header), func(t *testing.T) {
			req := harness.MustRequest(t, "GET", probe.URL+"/environ", nil)
			req.Header.Set("X-Big", big)
			resp, body := harness.Do(t, harness.Client(true), req)
			assert.Equal(t, tc.status, resp.StatusCode, "%s", body)
		})
		t.Run(fmt.Sprintf("fastcgi %d", tc.header), func(t *testing.T) {
			req := sockRequest{method: "GET", path: "/environ", host: probe.Addr}
			resp, body := fastcgiRoundTrip(t, fastcgi, append(req.fastcgiVars(), "HTTP_X_BIG", big), "")
			assert.Equal(t, tc.status, resp.StatusCode, "%s", body)
		})
	}
}

func TestChownSocket(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("chown needs root")
	}
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	nogroup, err := user.LookupGroup("nogroup")
	require.NoError(t, err)
	tests := []struct {
		owner            string
		wantUID, wantGID string
	}{
		{owner: "nobody:nogroup", wantUID: nobody.Uid, wantGID: nogroup.Gid},
		// No group: the file keeps the group it was created with, root's.
		{owner: "nobody", wantUID: nobody.Uid, wantGID: "0"},
		{owner: nobody.Uid + ":" + nogroup.Gid, wantUID: nobody.Uid, wantGID: nogroup.Gid},
	}
	for _, src := range restSources {
		for _, tt := range tests {
			t.Run(src.name+"/"+tt.owner, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				sock := filepath.Join(dir, "app.sock")
				harness.Start(t, src.args(t, dir, [][2]string{probeFile(t),
					{"uwsgi-socket", sock}, {"chown-socket", tt.owner}})...)
				info, err := os.Stat(sock)
				require.NoError(t, err)
				st := info.Sys().(*syscall.Stat_t)
				assert.Equal(t, tt.wantUID, strconv.Itoa(int(st.Uid)))
				assert.Equal(t, tt.wantGID, strconv.Itoa(int(st.Gid)))
			})
		}
	}
}

func TestChownSocketUnknownUser(t *testing.T) {
	code, out := harness.RunGowsgi(t, t.TempDir(), "--wsgi-file", harness.TestdataPath(t, "probe.py"),
		"--uwsgi-socket", filepath.Join(t.TempDir(), "app.sock"), "--chown-socket", "no-such-user-here")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "--chown-socket no-such-user-here")
}

func TestHTTPOption(t *testing.T) {
	for _, src := range restSources {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// No --http-socket: --http alone must make the HTTP front end.
			inst := harness.LaunchConfigured(t, dir, nil, src.args(t, dir, [][2]string{probeFile(t), {"http", "127.0.0.1:0"}})...)
			conn := harness.Dial(t, inst.Addr)
			r := bufio.NewReader(conn)
			// Two requests on one connection: keep-alive, as --http-socket.
			for range 2 {
				_, err := fmt.Fprintf(conn, "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
				require.NoError(t, err)
				resp := harness.ReadResponses(t, r, 1, http.MethodGet)[0]
				assert.Equal(t, 200, resp.StatusCode)
				assert.Equal(t, "Hello World!\n", string(resp.Body))
				assert.False(t, resp.Close, "the connection stays open")
			}
		})
	}
}
