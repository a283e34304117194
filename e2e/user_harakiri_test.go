package e2e

// The app's own harakiri (issue 12, item 3): uwsgi.set_user_harakiri and
// uwsgidecorators.harakiri, which the master enforces as --harakiri: the
// worker is killed and the request answered 504.

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

func TestUserHarakiri(t *testing.T) {
	dir := signalsDir(t, "user_harakiri.py")
	// No --harakiri: the app's deadline needs none.
	inst := harness.StartIn(t, dir, "--wsgi-file", "user_harakiri.py", "--master", "-p", "1")
	tests := []struct {
		name   string
		before string // a request served first, on the same worker
		path   string
		status int
	}{
		{name: "past its deadline", path: "/sleep?ms=30000&limit=1", status: http.StatusGatewayTimeout},
		{name: "within its deadline", path: "/sleep?ms=200&limit=5", status: http.StatusOK},
		{name: "deadline cleared", path: "/cleared?ms=1500", status: http.StatusOK},
		{name: "decorated call past its deadline", path: "/decorated?ms=30000", status: http.StatusGatewayTimeout},
		{name: "decorated call within it, then a slow request", before: "/decorated?ms=10", path: "/plain?ms=1500",
			status: http.StatusOK},
		{name: "a deadline ends with its request", before: "/set?limit=1", path: "/plain?ms=1500", status: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, pid := harness.GetText(t, inst.URL+"/pid")
			if tc.before != "" {
				status, body := harness.GetText(t, inst.URL+tc.before)
				require.Equal(t, http.StatusOK, status, body)
			}
			status, body := harness.GetText(t, inst.URL+tc.path)
			assert.Equal(t, tc.status, status, body)
			_, after := harness.GetText(t, inst.URL+"/pid")
			assert.Equal(t, tc.status == http.StatusGatewayTimeout, after != pid, "the worker was replaced")
		})
	}
	inst.AwaitLogged(t, "harakiri: the app's deadline (uwsgi.set_user_harakiri) passed, killing its worker")
}
