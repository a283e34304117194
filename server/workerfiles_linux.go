// What a worker inherits from the master: its control pipe, its scoreboard
// (board_linux.go), its signal socket (signals.go) and one socketpair per
// slot, in the order docs/internals.md lists; the zygote passes them to the
// worker it forks (zygote_linux.go).
package server

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// workerFiles are the master's and the worker's ends of what a worker
// inherits: the control pipe, the scoreboard, the signal socket and one
// socketpair per slot.
type workerFiles struct {
	control *os.File
	board   *board
	signal  *net.UnixConn // the master's end of the worker's signal socket
	conns   []*net.UnixConn
	child   []*os.File // the worker's ends, in the order of docs/internals.md
}

// newWorkerFiles creates a worker's files for threads slots.
func newWorkerFiles(threads int) (_ *workerFiles, err error) {
	f := &workerFiles{}
	defer func() {
		if err != nil {
			f.closeChild()
			f.closeMaster()
		}
	}()
	controlR, controlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("server: control pipe: %w", err)
	}
	f.control, f.child = controlR, append(f.child, controlW)
	b, boardFile, err := newBoard(threads)
	if err != nil {
		return nil, err
	}
	f.board, f.child = b, append(f.child, boardFile)
	signal, theirs, err := unixSocketpair(unix.SOCK_SEQPACKET, "signal")
	if err != nil {
		return nil, err
	}
	f.signal, f.child = signal, append(f.child, theirs)
	for range threads {
		conn, theirs, err := slotSocketpair()
		if err != nil {
			return nil, err
		}
		f.conns, f.child = append(f.conns, conn), append(f.child, theirs)
	}
	return f, nil
}

// closeChild closes the worker's ends, once it has them or has failed to
// start.
func (f *workerFiles) closeChild() {
	for _, c := range f.child {
		c.Close()
	}
	f.child = nil
}

// closeMaster closes the master's ends of a worker that failed to start.
func (f *workerFiles) closeMaster() {
	if f.control != nil {
		f.control.Close()
	}
	if f.board != nil {
		f.board.release()
	}
	if f.signal != nil {
		f.signal.Close()
	}
	for _, c := range f.conns {
		c.Close()
	}
}

// launched hands the master's ends over to the pool.
func (f *workerFiles) launched(proc process) *launched {
	return &launched{proc: proc, control: f.control, conns: f.conns, board: f.board}
}

// slotSocketpair returns the master's end of a new slot socketpair as a
// connection and the worker's end as a file to inherit.
func slotSocketpair() (*net.UnixConn, *os.File, error) {
	return unixSocketpair(unix.SOCK_STREAM, "slot")
}

// unixSocketpair returns the master's end of a new socketpair of kind
// (SOCK_STREAM, SOCK_SEQPACKET) as a connection and the other end as a file
// to inherit; name says what it is for, in errors.
func unixSocketpair(kind int, name string) (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, kind|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("server: %s socketpair: %w", name, err)
	}
	mine := os.NewFile(uintptr(fds[0]), name)
	theirs := os.NewFile(uintptr(fds[1]), name)
	c, err := net.FileConn(mine) // dups the descriptor
	mine.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("server: %s socketpair: %w", name, err)
	}
	return c.(*net.UnixConn), theirs, nil
}
