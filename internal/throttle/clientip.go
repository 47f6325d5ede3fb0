// Package throttle holds the small abuse limits of the HTTP edge: who the
// client is (its IP, through trusted proxies only), per-key rate limits
// (registrations, guests), a sliding-window failure counter (login
// throttling) and a per-key concurrency gate. Every table is bounded: old
// entries are pruned and the number of keys is capped. Nothing here starts
// a goroutine.
package throttle

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies is the set of reverse proxies whose X-Forwarded-For header is
// believed. The zero value (and nil) trusts nobody.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies parses a comma-separated list of IP addresses and CIDR
// prefixes ("10.0.0.0/8, 127.0.0.1, ::1"). An empty list trusts nobody.
func ParseProxies(list string) (*Proxies, error) {
	p := &Proxies{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			pf, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR prefix such as 10.0.0.0/8", s)
			}
			p.prefixes = append(p.prefixes, pf.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR prefix such as 10.0.0.0/8", s)
		}
		a = a.Unmap()
		p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// Contains reports whether a is one of the trusted proxies.
func (p *Proxies) Contains(a netip.Addr) bool {
	if p == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, pf := range p.prefixes {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// Len returns how many addresses and prefixes are trusted.
func (p *Proxies) Len() int {
	if p == nil {
		return 0
	}
	return len(p.prefixes)
}

// AddrOf returns the IP address of a "host:port" network address (as in
// http.Request.RemoteAddr or net.Conn.RemoteAddr().String()), or the zero
// Addr if it has none.
func AddrOf(hostport string) netip.Addr {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// ClientIP returns the address of the client that sent r: the TCP peer,
// or, when the peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (the left-most
// entries are whatever the client claimed, so they are never believed
// further than the first untrusted hop). A malformed header is ignored and
// the last trusted hop is the answer.
func ClientIP(r *http.Request, trusted *Proxies) netip.Addr {
	ip := AddrOf(r.RemoteAddr)
	if !trusted.Contains(ip) {
		return ip
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a := AddrOf(strings.TrimSpace(parts[j]))
			if !a.IsValid() {
				return ip
			}
			if !trusted.Contains(a) {
				return a
			}
			ip = a
		}
	}
	return ip
}

// Key returns the unit an address is limited as: an IPv4 address itself,
// and an IPv6 address's /64 network (one subscriber usually has a whole
// /64, and would otherwise get 2^64 separate allowances).
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.WithZone("").Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}
