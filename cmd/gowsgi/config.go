// Where options come from, in uWSGI's order: UWSGI_* environment variables
// first, then the command line, where each --ini FILE[:SECTION] (or a bare
// "app.ini") is read at the place it appears. Every source sets options
// through the one option table, so a list option appends whichever source
// it comes from and a scalar takes the last value. Like uWSGI, a key gowsgi
// does not know is kept (a custom key a later %(name) may use); the master
// warns about those no %(name) used, and --strict refuses those uWSGI does
// not know either (config_uwsgi.go). A uWSGI option gowsgi does not
// implement is warned about when it is a tuning knob and refused when
// ignoring it would change what is served or run (config_classes.go).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gowsgi/gowsgi/pyembed"
)

// envPrefix marks the environment variables uWSGI reads as options:
// UWSGI_PROCESSES=4 is --processes 4, UWSGI_HTTP_SOCKET is --http-socket.
const envPrefix = "UWSGI_"

// maxINIDepth bounds ini files that include each other.
const maxINIDepth = 16

// uwsgiOnlyShorts are uWSGI short options whose long option gowsgi does not
// implement yet; they take a value, and are reported under the long name.
var uwsgiOnlyShorts = map[string]string{
	"-H": "--home",
}

// unknownKey is a key no option has, as its source spelled it.
type unknownKey struct {
	key   string // without dashes, as %(key) names it
	label string // "--foo", "foo" (ini) or "UWSGI_FOO"
}

// configParser applies the sources to one options value.
type configParser struct {
	o        *options
	byName   map[string]*option // "--processes", "-p", …
	values   map[string]string  // every key set so far, for %(name)
	unknown  []unknownKey
	used     map[string]bool // keys a %(name) resolved
	getenv   func(string) (string, bool)
	baseDir  string      // relative ini paths start here
	lastINI  string      // the ini file read last, for "ini = :SECTION"
	firstINI string      // the first ini file read, for %D and its kin
	logic    *logicBlock // the open if or for block (config_logic.go)
	ifFailed bool        // the last if failed, for else
	hostname string
	depth    int
}

func newConfigParser(environ []string, baseDir string) *configParser {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	p := &configParser{
		o:        defaultOptions(),
		byName:   make(map[string]*option),
		values:   make(map[string]string),
		used:     make(map[string]bool),
		getenv:   func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		baseDir:  baseDir,
		hostname: hostname(),
	}
	table := optionTable(p.o)
	for i := range table {
		for _, name := range table[i].names {
			p.byName[name] = &table[i]
		}
	}
	return p
}

// parseConfig reads the UWSGI_* variables of environ, then args; baseDir is
// where relative ini paths start.
func parseConfig(environ, args []string, baseDir string) (*options, error) {
	p := newConfigParser(environ, baseDir)
	if err := p.environment(environ); err != nil {
		return nil, err
	}
	if err := p.commandLine(args); err != nil {
		return nil, err
	}
	for _, u := range p.unknown {
		ignored := &p.o.Unknown
		if isUWSGIOption(u.key) {
			ignored = &p.o.Unimplemented
		}
		if !p.used[u.key] && !slices.Contains(*ignored, u.label) {
			*ignored = append(*ignored, u.label)
		}
	}
	return p.o, p.o.check()
}

// startDir is where relative ini paths start: the working directory gowsgi
// was started in, as options are parsed before --chdir.
func startDir() string {
	dir, _ := os.Getwd()
	return dir
}

// environment applies the UWSGI_* variables in the order given.
func (p *configParser) environment(environ []string) error {
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		name, ok := strings.CutPrefix(k, envPrefix)
		if !ok || name == "" {
			continue
		}
		key := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if err := p.apply(key, k, "", v, v != ""); err != nil {
			return err
		}
	}
	return nil
}

