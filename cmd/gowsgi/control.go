// Process control from the command line, with uWSGI's meaning: signalling a
// running master through its pidfile (--reload, --stop), setting the
// application's environment (--env) and detaching from the terminal
// (--daemonize). A Go program cannot fork, so --daemonize re-executes the
// binary in a new session and waits for it to report that it is serving.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gowsgi/gowsgi/server"
)

// daemonEnv marks the detached master --daemonize starts; its value is the
// descriptor to report readiness on.
const daemonEnv = "GOWSGI_DAEMON_FD"

// daemonReadyFD is where the detached master finds the pipe to its parent.
const daemonReadyFD = 3

// checkEnv vets the --env values.
func checkEnv(env []string) error {
	for _, kv := range env {
		if key, _, ok := strings.Cut(kv, "="); !ok || key == "" {
			return fmt.Errorf("--env: %q is not KEY=VALUE", kv)
		}
	}
	return nil
}

// setEnv applies --env to the master's environment, which the zygote and
// the workers inherit.
func setEnv(env []string) error {
	for _, kv := range env {
		key, value, _ := strings.Cut(kv, "=")
		if err := os.Setenv(key, value); err != nil {
			return fmt.Errorf("--env %s: %w", key, err)
		}
	}
	return nil
}

// logTo is the file the master logs to: --logto, else a daemon's log.
func (o *options) logTo() string {
	if o.LogTo == "" {
		return o.Daemonize
	}
	return o.LogTo
}

// absLogPaths makes the log paths absolute before --chdir, so the daemon
// and the process that started it name the same file.
func (o *options) absLogPaths() {
	for _, p := range []*string{&o.LogTo, &o.Daemonize} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
}

// signalPidFile runs --reload and --stop and returns the exit status.
func signalPidFile(o *options) int {
	path, sig := o.Stop, syscall.SIGTERM
	if o.Reload != "" {
		path, sig = o.Reload, syscall.SIGHUP
	}
	if err := server.SignalPidFile(path, sig); err != nil {
		fmt.Fprintf(os.Stderr, "gowsgi: %v\n", err)
		return 1
	}
	return 0
}

// isDaemon reports whether this process is the master --daemonize started.
func isDaemon() bool { return os.Getenv(daemonEnv) != "" }

// daemonize starts this binary again with the same arguments in a new
// session, its output appended to logPath, and returns 0 once it is
// serving, or 1 with the reason when it stopped before.
func daemonize(logPath string) int {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gowsgi: --daemonize: %v\n", err)
		return 1
	}
	defer log.Close()
	ready, readyW, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gowsgi: --daemonize: %v\n", err)
		return 1
	}
	defer ready.Close()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gowsgi: --daemonize: %v\n", err)
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", daemonEnv, daemonReadyFD))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gowsgi: --daemonize: %v\n", err)
		return 1
	}
	// The daemon writes one byte once serving; EOF without it means it
	// exited (or closed the pipe) first.
	if n, _ := io.ReadFull(ready, make([]byte, 1)); n == 1 {
		return 0
	}
	err = cmd.Wait()
	fmt.Fprintf(os.Stderr, "gowsgi: the daemon stopped before serving (%v); see %s\n", exitReason(err), logPath)
	return 1
}

func exitReason(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.String()
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// daemonReady returns the function the detached master calls once it is
// serving, which tells the process waiting in daemonize.
func daemonReady() func() {
	// Not inherited by the zygote and workers, which would keep the pipe
	// open after the master died.
	syscall.CloseOnExec(daemonReadyFD)
	os.Unsetenv(daemonEnv)
	pipe := os.NewFile(daemonReadyFD, "daemon-ready")
	return func() {
		pipe.Write([]byte{'R'})
		pipe.Close()
	}
}
