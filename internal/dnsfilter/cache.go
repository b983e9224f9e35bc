package dnsfilter

import (
	"context"
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DefaultCacheEntries bounds the cache unless configured.
const DefaultCacheEntries = 100_000

// Cache limits: answers are kept for their TTL within these bounds;
// negative answers (NXDOMAIN, no data) for their SOA minimum (RFC 2308).
const (
	maxPositiveTTL = 24 * time.Hour
	maxNegativeTTL = time.Hour
	// prefetchShare: a popular entry is refreshed when less than this
	// share of its TTL is left.
	prefetchShare = 10
	// prefetchHits is how many hits make an entry popular.
	prefetchHits = 3
)

const cacheShards = 32

// cache holds upstream answers by question, shared by every group (the
// policy is applied before it). It sits in the chain above the forwarder.
type cache struct {
	chained
	now    func() time.Time
	seed   maphash.Seed
	shards [cacheShards]cacheShard
	perMax int

	hits, misses, prefetches atomic.Uint64
	// packBufs are scratch buffers for packing answers before they are
	// copied to their exact size.
	packBufs sync.Pool
}

// cacheShard holds entries by a hash of their key. The key itself is not
// kept: the answer's question holds it, and a lookup checks it there
// (so that two keys with the same hash never share an answer).
type cacheShard struct {
	mu      sync.Mutex
	entries map[uint64]*cacheEntry
}

type cacheKey struct {
	// name is lower-case, without the final dot (as Request.Name).
	name  string
	qtype uint16
	flags uint8 // keyDO and keyCD
}

// Cache key flags: the query's DO and CD bits, which change the answer.
const (
	keyDO = 1 << iota
	keyCD
)

// cacheEntry holds an answer in wire form: a few hundred bytes where the
// parsed message would take kilobytes, so a full cache stays small. The
// wire form has no OPT record (the server adds its own for the client),
// unless the upstream's carried an Extended DNS Error worth passing on.
// Everything but hits and prefetching is fixed once stored. The fields
// are ordered, and kept as small integers, so that an entry takes 64
// bytes; with its answer and its place in the map, about 130 bytes for
// a typical answer (BenchmarkCacheMemory).
type cacheEntry struct {
	// buf is the packed answer (its first n bytes) and, when fast, the
	// offset of each record's TTL in it (2 bytes each, big-endian).
	buf []byte
	// cnames are the CNAME targets in the answer (lower-case, no final
	// dot), which each client's policy must allow; nil when there are
	// none, as for most answers.
	cnames *[]string
	// expires is in Unix nanoseconds; ttl, in seconds, is how long the
	// entry was stored for.
	expires int64
	ttl     uint32
	hits    uint16
	n       uint16
	// flags are the key's (keyDO, keyCD), which the question does not
	// show.
	flags uint8
	// fast says the UDP fast path may serve the entry (no OPT record).
	fast        bool
	prefetching bool
}

// stored returns when the entry was stored, in Unix nanoseconds.
func (e *cacheEntry) stored() int64 { return e.expires - int64(e.ttl)*int64(time.Second) }

// targets returns the CNAME targets in the answer.
func (e *cacheEntry) targets() []string {
	if e.cnames == nil {
		return nil
	}
	return *e.cnames
}

// answers reports whether e is the answer for k: same flags, and the
// question in the wire form has k's name (in any letter case) and type.
func (e *cacheEntry) answers(k cacheKey) bool {
	if e.flags != k.flags {
		return false
	}
	w := e.wire()
	if len(w) < headerLen || binary.BigEndian.Uint16(w[4:]) != 1 {
		return false
	}
	end, ok := wireNameIs(w[headerLen:], k.name)
	end += headerLen
	return ok && end+2 <= len(w) && binary.BigEndian.Uint16(w[end:]) == k.qtype
}

// wire returns the packed answer.
func (e *cacheEntry) wire() []byte { return e.buf[:e.n] }

// ttlOffsets returns the offsets of the records' TTLs in the wire form
// (fast entries only), two bytes each.
func (e *cacheEntry) ttlOffsets() []byte { return e.buf[e.n:] }

func newCache(entries int, now func() time.Time) *cache {
	if entries <= 0 {
		entries = DefaultCacheEntries
	}
	c := &cache{now: now, seed: maphash.MakeSeed(), perMax: entries/cacheShards + 1}
	c.packBufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	for i := range c.shards {
		c.shards[i].entries = map[uint64]*cacheEntry{}
	}
	return c
}

// hash returns the map key for k, and its shard.
func (c *cache) hash(k cacheKey) (uint64, *cacheShard) {
	h := maphash.String(c.seed, k.name)
	h ^= (uint64(k.qtype)<<8 | uint64(k.flags)) * 0x9e3779b97f4a7c15
	return h, &c.shards[h%cacheShards]
}

func keyOf(m *dns.Msg) cacheKey {
	q := m.Question[0]
	k := cacheKey{name: strings.TrimSuffix(strings.ToLower(q.Name), "."), qtype: q.Qtype}
	if opt := m.IsEdns0(); opt != nil && opt.Do() {
		k.flags |= keyDO
	}
	if m.CheckingDisabled {
		k.flags |= keyCD
	}
	return k
}

func (c *cache) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	if req.Msg.Question[0].Qclass != dns.ClassINET {
		return c.next.Resolve(ctx, req)
	}
	k := keyOf(req.Msg)
	now := c.now()
	if e, elapsed := c.lookup(k, now, req.Client, req.Protocol); e != nil {
		m := new(dns.Msg)
		if err := m.Unpack(e.wire()); err == nil {
			ageTTLs(m, elapsed)
			m.Id = req.Msg.Id
			req.Upstream = "cache"
			return m, nil
		}
		// Cannot happen for what store packed; answer afresh.
	}
	c.misses.Add(1)
	ans, err := c.next.Resolve(ctx, req)
	if err == nil {
		c.store(k, ans, now)
	}
	return ans, err
}

