// gowsgi behind real web servers: nginx (uwsgi_pass, scgi_pass, fastcgi_pass,
// proxy_pass), lighttpd (mod_scgi speaking uwsgi and SCGI, mod_fastcgi,
// mod_proxy, mod_cgi) and Apache (mod_proxy_uwsgi, mod_proxy_scgi,
// mod_proxy_fcgi, mod_cgi), configured from examples/*.conf, each mounting
// the PEP 3333 probe and the Flask example at /app; and the Django
// deployment of examples/uwsgi.ini behind nginx with examples/nginx-uwsgi.conf.
package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// uploadSize is the body every path must carry intact: several times
// gowsgi's spool threshold and nginx's default client_max_body_size.
const uploadSize = 5 << 20

// mount is one way of reaching one app: a web server, the way it talks to
// gowsgi, and the URL of the app's mount point.
type mount struct {
	name   string // "nginx/uwsgi"
	way    string // a key of examplePorts
	base   string // "http://127.0.0.1:PORT/app"
	appDir string // the app's working directory, where release files go
}

// stripsPrefix says whether the app is reached over HTTP, which cannot
// carry the mount point: the web server strips /app, the app sees
// SCRIPT_NAME "" (examples/*.conf say so).
func (m mount) stripsPrefix() bool { return m.way == "http" }

// scriptName is the SCRIPT_NAME the app must see.
func (m mount) scriptName() string {
	if m.stripsPrefix() {
		return ""
	}
	return "/app"
}

// testApp is one app the web servers mount, served by its own gowsgi.
type testApp struct {
	harness.Backend
	// download is the file the app's file_wrapper route sends.
	download string
}

func TestWebServers(t *testing.T) {
	t.Parallel()
	root := harness.SharedDir(t, "", "gowsgi-web-")
	cgiBin := harness.CopyExecutable(t, root)
	probe := startTestApp(t, root, cgiBin, "probe", probeScript(t, cgiBin))
	probe.download = filepath.Join(probe.AppDir, "app.wsgi")
	flask := startTestApp(t, root, cgiBin, "flask", flaskScript(t, cgiBin))
	flask.download = harness.TestdataPath(t, filepath.Join("webservers", "flask_extra.py"))

	environs := &environSet{byMount: make(map[string]probeEnviron)}
	t.Run("servers", func(t *testing.T) {
		for _, kind := range harness.WebServerKinds {
			t.Run(kind.Name, func(t *testing.T) {
				t.Parallel()
				probeMounts, flaskMounts := startMounts(t, kind, probe, flask)
				for i := range probeMounts {
					t.Run(probeMounts[i].way, func(t *testing.T) {
						t.Parallel()
						probeThroughServer(t, probeMounts[i], probe, environs)
						flaskThroughServer(t, flaskMounts[i], flask)
					})
				}
			})
		}
	})
	t.Run("same environ", func(t *testing.T) { environs.compare(t) })
}

// startTestApp writes script as app.wsgi in a fresh app directory and
// starts gowsgi on it with a uwsgi, an SCGI and a FastCGI socket beside the
// harness's HTTP one.
func startTestApp(t *testing.T, root, cgiBin, name, script string) *testApp {
	t.Helper()
	app := &testApp{Backend: harness.Backend{
		AppDir:   harness.SharedDir(t, root, name+"-app-"),
		SockDir:  harness.SharedDir(t, root, name+"-sock-"),
		FCGIAddr: harness.FreeAddr(t),
		CGIBin:   cgiBin,
	}}
	file := filepath.Join(app.AppDir, "app.wsgi")
	require.NoError(t, os.WriteFile(file, []byte(script), 0o755))
	harness.CopyAppHelpers(t, app.AppDir)
	inst := harness.StartIn(t, app.AppDir, "--wsgi-file", file, "--threads", "4", "-L",
		"--uwsgi-socket", filepath.Join(app.SockDir, "uwsgi.sock"),
		"--scgi-socket", filepath.Join(app.SockDir, "scgi.sock"),
		"--fastcgi-socket", app.FCGIAddr,
		"--chmod-socket=666")
	app.HTTPAddr = inst.Addr
	t.Cleanup(func() {
		// wsgiref.validate's findings in a finished response reach only stderr.
		assert.NotContains(t, inst.Stderr(), "AssertionError", name)
		if t.Failed() {
			t.Logf("gowsgi serving %s:\n%s", name, inst.Stderr())
		}
	})
	return app
}

