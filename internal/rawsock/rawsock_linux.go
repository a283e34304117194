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
//
// A Socket binds its callbacks to the RawConn once, so a call allocates
// nothing: these calls are made a few times per request.
package rawsock

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket makes raw calls on one socket, for one goroutine at a time. Its
// zero value is unusable; Reset gives it a socket.
type Socket struct {
	rc syscall.RawConn

	// One call's arguments and outcome, which the bound callbacks use.
	p       []byte
	msg     unix.Msghdr
	iov     unix.Iovec
	n       int
	errno   syscall.Errno
	waited  bool
	stop    func() bool
	stopped bool

	read, recvmsg, sendmsg, await func(fd uintptr) bool
	sendUnpolled                  func(fd uintptr)
}

// NewSocket returns a Socket for rc.
func NewSocket(rc syscall.RawConn) *Socket {
	s := &Socket{}
	s.Reset(rc)
	return s
}

// Reset makes s a Socket for rc (nil: none, for reuse later).
func (s *Socket) Reset(rc syscall.RawConn) {
	s.rc = rc
	if s.read == nil {
		s.read, s.recvmsg, s.sendmsg, s.await = s.readOnce, s.recvmsgOnce, s.sendmsgOnce, s.awaitOnce
		s.sendUnpolled = s.sendUnpolledLoop
	}
}

// Read reads from the socket into p, waiting in the netpoller while none
// is ready. It returns io.EOF when the peer has closed.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.p = p
	err := s.rc.Read(s.read)
	s.p = nil
	return result("read", s.n, s.errno, err, true)
}

func (s *Socket) readOnce(fd uintptr) bool {
	s.n, s.errno = retrying(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&s.p[0])), uintptr(len(s.p)))
	return s.errno != syscall.EAGAIN
}

// AwaitReadable waits in the netpoller until the socket reports readiness
// (or its read deadline passes), without reading: for a caller that knows
// the socket is empty, which saves the read that would fail with EAGAIN
// before the wait. A readiness event left from earlier returns at once.
func (s *Socket) AwaitReadable() error {
	s.waited = false
	return s.rc.Read(s.await)
}

func (s *Socket) awaitOnce(uintptr) bool {
	done := s.waited
	s.waited = true
	return done
}

// RecvMsg reads one message (or stream bytes) and its control data from
// the socket, as recvmsg(2) with MSG_CMSG_CLOEXEC, waiting in the
// netpoller while none is ready. It returns io.EOF when the peer has
// closed; flags are the message's (MSG_CTRUNC when oob was too small).
func (s *Socket) RecvMsg(p, oob []byte) (n, oobn, flags int, err error) {
	s.setMsg(p, oob)
	rerr := s.rc.Read(s.recvmsg)
	n, err = result("recvmsg", s.n, s.errno, rerr, len(p) > 0)
	if err == nil {
		oobn, flags = int(s.msg.Controllen), int(s.msg.Flags)
	}
	s.clearMsg()
	return n, oobn, flags, err
}

func (s *Socket) recvmsgOnce(fd uintptr) bool {
	s.n, s.errno = retrying(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.msg)), unix.MSG_CMSG_CLOEXEC)
	return s.errno != syscall.EAGAIN
}

// SendMsg writes p with the control data oob (descriptors, say) to the
// socket as one sendmsg(2), waiting in the netpoller while the socket is
// full. It returns how many bytes of p went; on a stream socket the rest
// is the caller's to send.
func (s *Socket) SendMsg(p, oob []byte) (int, error) {
	s.setMsg(p, oob)
	err := s.rc.Write(s.sendmsg)
	s.clearMsg()
	return result("sendmsg", s.n, s.errno, err, false)
}

func (s *Socket) sendmsgOnce(fd uintptr) bool {
	s.n, s.errno = retrying(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.msg)), unix.MSG_NOSIGNAL)
	return s.errno != syscall.EAGAIN
}

// SendMsgUnpolled sends p with oob as one message on the socket, one that
// Go's netpoller does not watch (a blocking-mode os.File): with
// MSG_DONTWAIT, and while the socket is full it waits with poll(2), asking
// stop between waits whether to give up (then net.ErrClosed). On a
// datagram or seqpacket socket a message goes whole or not at all.
func (s *Socket) SendMsgUnpolled(p, oob []byte, stop func() bool) error {
	s.setMsg(p, oob)
	s.stop, s.stopped = stop, false
	err := s.rc.Control(s.sendUnpolled)
	s.stop = nil
	s.clearMsg()
	switch {
	case err != nil:
		return err
	case s.stopped:
		return net.ErrClosed
	case s.errno != 0:
		return os.NewSyscallError("sendmsg", s.errno)
	}
	return nil
}

func (s *Socket) sendUnpolledLoop(fd uintptr) {
	for {
		_, s.errno = retrying(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.msg)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if s.errno != syscall.EAGAIN {
			return
		}
		if s.stopped = s.stop(); s.stopped {
			return
		}
		// A full queue waits on its readers: an ordinary,
		// scheduler-aware poll, bounded so that stop is asked again.
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, fullWaitMillis)
	}
}

// fullWaitMillis bounds one wait of SendMsgUnpolled on a full socket.
const fullWaitMillis = 50

// setMsg points the message header at p and the control data oob.
func (s *Socket) setMsg(p, oob []byte) {
	s.msg = unix.Msghdr{}
	if len(p) > 0 {
		s.iov = unix.Iovec{Base: &p[0]}
		s.iov.SetLen(len(p))
		s.msg.Iov, s.msg.Iovlen = &s.iov, 1
	}
	if len(oob) > 0 {
		s.msg.Control = &oob[0]
		s.msg.SetControllen(len(oob))
	}
}

// clearMsg lets go of the caller's buffers.
func (s *Socket) clearMsg() {
	s.iov = unix.Iovec{}
	s.msg.Iov, s.msg.Control = nil, nil
}

// retrying makes a raw call, again while a signal interrupts it. On a
// non-blocking socket that cannot really happen; it is handled all the
// same, since a raw call is not restarted for us.
func retrying(trap, a1, a2, a3 uintptr) (int, syscall.Errno) {
	for {
		r, _, errno := unix.RawSyscall(trap, a1, a2, a3)
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
