// The master's listening sockets: which protocol each speaks, binding TCP
// and Unix sockets (replacing a stale socket file, setting its mode), the
// FastCGI socket a web server may hand over on fd 0, and removing socket
// files on exit (--vacuum), as uWSGI does.
package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Protocol names what a socket speaks.
type Protocol string

// The protocols a socket can speak.
const (
	ProtocolHTTP    Protocol = "http"
	ProtocolHTTPS   Protocol = "https"
	ProtocolUWSGI   Protocol = "uwsgi"
	ProtocolSCGI    Protocol = "scgi"
	ProtocolFastCGI Protocol = "fastcgi"
)

// Socket is one listening socket to serve.
type Socket struct {
	Protocol Protocol
	// Address is "HOST:PORT", ":PORT" (every interface), "[::1]:PORT", or
	// the path of a Unix socket: anything containing "/" or ending in
	// ".sock".
	Address string
	// CertFile and KeyFile are the PEM certificate chain and its key, for
	// ProtocolHTTPS.
	CertFile, KeyFile string
	// ProxyProtocol, for ProtocolHTTP and ProtocolHTTPS, says every
	// connection opens with a PROXY protocol header
	// (gateways/proxyproto.go).
	ProxyProtocol bool
}

// DefaultSocket is served when no socket is given and none is inherited.
var DefaultSocket = Socket{Protocol: ProtocolHTTP, Address: "127.0.0.1:8000"}

// option is the command-line option that names s, for messages.
func (s Socket) option() string {
	if s.ProxyProtocol {
		return "--proxy-protocol-socket"
	}
	return "--" + string(s.Protocol) + "-socket"
}

// isUnixPath reports whether a socket address names a Unix socket file.
func isUnixPath(addr string) bool {
	return strings.Contains(addr, "/") || strings.HasSuffix(addr, ".sock")
}

// staleCheckTimeout bounds the connection attempt that tells a stale socket
// file from a live one.
const staleCheckTimeout = time.Second

// listener is a bound socket and what it serves.
type listener struct {
	net.Listener
	socket  Socket
	path    string      // the Unix socket file this process created, or ""
	tls     *tls.Config // for an HTTPS socket: its certificate
	gateway gateway     // set by the master
	// unnamed marks a socket systemd passed that no option names, served
	// as uwsgi.
	unnamed bool
}

// bindSockets binds every socket of cfg, taking the ones systemd passed
// where their addresses match (activation_linux.go); the inherited sockets
// no option names are served as uwsgi. When cfg names no socket and none
// is inherited, the FastCGI socket on fd 0 is served, or else
// DefaultSocket. On an error nothing stays bound and the error names the
// option and the address.
func bindSockets(cfg Config) ([]*listener, error) {
	inherited, err := systemdSockets()
	if err != nil {
		return nil, err
	}
	return bindSocketsFrom(cfg, inherited)
}

// bindSocketsFrom is bindSockets with the sockets inherited from systemd.
func bindSocketsFrom(cfg Config, inherited []*inheritedSocket) ([]*listener, error) {
	sockets := cfg.Sockets
	if len(sockets) == 0 && len(inherited) == 0 {
		if ln, ok := inheritedFastCGI(); ok {
			return []*listener{{Listener: ln, socket: Socket{Protocol: ProtocolFastCGI}}}, nil
		}
		sockets = []Socket{DefaultSocket}
	}
	var bound []*listener
	fail := func(err error) ([]*listener, error) {
		closeListeners(bound, true)
		closeInherited(inherited)
		return nil, err
	}
	for _, s := range sockets {
		if ln, ok := claim(inherited, s.Address); ok {
			l, err := inheritedListener(ln, s)
			if err != nil {
				return fail(fmt.Errorf("%s %s: %w", s.option(), s.Address, err))
			}
			bound = append(bound, l)
			continue
		}
		l, err := bindSocket(s, cfg.ChmodSocket)
		if err != nil {
			return fail(fmt.Errorf("%s %s: %w", s.option(), s.Address, unwrapOpError(err)))
		}
		bound = append(bound, l)
		if err := chownSocket(l.path, cfg.ChownSocket); err != nil {
			return fail(fmt.Errorf("--chown-socket %s: %s %s: %w", cfg.ChownSocket, s.option(), s.Address, err))
		}
		if err := setBacklog(l.Listener, cfg.Listen); err != nil {
			return fail(fmt.Errorf("--listen %d: %s %s: %w", cfg.Listen, s.option(), s.Address, err))
		}
	}
	for _, s := range inherited {
		if !s.claimed {
			s.claimed = true
			bound = append(bound, &listener{Listener: s.ln, socket: Socket{Protocol: ProtocolUWSGI, Address: fdScheme + strconv.Itoa(s.fd)}, unnamed: true})
		}
	}
	return bound, nil
}