// probeScript is testdata/probe.py, run as a CGI program through its #! line.
func probeScript(t *testing.T, cgiBin string) string {
	t.Helper()
	src, err := os.ReadFile(harness.TestdataPath(t, "probe.py"))
	require.NoError(t, err)
	return "#!" + cgiBin + "\n" + string(src)
}

// flaskScript loads examples/flask_app.py with the routes of
// testdata/webservers/flask_extra.py.
func flaskScript(t *testing.T, cgiBin string) string {
	t.Helper()
	extra := filepath.Dir(harness.TestdataPath(t, filepath.Join("webservers", "flask_extra.py")))
	return fmt.Sprintf("#!%s\nimport sys\nsys.path[:0] = [%q, %q]\nfrom flask_extra import application\n",
		cgiBin, harness.ExamplesDir(t), extra)
}

// startMounts starts kind once for each app, with the example's sites
// pointing at it, and returns the mounts, in kind.ways order for both.
func startMounts(t *testing.T, kind harness.WebServerKind, probe, flask *testApp) (probeMounts, flaskMounts []mount) {
	t.Helper()
	mounts := make([][]mount, 2)
	for i, app := range []*testApp{probe, flask} {
		s := harness.Site{Backend: &app.Backend, Ports: make(map[string]string)}
		for _, way := range kind.Ways {
			addr := harness.FreeAddr(t)
			s.Ports[way] = addr
			mounts[i] = append(mounts[i], mount{
				name: kind.Name + "/" + way, way: way,
				base: "http://" + addr + "/app", appDir: app.AppDir,
			})
		}
		harness.StartWebServer(t, kind, s)
	}
	return mounts[0], mounts[1]
}

// probeThroughServer runs the probe's checks through one mount.
func probeThroughServer(t *testing.T, m mount, app *testApp, environs *environSet) {
	t.Run("probe get", func(t *testing.T) {
		resp, body := harness.Get(t, m.base+"/hello")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, "Hello World!\n", string(body))
	})
	t.Run("probe post 5 MiB", func(t *testing.T) {
		data := randomBytes(t, uploadSize)
		resp, body := harness.Do(t, harness.Client(false), harness.MustRequest(t, http.MethodPost, m.base+"/input/sha256", bytes.NewReader(data)))
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		var got struct {
			Size   int    `json:"size"`
			SHA256 string `json:"sha256"`
		}
		require.NoError(t, json.Unmarshal(body, &got), "%s", body)
		assert.Equal(t, uploadSize, got.Size)
		assert.Equal(t, sha256Hex(data), got.SHA256)
	})
	t.Run("probe streaming", func(t *testing.T) { probeStreams(t, m) })
	t.Run("probe file_wrapper", func(t *testing.T) {
		resp, body := harness.Get(t, m.base+"/file")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		want, err := os.ReadFile(app.download)
		require.NoError(t, err)
		assert.Equal(t, sha256Hex(want), sha256Hex(body), "the app file, %d bytes; got %d", len(want), len(body))
	})
	t.Run("probe 500", func(t *testing.T) {
		resp, body := harness.Get(t, m.base+"/exc-info/before")
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		assert.Equal(t, "handled", string(body))
	})
	t.Run("probe unicode path and mount point", func(t *testing.T) {
		env := fetchEnviron(t, m, "/environ/caf%C3%A9/rest?x=%20y")
		assert.Equal(t, m.scriptName(), env.Vars["SCRIPT_NAME"])
		assert.Equal(t, latin1([]byte("/environ/café/rest")), env.Vars["PATH_INFO"])
		assert.Equal(t, "x=%20y", env.Vars["QUERY_STRING"])
		assert.True(t, env.Latin1, "every environ str must be latin-1")
	})
	t.Run("probe environ", func(t *testing.T) {
		environs.add(m.name, fetchEnviron(t, m, sameEnvironPath))
	})
}

