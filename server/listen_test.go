package server

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestBindUnixSocket(t *testing.T) {
	tests := []struct {
		name     string
		chmod    fs.FileMode
		wantMode fs.FileMode // 0: whatever the umask gave
	}{
		{name: "no --chmod-socket"},
		{name: "--chmod-socket 666", chmod: 0o666, wantMode: 0o666},
		{name: "--chmod-socket=600", chmod: 0o600, wantMode: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.sock")
			ls, err := bindSockets(Config{Sockets: []Socket{{Protocol: ProtocolUWSGI, Address: path}}, ChmodSocket: tt.chmod})
			require.NoError(t, err)
			require.Len(t, ls, 1)
			fi, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, fs.ModeSocket, fi.Mode().Type())
			if tt.wantMode != 0 {
				assert.Equal(t, tt.wantMode, fi.Mode().Perm())
			}
			assert.Equal(t, "uwsgi://"+path, socketURL(ls[0]))

			closeListeners(ls, false)
			assert.FileExists(t, path, "without --vacuum the socket file stays, as with uWSGI")
		})
	}
}

func TestVacuumRemovesSocketFiles(t *testing.T) {
	dir := t.TempDir()
	sockets := []Socket{
		{Protocol: ProtocolSCGI, Address: filepath.Join(dir, "a.sock")},
		{Protocol: ProtocolHTTP, Address: "127.0.0.1:0"},
		{Protocol: ProtocolFastCGI, Address: filepath.Join(dir, "b.sock")},
	}
	ls, err := bindSockets(Config{Sockets: sockets})
	require.NoError(t, err)
	require.Len(t, ls, 3)
	closeListeners(ls, true)
	assert.NoFileExists(t, filepath.Join(dir, "a.sock"))
	assert.NoFileExists(t, filepath.Join(dir, "b.sock"))
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.sock")
	// A socket file whose listener is gone, as a killed process leaves it.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	old.SetUnlinkOnClose(false)
	require.NoError(t, old.Close())
	require.FileExists(t, path)

	ls, err := bindSockets(Config{Sockets: []Socket{{Protocol: ProtocolUWSGI, Address: path}}})
	require.NoError(t, err)
	defer closeListeners(ls, true)
	conn, err := net.Dial("unix", path)
	require.NoError(t, err, "the new listener must own the path")
	conn.Close()
}

func TestBindErrors(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	liveLn, err := net.Listen("unix", live)
	require.NoError(t, err)
	defer liveLn.Close()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	regular := filepath.Join(dir, "file.sock")
	require.NoError(t, os.WriteFile(regular, []byte("keep me"), 0o644))

	tests := []struct {
		name   string
		socket Socket
		want   string
		prefix bool // want is the start of the message, the rest is the resolver's
	}{
		{"a live Unix socket is not taken over", Socket{Protocol: ProtocolUWSGI, Address: live},
			"--uwsgi-socket " + live + ": address already in use", false},
		{"a file that is not a socket is not removed", Socket{Protocol: ProtocolSCGI, Address: regular},
			"--scgi-socket " + regular + ": address already in use", false},
		{"a missing directory", Socket{Protocol: ProtocolFastCGI, Address: dir + "/no/such/dir.sock"},
			"--fastcgi-socket " + dir + "/no/such/dir.sock: no such file or directory", false},
		{"a TCP port in use", Socket{Protocol: ProtocolHTTP, Address: busy.Addr().String()},
			"--http-socket " + busy.Addr().String() + ": address already in use", false},
		{"a host that is not an address", Socket{Protocol: ProtocolHTTP, Address: "nohost:x"},
			"--http-socket nohost:x: ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := filepath.Join(dir, "first.sock")
			// The socket bound before the failing one must not stay bound.
			_, err := bindSockets(Config{Sockets: []Socket{{Protocol: ProtocolUWSGI, Address: first}, tt.socket}})
			require.Error(t, err)
			if tt.prefix {
				assert.True(t, strings.HasPrefix(err.Error(), tt.want), err.Error())
			} else {
				assert.Equal(t, tt.want, err.Error())
			}
			assert.NoFileExists(t, first)
		})
	}
	data, err := os.ReadFile(regular)
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(data))
}

func TestNoSocketMeansDefault(t *testing.T) {
	// fd 0 of a test run is not a listening socket, so the default applies
	// (it may be taken on a busy machine; only its address matters here).
	ls, err := bindSockets(Config{})
	if err != nil {
		assert.Contains(t, err.Error(), "--http-socket 127.0.0.1:8000: ")
		return
	}
	defer closeListeners(ls, false)
	require.Len(t, ls, 1)
	assert.Equal(t, "http://127.0.0.1:8000", socketURL(ls[0]))
}

// TestInheritedFastCGI puts a listening socket on fd 0 of the test process,
// as lighttpd's bin-path does for the process it spawns, and restores fd 0
// afterwards.
func TestInheritedFastCGI(t *testing.T) {
	saved, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 3)
	require.NoError(t, err)
	defer func() {
		require.NoError(t, unix.Dup3(saved, 0, 0))
		unix.Close(saved)
	}()

	path := filepath.Join(t.TempDir(), "fcgi.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()
	f, err := ln.(*net.UnixListener).File()
	require.NoError(t, err)
	require.NoError(t, unix.Dup3(int(f.Fd()), 0, 0))
	f.Close()

	ls, err := bindSockets(Config{})
	require.NoError(t, err)
	defer closeListeners(ls, true)
	require.Len(t, ls, 1)
	assert.Equal(t, ProtocolFastCGI, ls[0].socket.Protocol)
	assert.Equal(t, "fastcgi://"+path, socketURL(ls[0]))
	assert.False(t, isListeningStream(0), "fd 0 must no longer hold the socket")
	assert.FileExists(t, path, "an inherited socket's file belongs to the web server, not to --vacuum")

	conn, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer conn.Close()
	accepted, err := ls[0].Accept()
	require.NoError(t, err, "the inherited listener must accept")
	accepted.Close()
}

func TestIsListeningStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	lf, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	defer lf.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	cf, err := conn.(*net.TCPConn).File()
	require.NoError(t, err)
	defer cf.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer udp.Close()
	uf, err := udp.(*net.UDPConn).File()
	require.NoError(t, err)
	defer uf.Close()
	plain, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer plain.Close()

	assert.True(t, isListeningStream(int(lf.Fd())), "a listening TCP socket")
	assert.False(t, isListeningStream(int(cf.Fd())), "a connected socket")
	assert.False(t, isListeningStream(int(uf.Fd())), "a datagram socket")
	assert.False(t, isListeningStream(int(plain.Fd())), "not a socket")
}
