// The command line: one table of options and a small parser for it. gowsgi
// takes uWSGI's option names so a uWSGI command line keeps working, which is
// why this is not the flag package: uWSGI spells options "--opt value" and
// "--opt=value", has short forms, repeats list options and lets the last
// scalar win.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/gowsgi/gowsgi/pyembed"
	"github.com/gowsgi/gowsgi/server"
	"github.com/gowsgi/gowsgi/wsgi"
)

// optionKind says how an option's value is read.
type optionKind int

const (
	kindString  optionKind = iota
	kindInt                // a whole number within [min, max]
	kindBool               // a bare flag; "--flag=false" also works
	kindList               // each use appends
	kindSeconds            // a whole number of seconds
	kindMode               // an octal file mode; the value is optional
)

// option is one row of the option table.
type option struct {
	names    []string // long names first; the first is the one --help shows
	kind     optionKind
	arg      string // the value's name in --help
	help     string
	min, max int64 // for kindInt and kindSeconds
	target   any   // *string, *int, *bool, *[]string, *time.Duration or *fs.FileMode
	bare     any   // for kindMode: the value when none is given
}

// options are the parsed command line.
type options struct {
	HTTPSockets     []string
	HTTPSSockets    []string // "ADDR,CERT,KEY"
	UWSGISockets    []string
	SCGISockets     []string
	FastCGISockets  []string
	ChmodSocket     fs.FileMode
	Vacuum          bool
	Module          string
	WSGIFile        string
	Callable        string
	PythonPath      []string
	Chdir           string
	Processes       int
	Threads         int
	GracefulTimeout time.Duration
	DisableLogging  bool
	SpoolThreshold  int
	BufferSize      int
	Help            bool
	Version         bool
}

// addrHelp says what a socket address may be.
const addrHelp = "HOST:PORT, :PORT, [::1]:PORT or a Unix socket path; repeatable"

// defaultChmodSocket is --chmod-socket's mode when it is given no value, as
// in uWSGI.
const defaultChmodSocket fs.FileMode = 0o666

// maxSpoolThreshold keeps an inline body well inside one frame.
const maxSpoolThreshold = wsgi.MaxFramePayload / 2

