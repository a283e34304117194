// Real web servers for the end-to-end tests: nginx, lighttpd and Apache, each
// run as a foreground process on loopback ports with a configuration made
// of a template from e2e/testdata/webservers and the sites of examples/*.conf,
// rewritten to the test's own ports, sockets and directories.
package harness

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"
)

// webServerStartTimeout bounds how long a web server takes to listen.
const webServerStartTimeout = 30 * time.Second

// examplePorts are the ports examples/*.conf give each way of reaching
// gowsgi; every example uses the same one for the same way.
var examplePorts = map[string]string{
	"uwsgi":   "8081",
	"scgi":    "8082",
	"fastcgi": "8083",
	"http":    "8084",
	"cgi":     "8085",
}

// WebServerKind is one web server product.
type WebServerKind struct {
	Name    string
	binary  string // looked up on PATH and in /usr/sbin
	Example string // the sites, in examples/
	// command returns the arguments that run it in the foreground.
	command func(dir, conf string) []string
	// ways are the ways it reaches gowsgi, keys of examplePorts.
	Ways []string
}

var WebServerKinds = []WebServerKind{
	{
		Name: "nginx", binary: "nginx", Example: "nginx.conf",
		command: func(dir, conf string) []string {
			// -e: nginx opens its error log before reading the configuration.
			return []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf}
		},
		Ways: []string{"uwsgi", "scgi", "fastcgi", "http"},
	},
	{
		Name: "lighttpd", binary: "lighttpd", Example: "lighttpd.conf",
		command: func(dir, conf string) []string { return []string{"-D", "-f", conf} },
		Ways:    []string{"uwsgi", "scgi", "fastcgi", "http", "cgi"},
	},
	{
		Name: "apache", binary: "apache2", Example: "apache.conf",
		command: func(dir, conf string) []string { return []string{"-d", dir, "-f", conf, "-DFOREGROUND"} },
		Ways:    []string{"uwsgi", "scgi", "fastcgi", "cgi"},
	},
}

