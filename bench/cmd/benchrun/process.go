// Starting a server fresh, waiting until it answers, and stopping it by its
// PID (then any of its workers that outlived it, by theirs).
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
	pollInterval = 50 * time.Millisecond
)

// running is a started server.
type running struct {
	name    string
	argv    []string
	port    int // where wrk connects: the server's own port, or its nginx's
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	nginx   *running // the nginx in front of it; nil when wrk talks to it directly
}

// freePort asks the kernel for an ephemeral port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("benchrun: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs argv in dir with env added to the environment, logging to a
// file in logDir, and waits until GET /hello on port answers 200.
func start(name string, argv []string, port int, dir, logDir string, env []string) (*running, error) {
	r, err := launch(name, argv, dir, logDir, env)
	if err != nil {
		return nil, err
	}
	r.port = port
	if err := r.waitReady(); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// launch runs argv in dir with env added to the environment, logging to a
// file in logDir, without waiting for it.
func launch(name string, argv []string, dir, logDir string, env []string) (*running, error) {
	logPath := filepath.Join(logDir, strings.ReplaceAll(name, " ", "_")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("benchrun: %s log: %w", name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("benchrun: start %s: %w", name, err)
	}
	r := &running{name: name, argv: argv, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(r.exited) }()
	return r, nil
}

// waitReady polls /hello until it answers 200, the server (or its nginx)
// exits, or the deadline passes.
func (r *running) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/hello", r.port)
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if err := r.exitedEarly(); err != nil {
			return err
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(pollInterval)
	}
	return fmt.Errorf("benchrun: %s not ready after %s (log: %s)", r.name, readyTimeout, r.tail())
}

// exitedEarly says which process exited before the server was ready.
func (r *running) exitedEarly() error {
	for _, p := range []*running{r, r.nginx} {
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			return fmt.Errorf("benchrun: %s exited before it was ready (log: %s)", p.name, p.tail())
		default:
		}
	}
	return nil
}

// stop stops the server's nginx first, if any (nginx takes SIGTERM as
// "stop now"), then sends SIGTERM to the server's PID and waits; the
// server, if still there after stopTimeout, and any worker that outlived it
// get SIGKILL. The servers stay in benchrun's process group, so ^C reaches
// them too.
func (r *running) stop() error {
	if r.nginx != nil {
		r.nginx.stop()
	}
	pid := r.cmd.Process.Pid
	workers := processTree(pid)[1:]
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("benchrun: stop %s: %w", r.name, err)
	}
	select {
	case <-r.exited:
	case <-time.After(stopTimeout):
		fmt.Fprintf(os.Stderr, "benchrun: %s did not stop in %s, killing\n", r.name, stopTimeout)
		r.cmd.Process.Kill()
		<-r.exited
	}
	for _, p := range workers {
		// Only a worker still the server's child or orphaned by its exit,
		// so a PID reused since is left alone.
		if st, err := readStat(p); err == nil && (st.ppid == pid || st.ppid == 1) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
	return nil
}

// tail is the end of the server's log, for error messages.
func (r *running) tail() string {
	b, _ := os.ReadFile(r.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
