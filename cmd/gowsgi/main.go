// Command gowsgi runs a Python WSGI application. The same binary is the
// master (the default); exec'd by the master with GOWSGI_ZYGOTE set, the
// zygote that forks the workers, which never reaches main (see
// pyembed/gw_zygote.c); and started by a web server with GATEWAY_INTERFACE
// set, a CGI program that serves one request.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/gowsgi/gowsgi/server"
)

func main() {
	args := os.Args[1:]
	cgi := os.Getenv("GATEWAY_INTERFACE") != ""
	if cgi {
		args = cgiArgs(args, os.Getenv("SCRIPT_FILENAME"))
	}
	opts, err := parseOptions(args)
	switch {
	case err != nil:
		// The options read before a check failed (a virtualenv missing on
		// this machine, say) may explain it: their warnings come first.
		if opts != nil && !errors.Is(err, errStrictUnknown) {
			printWarnings(opts)
		}
		fmt.Fprintf(os.Stderr, "gowsgi: %v\n", err)
		os.Exit(2)
	case opts.Help:
		fmt.Print(helpText())
	case opts.Version:
		fmt.Println("gowsgi " + server.Version)
	case opts.Reload != "" || opts.Stop != "":
		os.Exit(signalPidFile(opts))
	case cgi && opts.LogJSON:
		// The app runs in this process and writes to the web server's
		// error log itself: there is no pipe to turn its lines into JSON.
		fmt.Fprintln(os.Stderr, "gowsgi: --log-json: not in CGI mode, where the app writes to the web server's error log itself; drop the option")
		os.Exit(2)
	case cgi:
		if err := chdir(opts.Chdir); err != nil {
			fmt.Fprintf(os.Stderr, "gowsgi: %v\n", err)
			os.Exit(2)
		}
		os.Exit(server.RunCGI(server.CGIConfig{App: opts.appSpec(), SpoolThreshold: int64(opts.SpoolThreshold)}))
	case opts.Daemonize != "" && !isDaemon():
		printWarnings(opts)
		os.Exit(daemonize(opts.Daemonize))
	default:
		if !isDaemon() {
			printWarnings(opts)
		}
		if opts.UmaskSet {
			syscall.Umask(opts.Umask) // before any socket or file is made, as uWSGI sets it
		}
		// The master changes directory and its zygote inherits it; every
		// relative path in the options was resolved while parsing.
		opts.absLogPaths()
		if err := chdir(opts.Chdir); err != nil {
			fmt.Fprintf(server.MasterOutput(opts.LogJSON), "gowsgi: %v\n", err)
			os.Exit(2)
		}
		if err := setEnv(opts.Env); err != nil {
			fmt.Fprintf(server.MasterOutput(opts.LogJSON), "gowsgi: %v\n", err)
			os.Exit(2)
		}
		cfg := opts.serverConfig()
		if isDaemon() {
			cfg.Ready = daemonReady()
		}
		os.Exit(server.Run(cfg))
	}
}

// printWarnings prints the one line about options gowsgi ignored and one
// per kind of uWSGI option it handles its own way (config_compat.go). Only
// the command the user ran prints them: the zygote and its workers never
// reach main, and a daemon's master leaves them to the command that
// started it.
func printWarnings(opts *options) {
	stderr := server.MasterOutput(opts.LogJSON)
	if len(opts.Unimplemented) > 0 {
		fmt.Fprintf(stderr, "gowsgi: warning: ignoring uWSGI options gowsgi does not implement: %s\n", strings.Join(opts.Unimplemented, ", "))
	}
	if len(opts.Unknown) > 0 {
		fmt.Fprintf(stderr, "gowsgi: warning: ignoring options gowsgi does not know (--strict refuses them): %s\n", strings.Join(opts.Unknown, ", "))
	}
	for _, line := range opts.warnings() {
		fmt.Fprintln(stderr, line)
	}
}

func chdir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("--chdir: %w", err)
	}
	return nil
}

// cgiArgs turns the command line of a CGI invocation into options. A web
// server runs a script as "gowsgi [options] SCRIPT [words]" (lighttpd's
// cgi.assign, or the script's own "#!/path/to/gowsgi" line), so the first
// argument that is not an option names the app's file; the words after it
// are a query's search words (RFC 3875 section 4.4), which the app reads
// from QUERY_STRING instead. With no such argument and no --module or
// --wsgi-file, the app is the file SCRIPT_FILENAME names.
func cgiArgs(args []string, scriptFilename string) []string {
	// A "#!" line's options reach the program as one argument (execve(2)).
	if len(args) > 0 && strings.HasPrefix(args[0], "-") && strings.Contains(args[0], " ") {
		args = append(strings.Fields(args[0]), args[1:]...)
	}
	options, script := splitScript(args)
	if script == "" {
		if _, err := parseOptions(options); errors.Is(err, errNoApp) {
			script = scriptFilename
		}
	}
	if script != "" {
		options = append(options, "--wsgi-file", script)
	}
	return options
}

// splitScript returns the options before the first non-option argument
// that is not an ini file, and that argument.
func splitScript(args []string) (options []string, script string) {
	takesValue := make(map[string]bool)
	for _, opt := range optionTable(defaultOptions()) {
		for _, name := range opt.names {
			takesValue[name] = opt.kind != kindBool
		}
	}
	for i := 0; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") && !isINIArg(args[i]) {
			return options, args[i]
		}
		options = append(options, args[i])
		if name, _, hasValue := strings.Cut(args[i], "="); takesValue[name] && !hasValue && i+1 < len(args) {
			i++
			options = append(options, args[i])
		}
	}
	return options, ""
}