// lookup returns the fresh entry for k and the whole seconds it has been
// stored, or nil. A hit on a popular entry near its expiry starts a
// refresh in the background (for the client and protocol given).
func (c *cache) lookup(k cacheKey, now time.Time, client netip.Addr, proto string) (*cacheEntry, uint32) {
	h, sh := c.hash(k)
	sh.mu.Lock()
	e := sh.entries[h]
	if e == nil || !e.answers(k) {
		sh.mu.Unlock()
		return nil, 0
	}
	at := now.UnixNano()
	if at >= e.expires {
		delete(sh.entries, h)
		sh.mu.Unlock()
		return nil, 0
	}
	if e.hits < prefetchHits {
		e.hits++
	}
	left := time.Duration(e.expires - at)
	prefetch := !e.prefetching && e.hits >= prefetchHits && left*prefetchShare < time.Duration(e.ttl)*time.Second
	if prefetch {
		e.prefetching = true
	}
	sh.mu.Unlock()
	c.hits.Add(1)
	if prefetch {
		c.prefetch(k, client, proto)
	}
	return e, uint32(time.Duration(at-e.stored()) / time.Second)
}

// prefetch refreshes a popular entry in the background before it expires,
// so that busy names never miss.
func (c *cache) prefetch(k cacheKey, client netip.Addr, proto string) {
	c.prefetches.Add(1)
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(k.name), k.qtype)
	q.SetEdns0(upstreamUDPSize, k.flags&keyDO != 0)
	q.CheckingDisabled = k.flags&keyCD != 0
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r := &Request{Msg: q, Client: client, Protocol: proto, Start: c.now()}
		ans, err := c.next.Resolve(ctx, r)
		if err == nil {
			c.store(k, ans, c.now())
			return
		}
		h, sh := c.hash(k)
		sh.mu.Lock()
		if e := sh.entries[h]; e != nil && e.answers(k) {
			e.prefetching = false
		}
		sh.mu.Unlock()
	}()
}

