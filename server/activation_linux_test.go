package server

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInheritedSocketMatches(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tcp.Close()
	port := tcp.Addr().(*net.TCPAddr).Port
	wild, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer wild.Close()
	wildPort := wild.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	path := filepath.Join(dir, "app.sock")
	unix, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer unix.Close()

	loopback := &inheritedSocket{fd: 3, name: "web", ln: tcp}
	wildcard := &inheritedSocket{fd: 4, name: "LISTEN_FD_4", ln: wild}
	file := &inheritedSocket{fd: 5, name: "app", ln: unix}
	tests := []struct {
		s    *inheritedSocket
		addr string
		want bool
	}{
		{loopback, "127.0.0.1:" + itoa(port), true},
		{loopback, "localhost:" + itoa(port), true},
		{loopback, "127.0.0.2:" + itoa(port), false},
		{loopback, ":" + itoa(port), false},
		{loopback, "fd://3", true},
		{loopback, "fd://web", true},
		{loopback, "fd://4", false},
		{wildcard, ":" + itoa(wildPort), true},
		{wildcard, "0.0.0.0:" + itoa(wildPort), true},
		{wildcard, "[::]:" + itoa(wildPort), true},
		{wildcard, "127.0.0.1:" + itoa(wildPort), false},
		{file, path, true},
		{file, filepath.Join(dir, ".", "app.sock"), true},
		{file, filepath.Join(dir, "other.sock"), false},
		{file, "127.0.0.1:" + itoa(port), false},
		{file, "fd://app", true},
		{loopback, path, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.s.matches(tt.addr), "fd %d (%s) and %q", tt.s.fd, tt.s.ln.Addr(), tt.addr)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
