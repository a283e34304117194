// The PROXY protocol, versions 1 (text) and 2 (binary), which HAProxy and
// cloud load balancers send at the start of a connection to say whom they
// are passing it on for: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
// An HTTP socket switched to it (--enable-proxy-protocol) reads one header
// before the first request and takes REMOTE_ADDR and REMOTE_PORT from it;
// an HTTPS socket reads it before the TLS handshake (proxyListener).
package gateways

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// proxyV2Signature opens every version 2 header (section 2.2).
var proxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// The parts of a version 2 header (section 2.2).
const (
	proxyV2FixedLen = 16 // signature, version and command, family, length
	proxyV2Version  = 0x20
	proxyV2Local    = 0x00 // the proxy's own connection (a health check)
	proxyV2Proxy    = 0x01
	proxyV2Inet     = 0x1 // family nibble: IPv4
	proxyV2Inet6    = 0x2 // IPv6
	proxyV2Stream   = 0x1 // transport nibble: TCP
	proxyV2Inet4Len = 12  // two IPv4 addresses and two ports
	proxyV2Inet6Len = 36  // two IPv6 addresses and two ports
)

// proxyV1MaxLen is the longest version 1 line, CRLF included (section 2.1).
const proxyV1MaxLen = 107

// proxyHeader is what a PROXY header says of the connection. A header that
// names no addresses (v1 UNKNOWN, v2 LOCAL or an unspecified family) has
// the zero source: the connection's own addresses stand.
type proxyHeader struct {
	source netip.AddrPort
}

// errProxyHeader is wrapped by every refusal of a PROXY header.
var errProxyHeader = errors.New("gateways: bad PROXY protocol header")

// readProxyHeader reads the PROXY header that must open the connection r
// reads, version 1 or 2, and nothing past it.
func readProxyHeader(r *bufio.Reader) (proxyHeader, error) {
	first, err := r.Peek(1)
	if err != nil {
		return proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	if first[0] == proxyV2Signature[0] {
		return readProxyV2(r)
	}
	return readProxyV1(r)
}

// readProxyV1 reads "PROXY TCP4|TCP6 SRC DST SRCPORT DSTPORT\r\n" or
// "PROXY UNKNOWN ...\r\n" (section 2.1).
func readProxyV1(r *bufio.Reader) (proxyHeader, error) {
	line, err := r.ReadSlice('\n')
	if len(line) > proxyV1MaxLen {
		return proxyHeader{}, fmt.Errorf("%w: a version 1 line longer than %d bytes", errProxyHeader, proxyV1MaxLen)
	}
	if err != nil {
		return proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return proxyHeader{}, fmt.Errorf("%w: a version 1 line must end in CRLF", errProxyHeader)
	}
	fields := bytes.Split(body, []byte(" "))
	if string(fields[0]) != "PROXY" || len(fields) < 2 {
		return proxyHeader{}, fmt.Errorf("%w: the connection does not open with PROXY", errProxyHeader)
	}
	switch string(fields[1]) {
	case "UNKNOWN":
		return proxyHeader{}, nil // the rest of the line is to be ignored
	case "TCP4", "TCP6":
	default:
		return proxyHeader{}, fmt.Errorf("%w: unknown protocol %q", errProxyHeader, fields[1])
	}
	if len(fields) != 6 {
		return proxyHeader{}, fmt.Errorf("%w: a TCP line has 6 fields, not %d", errProxyHeader, len(fields))
	}
	src, err := proxyV1Address(fields[2], fields[4], string(fields[1]) == "TCP6")
	if err != nil {
		return proxyHeader{}, err
	}
	if _, err := proxyV1Address(fields[3], fields[5], string(fields[1]) == "TCP6"); err != nil {
		return proxyHeader{}, err
	}
	return proxyHeader{source: src}, nil
}

// proxyV1Address reads one address and port of a version 1 line: the
// address of the family the line names, the port a decimal 0 to 65535
// without a leading zero.
func proxyV1Address(addr, port []byte, six bool) (netip.AddrPort, error) {
	ip, err := netip.ParseAddr(string(addr))
	if err != nil || ip.Is6() != six || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%w: bad address %q", errProxyHeader, addr)
	}
	n, err := strconv.ParseUint(string(port), 10, 16)
	if err != nil || (len(port) > 1 && port[0] == '0') {
		return netip.AddrPort{}, fmt.Errorf("%w: bad port %q", errProxyHeader, port)
	}
	return netip.AddrPortFrom(ip, uint16(n)), nil
}

