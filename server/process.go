// Process-level duties of the master, with uWSGI's meaning: the pidfile,
// dropping root's privileges once the sockets are bound (--uid, --gid),
// appending every log line to a file (--logto), the children's through the
// master, and reopening it on SIGUSR1 for logrotate, and the stats line
// SIGUSR1 writes.
package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// writePidFile writes the master's pid to path, for `gowsgi --stop` and
// `--reload` and for init scripts.
func writePidFile(path string) error {
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("server: --pidfile: %w", err)
	}
	return nil
}

// removePidFile removes the pidfile on exit, unless another master has
// written its own pid there since.
func removePidFile(path string) {
	if path == "" {
		return
	}
	content, err := os.ReadFile(path)
	if err == nil && string(content) == strconv.Itoa(os.Getpid())+"\n" {
		os.Remove(path)
	}
}

// setMaxFD sets the open-file limit to n, soft and hard, as uWSGI's
// --max-fd does; 0 leaves it. Setting it explicitly also makes Go's
// os/exec pass it on to the zygote instead of the limit gowsgi started with.
func setMaxFD(n int) error {
	if n == 0 {
		return nil
	}
	limit := unix.Rlimit{Cur: uint64(n), Max: uint64(n)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &limit); err != nil {
		var old unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_NOFILE, &old)
		return fmt.Errorf("--max-fd %d: cannot set the open-file limit (the hard limit is %d; raising it needs root): %w", n, old.Max, err)
	}
	return nil
}

// dropPrivileges switches the master to group and user (names or numbers),
// so the zygote and workers it starts afterwards run as them too. The
// supplementary groups become the one group, as uWSGI does. Go applies
// setuid(2) and setgid(2) to every thread of the process.
func dropPrivileges(uid, gid string) error {
	if gid != "" {
		g, err := lookupGroup(gid)
		if err != nil {
			return err
		}
		if err := syscall.Setgroups([]int{g}); err != nil {
			return fmt.Errorf("server: --gid: setgroups: %w", err)
		}
		if err := syscall.Setgid(g); err != nil {
			return fmt.Errorf("server: --gid: %w", err)
		}
	}
	if uid != "" {
		u, err := lookupUser(uid)
		if err != nil {
			return err
		}
		if err := syscall.Setuid(u); err != nil {
			return fmt.Errorf("server: --uid: %w", err)
		}
	}
	return nil
}

// workerCredential is what --master-as-root starts the zygote (and so the
// workers) as, while the master keeps its privileges; nil when neither
// --uid nor --gid is set. Without --gid the group stays, as
// dropPrivileges leaves it.
func workerCredential(uid, gid string) (*syscall.Credential, error) {
	if uid == "" && gid == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: true}
	if gid != "" {
		g, err := lookupGroup(gid)
		if err != nil {
			return nil, err
		}
		cred.Gid, cred.Groups, cred.NoSetGroups = uint32(g), []uint32{uint32(g)}, false
	}
	if uid != "" {
		u, err := lookupUser(uid)
		if err != nil {
			return nil, err
		}
		cred.Uid = uint32(u)
	}
	return cred, nil
}

// lookupUser resolves a user name or a numeric uid.
func lookupUser(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("server: --uid: %w", err)
	}
	return strconv.Atoi(u.Uid)
}

// lookupGroup resolves a group name or a numeric gid.
func lookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("server: --gid: %w", err)
	}
	return strconv.Atoi(g.Gid)
}

// openLog points the process's stdout and stderr at path, opened for
// appending, so the master's log lines land there, and what its children
// print too (logRelay). Called again on SIGUSR1 it reopens the file after
// logrotate moved it.
func openLog(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("server: --logto: %w", err)
	}
	defer f.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return fmt.Errorf("server: --logto: %w", err)
		}
	}
	return nil
}

// relayDrain is how long a stopping master goes on copying what its
// children wrote to the log relay. They have exited or been killed by then,
// so their lines are already in the pipe; the zygote, which exits only
// after the master, keeps the pipe open, so there is no EOF to wait for.
const relayDrain = 200 * time.Millisecond

