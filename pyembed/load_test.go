// Tests of importing the application: each case runs Init in a child
// process (the test binary again), since Python starts once per process.
package pyembed

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runLoadChild runs Init with spec and prints "ok <version>" or the load
// error's summary.
func runLoadChild(spec string) int {
	var s AppSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Println("bad spec:", err)
		return 1
	}
	if err := Init(s); err != nil {
		if le, ok := err.(*LoadError); ok {
			fmt.Println(le.Summary)
		} else {
			fmt.Println("not a LoadError:", err)
		}
		return 0
	}
	fmt.Println("ok", Version())
	return 0
}

func TestLoad(t *testing.T) {
	testdata, err := filepath.Abs("testdata")
	require.NoError(t, err)
	missing := filepath.Join(testdata, "missing.py")
	tests := []struct {
		name      string
		spec      AppSpec
		want      string
		traceback bool
	}{
		{"module", AppSpec{Module: "cases_app"}, "ok", false},
		{"module:callable", AppSpec{Module: "cases_app:application"}, "ok", false},
		{"wsgi file", AppSpec{WSGIFile: filepath.Join(testdata, "hello_file.py")}, "ok", false},
		{"no app", AppSpec{}, "no application given (use --module, --wsgi-file or --mount)", false},
		{"missing module", AppSpec{Module: "nope"}, `cannot import module "nope": ModuleNotFoundError: No module named 'nope'`, true},
		{"import raises", AppSpec{Module: "broken_app"}, `cannot import module "broken_app": ZeroDivisionError: division by zero`, true},
		{"missing callable", AppSpec{Module: "cases_app:app"}, `module "cases_app" has no callable "app" (use --callable or module:callable)`, false},
		{"--callable", AppSpec{Module: "cases_app", Callable: "app"}, `module "cases_app" has no callable "app" (use --callable or module:callable)`, false},
		{"not callable", AppSpec{Module: "cases_app", Callable: "closed"}, `"closed" in module "cases_app" is not callable`, false},
		// uWSGI's factory form: "name()" calls name for the app.
		{"factory", AppSpec{Module: "cases_app:make_app()"}, "ok", false},
		{"factory through --callable", AppSpec{Module: "cases_app", Callable: "make_app()"}, "ok", false},
		{"missing factory", AppSpec{Module: "cases_app:nope()"}, `module "cases_app" has no callable "nope" (use --callable or module:callable)`, false},
		{"factory raises", AppSpec{Module: "cases_app:broken_factory()"}, `calling broken_factory() in module "cases_app" failed: RuntimeError: no settings`, true},
		// A file that is not there is one line, without importlib's
		// traceback; one that is there and raises keeps its traceback.
		{"missing file", AppSpec{WSGIFile: missing}, fmt.Sprintf(`--wsgi-file %s: there is no file %s; pass the path of the file that defines the app`, missing, missing), false},
		{"folder for a file", AppSpec{WSGIFile: testdata}, fmt.Sprintf(`--wsgi-file %s: %s is a folder; pass the path of the file in it that defines the app`, testdata, testdata), false},
		{"missing mount file", AppSpec{Mounts: []Mount{{Point: "/x", App: missing}}}, fmt.Sprintf(`--mount /x=%s: there is no file %s; pass the path of the file that defines the app`, missing, missing), false},
		{"file raises", AppSpec{WSGIFile: filepath.Join(testdata, "broken_app.py")}, fmt.Sprintf(`cannot import file "%s": ZeroDivisionError: division by zero`, filepath.Join(testdata, "broken_app.py")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.spec.WSGIFile == "" {
				// A --wsgi-file's own directory must be importable without it.
				tt.spec.PythonPath = []string{testdata}
			}
			spec, err := json.Marshal(tt.spec)
			require.NoError(t, err)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), loadSpecEnv+"="+string(spec))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, stderr.String())
			got := strings.TrimSpace(string(out))
			if tt.want == "ok" {
				assert.Regexp(t, regexp.MustCompile(`^ok 3\.\d+\.\d+`), got)
			} else {
				assert.Equal(t, tt.want, got)
			}
			assert.Equal(t, tt.traceback, strings.Contains(stderr.String(), "Traceback (most recent call last)"), stderr.String())
		})
	}
}

func TestInitOnlyOnce(t *testing.T) {
	assert.ErrorIs(t, Init(AppSpec{Module: "cases_app"}), errInit)
}

func TestSplitModule(t *testing.T) {
	tests := []struct{ module, callable, wantModule, wantCallable string }{
		{"app", "", "app", "application"},
		{"pkg.app", "wsgi", "pkg.app", "wsgi"},
		{"pkg.app:api", "", "pkg.app", "api"},
		{"pkg.app:api", "wsgi", "pkg.app", "api"},
		{"pkg.app:", "", "pkg.app", "application"},
	}
	for _, tt := range tests {
		m, c := splitModule(tt.module, tt.callable)
		assert.Equal(t, tt.wantModule, m, tt.module)
		assert.Equal(t, tt.wantCallable, c, tt.module)
	}
}
