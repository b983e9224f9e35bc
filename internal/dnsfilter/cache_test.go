package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
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
	e, _ := c.lookup(one, time.Now(), netip.Addr{}, "udp", nil)
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
		ksh.put(kh, e)
		ksh.mu.Unlock()
		if got, _ := c.lookup(k, time.Now(), netip.Addr{}, "udp", nil); got != nil {
			t.Errorf("lookup(%v) served the answer for %v", k, one)
		}
	}
}

// cachedA returns an answer for name with one A record, addr, and ttl.
func cachedA(name string, addr byte, ttl uint32) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m := new(dns.Msg)
	m.SetReply(q)
	m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: []byte{192, 0, 2, addr}})
	return m
}

// downUpstream fails every question.
type downUpstream struct{ chained }

func (downUpstream) Resolve(context.Context, *Request) (*dns.Msg, error) {
	return nil, errors.New("upstream down")
}

// chunkBytes returns the bytes the cache's chunks hold and its entries.
func (c *cache) chunkBytes() (held, entries int) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for _, ch := range sh.chunks {
			held += cap(ch.buf)
		}
		entries += len(sh.index)
		sh.mu.Unlock()
	}
	return held, entries
}

// TestCacheAgainstModel stores, replaces, expires and looks up answers at
// random, with a cache small enough to evict, and holds every hit to the
// answer last stored for its name and not yet expired; gaps left by
// replaced and expired entries must be reclaimed.
func TestCacheAgainstModel(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)}
	const names, limit = 4000, 2000
	c := newCache(limit, clock.now)
	c.setNext(downUpstream{}) // prefetches fail, and change nothing
	type stored struct {
		addr    byte
		expires time.Time
	}
	model := map[string]stored{}
	rng := rand.New(rand.NewPCG(1, 2))
	hits := 0
	for i := 0; i < 200_000; i++ {
		name := fmt.Sprintf("host-%d.example.org", rng.IntN(names))
		k := cacheKey{name: name, qtype: dns.TypeA}
		switch r := rng.IntN(10); {
		case r < 4:
			addr, ttl := byte(rng.IntN(256)), uint32(1+rng.IntN(3600))
			c.store(k, cachedA(name, addr, ttl), clock.now())
			model[name] = stored{addr, clock.now().Add(time.Duration(ttl) * time.Second)}
		case r < 9:
			e, _ := c.lookup(k, clock.now(), netip.Addr{}, "udp", nil)
			if e == nil {
				continue
			}
			hits++
			want, ok := model[name]
			if !ok || !clock.now().Before(want.expires) {
				t.Fatalf("op %d: %s served after its expiry", i, name)
			}
			var m dns.Msg
			if err := m.Unpack(e.wire()); err != nil {
				t.Fatalf("op %d: %s: %v", i, name, err)
			}
			if a := m.Answer[0].(*dns.A).A; a[3] != want.addr || !strings.EqualFold(m.Question[0].Name, name+".") {
				t.Fatalf("op %d: %s answered %v (%s), want 192.0.2.%d", i, name, a, m.Question[0].Name, want.addr)
			}
		default:
			clock.add(time.Duration(rng.IntN(3)) * time.Second)
		}
	}
	if hits < 10_000 {
		t.Errorf("only %d hits", hits)
	}
	held, entries := c.chunkBytes()
	if entries > limit+cacheShards {
		t.Errorf("%d entries, limit %d", entries, limit)
	}
	// An entry here takes about 80 bytes; gaps may fill up to half of
	// each chunk, and each shard fills one.
	if most := 2*80*entries + cacheShards*chunkSize; held > most {
		t.Errorf("chunks hold %d bytes for %d entries (at most %d expected)", held, entries, most)
	}
}

