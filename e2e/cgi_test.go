// gowsgi as a CGI program (RFC 3875), run the way a web server runs one: a
// fresh process per request with the request in its environment and stdin,
// the response read from its stdout. Its answers are compared with what
// wsgiref.handlers.CGIHandler gives for the same app and request.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// cgiHandlerScript runs the app of the file argv[1] names once under
// wsgiref's CGIHandler, the reference a CGI gowsgi must match; the file's
// folder is importable, as gowsgi makes a --wsgi-file's.
const cgiHandlerScript = `import importlib.util, os, sys
from wsgiref.handlers import CGIHandler
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[1])))
spec = importlib.util.spec_from_file_location("cgi_app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
CGIHandler().run(app.application)
`

// systemPython is the interpreter CGIHandler runs under.
const systemPython = "/usr/bin/python3"

// cgiOutput is what one CGI run wrote and how it ended.
type cgiOutput struct {
	stdout  []byte
	status  string   // from the "Status:" line
	headers []string // the other head lines, in order
	body    []byte
	stderr  string
	code    int
}

// cgiRequest is one request as a web server describes it to a CGI program.
type cgiRequest struct {
	method, pathInfo, query string
	contentType             string
	body                    []byte
	stdin                   []byte // when set, stdin instead of body (CONTENT_LENGTH stays len(body))
	extraEnv                []string
}

// env returns the request's CGI environment, as Apache's mod_cgi builds it.
func (r cgiRequest) env() []string {
	env := []string{
		"PATH=/usr/bin:/bin",
		"LANG=C.UTF-8", // so python3 does not coerce the locale into the environment (PEP 538)
		"GATEWAY_INTERFACE=CGI/1.1",
		"SERVER_SOFTWARE=Apache/2.4",
		"SERVER_NAME=localhost",
		"SERVER_ADDR=127.0.0.1",
		"SERVER_PORT=8080",
		"SERVER_PROTOCOL=HTTP/1.1",
		"REQUEST_METHOD=" + r.method,
		"SCRIPT_NAME=/cgi-bin/app.wsgi",
		"PATH_INFO=" + r.pathInfo,
		"QUERY_STRING=" + r.query,
		"REQUEST_URI=/cgi-bin/app.wsgi" + (&url.URL{Path: r.pathInfo}).EscapedPath() + "?" + r.query,
		"REMOTE_ADDR=127.0.0.1",
		"REMOTE_PORT=40000",
		"HTTP_HOST=localhost:8080",
		"HTTP_USER_AGENT=e2e",
	}
	if r.body != nil {
		env = append(env, "CONTENT_LENGTH="+strconv.Itoa(len(r.body)))
	}
	if r.contentType != "" {
		env = append(env, "CONTENT_TYPE="+r.contentType)
	}
	return append(env, r.extraEnv...)
}

// runCGI execs argv in dir with the request's environment and stdin and
// waits for it to exit.
func runCGI(t *testing.T, dir string, argv []string, r cgiRequest) cgiOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = r.env()
	stdin := r.stdin
	if stdin == nil {
		stdin = r.body
	}
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "%s did not exit; stderr:\n%s", argv[0], stderr.String())
	out := cgiOutput{stdout: stdout.Bytes(), stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		out.code = exit.ExitCode()
	} else {
		require.NoError(t, err, "running %s", argv[0])
	}
	head, body, ok := bytes.Cut(out.stdout, []byte("\r\n\r\n"))
	require.True(t, ok, "no CGI head in the output of %s: %q\nstderr:\n%s", argv[0], out.stdout, out.stderr)
	lines := strings.Split(string(head), "\r\n")
	status, found := strings.CutPrefix(lines[0], "Status: ")
	require.True(t, found, "the head of %s does not start with a Status line: %q", argv[0], head)
	out.status, out.headers, out.body = status, lines[1:], body
	return out
}

// gowsgiCGI runs gowsgi as lighttpd's cgi.assign does: the script's path
// as its argument.
func gowsgiCGI(t *testing.T, dir, script string, r cgiRequest) cgiOutput {
	t.Helper()
	return runCGI(t, dir, []string{harness.GowsgiBin, script}, r)
}

// referenceCGI runs the same script under python3 and CGIHandler.
func referenceCGI(t *testing.T, dir, script string, r cgiRequest) cgiOutput {
	t.Helper()
	return runCGI(t, dir, []string{systemPython, "-c", cgiHandlerScript, script}, r)
}

