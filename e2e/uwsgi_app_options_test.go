// uWSGI options that change how the app is loaded and what the process
// makes, through the real binary and Debian's uWSGI with the same ini
// file: paste (PasteDeploy) with wsgi-disable-file-wrapper
// (testdata/ini/paste.ini), and umask (testdata/ini/umask.ini).
package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

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
