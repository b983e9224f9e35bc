package inspect

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/warden-schools/warden/internal/lists"
)

// DefaultCacheSize is how many minted certificates a CA keeps unless
// told otherwise: about 1 KB each.
const DefaultCacheSize = 10000

// Leaf certificate lifetimes.
const (
	// LeafValidity is how long a minted certificate is valid: short, so
	// a copied one is soon useless.
	LeafValidity = 7 * 24 * time.Hour
	// leafBackdate allows for clients whose clocks are a little slow.
	leafBackdate = time.Hour
	// leafRenew is how close to expiry a cached certificate is reminted.
	leafRenew = 24 * time.Hour
)

// Certificate returns a certificate for host (a DNS name or IP literal,
// without port) signed by the CA, with the root in its chain: from the
// cache while it has more than a day to run, else newly minted. Callers
// asking at once for the same host share one minting.
func (ca *CA) Certificate(host string) (*tls.Certificate, error) {
	name, ip, err := leafName(host)
	if err != nil {
		return nil, err
	}
	now := ca.now()
	return ca.cache.get(name, now, func() (*tls.Certificate, time.Time, error) {
		return ca.mint(name, ip, now)
	})
}

// GetCertificate returns a tls.Config.GetCertificate that mints for the
// client's SNI name, or for fallback (the CONNECT host) when the client
// sends none or a name that is not a host.
func (ca *CA) GetCertificate(fallback string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName != "" {
			if c, err := ca.Certificate(hello.ServerName); err == nil {
				return c, nil
			}
		}
		return ca.Certificate(fallback)
	}
}

// leafName normalises host for a certificate: a lower-case DNS name, or
// an IP address (returned too).
func leafName(host string) (string, netip.Addr, error) {
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", netip.Addr{}, fmt.Errorf("mint certificate: %q has a zone", host)
		}
		ip = ip.Unmap()
		return ip.String(), ip, nil
	}
	h, err := lists.NormalizeHost(host)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("mint certificate for %q: %w", host, err)
	}
	if lists.IsIP(h) {
		ip, err := netip.ParseAddr(h)
		if err != nil {
			return "", netip.Addr{}, fmt.Errorf("mint certificate for %q: %w", host, err)
		}
		return ip.String(), ip, nil
	}
	return h, netip.Addr{}, nil
}

// mint makes a certificate for name (or ip) valid from an hour ago for
// LeafValidity, never beyond the root's own expiry.
func (ca *CA) mint(name string, ip netip.Addr, now time.Time) (*tls.Certificate, time.Time, error) {
	notAfter := now.Add(LeafValidity)
	if notAfter.After(ca.Root.NotAfter) {
		notAfter = ca.Root.NotAfter
	}
	if !notAfter.After(now) {
		return nil, time.Time{}, fmt.Errorf("mint certificate for %s: the school CA expired on %s (run warden ca init --force and install the new root)", name, ca.Root.NotAfter.Format(time.DateOnly))
	}
	notBefore := now.Add(-leafBackdate)
	if notBefore.Before(ca.Root.NotBefore) {
		notBefore = ca.Root.NotBefore
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("mint certificate for %s: %w", name, err)
	}
	serial, err := newSerial(ca.rand)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("mint certificate for %s: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if len(name) <= 64 {
		tmpl.Subject = pkix.Name{CommonName: name}
	}
	if ip.IsValid() {
		tmpl.IPAddresses = []net.IP{ip.AsSlice()}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, ca.Root, &key.PublicKey, ca.key)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("mint certificate for %s: %w", name, err)
	}
	ca.minted.Add(1)
	// The chain includes the root, for clients that match it by value.
	// Leaf is left unparsed: the cache then holds about a kilobyte each.
	return &tls.Certificate{Certificate: [][]byte{der, ca.rootDER}, PrivateKey: key}, notAfter, nil
}

// certCache is a bounded LRU of minted certificates by host, with
// in-flight mintings shared by concurrent callers.
type certCache struct {
	mu       sync.Mutex
	max      int
	entries  map[string]*list.Element // of *cacheEntry
	order    *list.List               // front: most recently used
	inflight map[string]*minting
}

type cacheEntry struct {
	host     string
	cert     *tls.Certificate
	notAfter time.Time
}

// minting is one certificate being minted; done closes when it is.
type minting struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

func newCertCache(max int) *certCache {
	return &certCache{max: max, entries: map[string]*list.Element{}, order: list.New(), inflight: map[string]*minting{}}
}

// errMintPanicked is what waiters get if minting panicked.
var errMintPanicked = errors.New("mint certificate: panicked")

// get returns the cached certificate for host unless it is within
// leafRenew of expiry, else mints one with mint (once for all concurrent
// callers) and caches it.
func (c *certCache) get(host string, now time.Time, mint func() (*tls.Certificate, time.Time, error)) (*tls.Certificate, error) {
	c.mu.Lock()
	if el, ok := c.entries[host]; ok {
		e := el.Value.(*cacheEntry)
		if now.Before(e.notAfter.Add(-leafRenew)) {
			c.order.MoveToFront(el)
			c.mu.Unlock()
			return e.cert, nil
		}
	}
	if m, ok := c.inflight[host]; ok {
		c.mu.Unlock()
		<-m.done
		return m.cert, m.err
	}
	m := &minting{done: make(chan struct{})}
	c.inflight[host] = m
	c.mu.Unlock()

	m.err = errMintPanicked
	defer func() {
		c.mu.Lock()
		delete(c.inflight, host)
		c.mu.Unlock()
		close(m.done)
	}()
	cert, notAfter, err := mint()
	m.cert, m.err = cert, err
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if el, ok := c.entries[host]; ok {
		e := el.Value.(*cacheEntry)
		e.cert, e.notAfter = cert, notAfter
		c.order.MoveToFront(el)
	} else {
		c.entries[host] = c.order.PushFront(&cacheEntry{host: host, cert: cert, notAfter: notAfter})
		for c.order.Len() > c.max {
			old := c.order.Back()
			c.order.Remove(old)
			delete(c.entries, old.Value.(*cacheEntry).host)
		}
	}
	c.mu.Unlock()
	return cert, nil
}

// Minted returns how many certificates the CA has minted since it was
// loaded.
func (ca *CA) Minted() uint64 { return ca.minted.Load() }

// Cached returns how many minted certificates the CA keeps.
func (ca *CA) Cached() int { return ca.cache.Len() }

// Len returns the number of cached certificates.
func (c *certCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