func TestCGIMatchesCGIHandler(t *testing.T) {
	t.Parallel()
	probe := harness.TestdataPath(t, "probe.py")
	upload := bytes.Repeat([]byte("gowsgi CGI upload\n"), 3<<20/18) // past the spool threshold
	tests := []struct {
		name  string
		req   cgiRequest
		exact bool // the whole output must be the same bytes
	}{
		{name: "GET", req: cgiRequest{method: "GET", pathInfo: "/hello"}, exact: true},
		{name: "not found", req: cgiRequest{method: "GET", pathInfo: "/nowhere"}, exact: true},
		{name: "POST", req: cgiRequest{method: "POST", pathInfo: "/input/read", contentType: "application/x-www-form-urlencoded", body: []byte("a=1&b=%C3%A9")}, exact: true},
		{name: "POST spooled", req: cgiRequest{method: "POST", pathInfo: "/input/sha256", contentType: "application/octet-stream", body: upload}, exact: true},
		{name: "readline", req: cgiRequest{method: "POST", pathInfo: "/input/readline", contentType: "text/plain", body: []byte("one\ntwo\nthree")}, exact: true},
		{name: "write()", req: cgiRequest{method: "GET", pathInfo: "/write"}, exact: true},
		{name: "file_wrapper", req: cgiRequest{method: "GET", pathInfo: "/file"}, exact: true},
		{name: "large streamed body", req: cgiRequest{method: "GET", pathInfo: "/big", query: "size=" + strconv.Itoa(5<<20)}, exact: true},
		// CGIHandler adds a Content-Length to a one-item body; gowsgi leaves
		// that to the web server, so only status, type and body compare.
		{name: "exc_info before the head", req: cgiRequest{method: "GET", pathInfo: "/exc-info/before"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := gowsgiCGI(t, t.TempDir(), probe, tt.req)
			want := referenceCGI(t, t.TempDir(), probe, tt.req)
			require.Zero(t, want.code, "CGIHandler failed; stderr:\n%s", want.stderr)
			assert.Zero(t, got.code, "stderr:\n%s", got.stderr)
			if tt.exact {
				assert.True(t, bytes.Equal(want.stdout, got.stdout), "outputs differ\ngowsgi head: %v %q\nCGIHandler head: %v %q\nstderr:\n%s",
					got.status, got.headers, want.status, want.headers, got.stderr)
				return
			}
			assert.Equal(t, want.status, got.status)
			assert.Equal(t, header(want.headers, "Content-Type"), header(got.headers, "Content-Type"))
			assert.Equal(t, string(want.body), string(got.body))
		})
	}
}

