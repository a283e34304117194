// Several apps in one interpreter (uWSGI's --mount) and the virtualenv the
// interpreter runs in (uWSGI's --home): what Go knows of them before
// Python starts.
package pyembed

/*
#include "gw.h"
*/
import "C"

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Mount is an app served under a mount point, as uWSGI's
// "--mount MOUNTPOINT=APP" names it. Neither field may hold a newline or
// NUL, nor Point an "=".
type Mount struct {
	// Point is the mount point, starting with "/" and without a trailing
	// slash, "/blog"; the empty Point is the root, which serves every
	// request no other mount takes.
	Point string
	// App is "pkg.mod[:callable]", or a file path ending in .py or .wsgi
	// loaded as --wsgi-file loads one; the callable is AppSpec.Callable
	// when not named.
	App string
}

// mountLines encodes mounts for the C side: one "POINT=APP" line each.
func mountLines(mounts []Mount) string {
	var b strings.Builder
	for _, m := range mounts {
		b.WriteString(m.Point + "=" + m.App + "\n")
	}
	return b.String()
}

// BuiltVersion returns the major.minor version of the Python gowsgi was
// built against, such as "3.11"; it needs no interpreter running.
func BuiltVersion() string {
	return fmt.Sprintf("%d.%d", int(C.PY_MAJOR_VERSION), int(C.PY_MINOR_VERSION))
}

// HomeVersion returns the major.minor version of the Python that dir, a
// --home directory, belongs to: the "version" (or "version_info") that
// pyvenv.cfg records for a virtualenv made by "python3 -m venv" or
// virtualenv 20+, else, for an older virtualenv or an installation prefix,
// BuiltVersion when dir/lib/pythonX.Y exists for it, else the version of
// any lib/python3.* there. ok is false when dir is neither.
func HomeVersion(dir string) (version string, ok bool) {
	if v, found := venvVersion(filepath.Join(dir, "pyvenv.cfg")); found {
		return v, v != ""
	}
	if fi, err := os.Stat(filepath.Join(dir, "lib", "python"+BuiltVersion())); err == nil && fi.IsDir() {
		return BuiltVersion(), true
	}
	libs, _ := filepath.Glob(filepath.Join(dir, "lib", "python3.*"))
	if len(libs) == 0 {
		return "", false
	}
	return strings.TrimPrefix(filepath.Base(libs[0]), "python"), true
}

// venvVersion reads the major.minor version from a pyvenv.cfg file; found
// is false when there is no such file.
func venvVersion(path string) (version string, found bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if ok && (key == "version" || key == "version_info") {
			parts := strings.SplitN(strings.TrimSpace(value), ".", 3)
			if len(parts) >= 2 {
				return parts[0] + "." + parts[1], true
			}
		}
	}
	return "", true
}
