package dnsfilter

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// countingUpstream answers A questions with a 100 s TTL and counts them.
type countingUpstream struct {
	chained
	n atomic.Int32
}

func (u *countingUpstream) Resolve(_ context.Context, req *Request) (*dns.Msg, error) {
	u.n.Add(1)
	m := new(dns.Msg)
	m.SetReply(req.Msg)
	q := req.Msg.Question[0]
	m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 100}, A: []byte{192, 0, 2, 1}})
	return m, nil
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCacheTTLAgingAndPrefetch(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)}
	up := &countingUpstream{}
	c := newCache(100, clock.now)
	c.setNext(up)
	ask := func() *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion("popular.example.", dns.TypeA)
		m, err := c.Resolve(context.Background(), &Request{Msg: q})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ask()
	clock.add(40 * time.Second)
	if m := ask(); m.Answer[0].Header().Ttl != 60 {
		t.Errorf("TTL after 40 s in the cache = %d, want 60", m.Answer[0].Header().Ttl)
	}
	if up.n.Load() != 1 {
		t.Fatalf("upstream asked %d times", up.n.Load())
	}
	// Near expiry (less than a tenth of the TTL left), a popular entry is
	// refreshed in the background while the cached answer is served.
	clock.add(55 * time.Second)
	for i := 0; i < 3; i++ {
		ask()
	}
	deadline := time.Now().Add(5 * time.Second)
	for up.n.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no prefetch of a popular entry near expiry")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// After the old entry's expiry the refreshed one answers: no miss.
	clock.add(10 * time.Second)
	if m := ask(); up.n.Load() != 2 || m.Answer[0].Header().Ttl < 80 {
		t.Errorf("after expiry: upstream asked %d times, TTL %d", up.n.Load(), m.Answer[0].Header().Ttl)
	}
	if _, _, prefetches := c.Stats(); prefetches != 1 {
		t.Errorf("prefetches = %d", prefetches)
	}
}

func TestWireNameIs(t *testing.T) {
	pack := func(name string) []byte {
		b := make([]byte, 256)
		n, err := dns.PackDomainName(name, b, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return append(b[:n], 0, 1) // and a type
	}
	for _, tc := range []struct {
		wire, name string
		want       bool
	}{
		{"www.Example.ORG.", "www.example.org", true},
		{"www.example.org.", "www.example.org", true},
		{".", "", true},
		{"www.example.org.", "example.org", false},
		{"example.org.", "www.example.org", false},
		{"www.example.org.", "www.example.or", false},
		{"www.example.org.", "www.example.org.", false},
		{"www.example.org.", "www-example.org", false},
		{"a\\.b.org.", "a.b.org", false}, // a dot inside a label
		{"xn--bcher-kva.example.", "xn--bcher-kva.example", true},
		{"www.example.org.", "", false},
	} {
		w := pack(tc.wire)
		end, ok := wireNameIs(w, tc.name)
		if ok != tc.want {
			t.Errorf("wireNameIs(%q, %q) = %v, want %v", tc.wire, tc.name, ok, tc.want)
		}
		if ok && end != len(w)-2 {
			t.Errorf("wireNameIs(%q) ends at %d, want %d", tc.wire, end, len(w)-2)
		}
	}
	for _, b := range [][]byte{nil, {3, 'w', 'w'}, {64}, {0xc0, 12}} {
		if _, ok := wireNameIs(b, "ww"); ok {
			t.Errorf("wireNameIs(% x) matched", b)
		}
	}
}

// TestCacheKeyChecked: an entry answers only its own question, type and
// flags, whatever the hash says: an answer stored under another key's
// hash is never served for it.
func TestCacheKeyChecked(t *testing.T) {
	c := newCache(100, time.Now)
	c.setNext(&countingUpstream{})
	q := new(dns.Msg)
	q.SetQuestion("one.example.", dns.TypeA)
	if _, err := c.Resolve(context.Background(), &Request{Msg: q}); err != nil {
		t.Fatal(err)
	}
	one := cacheKey{name: "one.example", qtype: dns.TypeA}
	h, sh := c.hash(one)
	e := sh.entries[h]
	if e == nil || !e.answers(one) {
		t.Fatal("answer not cached under its key")
	}
	for _, k := range []cacheKey{
		{name: "two.example", qtype: dns.TypeA},
		{name: "one.example", qtype: dns.TypeAAAA},
		{name: "one.example", qtype: dns.TypeA, flags: keyDO},
		{name: "one.exampl", qtype: dns.TypeA},
	} {
		if e.answers(k) {
			t.Errorf("the answer for %v also answers %v", one, k)
		}
		// Plant the entry under k's hash, as a collision would.
		kh, ksh := c.hash(k)
		ksh.mu.Lock()
		ksh.entries[kh] = e
		ksh.mu.Unlock()
		if got, _ := c.lookup(k, time.Now(), netip.Addr{}, "udp"); got != nil {
			t.Errorf("lookup(%v) served the answer for %v", k, one)
		}
	}
}
