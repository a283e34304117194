// Package rawsock reads and writes the master's non-blocking sockets with
// raw system calls, which do not tell the Go scheduler a call is under way.
//
// Why: every ordinary system call (entersyscall) wakes the runtime's
// monitor thread (sysmon) if it slept, and it sleeps whenever the master
// has been idle. With one connection in flight the master idles between
// every two requests, so each request paid a futex wake of sysmon, then
// sysmon's 20 µs polling while the request ran, about ten context
// switches a request on a machine whose CPUs the workers need (perf,
// hello at 1 connection: sysmon's futex, nanosleep and sched_yield were
// 98,000 context switches a second at 8,400 req/s). The calls here are on
// non-blocking sockets, so they never block and the scheduler has nothing
// to learn from them; waiting for readiness is still the netpoller's, with
// the descriptor's deadlines, through syscall.RawConn.
package rawsock

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read reads from rc's socket into p, waiting in the netpoller while none
// is ready. It returns io.EOF when the peer has closed.
func Read(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := rc.Read(func(fd uintptr) bool {
		n, errno = retrying(func() (uintptr, syscall.Errno) {
			r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			return r, e
		})
		return errno != syscall.EAGAIN
	})
	return result("read", n, errno, err, true)
}

// AwaitReadable waits in the netpoller until rc's socket reports readiness
// (or its read deadline passes), without reading: for a caller that knows
// the socket is empty, which saves the read that would fail with EAGAIN
// before the wait. A readiness event left from earlier returns at once.
func AwaitReadable(rc syscall.RawConn) error {
	waited := false
	return rc.Read(func(uintptr) bool {
		done := waited
		waited = true
		return done
	})
}

// RecvMsg reads one message (or stream bytes) and its control data from
// rc's socket, as recvmsg(2) with MSG_CMSG_CLOEXEC, waiting in the
// netpoller while none is ready. It returns io.EOF when the peer has
// closed; flags are the message's (MSG_CTRUNC when oob was too small).
func RecvMsg(rc syscall.RawConn, p, oob []byte) (n, oobn, flags int, err error) {
	msg := newMsghdr(p, oob)
	var errno syscall.Errno
	rerr := rc.Read(func(fd uintptr) bool {
		n, errno = retrying(func() (uintptr, syscall.Errno) {
			r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_CMSG_CLOEXEC)
			return r, e
		})
		return errno != syscall.EAGAIN
	})
	n, err = result("recvmsg", n, errno, rerr, len(p) > 0)
	if err == nil {
		oobn, flags = int(msg.Controllen), int(msg.Flags)
	}
	return n, oobn, flags, err
}

// SendMsg writes p with the control data oob (descriptors, say) to rc's
// socket as one sendmsg(2), waiting in the netpoller while the socket is
// full. It returns how many bytes of p went; on a stream socket the rest is
// the caller's to send.
func SendMsg(rc syscall.RawConn, p, oob []byte) (int, error) {
	msg := newMsghdr(p, oob)
	var n int
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		n, errno = retrying(func() (uintptr, syscall.Errno) {
			r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL)
			return r, e
		})
		return errno != syscall.EAGAIN
	})
	return result("sendmsg", n, errno, err, false)
}

// SendMsgUnpolled sends p with oob as one message on rc, a socket that Go's
// netpoller does not watch (a blocking-mode os.File): with MSG_DONTWAIT,
// and while the socket is full it waits with poll(2), asking stop between
// waits whether to give up (then net.ErrClosed). On a datagram or
// seqpacket socket a message goes whole or not at all.
func SendMsgUnpolled(rc syscall.RawConn, p, oob []byte, stop func() bool) error {
	msg := newMsghdr(p, oob)
	var errno syscall.Errno
	stopped := false
	err := rc.Control(func(fd uintptr) {
		for {
			_, errno = retrying(func() (uintptr, syscall.Errno) {
				r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
				return r, e
			})
			if errno != syscall.EAGAIN {
				return
			}
			if stopped = stop(); stopped {
				return
			}
			// A full queue waits on its readers: an ordinary,
			// scheduler-aware poll, bounded so that stop is asked again.
			unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, fullWaitMillis)
		}
	})
	switch {
	case err != nil:
		return err
	case stopped:
		return net.ErrClosed
	case errno != 0:
		return os.NewSyscallError("sendmsg", errno)
	}
	return nil
}

// fullWaitMillis bounds one wait of SendMsgUnpolled on a full socket.
const fullWaitMillis = 50

// newMsghdr returns a message header for p and the control data oob.
func newMsghdr(p, oob []byte) unix.Msghdr {
	var msg unix.Msghdr
	if len(p) > 0 {
		iov := &unix.Iovec{Base: &p[0]}
		iov.SetLen(len(p))
		msg.Iov, msg.Iovlen = iov, 1
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	return msg
}

// retrying makes a call again while a signal interrupted it. On a
// non-blocking socket that cannot really happen; it is handled all the
// same, since a raw call is not restarted for us.
func retrying(call func() (uintptr, syscall.Errno)) (int, syscall.Errno) {
	for {
		r, errno := call()
		if errno != syscall.EINTR {
			if errno != 0 {
				return 0, errno
			}
			return int(r), 0
		}
	}
}

// result turns a raw call's outcome into Go's: the RawConn's own error
// (a deadline, a closed descriptor) first, then the call's errno, then a
// read of nothing from a stream as io.EOF.
func result(call string, n int, errno syscall.Errno, rawErr error, zeroIsEOF bool) (int, error) {
	switch {
	case rawErr != nil:
		return 0, rawErr
	case errno != 0:
		return 0, os.NewSyscallError(call, errno)
	case n == 0 && zeroIsEOF:
		return 0, io.EOF
	}
	return n, nil
}