// optionTable lists every option, bound to o's fields.
func optionTable(o *options) []option {
	return []option{
		{names: []string{"--http-socket"}, kind: kindList, arg: "ADDR", target: &o.HTTPSockets,
			help: "serve HTTP on ADDR (" + addrHelp + "); " + server.DefaultSocket.Address + " when no socket is given"},
		{names: []string{"--https-socket"}, kind: kindList, arg: "ADDR,CERT,KEY", target: &o.HTTPSSockets,
			help: "serve HTTPS and HTTP/2 on ADDR with the PEM certificate CERT and key KEY; repeatable"},
		{names: []string{"--uwsgi-socket", "--socket", "-s"}, kind: kindList, arg: "ADDR", target: &o.UWSGISockets,
			help: "serve the uwsgi protocol on ADDR (" + addrHelp + ")"},
		{names: []string{"--scgi-socket"}, kind: kindList, arg: "ADDR", target: &o.SCGISockets,
			help: "serve SCGI on ADDR (" + addrHelp + ")"},
		{names: []string{"--fastcgi-socket"}, kind: kindList, arg: "ADDR", target: &o.FastCGISockets,
			help: "serve FastCGI on ADDR (" + addrHelp + "); with no socket given, a listening socket on fd 0 is served as FastCGI"},
		{names: []string{"--chmod-socket"}, kind: kindMode, arg: "[MODE]", target: &o.ChmodSocket, bare: defaultChmodSocket,
			help: "set the mode of Unix socket files to octal MODE; 666 when bare"},
		{names: []string{"--vacuum"}, kind: kindBool, target: &o.Vacuum,
			help: "remove Unix socket files on exit"},
		{names: []string{"--module", "--wsgi", "-w"}, kind: kindString, arg: "MOD[:CALLABLE]", target: &o.Module,
			help: "import the WSGI application from module MOD"},
		{names: []string{"--wsgi-file", "--file"}, kind: kindString, arg: "PATH", target: &o.WSGIFile,
			help: "load the WSGI application from the Python file PATH"},
		{names: []string{"--callable"}, kind: kindString, arg: "NAME", target: &o.Callable,
			help: "the application's name in its module; default application"},
		{names: []string{"--pythonpath", "--python-path", "--pp"}, kind: kindList, arg: "DIR", target: &o.PythonPath,
			help: "add DIR to the front of sys.path; repeatable"},
		{names: []string{"--chdir"}, kind: kindString, arg: "DIR", target: &o.Chdir,
			help: "change to DIR before starting the workers"},
		{names: []string{"--processes", "--workers", "-p"}, kind: kindInt, arg: "N", min: 1, max: 1024, target: &o.Processes,
			help: "run N worker processes; default 1"},
		{names: []string{"--threads"}, kind: kindInt, arg: "N", min: 1, max: 1024, target: &o.Threads,
			help: "serve N requests at once in each worker; default 1"},
		{names: []string{"--graceful-timeout"}, kind: kindSeconds, arg: "SECONDS", min: 0, max: 86400, target: &o.GracefulTimeout,
			help: "on stop, wait this long for requests in flight; default 30"},
		{names: []string{"--disable-logging", "-L"}, kind: kindBool, target: &o.DisableLogging,
			help: "do not log each request"},
		{names: []string{"--spool-threshold"}, kind: kindInt, arg: "BYTES", min: 0, max: maxSpoolThreshold, target: &o.SpoolThreshold,
			help: "keep request bodies up to BYTES in memory, spool larger ones to a file; default 1048576"},
		{names: []string{"--buffer-size"}, kind: kindInt, arg: "BYTES", min: 1024, max: 1 << 24, target: &o.BufferSize,
			help: "refuse request headers larger than BYTES with 431; default 65536"},
		{names: []string{"--help", "-h"}, kind: kindBool, target: &o.Help,
			help: "show this help"},
		{names: []string{"--version"}, kind: kindBool, target: &o.Version,
			help: "show gowsgi's version"},
	}
}

// defaultOptions returns the options before the command line is applied.
func defaultOptions() *options {
	return &options{
		Callable:        "application",
		Processes:       1,
		Threads:         1,
		GracefulTimeout: 30 * time.Second,
		SpoolThreshold:  1 << 20,
		BufferSize:      65536,
	}
}

var errNoApp = errors.New("no application given: pass --module MODULE or --wsgi-file FILE")

// parseOptions parses args (without the program name). An error is one line
// for the user, to be printed after "gowsgi: ".
func parseOptions(args []string) (*options, error) {
	o := defaultOptions()
	byName := make(map[string]*option)
	table := optionTable(o)
	for i := range table {
		for _, name := range table[i].names {
			byName[name] = &table[i]
		}
	}
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		opt := byName[name]
		if opt == nil {
			if !strings.HasPrefix(name, "-") {
				return nil, fmt.Errorf("unexpected argument %q (see gowsgi --help)", args[i])
			}
			return nil, fmt.Errorf("unknown option %s (see gowsgi --help)", name)
		}
		if opt.kind == kindMode && !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			// An optional value may follow as the next argument, since
			// gowsgi takes no positional arguments.
			i++
			value, hasValue = args[i], true
		}
		if opt.kind != kindBool && opt.kind != kindMode && !hasValue {
			if i+1 == len(args) {
				return nil, fmt.Errorf("%s needs a value (%s)", name, opt.arg)
			}
			i++
			value = args[i]
		}
		if err := opt.set(name, value, hasValue); err != nil {
			return nil, err
		}
	}
	return o, o.check()
}

// set stores value in the option's target; name is the spelling used.
func (opt *option) set(name, value string, hasValue bool) error {
	switch target := opt.target.(type) {
	case *string:
		*target = value
	case *[]string:
		*target = append(*target, value)
	case *bool:
		if !hasValue {
			*target = true
			return nil
		}
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", name, value)
		}
		*target = b
	case *int:
		n, err := opt.number(name, value)
		*target = int(n)
		return err
	case *time.Duration:
		n, err := opt.number(name, value)
		*target = time.Duration(n) * time.Second
		return err
	case *fs.FileMode:
		if !hasValue {
			*target = opt.bare.(fs.FileMode)
			return nil
		}
		mode, err := strconv.ParseUint(value, 8, 32)
		if err != nil || mode > 0o777 {
			return fmt.Errorf("%s: %q is not an octal mode such as 660", name, value)
		}
		*target = fs.FileMode(mode)
	}
	return nil
}