// findBinary returns the web server's path, or "" when it is not installed.
func (k WebServerKind) findBinary() string {
	if p, err := exec.LookPath(k.binary); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", k.binary)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// Backend is what a web server's sites point at: one gowsgi master serving
// an app directory (and the same app run as CGI from it).
type Backend struct {
	AppDir   string // holds app.wsgi, the CGI script and the app's working directory
	SockDir  string // the unix sockets
	HTTPAddr string // --http-socket
	FCGIAddr string // --fastcgi-socket
	CGIBin   string // the gowsgi binary web servers may execute
}

// Site is one rendering of an example's sites for one backend, with the
// port each way got.
type Site struct {
	Backend *Backend
	Ports   map[string]string // way -> host:port
}

// Render rewrites the example's fixed ports, paths and addresses to the
// site's own.
func (s Site) Render(example string) string {
	b := s.Backend
	pairs := []string{
		"/run/gowsgi/", b.SockDir + "/",
		"/srv/app", b.AppDir,
		"/usr/local/bin/gowsgi", b.CGIBin,
		"127.0.0.1:9000", b.FCGIAddr,
		`"port" => 9000`, `"port" => ` + portOf(b.FCGIAddr),
		"127.0.0.1:8000", b.HTTPAddr,
		`"port" => 8000`, `"port" => ` + portOf(b.HTTPAddr),
	}
	for way, port := range examplePorts {
		if addr, ok := s.Ports[way]; ok {
			pairs = append(pairs, "127.0.0.1:"+port, addr)
		}
	}
	return strings.NewReplacer(pairs...).Replace(example)
}

func portOf(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	return port
}

// FreeAddr returns a loopback address with a port nobody listens on now.
// The port is released before the web server binds it; nothing else on
// the machine binds loopback ports in that window, and a clash fails the
// start loudly rather than silently.
func FreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// SharedDir makes a directory the web servers' unprivileged users can
// enter (t.TempDir is private to root), removed when the test ends.
func SharedDir(t *testing.T, parent, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp(parent, pattern)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// WebServer is one running web server.
type WebServer struct {
	kind   WebServerKind
	dir    string
	Cmd    *exec.Cmd
	output *LockedBuffer
	exited chan struct{}
}

// configData fills a testdata/webservers template.
type configData struct {
	Dir  string // the server's own directory: pid, logs, temporary files
	Port int    // a port for the server's main listener, which serves nothing
	Site string // the rendered example to include
}

// StartWebServer runs kind with the example's sites rendered for s and
// waits until every port listens. It is stopped when the test ends.
func StartWebServer(t *testing.T, kind WebServerKind, s Site) *WebServer {
	t.Helper()
	example, err := os.ReadFile(filepath.Join(ExamplesDir(t), kind.Example))
	require.NoError(t, err)
	var addrs []string
	for _, addr := range s.Ports {
		addrs = append(addrs, addr)
	}
	return StartWebServerSite(t, kind, s.Render(string(example)), addrs)
}

// StartWebServerSite runs kind with siteConf as its sites and waits until
// each of addrs listens. It is stopped when the test ends.
func StartWebServerSite(t *testing.T, kind WebServerKind, siteConf string, addrs []string) *WebServer {
	t.Helper()
	bin := kind.findBinary()
	if bin == "" {
		t.Skipf("%s is not installed (make deps installs it)", kind.binary)
	}
	// Apache's children (www-data) look for .htaccess files on the way.
	dir := SharedDir(t, "", "gowsgi-"+kind.Name+"-")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "htdocs"), 0o755))
	data := configData{Dir: dir}
	mainAddr := FreeAddr(t)
	var err error
	data.Port, err = strconv.Atoi(portOf(mainAddr))
	require.NoError(t, err)
	data.Site = filepath.Join(dir, "site.conf")
	require.NoError(t, os.WriteFile(data.Site, []byte(siteConf), 0o644))
	addrs = append([]string{mainAddr}, addrs...)
	conf := renderTemplate(t, kind.Name+".conf", dir, data)

	ws := &WebServer{kind: kind, dir: dir, output: &LockedBuffer{}, exited: make(chan struct{})}
	ws.Cmd = exec.Command(bin, kind.command(dir, conf)...)
	ws.Cmd.Dir = dir
	ws.Cmd.Stdout, ws.Cmd.Stderr = ws.output, ws.output
	ws.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, ws.Cmd.Start(), "starting %s", bin)
	go func() {
		_ = ws.Cmd.Wait()
		close(ws.exited)
	}()
	t.Cleanup(func() { ws.Stop(t) })
	for _, addr := range addrs {
		ws.waitListening(t, addr)
	}
	return ws
}

// renderTemplate fills testdata/webservers/name into dir and returns the
// file's path.
func renderTemplate(t *testing.T, name, dir string, data configData) string {
	t.Helper()
	tmpl, err := template.ParseFiles(TestdataPath(t, filepath.Join("webservers", name)))
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, tmpl.Execute(f, data))
	return path
}

// waitListening polls addr until it accepts a connection.
func (ws *WebServer) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(webServerStartTimeout)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return
		}
		select {
		case <-ws.exited:
			require.FailNow(t, ws.kind.Name+" exited at start", "%s", ws.Logs())
		case <-time.After(PollInterval):
		}
	}
	require.FailNow(t, ws.kind.Name+" does not listen", "on %s after %s\n%s", addr, webServerStartTimeout, ws.Logs())
}

// Logs returns the server's output and error log, for failure messages.
func (ws *WebServer) Logs() string {
	errorLog, _ := os.ReadFile(filepath.Join(ws.dir, "error.log"))
	return fmt.Sprintf("%s output:\n%s\n%s error.log:\n%s", ws.kind.Name, ws.output.String(), ws.kind.Name, errorLog)
}

// Stop sends SIGTERM, which all three take as "stop now", then SIGKILL to
// the group if it lingers; the logs are shown when the test failed.
func (ws *WebServer) Stop(t *testing.T) {
	if t.Failed() {
		t.Log(ws.Logs())
	}
	_ = ws.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ws.exited:
	case <-time.After(StopTimeout):
		_ = syscall.Kill(-ws.Cmd.Process.Pid, syscall.SIGKILL)
		<-ws.exited
		t.Errorf("%s ignored SIGTERM for %s", ws.kind.Name, StopTimeout)
	}
}

// CopyExecutable copies the gowsgi binary where a web server's user can run
// it as a CGI program.
func CopyExecutable(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.Open(GowsgiBin)
	require.NoError(t, err)
	defer src.Close()
	path := filepath.Join(dir, "gowsgi")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	return path
}
