// The connections a stopping gateway still owes an answer: those whose
// handshake the kernel completed and left in the listener's accept queue.
// Closing a listening socket resets every one of them, and their clients
// have often sent the request already: a load balancer then sees a reset
// after sending a POST, which it may not retry elsewhere, and answers 502.
// So a graceful stop first makes the kernel drop new handshakes, then
// accepts and serves what is queued, and only then closes the listener.
package gateways

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// dropAllPackets is a classic BPF program that keeps no byte of any packet
// (socket(7), SO_ATTACH_FILTER): "ret #0".
var dropAllPackets = []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

// dropNewHandshakes makes the kernel drop every packet that reaches ln
// itself: the SYN of a new connection goes unanswered, so its client sends
// it again and, once ln is closed, is refused, which a load balancer
// retries on another server, POST or not. A connection already in the
// queue is a socket of its own and keeps its packets. Unix sockets do not
// filter connection requests; their queue is served all the same.
func dropNewHandshakes(ln net.Listener) error {
	return controlListener(ln, func(fd int) error {
		prog := unix.SockFprog{Len: uint16(len(dropAllPackets)), Filter: &dropAllPackets[0]}
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
	})
}

// acceptQueued accepts the next connection in ln's accept queue without
// waiting: nil and no error when the queue is empty. It bypasses ln's
// deadline, which a stop sets in the past to wake the accept loop.
func acceptQueued(ln net.Listener) (net.Conn, error) {
	var nfd int
	err := controlListener(ln, func(fd int) error {
		var err error
		for {
			nfd, _, err = unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if !errors.Is(err, unix.EINTR) {
				return err
			}
		}
	})
	switch {
	case errors.Is(err, unix.EAGAIN):
		return nil, nil
	case err != nil:
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), "queued")
	defer f.Close()
	nc, err := net.FileConn(f) // dups the descriptor
	if err != nil {
		return nil, fmt.Errorf("gateways: a queued connection: %w", err)
	}
	return nc, nil
}

// controlListener runs fn on ln's descriptor; an error when ln has none.
func controlListener(ln net.Listener, fn func(fd int) error) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("gateways: a %T has no descriptor", ln)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("gateways: %w", err)
	}
	var fnErr error
	if err := raw.Control(func(fd uintptr) { fnErr = fn(int(fd)) }); err != nil {
		return fmt.Errorf("gateways: %w", err)
	}
	return fnErr
}
