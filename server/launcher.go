// How the pool starts workers and learns how they ended: the launcher
// interface, which the zygote implements (zygote_linux.go), the process it
// returns, and the words a worker's exit is logged in.
package server

import (
	"net"
	"os"
	"strconv"
	"syscall"
)

// launcher starts worker processes.
type launcher interface {
	// prepare readies generation gen for launching without holding up the
	// caller, which a zygote's import of the app would, and calls done from
	// another goroutine with nil or why the generation cannot start.
	prepare(gen int, done func(error))
	// launch starts worker number num of generation gen with threads slots.
	launch(num, gen, threads int) (*launched, error)
	// release says generation gen will start no more workers.
	release(gen int)
}

// process is a started worker process.
type process interface {
	pid() int
	kill()
	// wait returns once the process has exited, with its wait status.
	wait() (*syscall.WaitStatus, error)
}

// launched is a started worker as the pool receives it.
type launched struct {
	proc    process
	control *os.File // read end of the worker's control pipe
	conns   []*net.UnixConn
	board   *board
	queue   *genQueue // its generation's shared queue; nil without one
}

// exitAttrs describes how a process ended as log attributes.
func exitAttrs(status *syscall.WaitStatus) []any {
	switch {
	case status == nil:
		return []any{"status", -1}
	case status.Signaled():
		return []any{"signal", status.Signal().String()}
	}
	return []any{"status", status.ExitStatus()}
}

// describeExit describes how a process ended, for a one-line message, in
// the words of os.ProcessState.String.
func describeExit(status *syscall.WaitStatus) string {
	switch {
	case status == nil:
		return "unknown status"
	case status.Signaled():
		return "signal: " + status.Signal().String()
	}
	return "exit status " + strconv.Itoa(status.ExitStatus())
}
