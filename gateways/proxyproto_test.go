package gateways

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxyV2 builds a version 2 header: command, family and transport byte,
// the address block and any TLV bytes after it.
func proxyV2(command, familyTransport byte, block ...[]byte) string {
	var rest []byte
	for _, b := range block {
		rest = append(rest, b...)
	}
	head := append([]byte{}, proxyV2Signature...)
	head = append(head, 0x20|command, familyTransport)
	head = binary.BigEndian.AppendUint16(head, uint16(len(rest)))
	return string(append(head, rest...))
}

// inet4Block is 192.0.2.7:4711 → 198.51.100.1:443.
var inet4Block = []byte{192, 0, 2, 7, 198, 51, 100, 1, 0x12, 0x67, 0x01, 0xbb}

// inet6Block is [2001:db8::7]:4711 → [2001:db8::1]:443.
var inet6Block = append(append(append(
	[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7},
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
	0x12, 0x67), 0x01, 0xbb)

func TestReadProxyHeader(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		source string // "" for none: the connection's own address stands
		bad    bool
	}{
		{"v1 TCP4", "PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\n", "192.0.2.7:4711", false},
		{"v1 TCP6", "PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n", "[2001:db8::7]:4711", false},
		{"v1 UNKNOWN ignores the rest", "PROXY UNKNOWN whatever follows\r\n", "", false},
		{"v1 bare UNKNOWN", "PROXY UNKNOWN\r\n", "", false},
		{"v1 without CR", "PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\n", "", true},
		{"v1 TCP4 with IPv6 address", "PROXY TCP4 2001:db8::7 198.51.100.1 4711 443\r\n", "", true},
		{"v1 port out of range", "PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n", "", true},
		{"v1 port with a leading zero", "PROXY TCP4 192.0.2.7 198.51.100.1 04711 443\r\n", "", true},
		{"v1 missing a field", "PROXY TCP4 192.0.2.7 198.51.100.1 4711\r\n", "", true},
		{"v1 double space", "PROXY TCP4  192.0.2.7 198.51.100.1 4711 443\r\n", "", true},
		{"v1 unknown protocol", "PROXY UDP4 192.0.2.7 198.51.100.1 4711 443\r\n", "", true},
		{"v1 too long", "PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n", "", true},
		{"an HTTP request instead", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "", true},
		{"v2 PROXY TCP over IPv4", proxyV2(proxyV2Proxy, 0x11, inet4Block), "192.0.2.7:4711", false},
		{"v2 PROXY TCP over IPv6", proxyV2(proxyV2Proxy, 0x21, inet6Block), "[2001:db8::7]:4711", false},
		{"v2 TLVs are skipped", proxyV2(proxyV2Proxy, 0x11, inet4Block, []byte{0x04, 0, 2, 'h', 'i'}), "192.0.2.7:4711", false},
		{"v2 LOCAL keeps the connection's address", proxyV2(proxyV2Local, 0x00), "", false},
		{"v2 UDP keeps the connection's address", proxyV2(proxyV2Proxy, 0x12, inet4Block), "", false},
		{"v2 unix keeps the connection's address", proxyV2(proxyV2Proxy, 0x31, make([]byte, 216)), "", false},
		{"v2 short address block", proxyV2(proxyV2Proxy, 0x11, inet4Block[:8]), "", true},
		{"v2 unknown command", proxyV2(0x2, 0x11, inet4Block), "", true},
		{"v2 wrong version", strings.Replace(proxyV2(proxyV2Proxy, 0x11, inet4Block), "\x21\x11", "\x11\x11", 1), "", true},
		{"v2 bad signature", "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + string(inet4Block), "", true},
		{"v2 cut short", proxyV2(proxyV2Proxy, 0x11, inet4Block)[:20], "", true},
	}
	const request = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if !strings.HasPrefix(in, "GET") && !strings.HasSuffix(tt.name, "cut short") {
				in += request
			}
			r := bufio.NewReaderSize(strings.NewReader(in), http1ReadBuffer)
			h, err := readProxyHeader(r)
			if tt.bad {
				require.ErrorIs(t, err, errProxyHeader)
				return
			}
			require.NoError(t, err)
			if tt.source == "" {
				assert.False(t, h.source.IsValid(), "source %s", h.source)
			} else {
				assert.Equal(t, tt.source, h.source.String())
			}
			rest, err := io.ReadAll(r)
			require.NoError(t, err)
			assert.Equal(t, request, string(rest), "the header is read to its end and no further")
		})
	}
}

