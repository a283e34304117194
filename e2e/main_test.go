// TestMain hands the run to the harness, which builds the binary once (or
// takes GOWSGI_BIN) before any test starts it.
package e2e

import (
	"os"
	"testing"

	"github.com/gowsgi/gowsgi/e2e/internal/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Run(m))
}
