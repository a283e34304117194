// Command gowsgi runs a Python WSGI application. The same binary is the
// master (the default) and, exec'd by the master with GOWSGI_WORKER set, a
// worker; both parse the same command line.
package main

import (
	"fmt"
	"os"

	"github.com/gowsgi/gowsgi/server"
)

func main() {
	opts, err := parseOptions(os.Args[1:])
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "gowsgi: %v\n", err)
		os.Exit(2)
	case opts.Help:
		fmt.Print(helpText())
	case opts.Version:
		fmt.Println("gowsgi " + server.Version)
	case os.Getenv("GOWSGI_WORKER") != "":
		os.Exit(server.RunWorker(opts.appSpec()))
	default:
		// The master changes directory; workers inherit it.
		if err := chdir(opts.Chdir); err != nil {
			fmt.Fprintf(os.Stderr, "gowsgi: %v\n", err)
			os.Exit(2)
		}
		os.Exit(server.Run(opts.serverConfig()))
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
