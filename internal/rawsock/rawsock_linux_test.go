package rawsock

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// socketpair returns both ends of a unix socketpair of kind as
// netpoller-watched connections.
func socketpair(t *testing.T, kind int) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, kind|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		require.NoError(t, err)
		conns[i] = c.(*net.UnixConn)
		t.Cleanup(func() { conns[i].Close() })
	}
	return conns[0], conns[1]
}

func rawOf(t *testing.T, c syscall.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	return rc
}

func TestReadWaitsForBytesThenReportsTheEnd(t *testing.T) {
	a, b := socketpair(t, unix.SOCK_STREAM)
	go func() {
		time.Sleep(10 * time.Millisecond) // the read must wait in the netpoller
		b.Write([]byte("hello"))
		b.Close()
	}()
	s := NewSocket(rawOf(t, a))
	buf := make([]byte, 16)
	n, err := s.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf[:n]))
	_, err = s.Read(buf)
	assert.ErrorIs(t, err, io.EOF)
}

func TestReadKeepsTheConnectionsDeadline(t *testing.T) {
	a, _ := socketpair(t, unix.SOCK_STREAM)
	require.NoError(t, a.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := NewSocket(rawOf(t, a)).Read(make([]byte, 8))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "a read past its deadline reports a timeout: %v", err)
}

func TestReadOfAResetConnectionNamesTheCall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()
	client.(*net.TCPConn).SetLinger(0) // close sends a reset
	client.Close()
	_, err = NewSocket(rawOf(t, server.(*net.TCPConn))).Read(make([]byte, 8))
	assert.ErrorIs(t, err, syscall.ECONNRESET)
	assert.ErrorContains(t, err, "read:")
}

func TestRecvMsgTakesTheDescriptorsSentWithSendMsg(t *testing.T) {
	a, b := socketpair(t, unix.SOCK_SEQPACKET)
	f, err := os.CreateTemp(t.TempDir(), "passed")
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteString("through the descriptor")
	require.NoError(t, err)

	n, err := NewSocket(rawOf(t, a)).SendMsg([]byte("frame"), unix.UnixRights(int(f.Fd())))
	require.NoError(t, err)
	assert.Equal(t, 5, n)

	buf, oob := make([]byte, 16), make([]byte, unix.CmsgSpace(4))
	n, oobn, flags, err := NewSocket(rawOf(t, b)).RecvMsg(buf, oob)
	require.NoError(t, err)
	assert.Equal(t, "frame", string(buf[:n]))
	assert.Zero(t, flags&unix.MSG_CTRUNC)
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	fds, err := unix.ParseUnixRights(&msgs[0])
	require.NoError(t, err)
	require.Len(t, fds, 1)
	got := os.NewFile(uintptr(fds[0]), "received")
	defer got.Close()
	flag, err := unix.FcntlInt(got.Fd(), unix.F_GETFD, 0)
	require.NoError(t, err)
	assert.NotZero(t, flag&unix.FD_CLOEXEC, "a received descriptor is close-on-exec")
	text := make([]byte, 32)
	m, _ := got.ReadAt(text, 0)
	assert.Equal(t, "through the descriptor", string(text[:m]))
}

func TestRecvMsgReportsTheEnd(t *testing.T) {
	a, b := socketpair(t, unix.SOCK_STREAM)
	b.Close()
	_, _, _, err := NewSocket(rawOf(t, a)).RecvMsg(make([]byte, 8), nil)
	assert.ErrorIs(t, err, io.EOF)
}

// unpolledPair returns a seqpacket pair whose first end is a blocking-mode
// os.File, outside the netpoller, as a queue's sending end is.
func unpolledPair(t *testing.T) (*os.File, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	out := os.NewFile(uintptr(fds[0]), "out")
	t.Cleanup(func() { out.Close() })
	f := os.NewFile(uintptr(fds[1]), "in")
	c, err := net.FileConn(f)
	f.Close()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return out, c.(*net.UnixConn)
}

// fill sends 1 KiB messages on out, its send buffer made small, until the
// next would block, and returns how many went.
func fill(t *testing.T, out *os.File) int {
	t.Helper()
	require.NoError(t, unix.SetsockoptInt(int(out.Fd()), unix.SOL_SOCKET, unix.SO_SNDBUF, 4096))
	sent := 0
	for ; ; sent++ {
		err := unix.Sendmsg(int(out.Fd()), make([]byte, 1024), nil, nil, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		require.NoError(t, err)
	}
	require.Positive(t, sent)
	return sent
}

func TestSendMsgUnpolledWaitsForRoomInAFullSocket(t *testing.T) {
	out, in := unpolledPair(t)
	sent := fill(t, out)
	done := make(chan error, 1)
	go func() {
		done <- NewSocket(rawOf(t, out)).SendMsgUnpolled([]byte("last"), nil, func() bool { return false })
	}()
	select {
	case err := <-done:
		t.Fatalf("the send returned while the socket was full: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	buf := make([]byte, 2048)
	for i := 0; i < sent; i++ {
		_, err := in.Read(buf)
		require.NoError(t, err)
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the send did not go once there was room")
	}
	n, err := in.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "last", string(buf[:n]))
}

func TestSendMsgUnpolledGivesUpWhenToldToStop(t *testing.T) {
	out, _ := unpolledPair(t)
	fill(t, out)
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() { done <- NewSocket(rawOf(t, out)).SendMsgUnpolled([]byte("never"), nil, stop.Load) }()
	stop.Store(true)
	select {
	case err := <-done:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("a stopped send still waits")
	}
}

func TestSendMsgUnpolledReportsAGonePeer(t *testing.T) {
	out, in := unpolledPair(t)
	in.Close()
	err := NewSocket(rawOf(t, out)).SendMsgUnpolled([]byte("frame"), nil, func() bool { return false })
	assert.ErrorIs(t, err, syscall.EPIPE)
	assert.ErrorContains(t, err, "sendmsg:")
}

func TestAwaitReadableWaitsWithoutReading(t *testing.T) {
	a, b := socketpair(t, unix.SOCK_STREAM)
	go func() {
		time.Sleep(10 * time.Millisecond) // the wait must be in the netpoller
		b.Write([]byte("next"))
	}()
	s := NewSocket(rawOf(t, a))
	require.NoError(t, s.AwaitReadable())
	buf := make([]byte, 8)
	n, err := s.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "next", string(buf[:n]), "the wait left the bytes to be read")
}

func TestAwaitReadableKeepsTheConnectionsDeadline(t *testing.T) {
	a, _ := socketpair(t, unix.SOCK_STREAM)
	require.NoError(t, a.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	err := NewSocket(rawOf(t, a)).AwaitReadable()
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
}

// TestSocketCallsAllocateNothing: the calls are made a few times per
// request, so a call's callbacks and message header are the Socket's own.
func TestSocketCallsAllocateNothing(t *testing.T) {
	a, b := socketpair(t, unix.SOCK_SEQPACKET)
	out, in := NewSocket(rawOf(t, a)), NewSocket(rawOf(t, b))
	msg, buf, oob := []byte("request"), make([]byte, 16), make([]byte, unix.CmsgSpace(4))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := out.SendMsg(msg, nil); err != nil {
			t.Fatal(err)
		}
		if err := in.AwaitReadable(); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := in.RecvMsg(buf, oob); err != nil {
			t.Fatal(err)
		}
		if err := out.SendMsgUnpolled(msg, nil, func() bool { return false }); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
