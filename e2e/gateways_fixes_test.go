// Gateway fixes through the real binary: Apache's ProxyPass to FastCGI and
// SCGI written the way users write it, with no SetEnvIf or
// ProxyFCGISetEnvIf to split the path, giving the app its mount point; and
// spooled request bodies that leave nothing in the temporary folder when
// the master is killed.
package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plainProxyPass is one Apache site written the way its documentation
// shows it: a ProxyPass line and nothing else.
type plainProxyPass struct {
	name  string
	mount string // the ProxyPass path: "/app/" or "/"
	way   string // "fcgi" or "scgi"
}

var plainProxyPasses = []plainProxyPass{
	{"fcgi at /app/", "/app/", "fcgi"},
	{"scgi at /app/", "/app/", "scgi"},
	{"fcgi at /", "/", "fcgi"},
	{"scgi at /", "/", "scgi"},
}

// scriptName is the SCRIPT_NAME the app must see behind p.
func (p plainProxyPass) scriptName() string { return strings.TrimSuffix(p.mount, "/") }

// plainBackend is one gowsgi serving an app over FastCGI and SCGI on
// loopback ports.
type plainBackend struct {
	fcgiAddr, scgiAddr string
}

func startPlainBackend(t *testing.T, args ...string) plainBackend {
	t.Helper()
	b := plainBackend{fcgiAddr: harness.FreeAddr(t), scgiAddr: harness.FreeAddr(t)}
	harness.Start(t, append(args, "--fastcgi-socket", b.fcgiAddr, "--scgi-socket", b.scgiAddr)...)
	return b
}

// startPlainApache serves every plainProxyPasses site for b, one port each,
// and returns their base URLs in the same order.
func startPlainApache(t *testing.T, b plainBackend) []string {
	t.Helper()
	var apache harness.WebServerKind
	for _, kind := range harness.WebServerKinds {
		if kind.Name == "apache" {
			apache = kind
		}
	}
	var conf strings.Builder
	var addrs, bases []string
	for _, p := range plainProxyPasses {
		addr := harness.FreeAddr(t)
		backend := b.fcgiAddr
		if p.way == "scgi" {
			backend = b.scgiAddr
		}
		fmt.Fprintf(&conf, "Listen %s\n<VirtualHost %s>\n    ProxyPass %s %s://%s/\n</VirtualHost>\n",
			addr, addr, p.mount, p.way, backend)
		addrs = append(addrs, addr)
		bases = append(bases, "http://"+addr+p.scriptName())
	}
	harness.StartWebServerSite(t, apache, conf.String(), addrs)
	return bases
}

// TestApachePlainProxyPassMountPoint: behind a bare ProxyPass to FastCGI or
// SCGI, the probe sees SCRIPT_NAME as the mount point and PATH_INFO as the
// decoded rest, which Apache tells only in SCRIPT_FILENAME.
func TestApachePlainProxyPassMountPoint(t *testing.T) {
	t.Parallel()
	bases := startPlainApache(t, startPlainBackend(t, "--wsgi-file", harness.TestdataPath(t, "probe.py")))
	for i, p := range plainProxyPasses {
		t.Run(p.name, func(t *testing.T) {
			m := mount{name: "apache/" + p.name, base: bases[i]}
			env := fetchEnviron(t, m, "/environ/caf%C3%A9/a%20b?x=%20y")
			assert.Equal(t, p.scriptName(), env.Vars["SCRIPT_NAME"])
			assert.Equal(t, latin1([]byte("/environ/café/a b")), env.Vars["PATH_INFO"])
			assert.Equal(t, "x=%20y", env.Vars["QUERY_STRING"])
			assert.Equal(t, p.scriptName()+"/environ/caf%C3%A9/a%20b?x=%20y", env.Vars["REQUEST_URI"])

			resp, body := harness.Get(t, bases[i]+"/hello")
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			assert.Equal(t, "Hello World!\n", string(body))
		})
	}
}

