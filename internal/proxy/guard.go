package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrForbiddenDestination is returned (wrapped) by Dial for a destination
// the proxy refuses: loopback, link-local, unspecified, multicast or the
// Warden host's own addresses.
var ErrForbiddenDestination = errors.New("destination not allowed through the proxy")

// guard decides which destination addresses the proxy may reach.
type guard struct {
	allowLoopback bool
	log           *slog.Logger
	// own holds the host's interface addresses, refreshed at most once
	// a minute (interfaces change rarely; DHCP renewals do happen).
	own     atomic.Pointer[ownAddrs]
	refresh sync.Mutex
}

type ownAddrs struct {
	set  map[netip.Addr]bool
	when time.Time
}

// ownRefresh is how often the host's own addresses are read again.
const ownRefresh = time.Minute

// nat64 is the well-known NAT64 prefix, whose addresses carry an IPv4
// address that must pass the same checks.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

func newGuard(allowLoopback bool, log *slog.Logger) *guard {
	g := &guard{allowLoopback: allowLoopback, log: log}
	g.loadOwn()
	return g
}

func (g *guard) loadOwn() *ownAddrs {
	o := &ownAddrs{set: map[netip.Addr]bool{}, when: time.Now()}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		g.log.Warn("proxy_interface_addresses_failed", "err", err)
	}
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(pn.IP); ok {
				o.set[ip.Unmap()] = true
			}
		}
	}
	g.own.Store(o)
	return o
}

func (g *guard) ownSet() map[netip.Addr]bool {
	o := g.own.Load()
	if time.Since(o.when) > ownRefresh && g.refresh.TryLock() {
		o = g.loadOwn()
		g.refresh.Unlock()
	}
	return o.set
}

// allowed reports whether the proxy may connect to a.
func (g *guard) allowed(a netip.Addr) bool {
	a = a.Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	if a.Is4() {
		b := a.As4()
		// 0.0.0.0/8 reaches the local host on Linux; 255.255.255.255
		// is broadcast.
		if b[0] == 0 || b == [4]byte{255, 255, 255, 255} {
			return false
		}
	}
	if g.allowLoopback {
		return true
	}
	return !a.IsLoopback() && !g.ownSet()[a]
}

// dnsCache resolves destination names and keeps the allowed addresses
// for a short while, so that a page with fifty images does not ask DNS
// fifty times. Entries are checked by the guard when stored; the proxy
// dials only addresses from here (no DNS-rebinding gap between check and
// dial).
type dnsCache struct {
	r     Resolver
	ttl   time.Duration
	guard *guard
	mu    sync.RWMutex
	m     map[string]*dnsEntry
}

type dnsEntry struct {
	// addrs are the allowed addresses; forbidden is set when the name
	// resolved only to refused addresses.
	addrs     []netip.Addr
	forbidden bool
	expires   time.Time
	// pref is the index of the address that last worked.
	pref atomic.Int32
}

// maxDNSEntries bounds the cache.
const maxDNSEntries = 8192

func newDNSCache(r Resolver, ttl time.Duration, g *guard) *dnsCache {
	return &dnsCache{r: r, ttl: ttl, guard: g, m: map[string]*dnsEntry{}}
}

// errNoAddress is a name that resolved to nothing.
var errNoAddress = errors.New("no address")

// lookup returns the entry for host (a name, not an IP literal).
func (c *dnsCache) lookup(ctx context.Context, host []byte) (*dnsEntry, error) {
	now := time.Now()
	if c.ttl > 0 {
		c.mu.RLock()
		e := c.m[string(host)]
		c.mu.RUnlock()
		if e != nil && now.Before(e.expires) {
			return e, nil
		}
	}
	name := string(host)
	addrs, err := c.r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", name, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: %w", name, errNoAddress)
	}
	e := &dnsEntry{expires: now.Add(c.ttl)}
	for _, a := range addrs {
		if c.guard.allowed(a) {
			e.addrs = append(e.addrs, a.Unmap())
		}
	}
	e.forbidden = len(e.addrs) == 0
	if c.ttl > 0 {
		c.mu.Lock()
		if len(c.m) >= maxDNSEntries {
			for k, old := range c.m {
				if now.After(old.expires) || len(c.m) >= maxDNSEntries {
					delete(c.m, k)
				}
			}
		}
		c.m[name] = e
		c.mu.Unlock()
	}
	return e, nil
}