// TestHTTP1ProxyProtocol drives the plain HTTP server: the header's source
// becomes REMOTE_ADDR and REMOTE_PORT, a pipelined second request on the
// connection keeps it, and a connection without a header is refused.
func TestHTTP1ProxyProtocol(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name       string
		in         string
		remote     string // REMOTE_ADDR:REMOTE_PORT of both requests; "" when refused
		ownAddress bool   // the connection's own address stands
	}{
		{"v1", "PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n", "192.0.2.7:4711", false},
		{"v2", proxyV2(proxyV2Proxy, 0x21, inet6Block), "2001:db8::7:4711", false},
		{"v2 LOCAL", proxyV2(proxyV2Local, 0x00), "", true},
		{"no header", "", "", false},
		{"a bad header", "PROXY TCP4 192.0.2.7\r\n", "", false},
	}
	rec := &recorder{}
	addr := startHTTP(t, rec, HTTPOptions{ProxyProtocol: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rec.requests())
			out := exchange(t, addr, tt.in+get+get)
			seen := rec.requests()[before:]
			if tt.remote == "" && !tt.ownAddress {
				assert.Equal(t, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\nConnection: close\r\n\r\nBad Request\n", out)
				assert.Empty(t, seen)
				return
			}
			require.Len(t, seen, 2, out)
			for _, s := range seen {
				if tt.ownAddress {
					assert.Equal(t, "127.0.0.1", s.vars["REMOTE_ADDR"])
					continue
				}
				assert.Equal(t, tt.remote, s.vars["REMOTE_ADDR"]+":"+s.vars["REMOTE_PORT"])
			}
		})
	}
}

// TestHTTP1WithoutProxyProtocolRefusesAHeader: a PROXY header sent where
// none is expected is no request.
func TestHTTP1WithoutProxyProtocolRefusesAHeader(t *testing.T) {
	rec := &recorder{}
	addr := startHTTP(t, rec, HTTPOptions{})
	for _, header := range []string{"PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n", proxyV2(proxyV2Proxy, 0x11, inet4Block)} {
		out := exchange(t, addr, header+"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		assert.True(t, strings.HasPrefix(out, "HTTP/1.1 400 Bad Request\r\n"), "%q", out)
		assert.Contains(t, out, "Connection: close\r\n")
	}
	assert.Empty(t, rec.requests())
}

// selfSigned returns a TLS configuration serving a certificate for
// 127.0.0.1, and a client configuration trusting it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}}
}

// TestHTTPSProxyProtocol: on an HTTPS socket the PROXY header comes before
// the TLS handshake; its source is REMOTE_ADDR, and a connection without
// one is closed before any handshake.
func TestHTTPSProxyProtocol(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	rec := &recorder{}
	addr := startHTTP(t, rec, HTTPOptions{TLSConfig: serverTLS, ProxyProtocol: true})
	for _, header := range []string{"PROXY TCP4 192.0.2.7 127.0.0.1 4711 443\r\n", proxyV2(proxyV2Proxy, 0x11, inet4Block)} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = io.WriteString(conn, header)
		require.NoError(t, err)
		tc := tls.Client(conn, clientTLS)
		_, err = io.WriteString(tc, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		require.NoError(t, err)
		out, err := io.ReadAll(tc)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(out), "HTTP/1.1 200 OK\r\n"), "%q", out)
		tc.Close()
	}
	seen := rec.requests()
	require.Len(t, seen, 2)
	for _, s := range seen {
		assert.Equal(t, "192.0.2.7:4711", s.vars["REMOTE_ADDR"]+":"+s.vars["REMOTE_PORT"])
		assert.Equal(t, "https", s.vars["wsgi.url_scheme"])
	}

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	assert.Error(t, tls.Client(conn, clientTLS).Handshake(), "a handshake without a PROXY header first is not answered")
	assert.Len(t, rec.requests(), 2)
}