// TestApachePlainProxyPassFlask: Flask routes and builds its URLs from the
// split, so behind a bare ProxyPass its routes match and url_for carries
// the mount point.
func TestApachePlainProxyPassFlask(t *testing.T) {
	t.Parallel()
	extra := filepath.Dir(harness.TestdataPath(t, filepath.Join("webservers", "flask_extra.py")))
	script := filepath.Join(t.TempDir(), "flask.wsgi")
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(
		"import sys\nsys.path[:0] = [%q, %q]\nfrom flask_extra import application\n", harness.ExamplesDir(t), extra)), 0o644))
	bases := startPlainApache(t, startPlainBackend(t, "--wsgi-file", script))
	for i, p := range plainProxyPasses {
		t.Run(p.name, func(t *testing.T) {
			resp, body := harness.Get(t, bases[i]+"/where")
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			want := fmt.Sprintf(`{"script_root": %q, "path": "/where", "url": %q}`, p.scriptName(), p.scriptName()+"/")
			assert.JSONEq(t, want, string(body))

			resp, body = harness.Get(t, bases[i]+"/greet/J%C3%BCrgen%20%E2%9C%93")
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			assert.Equal(t, "Hello, Jürgen ✓!", string(body))
		})
	}
}

// holdApp reads the whole body, says so in the record file "held", and
// answers only once release-held exists (at most 60 s), so the test can
// kill the master while the request is being served.
const holdApp = `import os, time

def application(environ, start_response):
    size = len(environ["wsgi.input"].read())
    with open("held", "w") as f:
        f.write(str(size))
    deadline = time.monotonic() + 60
    while not os.path.exists("release-held") and time.monotonic() < deadline:
        time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(size).encode()]
`

// heldFiles lists the files under dir that process pid holds open, with
// their sizes: a spool file whose name is already gone still shows here.
func heldFiles(pid int, dir string) map[string]int64 {
	held := map[string]int64{}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue
		}
		if info, err := os.Stat(fd); err == nil {
			held[target] = info.Size()
		}
	}
	return held
}

// TestSpoolFilesDieWithAKilledMaster: a master killed with SIGKILL, while
// it spools a large POST and while a worker serves it, leaves no spool file
// in the TMPDIR it was given.
func TestSpoolFilesDieWithAKilledMaster(t *testing.T) {
	const size = 3 << 20
	head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
	body := strings.Repeat("b", size)
	cases := []struct {
		name string
		sent int // body bytes sent before the kill
		// ready says the request got as far as the case means to kill it at.
		ready func(inst *harness.Instance, tmp string) bool
	}{
		{"while spooling", 2 << 20, func(inst *harness.Instance, tmp string) bool {
			for _, n := range heldFiles(inst.Cmd.Process.Pid, tmp) {
				if n >= 2<<20 {
					return true
				}
			}
			return false
		}},
		{"while served", size, func(inst *harness.Instance, _ string) bool {
			got, ok := inst.Record("held")
			return ok && got == strconv.Itoa(size)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			dir := t.TempDir()
			harness.WriteFile(t, dir, "hold_app.py", holdApp)
			inst := harness.LaunchConfigured(t, dir, []string{"TMPDIR=" + tmp},
				"--http-socket", "127.0.0.1:0", "--module", "hold_app", "--spool-threshold", "1024")
			t.Cleanup(func() { _ = syscall.Kill(-inst.Cmd.Process.Pid, syscall.SIGKILL) })
			conn := harness.Dial(t, inst.Addr)
			_, err := conn.Write([]byte(head + body[:tc.sent]))
			require.NoError(t, err)
			harness.Eventually(t, 20*time.Second, func() bool { return tc.ready(inst, tmp) },
				"the body never reached the point to kill at; stderr:\n%s", inst.Stderr())
			named, err := filepath.Glob(filepath.Join(tmp, "*"))
			require.NoError(t, err)
			require.True(t, len(named) > 0 || len(heldFiles(inst.Cmd.Process.Pid, tmp)) > 0,
				"no spool file in TMPDIR, by name or open: the test would prove nothing")

			inst.Signal(t, syscall.SIGKILL)
			inst.Wait(t, 10*time.Second)
			left, err := filepath.Glob(filepath.Join(tmp, "*"))
			require.NoError(t, err)
			assert.Empty(t, left, "files left in TMPDIR by a killed master")
		})
	}
}