// destination is where a request goes: the checked addresses of its
// host, with the port.
type destination struct {
	addrs []netip.Addr
	one   [1]netip.Addr
	port  uint16
	entry *dnsEntry
}

// resolve finds the addresses to dial for host (a name or IP literal
// already parsed into ip) and port, refusing forbidden destinations.
func (p *Proxy) resolve(ctx context.Context, host []byte, ip netip.Addr, port int, d *destination) error {
	d.port, d.entry = uint16(port), nil
	if ip.IsValid() {
		if !p.guard.allowed(ip) {
			return ErrForbiddenDestination
		}
		d.one[0] = ip.Unmap()
		d.addrs = d.one[:]
		return nil
	}
	e, err := p.dns.lookup(ctx, host)
	if err != nil {
		return err
	}
	if e.forbidden {
		return ErrForbiddenDestination
	}
	d.addrs, d.entry = e.addrs, e
	return nil
}

// first returns the address to try first: the one that last worked.
func (d *destination) first() int {
	if d.entry == nil {
		return 0
	}
	i := int(d.entry.pref.Load())
	if i >= len(d.addrs) {
		return 0
	}
	return i
}

// dial connects to one of the destination's addresses, starting with
// the preferred one, within the dial timeout.
func (p *Proxy) dial(ctx context.Context, d *destination) (*net.TCPConn, netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	var dialer net.Dialer
	start := d.first()
	var err error
	for k := range d.addrs {
		i := (start + k) % len(d.addrs)
		ap := netip.AddrPortFrom(d.addrs[i], d.port)
		var c net.Conn
		c, err = dialer.DialContext(ctx, "tcp", ap.String())
		if err == nil {
			if d.entry != nil && i != start {
				d.entry.pref.Store(int32(i))
			}
			p.metrics.dialed()
			return c.(*net.TCPConn), ap, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, netip.AddrPort{}, fmt.Errorf("connect to port %d: %w", d.port, err)
}

// Dial connects to address ("host:port", network "tcp", "tcp4" or
// "tcp6") under the proxy's destination rules: the name is resolved,
// every address checked, and only a checked address dialled. A refused
// destination gives an error wrapping ErrForbiddenDestination. The TLS
// inspector uses it for its upstream connections.
func (p *Proxy) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("proxy dial %s: network %q not supported", address, network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("proxy dial %s: %w", address, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("proxy dial %s: bad port", address)
	}
	ip, _ := netip.ParseAddr(host)
	if ip.Zone() != "" {
		return nil, fmt.Errorf("proxy dial %s: %w", address, ErrForbiddenDestination)
	}
	var d destination
	if err := p.resolve(ctx, []byte(host), ip, port, &d); err != nil {
		return nil, fmt.Errorf("proxy dial %s: %w", address, err)
	}
	addrs := d.addrs[:0:0]
	for _, a := range d.addrs {
		if network == "tcp" || network == "tcp4" && a.Is4() || network == "tcp6" && a.Is6() {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("proxy dial %s: no %s address", address, network)
	}
	d.addrs = addrs
	if len(addrs) != len(d.entry.addrsOrNil()) {
		d.entry = nil // indexes differ from the cached entry's
	}
	c, _, err := p.dial(ctx, &d)
	if err != nil {
		return nil, fmt.Errorf("proxy dial %s: %w", address, err)
	}
	return c, nil
}

func (e *dnsEntry) addrsOrNil() []netip.Addr {
	if e == nil {
		return nil
	}
	return e.addrs
}
