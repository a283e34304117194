// uWSGI options that change how the app is loaded and what the process
// makes, through the real binary and Debian's uWSGI with the same ini
// file: paste (PasteDeploy) with wsgi-disable-file-wrapper
// (testdata/ini/paste.ini), umask (testdata/ini/umask.ini), the .gz
// siblings of static files (testdata/ini/static_gzip.ini), their Expires
// headers (static_expires.ini) and set/include (set.ini).
package e2e

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

// pasteAnswer is what testdata/ini/paste_app.py answers.
type pasteAnswer struct {
	App         string `json:"app"`
	Greeting    string `json:"greeting"`
	FileWrapper bool   `json:"file_wrapper"`
}

// wantPaste is paste.ini's app, loaded by PasteDeploy with the setting
// from [app:main], with no wsgi.file_wrapper.
var wantPaste = pasteAnswer{App: "paste", Greeting: "hello from paste"}

func TestPasteINI(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "paste.ini"))
	addr := freeAddr(t)
	inst := harness.LaunchConfigured(t, t.TempDir(), []string{"ADDR=" + addr}, ini)
	resp, body := harness.Get(t, "http://"+addr+"/")
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	var got pasteAnswer
	require.NoError(t, json.Unmarshal(body, &got), "%s", body)
	assert.Equal(t, wantPaste, got)
	assert.Contains(t, inst.Stderr(), "config:"+ini+" · 1 worker")
	assert.NotContains(t, inst.Stderr(), "warning")
}

func TestPasteINIUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	ini := harness.TestdataPath(t, filepath.Join("ini", "paste.ini"))
	addr := freeAddr(t)
	t.Setenv("ADDR", addr)
	body := runUWSGI(t, bin, t.TempDir(), addr, "/", "--plugin", "python3,http", "--ini", ini)
	var got pasteAnswer
	require.NoError(t, json.Unmarshal(body, &got), "%s", body)
	assert.Equal(t, wantPaste, got)
}

// socketMode is the permission bits of the socket file at path, once it
// is there.
func socketMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	var info fs.FileInfo
	harness.Eventually(t, harness.StartTimeout, func() bool {
		var err error
		info, err = os.Stat(path)
		return err == nil
	}, "no socket file %s", path)
	return info.Mode().Perm()
}

func TestUmaskINI(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "umask.ini"))
	sock := filepath.Join(t.TempDir(), "app.sock")
	harness.LaunchConfigured(t, t.TempDir(), []string{"SOCK=" + sock}, ini)
	assert.Equal(t, fs.FileMode(0o750), socketMode(t, sock))
}

func TestUmaskINIUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	ini := harness.TestdataPath(t, filepath.Join("ini", "umask.ini"))
	sock := filepath.Join(t.TempDir(), "app.sock")
	t.Setenv("SOCK", sock)
	startUWSGISocket(t, bin, sock, "--plugin", "python3,http", "--ini", ini)
	assert.Equal(t, fs.FileMode(0o750), socketMode(t, sock))
}

// staticAnswer is the part of a static file's answer compared.
type staticAnswer struct {
	Encoding, Type, Body string
}

// writeStaticGzipTree makes folders a and b, each with style.css and a
// style.css.gz sibling whose bytes differ, and returns their parent.
func writeStaticGzipTree(t *testing.T) string {
	dir := t.TempDir()
	for _, sub := range []string{"a", "b"} {
		harness.WriteFile(t, filepath.Join(dir, sub), "style.css", "body{}")
		harness.WriteFile(t, filepath.Join(dir, sub), "style.css.gz", "gzipped "+sub)
	}
	return dir
}

// getStatic GETs url, accepting gzip when gzip is set.
func getStatic(t *testing.T, url string, gzip bool) staticAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip, deflate")
	}
	resp, err := harness.Client(true).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	// The media type only: gowsgi names the charset of text types, uWSGI
	// does not.
	mediaType, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return staticAnswer{Encoding: resp.Header.Get("Content-Encoding"), Type: mediaType, Body: string(body)}
}

// assertStaticGzip checks static_gzip.ini's answers at addr.
func assertStaticGzip(t *testing.T, addr string) {
	t.Helper()
	assert.Equal(t, staticAnswer{"gzip", "text/css", "gzipped a"}, getStatic(t, "http://"+addr+"/a/style.css", true))
	assert.Equal(t, staticAnswer{"", "text/css", "body{}"}, getStatic(t, "http://"+addr+"/a/style.css", false))
	assert.Equal(t, staticAnswer{"", "text/css", "body{}"}, getStatic(t, "http://"+addr+"/b/style.css", true))
}

func TestStaticGzipINI(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "static_gzip.ini"))
	addr := freeAddr(t)
	harness.LaunchConfigured(t, t.TempDir(), []string{"ADDR=" + addr, "STATIC=" + writeStaticGzipTree(t)}, ini)
	assertStaticGzip(t, addr)
}

func TestStaticGzipINIUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	ini := harness.TestdataPath(t, filepath.Join("ini", "static_gzip.ini"))
	addr := freeAddr(t)
	t.Setenv("ADDR", addr)
	t.Setenv("STATIC", writeStaticGzipTree(t))
	startUWSGI(t, bin, addr, "--plugin", "python3,http", "--ini", ini)
	assertStaticGzip(t, addr)
}

// TestStaticGzipAll: every mapped file's .gz sibling goes out gzipped.
func TestStaticGzipAll(t *testing.T) {
	dir := writeStaticGzipTree(t)
	inst := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--static-map", "/b="+filepath.Join(dir, "b"), "--static-gzip-all")
	assert.Equal(t, staticAnswer{"gzip", "text/css", "gzipped b"}, getStatic(t, inst.URL+"/b/style.css", true))
}

// TestHTTPAutoChunked: uWSGI's http-auto-chunked is what gowsgi always
// does, so it is accepted without a word and a body of unknown length
// goes out chunked.
func TestHTTPAutoChunked(t *testing.T) {
	inst := harness.Start(t, "--wsgi-file", harness.TestdataPath(t, "probe.py"), "--http-auto-chunked")
	resp, body := harness.Get(t, inst.URL+"/big?size=100000")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
	assert.Len(t, body, 100000)
	assert.NotContains(t, inst.Stderr(), "warning")
}

// TestSetINI: set-placeholder, set and include (testdata/ini/set.ini)
// mean what they mean under uWSGI: the module, 2 workers, 2 threads.
func TestSetINI(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "set.ini"))
	want := iniAnswer{App: "module", Numproc: 2, Cores: 2}
	addr := freeAddr(t)
	inst := harness.LaunchConfigured(t, t.TempDir(), []string{"ADDR=" + addr}, ini)
	assert.Equal(t, want, getINIAnswer(t, "http://"+addr+"/"), "gowsgi; stderr:\n%s", inst.Stderr())
	assert.NotContains(t, inst.Stderr(), "warning")
	inst.Stop(t)

	bin := requireUWSGI(t)
	addr = freeAddr(t)
	t.Setenv("ADDR", addr)
	body := runUWSGI(t, bin, t.TempDir(), addr, "/", "--plugin", "python3,http", "--ini", ini)
	var got iniAnswer
	require.NoError(t, json.Unmarshal(body, &got), "%s", body)
	assert.Equal(t, want, got, "uWSGI")
}

// writeStaticExpiresTree makes a folder a with style.css, app.js, a
// logo.png last modified at 2020-01-01 00:00 UTC and other.txt, and
// returns its parent.
func writeStaticExpiresTree(t *testing.T) string {
	dir := t.TempDir()
	for _, name := range []string{"style.css", "app.js", "logo.png", "other.txt"} {
		harness.WriteFile(t, filepath.Join(dir, "a"), name, name)
	}
	stamp := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "a", "logo.png"), stamp, stamp))
	return dir
}

// expiresOf returns how far past now the Expires header of url is, and
// the header.
func expiresOf(t *testing.T, url string) (time.Duration, string) {
	t.Helper()
	resp, body := harness.Get(t, url)
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	header := resp.Header.Get("Expires")
	if header == "" {
		return 0, ""
	}
	when, err := http.ParseTime(header)
	require.NoError(t, err, header)
	return time.Until(when), header
}

// assertStaticExpires checks static_expires.ini's answers at addr.
func assertStaticExpires(t *testing.T, addr string) {
	t.Helper()
	in, _ := expiresOf(t, "http://"+addr+"/a/style.css")
	assert.InDelta(t, time.Hour.Seconds(), in.Seconds(), 10, "by type")
	in, _ = expiresOf(t, "http://"+addr+"/a/app.js?v=1")
	assert.InDelta(t, time.Minute.Seconds(), in.Seconds(), 10, "by REQUEST_URI")
	_, header := expiresOf(t, "http://"+addr+"/a/logo.png")
	assert.Equal(t, "Thu, 02 Jan 2020 00:00:00 GMT", header, "from the modification time")
	_, header = expiresOf(t, "http://"+addr+"/a/other.txt")
	assert.Empty(t, header)
}

func TestStaticExpiresINI(t *testing.T) {
	ini := harness.TestdataPath(t, filepath.Join("ini", "static_expires.ini"))
	addr := freeAddr(t)
	harness.LaunchConfigured(t, t.TempDir(), []string{"ADDR=" + addr, "STATIC=" + writeStaticExpiresTree(t)}, ini)
	assertStaticExpires(t, addr)
}

func TestStaticExpiresINIUnderUWSGI(t *testing.T) {
	bin := requireUWSGI(t)
	ini := harness.TestdataPath(t, filepath.Join("ini", "static_expires.ini"))
	addr := freeAddr(t)
	t.Setenv("ADDR", addr)
	t.Setenv("STATIC", writeStaticExpiresTree(t))
	startUWSGI(t, bin, addr, "--plugin", "python3,http", "--ini", ini)
	assertStaticExpires(t, addr)
}
