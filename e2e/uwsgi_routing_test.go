// uWSGI's routing rules and add-header, through the real binary and
// Debian's uWSGI with the same ini file (testdata/ini/routing.ini): each
// request gets the same status, Location, headers and body from both.
// Rules gowsgi does not run stop the start with one line.
package e2e

import (
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// routedAnswer is what a server answered, in the parts compared.
type routedAnswer struct {
	Status   int
	Location string
	Frame    string // X-Frame-Options, from add-header
	Tag      string // X-Tag, from addheader
	App      string // X-App, the app's own header (delheader removes it)
	Body     string
}

// routedRequest is one request of the table.
type routedRequest struct {
	name   string
	path   string
	header [2]string
	host   string
	want   routedAnswer
}

var routedRequests = []routedRequest{
	{name: "app", path: "/x?q=1", want: routedAnswer{Status: 200, Frame: "DENY", App: "1", Body: `{"path": "/x", "query": "q=1"}`}},
	{name: "break", path: "/admin/users", want: routedAnswer{Status: 403, Frame: "DENY"}},
	{name: "redirect-permanent", path: "/old/a/b", want: routedAnswer{Status: 301, Location: "/new/a/b", Frame: "DENY", Body: "Moved Permanently"}},
	{name: "redirect", path: "/go?x=1", want: routedAnswer{Status: 302, Location: "https://example.com/go?x=1", Frame: "DENY", Body: "Moved"}},
	{name: "return", path: "/gone", want: routedAnswer{Status: 410, Frame: "DENY", Body: "Gone"}},
	{name: "rewrite-last", path: "/legacy?a=1", want: routedAnswer{Status: 200, Frame: "DENY", App: "1", Body: `{"path": "/modern", "query": "b=2&a=1"}`}},
	{name: "addheader and delheader", path: "/tagged", want: routedAnswer{Status: 200, Frame: "DENY", Tag: "tagged", Body: `{"path": "/tagged", "query": ""}`}},
	{name: "route-if", path: "/x", header: [2]string{"X-Block", "yes"}, want: routedAnswer{Status: 451, Frame: "DENY"}},
	{name: "route-if-not", path: "/x", header: [2]string{"X-Ask", "tea"}, want: routedAnswer{Status: 418, Frame: "DENY", Body: "I'm a teapot"}},
	{name: "route-host", path: "/x", host: "blocked.example", want: routedAnswer{Status: 404, Frame: "DENY", Body: "Not Found"}},
}

// askRouted sends one request of the table to addr.
func askRouted(t *testing.T, addr string, rr routedRequest) routedAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+rr.path, nil)
	require.NoError(t, err)
	if rr.header[0] != "" {
		req.Header.Set(rr.header[0], rr.header[1])
	}
	if rr.host != "" {
		req.Host = rr.host
	}
	resp, err := harness.Client(true).Do(req)
	require.NoError(t, err, rr.name)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, rr.name)
	return routedAnswer{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Frame: resp.Header.Get("X-Frame-Options"),
		Tag: resp.Header.Get("X-Tag"), App: resp.Header.Get("X-App"), Body: string(body)}
}

func TestRoutingINI(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "routing.ini"))
	addr := freeAddr(t)
	inst := harness.LaunchConfigured(t, t.TempDir(), []string{"ADDR=" + addr}, ini)
	for _, rr := range routedRequests {
		assert.Equal(t, rr.want, askRouted(t, addr, rr), "%s; stderr:\n%s", rr.name, inst.Stderr())
	}
	assert.NotContains(t, inst.Stderr(), "warning")
}

func TestRoutingINIUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	ini := harness.TestdataPath(t, filepath.Join("ini", "routing.ini"))
	addr := freeAddr(t)
	t.Setenv("ADDR", addr)
	startUWSGI(t, bin, addr, "--plugin", "python3,http", "--ini", ini)
	for _, rr := range routedRequests {
		assert.Equal(t, rr.want, askRouted(t, addr, rr), rr.name)
	}
}

// startUWSGI starts Debian's uWSGI with args in a folder of its own, waits
// until it accepts on addr, and stops it (its process group) when the
// test ends.
func startUWSGI(t *testing.T, bin, addr string, args ...string) *harness.LockedBuffer {
	t.Helper()
	return startUWSGIOn(t, bin, "tcp", addr, args...)
}

// startUWSGISocket is startUWSGI for a server on the Unix socket path.
func startUWSGISocket(t *testing.T, bin, path string, args ...string) *harness.LockedBuffer {
	t.Helper()
	return startUWSGIOn(t, bin, "unix", path, args...)
}

func startUWSGIOn(t *testing.T, bin, network, addr string, args ...string) *harness.LockedBuffer {
	t.Helper()
	out := &harness.LockedBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = t.TempDir(), out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(uwsgiStopWait):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	harness.Eventually(t, harness.StartTimeout, func() bool {
		conn, err := net.Dial(network, addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, "uwsgi does not listen on %s; output:\n%s", addr, out)
	return out
}

// TestRoutingRefusals: a rule gowsgi cannot run stops the start with one
// line that names it and what to do.
func TestRoutingRefusals(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--route", "^/x cache:key=${REQUEST_URI}"}, `gowsgi: --route ^/x cache:key=${REQUEST_URI}: gowsgi runs the actions break, return, continue, redirect, redirect-permanent, rewrite, rewrite-last, addheader and delheader, not "cache"; route it in the web server in front (nginx location, HAProxy acl) or in the app` + "\n"},
		{[]string{"--route-if", "ipv4in:${REMOTE_ADDR};10.0.0.0/8 break:403"}, `gowsgi: --route-if ipv4in:${REMOTE_ADDR};10.0.0.0/8 break:403: gowsgi evaluates the conditions equal, startswith, endswith, contains, regexp, empty, exists, isfile and isdir, not "ipv4in"; route it in the web server in front (nginx location, HAProxy acl) or in the app` + "\n"},
		{[]string{"--route", "^/(?!api) break:404"}, "gowsgi: --route ^/(?!api) break:404: error parsing regexp: invalid or unsupported Perl syntax: `(?!` (gowsgi reads RE2 expressions: no look-around or back references)\n"},
		{[]string{"--route-label", "here"}, "gowsgi: --route-label: not implemented, and ignoring it would change what is served or run; gowsgi implements route and route-if (see gowsgi --help); other uWSGI routing rules are not implemented: route in the web server in front (nginx location, HAProxy acl) or in the app\n"},
		{[]string{"--add-header", "Connection: close"}, "gowsgi: --add-header \"Connection: close\": not \"Name: value\" with a header an app may send\n"},
	}
	for _, tt := range tests {
		code, out := harness.RunToExit(t, append([]string{"-w", "hello_world_app"}, tt.args...)...)
		assert.Equal(t, 2, code, tt.args)
		assert.Equal(t, tt.want, out, tt.args)
	}
}