// header returns the value of the first head line for name.
func header(lines []string, name string) string {
	for _, line := range lines {
		if k, v, ok := strings.Cut(line, ": "); ok && strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func TestCGIEnvironMatchesCGIHandler(t *testing.T) {
	t.Parallel()
	probe := harness.TestdataPath(t, "probe.py")
	req := cgiRequest{
		method: "POST", pathInfo: "/environ/caf\xc3\xa9", query: "x=1&y=%20", contentType: "text/plain", body: []byte("body"),
		extraEnv: []string{"HTTPS=on", "HTTP_X_FORWARDED_FOR=10.0.0.1", "DOCUMENT_ROOT=/srv/www"},
	}
	type environ struct {
		Vars  map[string]string `json:"vars"`
		Types map[string]string `json:"types"`
		WSGI  map[string]any    `json:"wsgi"`
	}
	decode := func(out cgiOutput) environ {
		require.Equal(t, "200 OK", out.status, "stderr:\n%s", out.stderr)
		var e environ
		require.NoError(t, json.Unmarshal(out.body, &e), "body: %s", out.body)
		return e
	}
	got := decode(gowsgiCGI(t, t.TempDir(), probe, req))
	want := decode(referenceCGI(t, t.TempDir(), probe, req))

	// Every environment variable is in environ, as CGIHandler puts it.
	// (CGIHandler decodes as latin-1 only the request's variables and keeps
	// the others, such as DOCUMENT_ROOT, in the file system's encoding;
	// gowsgi decodes all of them as latin-1, as every other gateway does, so
	// this request keeps raw non-ASCII bytes to PATH_INFO.)
	assert.Equal(t, want.Vars, got.Vars)
	assert.Equal(t, "/environ/caf\u00c3\u00a9", got.Vars["PATH_INFO"], "PATH_INFO is not the bytes as latin-1")
	assert.Equal(t, "https", got.Vars["wsgi.url_scheme"])
	// gowsgi's wsgi.input is always terminated (PEP 3333 leaves it to the
	// server to say); every other wsgi.* key is CGIHandler's.
	assert.Equal(t, true, got.WSGI["input_terminated"])
	delete(got.WSGI, "input_terminated")
	delete(want.WSGI, "input_terminated")
	assert.Equal(t, want.WSGI, got.WSGI)
	assert.Equal(t, map[string]any{"version": []any{1.0, 0.0}, "url_scheme": "https", "multithread": false, "multiprocess": true, "run_once": true}, got.WSGI)
	delete(got.Types, "wsgi.input_terminated")
	delete(want.Types, "wsgi.input_terminated")
	// gowsgi adds uWSGI's two keys to every environ, bytes as uWSGI's.
	for _, key := range []string{"uwsgi.version", "uwsgi.node"} {
		assert.Equal(t, "bytes", got.Types[key], key)
		delete(got.Types, key)
	}
	assert.Equal(t, want.Types, got.Types)
}

func TestCGIReadsOnlyContentLength(t *testing.T) {
	t.Parallel()
	// RFC 3875 section 4.2: the web server need not end stdin after the
	// body. (CGIHandler hands the app stdin itself, so read() would take
	// it all; gowsgi gives it exactly CONTENT_LENGTH bytes.)
	req := cgiRequest{method: "POST", pathInfo: "/input/read", body: []byte("hello"), stdin: []byte("hello, and more")}
	got := gowsgiCGI(t, t.TempDir(), harness.TestdataPath(t, "probe.py"), req)
	assert.Equal(t, "200 OK", got.status)
	assert.Equal(t, "hello", string(got.body))
}

func TestCGIAppError(t *testing.T) {
	t.Parallel()
	got := gowsgiCGI(t, t.TempDir(), harness.TestdataPath(t, "misbehave.py"), cgiRequest{method: "GET", pathInfo: "/raise-before"})
	assert.Equal(t, "500 Internal Server Error", got.status)
	assert.Zero(t, got.code, "an app exception still ends in a whole response")
	// The traceback goes to stderr, which web servers log.
	assert.Contains(t, got.stderr, "Traceback")
	assert.Contains(t, got.stderr, "RuntimeError: misbehave: raised before start_response")
}

func TestCGIAppThatCannotLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.wsgi")
	require.NoError(t, os.WriteFile(broken, []byte("raise ImportError('broken on purpose')\n"), 0o644))
	got := gowsgiCGI(t, dir, broken, cgiRequest{method: "GET", pathInfo: "/"})
	assert.Equal(t, "500 Internal Server Error", got.status)
	assert.Equal(t, 2, got.code)
	assert.Contains(t, got.stderr, "ImportError: broken on purpose")
}

func TestCGIInvocations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hello, err := os.ReadFile(filepath.Join(harness.ExamplesDir(t), "hello_world_app.py"))
	require.NoError(t, err)
	plain := filepath.Join(dir, "hello.wsgi")
	require.NoError(t, os.WriteFile(plain, hello, 0o644))
	// A script that names gowsgi as its interpreter, and one that passes it
	// options there too.
	shebang := filepath.Join(dir, "shebang.wsgi")
	require.NoError(t, os.WriteFile(shebang, append([]byte("#!"+harness.GowsgiBin+"\n"), hello...), 0o755))
	shebangOpts := filepath.Join(dir, "shebang-opts.wsgi")
	require.NoError(t, os.WriteFile(shebangOpts, append([]byte("#!"+harness.GowsgiBin+" --callable application\n"), hello...), 0o755))
	// An app printing to stdout must not corrupt the CGI response.
	noisy := filepath.Join(dir, "noisy.wsgi")
	noisySource := "print('noise at import')\n" + strings.Replace(string(hello), "    start_response(", "    print('noise in the app')\n    start_response(", 1)
	require.NoError(t, os.WriteFile(noisy, []byte(noisySource), 0o644))

	get := cgiRequest{method: "GET", pathInfo: "/"}
	withScriptFilename := get
	withScriptFilename.extraEnv = []string{"SCRIPT_FILENAME=" + plain}
	searchWords := get
	searchWords.query = "two+words"
	tests := []struct {
		name string
		argv []string
		req  cgiRequest
	}{
		{name: "script argument", argv: []string{harness.GowsgiBin, plain}, req: get},
		{name: "script argument and search words", argv: []string{harness.GowsgiBin, plain, "two", "words"}, req: searchWords},
		{name: "SCRIPT_FILENAME", argv: []string{harness.GowsgiBin}, req: withScriptFilename},
		{name: "--wsgi-file", argv: []string{harness.GowsgiBin, "--wsgi-file", plain}, req: withScriptFilename},
		{name: "options before the script", argv: []string{harness.GowsgiBin, "--callable", "application", "-L", plain}, req: get},
		{name: "#! line", argv: []string{shebang}, req: get},
		{name: "#! line with options", argv: []string{shebangOpts}, req: get},
		{name: "app printing to stdout", argv: []string{harness.GowsgiBin, noisy}, req: get},
	}
	const want = "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello World!\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := runCGI(t, dir, tt.argv, tt.req)
			assert.Equal(t, want, string(got.stdout), "stderr:\n%s", got.stderr)
			assert.Zero(t, got.code)
		})
	}
}