// probeStreams checks that the first chunk of an unfinished response gets
// through the web server: the probe holds the second until the test has
// seen the first, so a web server that buffers gets "timeout" instead.
func probeStreams(t *testing.T, m mount) {
	tag := strings.NewReplacer("/", "", "-", "").Replace(m.name) + "stream"
	resp, err := harness.Client(false).Get(m.base + "/stream?tag=" + tag)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "first\n", first)
	require.NoError(t, os.WriteFile(filepath.Join(m.appDir, "release-"+tag), nil, 0o644))
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "second\n", string(rest))
}

// flaskThroughServer runs the Flask example's checks through one mount.
func flaskThroughServer(t *testing.T, m mount, app *testApp) {
	t.Run("flask get", func(t *testing.T) {
		resp, body := harness.Get(t, m.base+"/")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, "Hello World!\n", string(body))
	})
	t.Run("flask upload 5 MiB", func(t *testing.T) {
		data := randomBytes(t, uploadSize)
		var form bytes.Buffer
		mw := multipart.NewWriter(&form)
		part, err := mw.CreateFormFile("file", "data.bin")
		require.NoError(t, err)
		_, err = part.Write(data)
		require.NoError(t, err)
		require.NoError(t, mw.Close())
		req := harness.MustRequest(t, http.MethodPost, m.base+"/upload", &form)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, body := harness.Do(t, harness.Client(false), req)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		want := fmt.Sprintf(`{"filename": "data.bin", "size": %d, "sha256": %q}`, uploadSize, sha256Hex(data))
		assert.JSONEq(t, want, string(body))
	})
	t.Run("flask streaming", func(t *testing.T) {
		resp, body := harness.Get(t, m.base+"/stream?lines=2000")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		require.Len(t, lines, 2000)
		assert.Equal(t, "line 1999", lines[1999])
	})
	t.Run("flask file_wrapper", func(t *testing.T) {
		resp, body := harness.Get(t, m.base+"/download")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		want, err := os.ReadFile(app.download)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(body))
	})
	t.Run("flask 500", func(t *testing.T) {
		resp, _ := harness.Get(t, m.base+"/boom")
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	})
	t.Run("flask unicode path", func(t *testing.T) {
		resp, body := harness.Get(t, m.base+"/greet/J%C3%BCrgen%20%E2%9C%93")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, "Hello, Jürgen ✓!", string(body))
	})
	t.Run("flask mount point", func(t *testing.T) {
		resp, body := harness.Get(t, m.base+"/where")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		want := fmt.Sprintf(`{"script_root": %q, "path": "/where", "url": %q}`, m.scriptName(), m.scriptName()+"/")
		assert.JSONEq(t, want, string(body))
	})
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sameEnvironPath is the request every mount sends for the comparison.
const sameEnvironPath = "/environ/same/caf%C3%A9?q=1&r=%2F"

// fetchEnviron asks the probe for its environ with a fixed set of headers.
func fetchEnviron(t *testing.T, m mount, path string) probeEnviron {
	t.Helper()
	req := harness.MustRequest(t, http.MethodGet, m.base+path, nil)
	req.Host = "example.test"
	req.Header.Set("X-Custom", "value")
	req.Header.Set("Accept", "application/json")
	resp, body := harness.Do(t, harness.Client(false), req)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	return decodeEnviron(t, body)
}

