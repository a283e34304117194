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

	"github.com/stretchr/testify/require"
)

const autoreloadApp = `"""Answers the version a helper module holds.

Routes:
  /      autoreload_helper.VERSION, imported with the app
  /lazy  autoreload_lazy.VERSION, imported by the first request for it
"""
import importlib

import autoreload_helper


def application(environ, start_response):
    if environ["PATH_INFO"] == "/lazy":
        body = importlib.import_module("autoreload_lazy").VERSION.encode()
    else:
        body = autoreload_helper.VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

func TestPyAutoreloadServesEditedModules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mount  bool   // only --mount apps
		route  string // which module the edit is to
		module string
	}{
		{"imported with the app", false, "/", "autoreload_helper"},
		{"imported while serving", false, "/lazy", "autoreload_lazy"},
		{"mount, imported with the app", true, "/", "autoreload_helper"},
		{"mount, imported while serving", true, "/lazy", "autoreload_lazy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			edited := filepath.Join(dir, tc.module+".py")
			require.NoError(t, os.WriteFile(filepath.Join(dir, "autoreload_app.py"), []byte(autoreloadApp), 0o644))
			for _, m := range []string{"autoreload_helper", "autoreload_lazy"} {
				require.NoError(t, os.WriteFile(filepath.Join(dir, m+".py"), []byte("VERSION = 'first'\n"), 0o644))
			}
			args := []string{"--pythonpath", dir, "--module", "autoreload_app"}
			if tc.mount {
				args = []string{"--pythonpath", dir, "--mount", "/=" + filepath.Join(dir, "autoreload_app.py")}
			}
			// One worker: a second one would import the lazy module afresh,
			// edited, and serve it with no reload.
			app := start(t, append(args, "--py-autoreload", "1", "-p", "1")...)

			served := func() string {
				resp, err := client(false).Get(app.URL + tc.route)
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

			// The master takes its baseline from the module list within a
			// poll; only then can an edit be seen as one.
			list := "gowsgi-modules-" + strconv.Itoa(app.cmd.Process.Pid)
			eventually(t, 10*time.Second, func() bool {
				data, err := os.ReadFile(filepath.Join(os.TempDir(), list))
				return err == nil && strings.Contains(string(data), edited)
			}, "the module was never listed")
			eventually(t, 20*time.Second, func() bool {
				// Rewritten on every poll until seen, so a baseline taken
				// after the first write still sees a change.
				require.NoError(t, os.WriteFile(edited, []byte("VERSION = 'second'\n"), 0o644))
				now := time.Now()
				require.NoError(t, os.Chtimes(edited, now, now))
				return served() == "second"
			}, "the edited module was never served; stderr:\n%s", app.Stderr())
			app.awaitLogged(t, "reload requested")
		})
	}
}
