// --py-autoreload through the real binary: editing any module the app
// imported reloads the workers, and the new code is served.
package main_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const autoreloadApp = `"""Answers the version its helper module holds.

Routes:
  /  the helper's VERSION
"""
import autoreload_helper


def application(environ, start_response):
    body = autoreload_helper.VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

func TestPyAutoreloadServesEditedModules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	helper := filepath.Join(dir, "autoreload_helper.py")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "autoreload_app.py"), []byte(autoreloadApp), 0o644))
	require.NoError(t, os.WriteFile(helper, []byte("VERSION = 'first'\n"), 0o644))
	app := start(t, "--pythonpath", dir, "--module", "autoreload_app", "--py-autoreload", "1", "-p", "2")

	served := func() string {
		resp, err := client(false).Get(app.URL + "/")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return ""
		}
		return string(body)
	}
	require.Equal(t, "first", served())

	// The master takes its baseline from the zygote's module list within a
	// poll; only then can an edit be seen as one.
	list := "gowsgi-modules-" + strconv.Itoa(app.cmd.Process.Pid)
	eventually(t, 10*time.Second, func() bool {
		data, err := os.ReadFile(filepath.Join(os.TempDir(), list))
		return err == nil && strings.Contains(string(data), helper)
	}, "the zygote never listed the helper module")
	eventually(t, 20*time.Second, func() bool {
		// Rewritten on every poll until seen, so a baseline taken after the
		// first write still sees a change.
		require.NoError(t, os.WriteFile(helper, []byte("VERSION = 'second'\n"), 0o644))
		now := time.Now()
		require.NoError(t, os.Chtimes(helper, now, now))
		return served() == "second"
	}, "the edited module was never served; stderr:\n%s", app.Stderr())
	assert.Contains(t, app.Stderr(), "reload requested", "the reload is logged")
}