// environSet collects the probe's environ as each mount saw it.
type environSet struct {
	mu      sync.Mutex
	byMount map[string]probeEnviron
}

func (s *environSet) add(name string, env probeEnviron) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byMount[name] = env
}

// mayDiffer are the environ variables that legitimately differ between
// mounts, or that only some web servers send. Everything else the probe
// sees must be the same through every path.
var mayDiffer = map[string]string{
	"REMOTE_PORT":           "the client's ephemeral port",
	"SERVER_PORT":           "each mount listens on its own port",
	"SERVER_SOFTWARE":       "names the web server",
	"GATEWAY_INTERFACE":     "CGI/1.1 where the web server says so",
	"SERVER_ADDR":           "not every web server sends it",
	"REQUEST_SCHEME":        "not every web server sends it; wsgi.url_scheme is compared instead",
	"DOCUMENT_ROOT":         "the web server's own directory",
	"CONTEXT_DOCUMENT_ROOT": "Apache's, for the matched location",
	"CONTEXT_PREFIX":        "Apache's, for the matched location",
	"SCRIPT_FILENAME":       "the CGI script's path, or a web server's guess at one",
	"SERVER_SIGNATURE":      "Apache's footer for its own pages",
	"SERVER_ADMIN":          "Apache's contact address",
	"PATH":                  "the search path a web server gives CGI programs",
	"REDIRECT_STATUS":       "lighttpd's marker for PHP's cgi.force_redirect",
	// Headers an HTTP proxy adds about the original request.
	"HTTP_X_FORWARDED_FOR":    "added by an HTTP proxy",
	"HTTP_X_FORWARDED_PROTO":  "added by an HTTP proxy",
	"HTTP_X_FORWARDED_HOST":   "added by an HTTP proxy",
	"HTTP_X_FORWARDED_PREFIX": "added by nginx's proxy site (examples/nginx.conf)",
	"HTTP_X_HOST":             "added by lighttpd's mod_proxy",
	"HTTP_CONNECTION":         "lighttpd's mod_proxy says close to its backend",
	"SERVER_NAME":             "from the Host header, a server_name or the backend's own address",
	"PATH_TRANSLATED":         "PATH_INFO mapped onto the web server's document root",
	"SCGI":                    "the SCGI protocol's version marker",
}

// compare checks that every mount gave the probe the same environ for the
// same request, apart from mayDiffer and, for mounts reached over HTTP,
// the mount point itself.
func (s *environSet) compare(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.byMount, "no mount answered the environ request")
	keys := map[string]bool{}
	for _, env := range s.byMount {
		for key := range env.Vars {
			keys[key] = true
		}
	}
	names := make([]string, 0, len(s.byMount))
	for name := range s.byMount {
		names = append(names, name)
	}
	sort.Strings(names)
	for key := range keys {
		if _, ok := mayDiffer[key]; ok {
			continue
		}
		values := map[string][]string{}
		for _, name := range names {
			value, ok := comparable(name, key, s.byMount[name].Vars)
			if !ok {
				value = "(absent)"
			}
			values[value] = append(values[value], name)
		}
		assert.Len(t, values, 1, "%s differs between mounts: %q", key, values)
	}
	for _, name := range names {
		assert.Equal(t, "http", s.byMount[name].WSGI.URLScheme, name)
	}
}

// comparable returns vars[key] as it would read had the mount kept /app
// (over HTTP the web server strips it; examples/*.conf say why). An empty
// CONTENT_TYPE and a CONTENT_LENGTH of 0 read as absent: PEP 3333 lets a
// server send either for a request without a body.
func comparable(mountName, key string, vars map[string]string) (string, bool) {
	value, ok := vars[key]
	if (key == "CONTENT_TYPE" && value == "") || (key == "CONTENT_LENGTH" && value == "0") {
		return "", false
	}
	if !strings.HasSuffix(mountName, "/http") {
		return value, ok
	}
	switch key {
	case "SCRIPT_NAME":
		return "/app", true
	case "REQUEST_URI":
		return "/app" + value, ok
	}
	return value, ok
}

