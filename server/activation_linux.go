// Listening sockets handed over rather than bound: systemd's socket
// activation (sd_listen_fds(3): LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES
// name the descriptors from 3 on) and uWSGI's "fd://N" addresses. A socket
// option whose address matches an inherited socket takes it instead of
// binding, so one command line serves with and without activation; the
// inherited sockets no option names are served with the uwsgi protocol, as
// uWSGI serves them (its uwsgi_setup_systemd adds each as a plain socket).
package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
)

// fdScheme starts an address that names a descriptor, as in uWSGI:
// "fd://3", or with systemd, the socket unit's FileDescriptorName=.
const fdScheme = "fd://"

// inheritedSocket is one listening socket passed by systemd.
type inheritedSocket struct {
	fd      int
	name    string // FileDescriptorName=, or LISTEN_FD_<fd> without one
	ln      net.Listener
	claimed bool // a socket option serves it
}

// systemdSockets takes the sockets systemd passed to this process, and
// removes the LISTEN_* variables so the workers do not see them.
func systemdSockets() ([]*inheritedSocket, error) {
	var sockets []*inheritedSocket
	for _, f := range activation.Files(true) {
		fd := int(f.Fd())
		ln, err := net.FileListener(f) // dups the descriptor
		f.Close()
		if err != nil {
			closeInherited(sockets)
			return nil, fmt.Errorf("server: inherited descriptor %d (%s) is not a listening socket: %w", fd, f.Name(), err)
		}
		sockets = append(sockets, &inheritedSocket{fd: fd, name: f.Name(), ln: ln})
	}
	return sockets, nil
}

func closeInherited(sockets []*inheritedSocket) {
	for _, s := range sockets {
		if !s.claimed {
			s.ln.Close()
		}
	}
}

// matches reports whether the socket is the one addr names: "fd://N" or
// "fd://NAME", or the same TCP address (any wildcard address matches any
// other, as ":8000" does both) or Unix socket path.
func (s *inheritedSocket) matches(addr string) bool {
	if ref, ok := strings.CutPrefix(addr, fdScheme); ok {
		return ref == strconv.Itoa(s.fd) || ref == s.name
	}
	switch own := s.ln.Addr().(type) {
	case *net.UnixAddr:
		if !isUnixPath(addr) {
			return false
		}
		if strings.HasPrefix(addr, "@") || strings.HasPrefix(own.Name, "@") {
			return addr == own.Name
		}
		want, err1 := filepath.Abs(addr)
		have, err2 := filepath.Abs(own.Name)
		return err1 == nil && err2 == nil && want == have
	case *net.TCPAddr:
		if isUnixPath(addr) {
			return false
		}
		want, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil || want.Port != own.Port {
			return false
		}
		wildcard := func(ip net.IP) bool { return ip == nil || ip.IsUnspecified() }
		return wildcard(want.IP) && wildcard(own.IP) || want.IP.Equal(own.IP)
	}
	return false
}

// claim returns the inherited socket addr names, marking it served.
func claim(inherited []*inheritedSocket, addr string) (net.Listener, bool) {
	for _, s := range inherited {
		if !s.claimed && s.matches(addr) {
			s.claimed = true
			return s.ln, true
		}
	}
	return nil, false
}

// descriptorListener serves "fd://N" when N is no systemd socket: any
// listening stream socket the process was started with, as uWSGI allows.
func descriptorListener(addr string) (net.Listener, error) {
	fd, err := strconv.Atoi(strings.TrimPrefix(addr, fdScheme))
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("server: no inherited socket is named %q", strings.TrimPrefix(addr, fdScheme))
	}
	if !isListeningStream(fd) {
		return nil, fmt.Errorf("server: descriptor %d is not a listening stream socket", fd)
	}
	f := os.NewFile(uintptr(fd), addr)
	defer f.Close() // FileListener has its own copy
	return net.FileListener(f)
}
