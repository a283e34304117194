// The options that say which apps to run and in which virtualenv: uWSGI's
// --mount (several apps, each under its own SCRIPT_NAME) and --home.
package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gowsgi/gowsgi/pyembed"
)

// checkApps refuses mounts gowsgi cannot tell apart and a --home of another
// Python than the one gowsgi embeds, which could not import its
// site-packages (compiled extensions are built for one version).
func (o *options) checkApps() error {
	seen := make(map[string]string)
	if o.Module != "" || o.WSGIFile != "" || o.Paste != "" {
		seen[""] = "the --module, --wsgi-file or --paste app"
	}
	for _, spec := range o.Mounts {
		m, err := parseMount(spec)
		if err != nil {
			return err
		}
		if other, taken := seen[m.Point]; taken {
			return fmt.Errorf("--mount %s: %s is mounted there already", spec, other)
		}
		seen[m.Point] = m.App
	}
	o.Home = o.homeDir()
	return checkHome(o.Home)
}

// homeDir returns --home as an absolute path. uWSGI starts Python after
// --chdir, so a relative --home starts from the --chdir directory.
func (o *options) homeDir() string {
	if o.Home == "" || filepath.IsAbs(o.Home) {
		return o.Home
	}
	base := startDir()
	if filepath.IsAbs(o.Chdir) {
		base = o.Chdir
	} else if o.Chdir != "" {
		base = filepath.Join(base, o.Chdir)
	}
	return filepath.Join(base, o.Home)
}

// parseMount reads uWSGI's "MOUNTPOINT=APP". Trailing slashes of the mount
// point are dropped, as uWSGI ignores them when it matches.
func parseMount(spec string) (pyembed.Mount, error) {
	point, app, ok := strings.Cut(spec, "=")
	switch {
	case !ok || app == "":
		return pyembed.Mount{}, fmt.Errorf("--mount %s: not MOUNTPOINT=APP", spec)
	case !strings.HasPrefix(point, "/"):
		return pyembed.Mount{}, fmt.Errorf("--mount %s: the mount point does not start with /", spec)
	case strings.ContainsAny(spec, "\n\x00"):
		return pyembed.Mount{}, fmt.Errorf("--mount %q: holds a newline or NUL", spec)
	}
	return pyembed.Mount{Point: strings.TrimRight(point, "/"), App: app}, nil
}

// checkHome checks that dir is a virtualenv (or an installation prefix) of
// the embedded Python's major.minor version.
func checkHome(dir string) error {
	if dir == "" {
		return nil
	}
	built := pyembed.BuiltVersion()
	got, ok := pyembed.HomeVersion(dir)
	switch {
	case !ok:
		return fmt.Errorf("--home %s: not a virtualenv (no pyvenv.cfg with a version) nor a Python %s installation", dir, built)
	case got != built:
		return fmt.Errorf("--home %s: the virtualenv is of Python %s, but gowsgi embeds Python %s; recreate it with python%s -m venv", dir, got, built, built)
	}
	return nil
}

// mounts returns the --mount values checkApps has validated.
func (o *options) mounts() []pyembed.Mount {
	out := make([]pyembed.Mount, 0, len(o.Mounts))
	for _, spec := range o.Mounts {
		if m, err := parseMount(spec); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// mountNames names the mounted apps as the banner shows them.
func (o *options) mountNames() string {
	return strings.Join(o.Mounts, " ")
}
