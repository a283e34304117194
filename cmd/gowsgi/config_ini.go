// uWSGI's ini files: their line syntax and the substitutions uWSGI makes in
// their values. The parser is gowsgi's own because uWSGI's dialect fits no
// Go ini library: keys repeat (a list option appends, a scalar takes the
// last value), a comment is only a line that starts with ";" or "#" (so
// "vacuum = true ; x" is the value "true ; x"), quotes stay in the value,
// and values carry uWSGI's own $(ENV), %(name) and magic %d-style
// substitutions.
package main

import (
	"os"
	"path/filepath"
	"strings"
)

// defaultINISection is the section uWSGI reads when FILE:SECTION names none.
const defaultINISection = "uwsgi"

// iniEntry is one "key = value" line of the section being read.
type iniEntry struct {
	key, value string
	line       int // from 1, for error messages
}

// parseINI returns section's entries in file order, and whether the file has
// that section at all. As in uWSGI, a line without "=" is a key with an empty
// value (a bare flag), keys and values are trimmed, and a section header may
// appear more than once (its entries are read each time).
func parseINI(content, section string) (entries []iniEntry, found bool) {
	current := ""
	for i, raw := range strings.Split(content, "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "", line[0] == ';', line[0] == '#':
			continue
		case line[0] == '[':
			current = strings.TrimSuffix(line[1:], "]")
			found = found || current == section
		case current == section:
			key, value, _ := strings.Cut(line, "=")
			entries = append(entries, iniEntry{key: strings.TrimSpace(key), value: strings.TrimSpace(value), line: i + 1})
		}
	}
	return entries, found
}

// splitINIArg splits uWSGI's "FILE[:SECTION]"; a suffix that looks like a
// path component is part of the file name.
func splitINIArg(arg string) (path, section string) {
	i := strings.LastIndexByte(arg, ':')
	if i < 0 || i == len(arg)-1 || strings.Contains(arg[i+1:], "/") {
		return strings.TrimSuffix(arg, ":"), defaultINISection
	}
	return arg[:i], arg[i+1:]
}

// isINIArg says whether a bare command-line argument names an ini file, as
// in "gowsgi app.ini" or "gowsgi app.ini:production".
func isINIArg(arg string) bool {
	path, _ := splitINIArg(arg)
	return !strings.HasPrefix(arg, "-") && strings.HasSuffix(path, ".ini")
}

// substituter expands the substitutions uWSGI makes in an ini value.
type substituter struct {
	path     string                           // the ini file, absolute
	hostname string                           // for %h
	getenv   func(string) (string, bool)      // for $(NAME)
	lookup   func(name string) (string, bool) // for %(name): options and custom keys set earlier
}

// expand replaces, in one pass from left to right: $(NAME) by the
// environment variable (left literal when unset); %(name) by the value of an
// option or custom key set earlier (left as is when there is none); and the
// magic variables %d (the file's directory, with a trailing slash), %p (its
// path), %s (its name), %n (its name without the extension), %c (the name
// of its directory), %h (the host name) and %% (a "%"). Anything else stays.
func (s *substituter) expand(value string) string {
	var b strings.Builder
	for i := 0; i < len(value); i++ {
		c := value[i]
		if (c != '$' && c != '%') || i+1 == len(value) {
			b.WriteByte(c)
			continue
		}
		if value[i+1] == '(' {
			if end := strings.IndexByte(value[i+2:], ')'); end >= 0 {
				name := value[i+2 : i+2+end]
				if got, ok := s.reference(c, name); ok {
					b.WriteString(got)
					i += 2 + end
					continue
				}
			}
			b.WriteByte(c)
			continue
		}
		if c == '%' {
			if got, ok := s.magic(value[i+1]); ok {
				b.WriteString(got)
				i++
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// reference resolves $(name) or %(name).
func (s *substituter) reference(sigil byte, name string) (string, bool) {
	if sigil == '$' {
		return s.getenv(name)
	}
	return s.lookup(name)
}

// magic resolves the one-letter variable %c.
func (s *substituter) magic(c byte) (string, bool) {
	dir := filepath.Dir(s.path)
	switch c {
	case 'd':
		return strings.TrimSuffix(dir, "/") + "/", true
	case 'p':
		return s.path, true
	case 's':
		return filepath.Base(s.path), true
	case 'n':
		base := filepath.Base(s.path)
		return strings.TrimSuffix(base, filepath.Ext(base)), true
	case 'c':
		return filepath.Base(dir), true
	case 'h':
		return s.hostname, true
	case '%':
		return "%", true
	}
	return "", false
}

// hostname is %h's value; empty when the system will not say.
func hostname() string {
	name, _ := os.Hostname()
	return name
}