// readProxyV2 reads a binary header (section 2.2): the fixed part, the
// addresses, and the TLVs after them, which are skipped.
func readProxyV2(r *bufio.Reader) (proxyHeader, error) {
	fixed, err := r.Peek(proxyV2FixedLen)
	if err != nil {
		return proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	if !bytes.Equal(fixed[:len(proxyV2Signature)], proxyV2Signature) {
		return proxyHeader{}, fmt.Errorf("%w: the connection does not open with a PROXY signature", errProxyHeader)
	}
	versionCommand, familyTransport := fixed[12], fixed[13]
	length := int(binary.BigEndian.Uint16(fixed[14:16]))
	if versionCommand&0xF0 != proxyV2Version {
		return proxyHeader{}, fmt.Errorf("%w: version %d", errProxyHeader, versionCommand>>4)
	}
	command := versionCommand & 0x0F
	if command != proxyV2Local && command != proxyV2Proxy {
		return proxyHeader{}, fmt.Errorf("%w: command %d", errProxyHeader, command)
	}
	var h proxyHeader
	if command == proxyV2Proxy && familyTransport&0x0F == proxyV2Stream {
		if h, err = proxyV2Source(r, familyTransport>>4, length); err != nil {
			return proxyHeader{}, err
		}
	}
	// LOCAL, an unspecified family or transport, a Unix one: the
	// connection's own addresses stand (section 2.2), and the block is
	// skipped, TLVs and all.
	if _, err := r.Discard(proxyV2FixedLen + length); err != nil {
		return proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	return h, nil
}

// proxyV2Source reads the source address of a TCP over IPv4 or IPv6 block
// of length bytes; other families carry no address gowsgi uses.
func proxyV2Source(r *bufio.Reader, family byte, length int) (proxyHeader, error) {
	var addrLen int
	switch family {
	case proxyV2Inet:
		addrLen = proxyV2Inet4Len
	case proxyV2Inet6:
		addrLen = proxyV2Inet6Len
	default:
		return proxyHeader{}, nil
	}
	if length < addrLen {
		return proxyHeader{}, fmt.Errorf("%w: %d address bytes, fewer than the family's %d", errProxyHeader, length, addrLen)
	}
	block, err := r.Peek(proxyV2FixedLen + addrLen)
	if err != nil {
		return proxyHeader{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	addrs := block[proxyV2FixedLen:]
	size := addrLen/2 - 2 // one address: the block holds two, then two ports
	ip, _ := netip.AddrFromSlice(addrs[:size])
	ip = ip.Unmap() // an IPv4 client shows as one, however the proxy sent it
	port := binary.BigEndian.Uint16(addrs[2*size:])
	return proxyHeader{source: netip.AddrPortFrom(ip, port)}, nil
}

// proxyListener hands out connections that read their PROXY header
// before anything else, for net/http's HTTPS server, where the header
// comes before the TLS handshake. The header is read in the connection's
// own goroutine (net/http asks RemoteAddr there first), never in Accept,
// so a slow proxy holds no other connection back.
type proxyListener struct {
	net.Listener
	timeout time.Duration
	log     *slog.Logger
}

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &proxyConn{Conn: c, timeout: l.timeout, log: l.log}, nil
}

// proxyConn is a connection whose PROXY header is read on first use.
// A connection without a valid one is closed: before TLS, no HTTP answer
// can reach the client.
type proxyConn struct {
	net.Conn
	timeout time.Duration
	log     *slog.Logger
	once    sync.Once
	r       *bufio.Reader // what came after the header, then the connection
	remote  net.Addr
	err     error
}

// readHeader reads the header once, within the timeout.
func (c *proxyConn) readHeader() error {
	c.once.Do(func() {
		c.remote = c.Conn.RemoteAddr()
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
		defer c.Conn.SetReadDeadline(time.Time{})
		c.r = bufio.NewReaderSize(c.Conn, proxyHeaderBuffer)
		h, err := readProxyHeader(c.r)
		if err != nil {
			c.log.Debug("request refused", "protocol", "https", "remote", c.remote.String(), "error", err)
			c.err = err
			c.Conn.Close()
			return
		}
		if h.source.IsValid() {
			c.remote = net.TCPAddrFromAddrPort(h.source)
		}
	})
	return c.err
}

// proxyHeaderBuffer holds a header (v2 TLVs past it are discarded through
// it) and the start of the TLS handshake after it.
const proxyHeaderBuffer = 1 << 10

func (c *proxyConn) Read(p []byte) (int, error) {
	if err := c.readHeader(); err != nil {
		return 0, err
	}
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the header's source, or the peer's own address for a
// header that names none.
func (c *proxyConn) RemoteAddr() net.Addr {
	c.readHeader()
	return c.remote
}