// TestCacheLargeAnswer: an answer too big to share a chunk gets its own,
// which is let go when the answer is replaced.
func TestCacheLargeAnswer(t *testing.T) {
	c := newCache(100, time.Now)
	k := cacheKey{name: "big.example", qtype: dns.TypeTXT}
	m := cachedA("big.example", 1, 300)
	m.Question[0].Qtype = dns.TypeTXT
	m.Answer = nil
	for i := 0; i < 40; i++ {
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "big.example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
			Txt: []string{strings.Repeat(fmt.Sprint(i%10), 200)}})
	}
	c.store(k, m, time.Now())
	e, _ := c.lookup(k, time.Now(), netip.Addr{}, "udp", nil)
	if e == nil || len(e.wire()) < chunkSize/2 {
		t.Fatalf("large answer not cached whole (%d bytes)", len(e))
	}
	if got, err := roundTrip(e); err != nil || len(got.Answer) != 40 {
		t.Fatalf("large answer read back with %v, %v", got, err)
	}
	c.store(k, cachedA("big.example", 2, 300), time.Now()) // wrong type: not stored
	small := cachedA("big.example", 2, 300)
	small.Question[0].Qtype = dns.TypeTXT
	small.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "big.example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: []string{"small"}}}
	c.store(k, small, time.Now())
	if held, _ := c.chunkBytes(); held >= chunkSize*2 {
		t.Errorf("chunks hold %d bytes after the large answer was replaced", held)
	}
	if e, _ := c.lookup(k, time.Now(), netip.Addr{}, "udp", nil); e == nil || len(e.wire()) > 200 {
		t.Errorf("replacement not served")
	}
}

func roundTrip(e entry) (*dns.Msg, error) {
	m := new(dns.Msg)
	return m, m.Unpack(e.wire())
}

// TestCacheCNAMETargets: the targets kept with an entry are its answer's
// CNAMEs, lower-case, without the final dot.
func TestCacheCNAMETargets(t *testing.T) {
	c := newCache(100, time.Now)
	m := cachedA("www.example.org", 1, 300)
	m.Answer = []dns.RR{
		&dns.CNAME{Hdr: dns.RR_Header{Name: "www.example.org.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: "Edge.CDN.example."},
		&dns.CNAME{Hdr: dns.RR_Header{Name: "edge.cdn.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: "pop-7.cdn.example."},
		&dns.A{Hdr: dns.RR_Header{Name: "pop-7.cdn.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: []byte{192, 0, 2, 7}},
	}
	k := cacheKey{name: "www.example.org", qtype: dns.TypeA}
	c.store(k, m, time.Now())
	e, _ := c.lookup(k, time.Now(), netip.Addr{}, "udp", nil)
	if e == nil {
		t.Fatal("not cached")
	}
	if got, want := e.targets(), []string{"edge.cdn.example", "pop-7.cdn.example"}; !slices.Equal(got, want) {
		t.Errorf("targets %q, want %q", got, want)
	}
	if !e.fast() || len(e.ttlOffsets()) != 6 {
		t.Errorf("fast %v, %d bytes of TTL offsets", e.fast(), len(e.ttlOffsets()))
	}
}

// TestCacheOutOfChunks: a shard with no chunk number left declines to
// store, and what it holds is still served right.
func TestCacheOutOfChunks(t *testing.T) {
	c := newCache(100_000, time.Now)
	for i := range c.shards {
		c.shards[i].maxChunks = 2
	}
	stored := map[string]byte{}
	for i := 0; i < 20_000; i++ {
		name := fmt.Sprintf("host-%d.example.org", i)
		c.store(cacheKey{name: name, qtype: dns.TypeA}, cachedA(name, byte(i), 300), time.Now())
		stored[name] = byte(i)
	}
	hits := 0
	for name, addr := range stored {
		e, _ := c.lookup(cacheKey{name: name, qtype: dns.TypeA}, time.Now(), netip.Addr{}, "udp", nil)
		if e == nil {
			continue
		}
		hits++
		m, err := roundTrip(e)
		if err != nil || m.Answer[0].(*dns.A).A[3] != addr {
			t.Fatalf("%s: answered %v (%v), want 192.0.2.%d", name, m, err, addr)
		}
	}
	held, entries := c.chunkBytes()
	if hits == 0 || hits != entries || held > cacheShards*2*chunkSize {
		t.Errorf("%d hits, %d entries, %d bytes held in chunks", hits, entries, held)
	}
}
