// The proxies whose X-Forwarded-For and X-Forwarded-Proto are believed
// (--forwarded-allow-ips, Gunicorn's name). A request from one of them gets
// REMOTE_ADDR from X-Forwarded-For and wsgi.url_scheme from
// X-Forwarded-Proto; from any other peer those headers are only HTTP_*
// variables, since any client can send them.
package gateways

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ForwardedAllow is a set of trusted proxies. The nil *ForwardedAllow
// trusts no one.
type ForwardedAllow struct {
	any      bool // "*": every peer
	unix     bool // "unix": peers on Unix sockets, which have no address
	prefixes []netip.Prefix
}

// ParseForwardedAllow reads --forwarded-allow-ips values: each a
// comma-separated list of addresses, CIDR prefixes, "unix" (every peer of
// a Unix socket) or "*" (every peer).
func ParseForwardedAllow(values []string) (*ForwardedAllow, error) {
	if len(values) == 0 {
		return nil, nil
	}
	f := &ForwardedAllow{}
	for _, value := range values {
		for item := range strings.SplitSeq(value, ",") {
			if err := f.add(strings.TrimSpace(item)); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

var errForwardedAllow = errors.New("--forwarded-allow-ips")

// add adds one item of the list.
func (f *ForwardedAllow) add(item string) error {
	switch {
	case item == "":
		return nil
	case item == "*":
		f.any = true
		return nil
	case item == "unix":
		f.unix = true
		return nil
	case strings.Contains(item, "/"):
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return fmt.Errorf("%w: %q is not a CIDR prefix such as 10.0.0.0/8: %w", errForwardedAllow, item, err)
		}
		f.prefixes = append(f.prefixes, p.Masked())
		return nil
	}
	a, err := netip.ParseAddr(item)
	if err != nil {
		return fmt.Errorf("%w: %q is not an address, a CIDR prefix, unix or *", errForwardedAllow, item)
	}
	f.prefixes = append(f.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	return nil
}

// trustsPeer reports whether a connection's peer, as REMOTE_ADDR shows it
// ("" for a Unix socket's), is trusted.
func (f *ForwardedAllow) trustsPeer(remote string) bool {
	if f == nil {
		return false
	}
	if f.any {
		return true
	}
	a, err := netip.ParseAddr(remote)
	if err != nil {
		return f.unix && (remote == "" || remote == "@")
	}
	return f.trustsAddr(a)
}

func (f *ForwardedAllow) trustsAddr(a netip.Addr) bool {
	if f.any {
		return true
	}
	a = a.Unmap()
	for _, p := range f.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor picks the client out of X-Forwarded-For's hops: each proxy
// appends the peer it saw, so from the right, the first hop that is not
// itself a trusted proxy is the client; behind "*" that is the leftmost.
// A hop that is not an address ends the walk, since whoever wrote it
// cannot be trusted for what lies left of it. ok is false when no hop is
// an address.
func (f *ForwardedAllow) forwardedFor(header string) (client string, ok bool) {
	hops := strings.Split(header, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, valid := hopAddr(strings.TrimSpace(hops[i]))
		if !valid {
			break
		}
		client, ok = a.Unmap().String(), true
		if !f.trustsAddr(a) {
			break
		}
	}
	return client, ok
}

// hopAddr reads one X-Forwarded-For hop: an address, or an address with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711"), which some balancers send.
func hopAddr(hop string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(hop); err == nil && a.Zone() == "" {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(hop); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

// forwardedProto reads X-Forwarded-Proto's first value (the client's side
// of the first proxy); ok is false unless it is http or https.
func forwardedProto(header string) (https, ok bool) {
	first, _, _ := strings.Cut(header, ",")
	switch strings.ToLower(strings.TrimSpace(first)) {
	case "https":
		return true, true
	case "http":
		return false, true
	}
	return false, false
}

// applyForwarded rewrites c's client address and scheme from h's
// X-Forwarded-For and X-Forwarded-Proto when c's peer is trusted. The
// port of a forwarded client is unknown, so REMOTE_PORT becomes "0".
func (c *connInfo) applyForwarded(h *requestHead) (remoteAddr, remotePort string, https bool) {
	remoteAddr, remotePort, https = c.remoteAddr, c.remotePort, c.https
	if !c.trust.trustsPeer(c.remoteAddr) {
		return remoteAddr, remotePort, https
	}
	if xff := h.joinedValues("X-Forwarded-For"); xff != "" {
		if client, ok := c.trust.forwardedFor(xff); ok {
			remoteAddr, remotePort = client, "0"
		}
	}
	if proto := h.firstValue("X-Forwarded-Proto"); proto != nil {
		if isHTTPS, ok := forwardedProto(string(proto)); ok {
			https = isHTTPS
		}
	}
	return remoteAddr, remotePort, https
}

// joinedValues joins every field line of name with ",", as one field
// (RFC 9110 section 5.3).
func (h *requestHead) joinedValues(name string) string {
	var joined []byte
	for _, f := range h.fields {
		if asciiEqualFold(f.name, name) {
			if joined != nil {
				joined = append(joined, ',')
			}
			joined = append(joined, f.value...)
		}
	}
	return string(joined)
}
