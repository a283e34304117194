// Gateway fixes through the real binary: Apache's ProxyPass to FastCGI and
// SCGI written the way users write it, with no SetEnvIf or
// ProxyFCGISetEnvIf to split the path, giving the app its mount point.
package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	b := plainBackend{fcgiAddr: freeAddr(t), scgiAddr: freeAddr(t)}
	start(t, append(args, "--fastcgi-socket", b.fcgiAddr, "--scgi-socket", b.scgiAddr)...)
	return b
}

// startPlainApache serves every plainProxyPasses site for b, one port each,
// and returns their base URLs in the same order.
func startPlainApache(t *testing.T, b plainBackend) []string {
	t.Helper()
	var apache webServerKind
	for _, kind := range webServerKinds {
		if kind.name == "apache" {
			apache = kind
		}
	}
	var conf strings.Builder
	var addrs, bases []string
	for _, p := range plainProxyPasses {
		addr := freeAddr(t)
		backend := b.fcgiAddr
		if p.way == "scgi" {
			backend = b.scgiAddr
		}
		fmt.Fprintf(&conf, "Listen %s\n<VirtualHost %s>\n    ProxyPass %s %s://%s/\n</VirtualHost>\n",
			addr, addr, p.mount, p.way, backend)
		addrs = append(addrs, addr)
		bases = append(bases, "http://"+addr+p.scriptName())
	}
	startWebServerSite(t, apache, conf.String(), addrs)
	return bases
}

// TestApachePlainProxyPassMountPoint: behind a bare ProxyPass to FastCGI or
// SCGI, the probe sees SCRIPT_NAME as the mount point and PATH_INFO as the
// decoded rest, which Apache tells only in SCRIPT_FILENAME.
func TestApachePlainProxyPassMountPoint(t *testing.T) {
	t.Parallel()
	bases := startPlainApache(t, startPlainBackend(t, "--wsgi-file", testdataPath(t, "probe.py")))
	for i, p := range plainProxyPasses {
		t.Run(p.name, func(t *testing.T) {
			m := mount{name: "apache/" + p.name, base: bases[i]}
			env := fetchEnviron(t, m, "/environ/caf%C3%A9/a%20b?x=%20y")
			assert.Equal(t, p.scriptName(), env.Vars["SCRIPT_NAME"])
			assert.Equal(t, latin1([]byte("/environ/café/a b")), env.Vars["PATH_INFO"])
			assert.Equal(t, "x=%20y", env.Vars["QUERY_STRING"])
			assert.Equal(t, p.scriptName()+"/environ/caf%C3%A9/a%20b?x=%20y", env.Vars["REQUEST_URI"])

			resp, body := get(t, bases[i]+"/hello")
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
	extra := filepath.Dir(testdataPath(t, filepath.Join("webservers", "flask_extra.py")))
	script := filepath.Join(t.TempDir(), "flask.wsgi")
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(
		"import sys\nsys.path[:0] = [%q, %q]\nfrom flask_extra import application\n", examplesDir(t), extra)), 0o644))
	bases := startPlainApache(t, startPlainBackend(t, "--wsgi-file", script))
	for i, p := range plainProxyPasses {
		t.Run(p.name, func(t *testing.T) {
			resp, body := get(t, bases[i]+"/where")
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			want := fmt.Sprintf(`{"script_root": %q, "path": "/where", "url": %q}`, p.scriptName(), p.scriptName()+"/")
			assert.JSONEq(t, want, string(body))

			resp, body = get(t, bases[i]+"/greet/J%C3%BCrgen%20%E2%9C%93")
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			assert.Equal(t, "Hello, Jürgen ✓!", string(body))
		})
	}
}