// number parses a whole number within the option's bounds.
func (opt *option) number(name, value string) (int64, error) {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", name, value)
	}
	if n < opt.min || n > opt.max {
		return 0, fmt.Errorf("%s: %d is out of range (%d to %d)", name, n, opt.min, opt.max)
	}
	return n, nil
}

// check applies defaults that depend on other options and rejects
// combinations that cannot run.
func (o *options) check() error {
	if o.Help || o.Version {
		return nil
	}
	switch {
	case o.Module == "" && o.WSGIFile == "":
		return errNoApp
	case o.Module != "" && o.WSGIFile != "":
		return errors.New("pass only one of --module and --wsgi-file")
	}
	for _, spec := range o.HTTPSSockets {
		if _, err := httpsSocket(spec); err != nil {
			return err
		}
	}
	return nil
}

// httpsSocket reads uWSGI's "ADDR,CERT,KEY" form of --https-socket.
func httpsSocket(spec string) (server.Socket, error) {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return server.Socket{}, fmt.Errorf("--https-socket: %q is not ADDR,CERT,KEY", spec)
	}
	return server.Socket{Protocol: server.ProtocolHTTPS, Address: parts[0], CertFile: parts[1], KeyFile: parts[2]}, nil
}

// sockets lists the sockets to serve, HTTP first. check has validated the
// --https-socket values.
func (o *options) sockets() []server.Socket {
	var out []server.Socket
	add := func(protocol server.Protocol, addrs []string) {
		for _, addr := range addrs {
			out = append(out, server.Socket{Protocol: protocol, Address: addr})
		}
	}
	add(server.ProtocolHTTP, o.HTTPSockets)
	for _, spec := range o.HTTPSSockets {
		s, _ := httpsSocket(spec)
		out = append(out, s)
	}
	add(server.ProtocolUWSGI, o.UWSGISockets)
	add(server.ProtocolSCGI, o.SCGISockets)
	add(server.ProtocolFastCGI, o.FastCGISockets)
	return out
}

// appName names the application as the banner shows it.
func (o *options) appName() string {
	source := o.Module
	if o.WSGIFile != "" {
		source = o.WSGIFile
	}
	if strings.Contains(source, ":") && o.WSGIFile == "" {
		return source
	}
	return source + ":" + o.Callable
}

// appSpec is what a worker imports.
func (o *options) appSpec() pyembed.AppSpec {
	return pyembed.AppSpec{
		Module:       o.Module,
		WSGIFile:     o.WSGIFile,
		Callable:     o.Callable,
		PythonPath:   o.PythonPath,
		Multiprocess: o.Processes > 1,
		Multithread:  o.Threads > 1,
	}
}

// serverConfig is what the master runs with.
func (o *options) serverConfig() server.Config {
	return server.Config{
		Sockets:         o.sockets(),
		ChmodSocket:     o.ChmodSocket,
		Vacuum:          o.Vacuum,
		App:             o.appName(),
		Processes:       o.Processes,
		Threads:         o.Threads,
		GracefulTimeout: o.GracefulTimeout,
		AccessLog:       !o.DisableLogging,
		SpoolThreshold:  int64(o.SpoolThreshold),
		BufferSize:      o.BufferSize,
	}
}

// helpText lists the options from the table.
func helpText() string {
	var b strings.Builder
	b.WriteString("Usage: gowsgi --module MODULE [options]\n\nRuns a Python WSGI application (PEP 3333).\n\nOptions:\n")
	for _, opt := range optionTable(defaultOptions()) {
		spec := strings.Join(opt.names, ", ")
		if opt.arg != "" {
			spec += " " + opt.arg
		}
		fmt.Fprintf(&b, "  %-44s %s\n", spec, opt.help)
	}
	return b.String()
}
