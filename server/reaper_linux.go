// Reaping orphans: the master makes itself a child subreaper
// (prctl(2), PR_SET_CHILD_SUBREAPER), so a process the app starts and
// leaves behind (a daemonizing subprocess, a grandchild whose parent
// exited) becomes the master's child rather than init's, and the master
// reaps it when it exits. In a container gowsgi is often PID 1, where no
// init would; elsewhere it keeps the app's leftovers under gowsgi's own
// stop. The master's own children, its zygotes, are left to the
// exec.Cmd that started them and waits for them.
package server

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ownChildren are the pids of the processes the master started and
// waits for itself; the reaper never waits for them.
var ownChildren = struct {
	sync.Mutex
	pids map[int]bool
}{pids: make(map[int]bool)}

// startChild starts cmd and records it as waited for by its caller. The
// lock keeps the reaper from seeing the child before it is recorded.
func startChild(cmd *exec.Cmd) error {
	ownChildren.Lock()
	defer ownChildren.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	ownChildren.pids[cmd.Process.Pid] = true
	return nil
}

// becomeSubreaper makes orphans below the master its children.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// reapOrphans waits for every orphan that exits, on each SIGCHLD, until
// stop is closed.
func reapOrphans(log *slog.Logger, stop <-chan struct{}) {
	exits := make(chan os.Signal, 1)
	signal.Notify(exits, syscall.SIGCHLD)
	defer signal.Stop(exits)
	for {
		select {
		case <-exits:
			reapExited(log)
		case <-stop:
			return
		}
	}
}

// reapExited reaps the children that have exited and are not the
// master's own. Signals coalesce, so every child is looked at, not one per
// SIGCHLD.
func reapExited(log *slog.Logger) {
	ownChildren.Lock()
	defer ownChildren.Unlock()
	children := childPIDs(os.Getpid())
	for pid := range ownChildren.pids {
		if !children[pid] { // waited for already
			delete(ownChildren.pids, pid)
		}
	}
	for pid := range children {
		if ownChildren.pids[pid] {
			continue
		}
		var status unix.WaitStatus
		if reaped, err := unix.Wait4(pid, &status, unix.WNOHANG, nil); err == nil && reaped == pid {
			log.Debug("reaped an orphan", "pid", pid, "status", status.ExitStatus())
		}
	}
}

// childPIDs lists the processes whose parent is ppid, from /proc (the
// children files of /proc/PID/task need CONFIG_PROC_CHILDREN; stat is
// always there).
func childPIDs(ppid int) map[int]bool {
	children := make(map[int]bool)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return children
	}
	want := []byte(strconv.Itoa(ppid))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid …"; comm may hold spaces and parentheses.
		end := bytes.LastIndexByte(stat, ')')
		if end < 0 {
			continue
		}
		fields := bytes.Fields(stat[end+1:])
		if len(fields) > 1 && bytes.Equal(fields[1], want) {
			children[pid] = true
		}
	}
	return children
}
