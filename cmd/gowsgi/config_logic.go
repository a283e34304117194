// uWSGI's config logic: "if-env = NAME" … "endif" applies the lines in
// between only when the condition holds, and "for = a b c" … "endfor"
// applies each line once per item, with %(_) standing for the item (or,
// in an if block, for what the condition found). As in uWSGI, a block
// works line by line (each line is repeated for every item before the
// next line is read), does not nest, and works the same in ini files, on
// the command line and in UWSGI_* variables.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// logicBlock is the open if or for block.
type logicBlock struct {
	kind  string   // the opening key: "if-env", "for-glob", …
	items []string // what %(_) is each time a line is applied; none when an if failed
}

// logicOpeners are the keys that open a block, with what --help says.
var logicOpeners = map[string]string{
	"if-env": "NAME[=VALUE] is set (to VALUE)", "ifenv": "as if-env", "if-not-env": "NAME[=VALUE] is not set (to VALUE)",
	"if-opt": "the option NAME[=VALUE] was given (as VALUE)", "if-not-opt": "the option NAME[=VALUE] was not given (as VALUE)",
	"if-exists": "PATH exists", "ifexists": "as if-exists", "if-not-exists": "PATH does not exist",
	"if-file": "PATH is a file", "if-not-file": "PATH is not a file",
	"if-dir": "PATH is a folder", "ifdir": "as if-dir", "if-not-dir": "PATH is not a folder",
	"if-hostname": "the host is NAME", "if-not-hostname": "the host is not NAME",
	"if-reload": "never: options are read once", "if-not-reload": "always: options are read once",
	"for": "once per word of the value", "for-glob": "once per path the pattern matches",
	"for-readline": "once per line of the file", "for-times": "N times, %(_) from 1 to N",
	"else": "when the if before it failed",
}

// logicClosers end a block.
var logicClosers = map[string]bool{"end": true, "endif": true, "end-if": true, "endfor": true, "end-for": true}

// isLogicKey says whether key opens or closes a block.
func isLogicKey(key string) bool {
	_, opens := logicOpeners[key]
	return opens || logicClosers[key]
}

// applyLogic handles key when it opens or closes a block, or is a line of
// an open block; it reports whether it did.
func (p *configParser) applyLogic(key, spelling, where, value string, hasValue bool) (bool, error) {
	key = strings.ToLower(key)
	_, opens := logicOpeners[key]
	switch {
	case logicClosers[key]:
		p.logic, p.ifFailed = nil, false
		return true, nil
	case opens && p.logic != nil && key != "else":
		return true, fmt.Errorf("%s: recursive logic in options is not supported (%s inside %s)", locate(where, spelling), key, p.logic.kind)
	case opens:
		items, err := p.blockItems(key, value)
		if err != nil {
			return true, fmt.Errorf("%s: %w", locate(where, spelling), err)
		}
		p.logic = &logicBlock{kind: key, items: items}
		return true, nil
	case p.logic == nil:
		return false, nil
	}
	for _, item := range p.logic.items {
		v := strings.ReplaceAll(value, "%(_)", item)
		if err := p.applyOption(key, spelling, where, v, hasValue || v != ""); err != nil {
			return true, err
		}
	}
	return true, nil
}

// locate prefixes name with its ini file and line, if any.
func locate(where, name string) string {
	if where == "" {
		return name
	}
	return where + ": " + name
}

// blockItems returns what %(_) is for each time a line of the block kind
// opens with arg is applied: nothing when an if fails.
func (p *configParser) blockItems(kind, arg string) ([]string, error) {
	switch kind {
	case "for":
		return strings.Fields(arg), nil
	case "for-glob":
		return globMarked(arg)
	case "for-readline":
		content, err := os.ReadFile(arg)
		if err != nil {
			return nil, err
		}
		return strings.Split(strings.TrimSuffix(string(content), "\n"), "\n"), nil
	case "for-times":
		var items []string
		for i := int64(1); i <= atoi64(arg); i++ {
			items = append(items, strconv.FormatInt(i, 10))
		}
		return items, nil
	case "else":
		if p.ifFailed {
			return []string{""}, nil
		}
		return nil, nil
	}
	found, ok := p.condition(kind, arg)
	p.ifFailed = !ok
	if !ok {
		return nil, nil
	}
	return []string{found}, nil
}

// condition evaluates an if block: whether it holds, and what %(_) is.
func (p *configParser) condition(kind, arg string) (string, bool) {
	negated := strings.Contains(kind, "-not-")
	test := strings.Replace(kind, "-not-", "-", 1)
	var found string
	var holds bool
	switch test {
	case "if-env", "ifenv", "if-opt":
		name, want, hasWant := strings.Cut(arg, "=")
		var set bool
		if test == "if-opt" {
			found, set = p.firstValue(name)
		} else {
			found, set = p.getenv(name)
		}
		holds = set && (!hasWant || found == want)
	case "if-exists", "ifexists", "if-file", "if-dir", "ifdir":
		found = arg
		info, err := os.Stat(arg)
		holds = err == nil && (test == "if-exists" || test == "ifexists" ||
			test == "if-file" && info.Mode().IsRegular() || strings.HasSuffix(test, "dir") && info.IsDir())
	case "if-hostname":
		found, holds = arg, p.hostname == arg
	case "if-reload":
		holds = false
	}
	if negated {
		holds = !holds
	}
	return found, holds
}

// firstValue is the value the option key was first given, as uWSGI's
// if-opt reads it.
func (p *configParser) firstValue(key string) (string, bool) {
	for _, o := range p.o.Given {
		if o.Key == key {
			return o.Value, true
		}
	}
	return "", false
}

// globMarked expands pattern as glob(3) with GLOB_MARK and GLOB_NOCHECK:
// folders end in "/", and a pattern that matches nothing is itself.
func globMarked(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	if len(matches) == 0 {
		return []string{pattern}, nil
	}
	for i, m := range matches {
		if info, err := os.Stat(m); err == nil && info.IsDir() {
			matches[i] += "/"
		}
	}
	return matches, nil
}
