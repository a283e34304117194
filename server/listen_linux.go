// Taking over the listening socket a web server passes on fd 0 when it
// spawns its FastCGI application itself (lighttpd's bin-path, Apache's
// mod_fcgid): the FastCGI specification's FCGI_LISTENSOCK_FILENO, section 2.2;
// pointing fd 0 at /dev/null otherwise (unless --honour-stdin); and setting
// a bound socket's listen backlog (--listen).
package server

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// inheritedFastCGI returns the listening stream socket on fd 0, if fd 0 is
// one. fd 0 is then pointed at /dev/null, so the socket lives on only in
// the returned listener and nothing reads fd 0 expecting a terminal.
func inheritedFastCGI() (net.Listener, bool) {
	if !isListeningStream(0) {
		return nil, false
	}
	fd, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, false
	}
	f := os.NewFile(uintptr(fd), "fastcgi-listener")
	ln, err := net.FileListener(f) // dups fd again
	f.Close()
	if err != nil {
		return nil, false
	}
	stdinFromDevNull() // a failure leaves fd 0 a second handle on the socket, which still works
	return ln, true
}

// stdinFromDevNull points fd 0 at /dev/null, as uWSGI does unless
// --honour-stdin: a terminal or pipe the master was started from is then
// neither read nor held open by the server.
func stdinFromDevNull() error {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("server: standard input from %s: %w", os.DevNull, err)
	}
	defer devNull.Close()
	if err := unix.Dup3(int(devNull.Fd()), 0, 0); err != nil {
		return fmt.Errorf("server: standard input from %s: %w", os.DevNull, err)
	}
	return nil
}

// isListeningStream reports whether fd is a SOCK_STREAM socket in the
// listening state (SO_ACCEPTCONN, socket(7)).
func isListeningStream(fd int) bool {
	accepting, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil || accepting != 1 {
		return false
	}
	kind, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	return err == nil && kind == unix.SOCK_STREAM
}

// setBacklog sets ln's listen backlog to n when n is not 0. net.Listen uses
// the system's maximum; calling listen(2) again on a listening socket
// changes its backlog on Linux. The kernel caps n at net.core.somaxconn.
func setBacklog(ln net.Listener, n int) error {
	if n == 0 {
		return nil
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("server: a %T has no descriptor", ln)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	var listenErr error
	if err := raw.Control(func(fd uintptr) { listenErr = unix.Listen(int(fd), n) }); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if listenErr != nil {
		return fmt.Errorf("server: listen: %w", listenErr)
	}
	return nil
}