// commandLine applies args: "--opt value", "--opt=value", short forms, bare
// flags, and bare ini files.
func (p *configParser) commandLine(args []string) error {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if isINIArg(arg) {
			if err := p.loadINI(arg); err != nil {
				return err
			}
			continue
		}
		if isGunicornApp(arg) {
			return fmt.Errorf("unexpected argument %q: pass --module %s; %s", arg, arg, gunicornHint)
		}
		if !strings.HasPrefix(arg, "-") {
			return fmt.Errorf("unexpected argument %q (see gowsgi --help)", arg)
		}
		name, value, hasValue := strings.Cut(arg, "=")
		if long, ok := uwsgiOnlyShorts[name]; ok && p.byName[name] == nil {
			name = long
		}
		next := ""
		if i+1 < len(args) {
			next = args[i+1]
		}
		if hasValue {
			next = value
		}
		if why := gunicornArg(name, next); why != "" {
			return fmt.Errorf("%s; %s", why, gunicornHint)
		}
		name, err := p.resolveName(name)
		if err != nil {
			return err
		}
		if !hasValue && p.takesNextArg(name, args[i+1:]) {
			if i+1 == len(args) {
				return fmt.Errorf("%s needs a value (%s)", name, p.byName[name].arg)
			}
			i++
			value, hasValue = args[i], true
		}
		if err := p.apply(strings.TrimLeft(name, "-"), name, "", value, hasValue); err != nil {
			return err
		}
	}
	return nil
}

// resolveName returns the option a command-line name means. As uWSGI's
// getopt_long does, it takes an unambiguous prefix of a long option
// ("--modul" is --module) and refuses a name no option has: unlike an ini
// file's custom keys, an unknown option on the command line is a typo.
func (p *configParser) resolveName(name string) (string, error) {
	key, long := strings.CutPrefix(name, "--")
	if p.byName[name] != nil || isUWSGIOption(strings.TrimLeft(name, "-")) || isLogicKey(key) {
		return name, nil
	}
	if !long {
		if _, ok := uwsgiShortOptions[strings.TrimPrefix(name, "-")]; ok {
			return name, nil
		}
		return "", fmt.Errorf("unrecognized option %s (see gowsgi --help)", name)
	}
	var matches []string
	for _, candidate := range p.longNames() {
		if strings.HasPrefix(candidate, key) && !slices.Contains(matches, candidate) {
			matches = append(matches, candidate)
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("unrecognized option %s (see gowsgi --help)", name)
	case 1:
		return "--" + matches[0], nil
	}
	slices.Sort(matches)
	return "", fmt.Errorf("option %s is ambiguous; possibilities: --%s", name, strings.Join(matches, " --"))
}

// longNames lists, without dashes, the long options gowsgi or uWSGI knows.
func (p *configParser) longNames() []string {
	var names []string
	for name := range p.byName {
		if key, ok := strings.CutPrefix(name, "--"); ok {
			names = append(names, key)
		}
	}
	for name := range uwsgiOptions() {
		names = append(names, name)
	}
	return names
}

// takesNextArg says whether the option name, given without "=value", takes
// the next argument as its value. An unknown option does when that argument
// is not an option itself, since gowsgi cannot know what it expects.
func (p *configParser) takesNextArg(name string, rest []string) bool {
	nextIsValue := len(rest) > 0 && !strings.HasPrefix(rest[0], "-")
	opt := p.byName[name]
	switch {
	case opt == nil:
		return nextIsValue
	case opt.kind == kindMode:
		return nextIsValue
	default:
		return opt.kind != kindBool
	}
}

// loadINI applies the entries of the ini file "FILE[:SECTION]" in order;
// ":SECTION" is a section of the ini file read last, as in uWSGI.
func (p *configParser) loadINI(arg string) error {
	path, section := splitINIArg(arg)
	switch {
	case path == "" && p.lastINI == "":
		return fmt.Errorf("--ini %s: no ini file was read before to take the section from", arg)
	case path == "":
		path = p.lastINI
	case !filepath.IsAbs(path):
		path = filepath.Join(p.baseDir, path)
	}
	if p.depth == maxINIDepth {
		return fmt.Errorf("%s: ini files include each other more than %d deep", path, maxINIDepth)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--ini: %w", err)
	}
	p.lastINI = path
	if p.firstINI == "" {
		p.firstINI = path
	}
	entries, found := parseINI(string(content), section)
	if !found {
		return fmt.Errorf("--ini: %s has no [%s] section", path, section)
	}
	sub := &substituter{path: path, first: p.firstINI, hostname: p.hostname, getenv: p.getenv, lookup: p.lookup}
	if strings.Contains(arg, ":") {
		sub.section = section
	}
	p.depth++
	defer func() { p.depth-- }()
	for _, e := range entries {
		where := fmt.Sprintf("%s:%d", path, e.line)
		if e.bare && strings.ContainsAny(e.key, " \t") {
			key, value, _ := strings.Cut(e.key, " ")
			return fmt.Errorf("%s: %q has no \"=\"; write %s = %s", where, e.key, key, strings.TrimSpace(value))
		}
		value, err := sub.expand(e.value)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", where, e.key, err)
		}
		if err := p.apply(e.key, e.key, where, value, e.value != ""); err != nil {
			return err
		}
	}
	return nil
}