// inheritedListener serves a socket passed to the process, with s's
// protocol; its mode, owner and backlog are left as the one who bound it
// set them (systemd's SocketMode=, SocketUser=, Backlog=).
func inheritedListener(ln net.Listener, s Socket) (*listener, error) {
	config, err := socketTLS(s)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &listener{Listener: ln, socket: s, tls: config}, nil
}

// socketTLS loads an HTTPS socket's certificate; nil for other protocols.
func socketTLS(s Socket) (*tls.Config, error) {
	if s.Protocol != ProtocolHTTPS {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, err
	}
	// net/http adds "h2" and "http/1.1" to NextProtos, so ALPN negotiates
	// HTTP/2 (RFC 7301, RFC 9113 section 3.2).
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// bindSocket binds one socket; a Unix socket gets mode when it is not 0.
// An HTTPS socket's certificate is loaded first, so a bad one costs nothing.
func bindSocket(s Socket, mode fs.FileMode) (*listener, error) {
	config, err := socketTLS(s)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(s.Address, fdScheme) {
		ln, err := descriptorListener(s.Address)
		if err != nil {
			return nil, err
		}
		return &listener{Listener: ln, socket: s, tls: config}, nil
	}
	if !isUnixPath(s.Address) {
		ln, err := net.Listen("tcp", s.Address)
		if err != nil {
			return nil, err
		}
		return &listener{Listener: ln, socket: s, tls: config}, nil
	}
	ln, err := listenUnix(s.Address)
	if err != nil {
		return nil, err
	}
	l := &listener{Listener: ln, socket: s, path: s.Address, tls: config}
	if mode != 0 {
		if err := os.Chmod(s.Address, mode); err != nil {
			closeListeners([]*listener{l}, true)
			return nil, fmt.Errorf("--chmod-socket: %w", unwrapPathError(err))
		}
	}
	return l, nil
}

// chownSocket gives the Unix socket file path to owner, "USER[:GROUP]"
// (names or numbers), as uWSGI's --chown-socket does: without a group the
// file's group stays. A TCP socket (no path) or no owner is left alone.
func chownSocket(path, owner string) error {
	if path == "" || owner == "" {
		return nil
	}
	userName, groupName, hasGroup := strings.Cut(owner, ":")
	uid, err := socketOwnerID(userName, func(name string) (string, error) {
		u, err := user.Lookup(name)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	})
	if err != nil {
		return err
	}
	gid := -1
	if hasGroup {
		if gid, err = socketOwnerID(groupName, func(name string) (string, error) {
			g, err := user.LookupGroup(name)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		}); err != nil {
			return err
		}
	}
	return unwrapPathError(os.Chown(path, uid, gid))
}

// socketOwnerID resolves a user or group given by name or number; lookup
// finds a name's number.
func socketOwnerID(name string, lookup func(string) (string, error)) (int, error) {
	if id, err := strconv.Atoi(name); err == nil {
		return id, nil
	}
	id, err := lookup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(id)
}

// listenUnix listens on a Unix socket file, first removing a stale one
// that a process which died left behind. The file outlives the listener
// unless --vacuum asks otherwise, as with uWSGI.
func listenUnix(path string) (*net.UnixListener, error) {
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	ln, err := net.ListenUnix("unix", addr)
	if errors.Is(err, syscall.EADDRINUSE) && removeStale(path) {
		ln, err = net.ListenUnix("unix", addr)
	}
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	return ln, nil
}

// removeStale removes path when it is a socket file nothing listens on and
// reports whether it did. A live socket, or a file that is not a socket,
// is left alone.
func removeStale(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket {
		return false
	}
	conn, err := net.DialTimeout("unix", path, staleCheckTimeout)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED) && os.Remove(path) == nil
}

// closeListeners closes every listener and, when vacuum is set, removes the
// Unix socket files they created.
func closeListeners(ls []*listener, vacuum bool) {
	for _, l := range ls {
		l.Close()
		if vacuum && l.path != "" {
			os.Remove(l.path)
		}
	}
}

// unwrapOpError drops the "listen tcp ADDR:" and "bind:" prefixes of a
// listen error: the message names the option and address already.
func unwrapOpError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		return sys.Err
	}
	return err
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// socketURL shows a bound socket in the banner: "http://127.0.0.1:8000",
// "uwsgi:///run/app.sock" for a Unix socket.
func socketURL(l *listener) string {
	scheme := string(l.socket.Protocol) + "://"
	if l.socket.ProxyProtocol {
		scheme = string(l.socket.Protocol) + "+proxy://"
	}
	switch addr := l.Addr().(type) {
	case *net.TCPAddr:
		return scheme + displayAddr(addr)
	case *net.UnixAddr:
		if abs, err := filepath.Abs(addr.Name); err == nil {
			return scheme + abs
		}
		return scheme + addr.Name
	default:
		return scheme + addr.String()
	}
}