// store keeps an answer for its TTL, if it may be cached at all.
func (c *cache) store(k cacheKey, m *dns.Msg, now time.Time) {
	ttl, ok := cacheTTL(m)
	if !ok || ttl <= 0 {
		return
	}
	e := &cacheEntry{expires: now.Add(ttl).UnixNano(), ttl: uint32(ttl / time.Second), flags: k.flags}
	scratch := c.packBufs.Get().(*[]byte)
	ok = e.pack(m, *scratch)
	c.packBufs.Put(scratch)
	if !ok || !e.answers(k) {
		return
	}
	h, sh := c.hash(k)
	sh.mu.Lock()
	if len(sh.entries) >= c.perMax {
		c.evict(sh, now)
	}
	sh.entries[h] = e
	sh.mu.Unlock()
}

// pack stores m in e in wire form (packed first into scratch), compressed, without its OPT record
// unless that carries an Extended DNS Error, and notes what the fast path
// needs. It reports false if m cannot be packed.
func (e *cacheEntry) pack(m *dns.Msg, scratch []byte) bool {
	mm := *m
	mm.Compress = true
	mm.Extra = nil
	keepOPT := false
	for _, rr := range m.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			for _, o := range opt.Option {
				if _, ok := o.(*dns.EDNS0_EDE); ok {
					keepOPT = true
				}
			}
			if !keepOPT {
				continue
			}
		}
		mm.Extra = append(mm.Extra, rr)
	}
	wire, err := mm.PackBuffer(scratch[:cap(scratch)])
	if err != nil || len(wire) > 0xFFFF {
		return false
	}
	var offs []uint16
	if !keepOPT {
		offs, e.fast = ttlOffsets(wire)
	}
	// One exact allocation for the message and its TTL offsets.
	e.n = uint16(len(wire))
	e.buf = make([]byte, len(wire), len(wire)+2*len(offs))
	copy(e.buf, wire)
	for _, off := range offs {
		e.buf = binary.BigEndian.AppendUint16(e.buf, off)
	}
	var cnames []string
	for _, rr := range m.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			cnames = append(cnames, strings.TrimSuffix(strings.ToLower(c.Target), "."))
		}
	}
	if cnames != nil {
		e.cnames = &cnames
	}
	return true
}

// evict makes room in a full shard: expired entries first, else a few
// arbitrary ones (map order is random).
func (c *cache) evict(sh *cacheShard, now time.Time) {
	removed := 0
	for k, e := range sh.entries {
		if now.UnixNano() >= e.expires {
			delete(sh.entries, k)
			removed++
		}
		if removed >= 16 {
			return
		}
	}
	for k := range sh.entries {
		delete(sh.entries, k)
		removed++
		if removed >= 16 {
			return
		}
	}
}

// cacheTTL returns how long an answer may be kept: the smallest TTL of
// its records for a positive answer; for NXDOMAIN or an empty answer, the
// SOA's TTL or minimum, whichever is less (RFC 2308). Server failures and
// refusals are not cached.
func cacheTTL(m *dns.Msg) (time.Duration, bool) {
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return 0, false
	}
	if m.Truncated {
		return 0, false
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		min := uint32(1<<32 - 1)
		for _, rr := range m.Answer {
			if ttl := rr.Header().Ttl; ttl < min {
				min = ttl
			}
		}
		return clamp(time.Duration(min)*time.Second, maxPositiveTTL), true
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl := soa.Hdr.Ttl
			if soa.Minttl < ttl {
				ttl = soa.Minttl
			}
			return clamp(time.Duration(ttl)*time.Second, maxNegativeTTL), true
		}
	}
	// A negative answer without an SOA: keep it briefly.
	return 30 * time.Second, true
}

func clamp(d, max time.Duration) time.Duration {
	if d > max {
		return max
	}
	return d
}

// ageTTLs lowers every TTL by the seconds an answer has been cached.
func ageTTLs(m *dns.Msg, elapsed uint32) {
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if h.Ttl > elapsed {
				h.Ttl -= elapsed
			} else {
				h.Ttl = 0
			}
		}
	}
}

// Stats returns cache hits, misses and prefetches so far.
func (c *cache) Stats() (hits, misses, prefetches uint64) {
	return c.hits.Load(), c.misses.Load(), c.prefetches.Load()
}