// childOutput is where a child (the zygote, a worker) sends its stdout and
// stderr; the zero value is the master's own.
type childOutput struct{ stdout, stderr *os.File }

// attach gives cmd this output.
func (o childOutput) attach(cmd *exec.Cmd) {
	if o.stdout == nil {
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return
	}
	cmd.Stdout, cmd.Stderr = o.stdout, o.stderr
}

// logRelay carries the children's output through the master: into a
// --logto file, as uWSGI's log-master does, and with --log-json as one
// JSON object per line (logjson.go). The children write to pipes that the
// master copies to its own stderr, which openLog points at the file, so
// after a SIGUSR1 reopen the workers already running write to the new
// file too, not only those started later.
type logRelay struct {
	output childOutput
	reads  []*os.File     // the master's ends
	done   sync.WaitGroup // until every copy has ended
}

// startLogRelay starts the relay when there is a --logto file, logJSON or
// a sink (logsink.go);
// without either the children write where the master does and the relay
// does nothing. With logJSON, stdout and stderr get a pipe each, so each
// line says which stream it came on.
func startLogRelay(logTo string, logJSON bool, sink *logSink) (*logRelay, error) {
	relay := &logRelay{}
	switch {
	case sink != nil:
		// Line by line, so the encoders and routes see whole lines.
		w, err := relay.pipe(func(r io.Reader) { relayLines(r, sink.writer(false)) })
		if err != nil {
			return nil, err
		}
		relay.output = childOutput{w, w}
	case logJSON:
		stdout, err := relay.pipe(func(r io.Reader) { relayJSONLines(r, os.Stderr, "stdout") })
		if err != nil {
			return nil, err
		}
		stderr, err := relay.pipe(func(r io.Reader) { relayJSONLines(r, os.Stderr, "stderr") })
		if err != nil {
			relay.close()
			return nil, err
		}
		relay.output = childOutput{stdout, stderr}
	case logTo != "":
		// Descriptor 2, not a file kept open: each write goes to the file
		// openLog last pointed it at.
		w, err := relay.pipe(func(r io.Reader) { io.Copy(os.Stderr, r) })
		if err != nil {
			return nil, err
		}
		relay.output = childOutput{w, w}
	}
	return relay, nil
}

// pipe makes a pipe whose reading end copy drains, and returns the
// children's end.
func (l *logRelay) pipe(copy func(io.Reader)) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("server: the children's log pipe: %w", err)
	}
	l.reads = append(l.reads, r)
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		defer r.Close()
		copy(r)
	}()
	return w, nil
}

// close stops the relay after copying what is left in the pipes, so the
// last lines of the zygote and the workers (a traceback that stopped the
// start) are in the log when the master exits.
func (l *logRelay) close() {
	for _, w := range []*os.File{l.output.stdout, l.output.stderr} {
		if w != nil {
			w.Close() // twice for one --logto pipe: the second call fails, harmlessly
		}
	}
	for _, r := range l.reads {
		r.SetReadDeadline(time.Now().Add(relayDrain))
	}
	l.done.Wait()
}

// errNoPid is returned when a pidfile holds no pid.
var errNoPid = errors.New("server: the pidfile holds no pid")

// SignalPidFile sends sig to the process whose pid the file at path holds:
// `gowsgi --reload PIDFILE` (SIGHUP) and `gowsgi --stop PIDFILE` (SIGTERM).
func SignalPidFile(path string, sig syscall.Signal) error {
	content, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(content)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("%w: %s", errNoPid, path)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("server: signalling pid %d: %w", pid, err)
	}
	return nil
}

// logStats writes the stats line SIGUSR1 asks for; requests counts those
// handed to a slot, a retried one once per try.
func (m *master) logStats() {
	m.log.Info("stats", "pid", os.Getpid(), "workers", m.cfg.Processes, "threads", m.cfg.Threads,
		"requests", m.dispatch.nextID.Load(), "queued", m.dispatch.notBegun())
}
