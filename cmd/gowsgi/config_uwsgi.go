// uWSGI's own option names (uwsgi_options.txt, made by `make
// uwsgi-options`), to tell a uWSGI option gowsgi does not implement from a
// key neither of them knows. uWSGI's --strict refuses only the latter (a
// typo, most often), so a config written with strict = true starts under
// gowsgi as it does under uWSGI, with a warning naming what gowsgi ignores.
package main

import (
	_ "embed"
	"strings"
	"sync"
)

//go:embed uwsgi_options.txt
var uwsgiOptionList string

// uwsgiOptions is the set of uWSGI's option names, without dashes.
var uwsgiOptions = sync.OnceValue(func() map[string]bool {
	names := make(map[string]bool)
	for _, line := range strings.Split(uwsgiOptionList, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			names[line] = true
		}
	}
	return names
})

// isUWSGIOption reports whether uWSGI knows the option key (no dashes).
func isUWSGIOption(key string) bool { return uwsgiOptions()[strings.ToLower(key)] }
