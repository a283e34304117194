// Waiting for a TCP peer to acknowledge what was sent, before a connection
// is reset: a reset (SO_LINGER 0) discards every byte the kernel still
// holds for the peer, sent or not (RFC 9293 section 3.10.4), so resetting
// at once would cut a broken response shorter than what the app yielded.
package gateways

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// abortDrainTimeout bounds how long a broken response's connection waits
// for its peer to acknowledge the bytes before it is reset; a peer that
// reads nothing for that long loses them.
const abortDrainTimeout = 5 * time.Second

// Polling bounds of awaitAcknowledged: the queue of a live loopback or LAN
// peer empties within the first few polls.
const (
	firstAckPoll = time.Millisecond
	maxAckPoll   = 50 * time.Millisecond
)

// awaitAcknowledged returns once the peer has acknowledged every byte
// written to conn (SIOCOUTQ, tcp(7), reads 0), or after timeout, or at
// once when the queue cannot be read.
func awaitAcknowledged(conn *net.TCPConn, timeout time.Duration) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for pause := firstAckPoll; ; pause = min(2*pause, maxAckPoll) {
		queued, qerr := 0, error(nil)
		if err := raw.Control(func(fd uintptr) { queued, qerr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil ||
			qerr != nil || queued == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(pause)
	}
}
