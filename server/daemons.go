// Attached daemons (uWSGI's attach-daemon, attach-daemon2 and
// smart-attach-daemon): side processes, a Celery worker say, that the
// master starts once the workers serve, starts again when they exit, and
// stops when it stops. Each runs with /bin/sh -c in a process group of its
// own, so the stop signal reaches the command the shell started too. A
// smart daemon daemonizes itself and writes a pidfile; the master starts
// the command when the pidfile names no live process.
package server

import (
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Daemon is one side process to run.
type Daemon struct {
	// Option names the option that asked for it, for the log.
	Option  string
	Command string
	// PidFile, when set, makes a smart daemon: the command daemonizes
	// and writes its pid there.
	PidFile string
	// StopSignal is sent when the master stops; SIGTERM when 0.
	StopSignal syscall.Signal
}

// daemonRespawnDelay is how long after a daemon exited it is started
// again, so one that fails at once does not spin; and how often a smart
// daemon's pidfile is checked.
const daemonRespawnDelay = time.Second

// daemonStopTimeout bounds how long the master waits for a daemon to exit
// after its stop signal before it kills the process group.
const daemonStopTimeout = 10 * time.Second

// daemons supervises the attached daemons until stop.
type daemons struct {
	log *slog.Logger
	// stdin is the daemons' standard input: nil, /dev/null, unless
	// --daemons-honour-stdin gives them the master's, as uWSGI does.
	stdin *os.File
	quit  chan struct{}
	wg    sync.WaitGroup
}

// startDaemons starts a supervisor for each daemon; stdin is their
// standard input (nil: /dev/null).
func startDaemons(list []Daemon, stdin *os.File, log *slog.Logger) *daemons {
	d := &daemons{log: log, stdin: stdin, quit: make(chan struct{})}
	for _, daemon := range list {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if daemon.PidFile != "" {
				d.superviseSmart(daemon)
			} else {
				d.supervise(daemon)
			}
		}()
	}
	return d
}

// stop signals every daemon and waits for them to exit.
func (d *daemons) stop() {
	close(d.quit)
	d.wg.Wait()
}

// command is daemon's command, writing to the master's stderr.
func (d *daemons) command(daemon Daemon) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", daemon.Command)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if d.stdin != nil {
		cmd.Stdin = d.stdin
	}
	return cmd
}

// supervise runs daemon again each time it exits, until quit.
func (d *daemons) supervise(daemon Daemon) {
	for {
		cmd := d.command(daemon)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := startChild(cmd); err != nil {
			d.log.Error("cannot start the daemon", "option", daemon.Option, "command", daemon.Command, "error", err)
		} else {
			d.log.Info("daemon started", "option", daemon.Option, "command", daemon.Command, "pid", cmd.Process.Pid)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				d.log.Warn("daemon exited, starting it again", "command", daemon.Command, "status", exitText(err))
			case <-d.quit:
				stopGroup(cmd.Process.Pid, daemon.StopSignal, exited)
				return
			}
		}
		select {
		case <-time.After(daemonRespawnDelay):
		case <-d.quit:
			return
		}
	}
}

// superviseSmart starts daemon whenever its pidfile names no live process,
// and stops that process at quit.
func (d *daemons) superviseSmart(daemon Daemon) {
	for {
		if pidAlive(daemon.PidFile) == 0 {
			cmd := d.command(daemon)
			if err := startChild(cmd); err != nil {
				d.log.Error("cannot start the daemon", "option", daemon.Option, "command", daemon.Command, "error", err)
			} else {
				err := cmd.Wait() // the command daemonizes: its first process exits
				d.log.Info("daemon started", "option", daemon.Option, "command", daemon.Command, "status", exitText(err))
			}
		}
		select {
		case <-time.After(daemonRespawnDelay):
		case <-d.quit:
			if pid := pidAlive(daemon.PidFile); pid > 0 {
				syscall.Kill(pid, stopSignal(daemon.StopSignal))
			}
			return
		}
	}
}

// stopGroup sends sig to the process group pgid and waits for its leader
// to exit, killing the group when it takes longer than daemonStopTimeout.
func stopGroup(pgid int, sig syscall.Signal, exited <-chan error) {
	syscall.Kill(-pgid, stopSignal(sig))
	select {
	case <-exited:
	case <-time.After(daemonStopTimeout):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
}

func stopSignal(sig syscall.Signal) syscall.Signal {
	if sig == 0 {
		return syscall.SIGTERM
	}
	return sig
}

// pidAlive returns the pid the file holds when that process exists, else 0.
func pidAlive(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// exitText says how a command ended, for the log.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