// setKey reads uWSGI's "set = KEY=VALUE", which applies the option KEY
// where it appears, and "set-placeholder = KEY=VALUE", which only defines
// KEY for a later %(KEY).
func (p *configParser) setKey(label, option, value string) error {
	key, v, ok := strings.Cut(value, "=")
	if !ok || key == "" {
		return fmt.Errorf("%s: %q is not KEY=VALUE", label, value)
	}
	if option == "--set-placeholder" {
		p.values[key] = v
		return nil
	}
	return p.apply(key, key, label, v, true)
}

// record keeps the option for uwsgi.opt as uWSGI exports it: a short
// option under uWSGI's long name for it, any other key as spelled; a flag
// given bare on the command line without a value, but an ini or UWSGI_*
// value always as given, even empty.
func (p *configParser) record(key, spelling, value string, hasValue bool) {
	commandLine := strings.HasPrefix(spelling, "-")
	if long, ok := uwsgiShortOptions[key]; ok && commandLine && len(key) == 1 {
		key = long
	}
	p.o.Given = append(p.o.Given, pyembed.Option{Key: key, Value: value, Bare: commandLine && !hasValue})
}

// lookup resolves %(key) and remembers that key was used.
func (p *configParser) lookup(key string) (string, bool) {
	v, ok := p.values[key]
	if ok {
		p.used[key] = true
	}
	return v, ok
}

// apply sets the option key (no dashes) to value. spelling is the key as its
// source wrote it ("--foo", "foo", "UWSGI_FOO"), for errors and warnings;
// where is the ini file and line, if any. An ini include loads where it
// appears.
func (p *configParser) apply(key, spelling, where, value string, hasValue bool) error {
	if handled, err := p.applyLogic(key, spelling, where, value, hasValue); handled || err != nil {
		return err
	}
	return p.applyOption(key, spelling, where, value, hasValue)
}

// applyOption sets one option, with no config logic around it.
func (p *configParser) applyOption(key, spelling, where, value string, hasValue bool) error {
	p.record(key, spelling, value, hasValue)
	opt := p.byName["--"+key]
	if opt == nil && len(key) == 1 {
		opt = p.byName["-"+key]
	}
	label := spelling
	if where != "" {
		label = where + ": " + spelling
	}
	if opt == nil {
		if rule := classify(key); rule.class == classRefused && isUWSGIOption(key) {
			return fmt.Errorf("%s: not implemented, and ignoring it would change what is served or run; %s", label, rule.text)
		}
		p.unknown = append(p.unknown, unknownKey{key: key, label: spelling})
		p.values[key] = value
		return nil
	}
	switch {
	case opt.kind == kindINI && key != "ini" && !isINIArg(value):
		return fmt.Errorf("%s %s: gowsgi reads ini files only; write the options in an ini file", label, value)
	case opt.kind == kindINI:
		return p.loadINI(value)
	case opt.names[0] == "--set" || opt.names[0] == "--set-placeholder":
		return p.setKey(label, opt.names[0], value)
	}
	if err := opt.set(label, value, hasValue); err != nil {
		return err
	}
	if !hasValue {
		value = "true"
	}
	p.values[key] = value
	p.values[strings.TrimLeft(opt.names[0], "-")] = value
	return nil
}
