// uWSGI's ini files: their line syntax (the substitutions uWSGI makes in
// their values are in config_expand.go). The parser is gowsgi's own because
// uWSGI's dialect fits no Go ini library: keys repeat (a list option
// appends, a scalar takes the last value), a comment is only a line that
// starts with ";" or "#" (so "vacuum = true ; x" is the value "true ; x"),
// and quotes stay in the value.
package main

import (
	"strings"
)

// defaultINISection is the section uWSGI reads when FILE:SECTION names none.
const defaultINISection = "uwsgi"

// iniEntry is one "key = value" line of the section being read.
type iniEntry struct {
	key, value string
	line       int  // from 1, for error messages
	bare       bool // the line has no "="
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
			key, value, hasEquals := strings.Cut(line, "=")
			entries = append(entries, iniEntry{key: strings.TrimSpace(key), value: strings.TrimSpace(value), line: i + 1, bare: !hasEquals})
		}
	}
	return entries, found
}

// splitINIArg splits uWSGI's "FILE[:SECTION]"; a suffix that looks like a
// path component is part of the file name. ":SECTION" alone leaves path
// empty: a section of the ini file read last.
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