// launchUWSGIOnly starts gowsgi with args alone (no HTTP socket added) and
// waits for the banner naming its uwsgi socket.
func launchUWSGIOnly(t *testing.T, dir string, args ...string) *harness.Instance {
	t.Helper()
	inst := &harness.Instance{Dir: dir, Output: &harness.LockedBuffer{}, Exited: make(chan struct{})}
	inst.Cmd = exec.Command(harness.GowsgiBin, args...)
	inst.Cmd.Dir = dir
	inst.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inst.Cmd.Stdout, inst.Cmd.Stderr = inst.Output, inst.Output
	require.NoError(t, inst.Cmd.Start())
	go func() {
		inst.Err = inst.Cmd.Wait()
		close(inst.Exited)
	}()
	t.Cleanup(func() { inst.Stop(t) })
	harness.Eventually(t, harness.StartTimeout, func() bool {
		select {
		case <-inst.Exited:
			require.FailNow(t, "gowsgi exited at start", "%v\n%s", inst.Err, inst.Stderr())
		default:
		}
		return strings.Contains(inst.Stderr(), "uwsgi://")
	}, "no banner from gowsgi:\n%s", inst.Stderr())
	return inst
}

func TestDjangoINIBehindNginx(t *testing.T) {
	nginx := harness.WebServerKinds[0]
	require.Equal(t, "nginx", nginx.Name)
	// The deployment's folder: the ini and the app as shipped, so the
	// socket (%d…) is created there, not in the repository.
	appDir := harness.SharedDir(t, "", "gowsgi-django-")
	ini := harness.CopyExample(t, appDir, "uwsgi.ini")
	harness.CopyExample(t, appDir, "django_app.py")
	site, err := os.ReadFile(filepath.Join(harness.ExamplesDir(t), "nginx-uwsgi.conf"))
	require.NoError(t, err)
	addr := harness.FreeAddr(t)
	rendered := strings.NewReplacer("/srv/app/", appDir+"/", "127.0.0.1:8080", addr).Replace(string(site))

	inst := launchUWSGIOnly(t, t.TempDir(), ini)
	assert.Contains(t, inst.Stderr(), "uwsgi://"+filepath.Join(appDir, "django_app.sock"))
	assert.Empty(t, warningLines(inst.Stderr()))
	harness.StartWebServerSite(t, nginx, rendered, []string{addr})

	base := "http://" + addr
	c := harness.Client(true)
	tests := []struct {
		method, path, form string
		wantStatus         int
		wantBody           string
	}{
		{method: "GET", path: "/", wantStatus: 200, wantBody: "Hello World!\n"},
		{method: "GET", path: "/greet/" + url.PathEscape("Zoë"), wantStatus: 200, wantBody: "Hello, Zoë!"},
		{method: "GET", path: "/search?q=gowsgi&page=2", wantStatus: 200, wantBody: `{"q": "gowsgi", "page": "2"}`},
		{method: "POST", path: "/form", form: "name=ann&message=hi+there", wantStatus: 200, wantBody: `{"name": "ann", "message": "hi there"}`},
		{method: "GET", path: "/stream?lines=3", wantStatus: 200, wantBody: "line 0\nline 1\nline 2\n"},
		{method: "GET", path: "/redirect", wantStatus: 302},
		{method: "GET", path: "/no-such-page", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req := harness.MustRequest(t, tt.method, base+tt.path, strings.NewReader(tt.form))
			if tt.form != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, body := harness.Do(t, c, req)
			assert.Equal(t, tt.wantStatus, resp.StatusCode, "%s", body)
			if tt.wantBody != "" {
				assert.Equal(t, tt.wantBody, string(body))
			}
			if tt.wantStatus == 302 {
				assert.Equal(t, "/greet/world", resp.Header.Get("Location"))
			}
		})
	}
}
