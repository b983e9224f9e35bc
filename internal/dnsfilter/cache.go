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
	// bufs are scratch buffers for packing answers and for copies of
	// entries read from the cache.
	bufs sync.Pool
}

// cacheShard holds entries by a hash of their key. The key itself is not
// kept: the answer's question holds it, and a lookup checks it there
// (so that two keys with the same hash never share an answer).
//
// Entries are laid end to end in chunks of memory rather than allocated
// one by one: tens of thousands of small objects scattered among the
// garbage of answering would pin many of the heap's pages after a
// collection, and the collector would have to visit each of them. A
// chunk holds no pointers, nor does the index. A deleted or replaced
// entry leaves a gap; once gaps fill half a chunk, its live entries are
// moved to the chunk being filled and it is let go.
type cacheShard struct {
	mu sync.Mutex
	// index maps a key's hash to its entry's place (see place).
	index  map[uint64]uint32
	chunks []cacheChunk
	// free are chunks let go, whose numbers may be used again; tail is
	// the chunk being filled, or -1.
	free []uint16
	tail int
	// maxChunks is maxChunks (smaller in tests).
	maxChunks int
}

// cacheChunk is a run of entries.
type cacheChunk struct {
	buf []byte // nil when let go
	// dead counts the bytes of entries no longer in the index.
	dead int
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

// chunkSize is the size of a chunk. An entry larger than a quarter of it
// gets a chunk of its own, of its own size.
const chunkSize = 16 << 10

// place says where an entry is: its chunk's number and its offset in it.
func place(chunk, off int) uint32 { return uint32(chunk)<<16 | uint32(off) }

func (sh *cacheShard) entryAt(p uint32) entry {
	return entry(sh.chunks[p>>16].buf[p&0xFFFF:])
}

// put stores the entry rec (copied) under h, in place of any before it.
// When the shard has no chunk number left, the old entry goes and rec is
// not stored.
func (sh *cacheShard) put(h uint64, rec entry) {
	if p, ok := sh.index[h]; ok {
		sh.remove(h, p)
	}
	if p, ok := sh.add(rec); ok {
		sh.index[h] = p
	}
}

// add copies rec into a chunk and returns its place, or false when a new
// chunk is needed and the shard has no number left for one.
func (sh *cacheShard) add(rec entry) (uint32, bool) {
	n := len(rec)
	if n > chunkSize/4 {
		ci, ok := sh.newChunk(n)
		if !ok {
			return 0, false
		}
		sh.chunks[ci].buf = append(sh.chunks[ci].buf, rec...)
		return place(ci, 0), true
	}
	if sh.tail < 0 || len(sh.chunks[sh.tail].buf)+n > chunkSize {
		ci, ok := sh.newChunk(chunkSize)
		if !ok {
			return 0, false
		}
		sh.tail = ci
	}
	c := &sh.chunks[sh.tail]
	off := len(c.buf)
	c.buf = append(c.buf, rec...)
	return place(sh.tail, off), true
}

// maxChunks is how many chunks a shard may have: a place has 16 bits for
// the chunk's number. (Only a cache of millions of large answers would
// come near it.)
const maxChunks = 1 << 16

// newChunk makes an empty chunk with room for size bytes and returns its
// number, or false if the shard has none left.
func (sh *cacheShard) newChunk(size int) (int, bool) {
	c := cacheChunk{buf: make([]byte, 0, size)}
	if n := len(sh.free); n > 0 {
		ci := int(sh.free[n-1])
		sh.free = sh.free[:n-1]
		sh.chunks[ci] = c
		return ci, true
	}
	if len(sh.chunks) >= sh.maxChunks {
		return 0, false
	}
	sh.chunks = append(sh.chunks, c)
	return len(sh.chunks) - 1, true
}

// remove deletes the entry at p, stored under h, and compacts its chunk
// once half of it is gaps.
func (sh *cacheShard) remove(h uint64, p uint32) {
	delete(sh.index, h)
	ci := int(p >> 16)
	c := &sh.chunks[ci]
	c.dead += sh.entryAt(p).size()
	if ci != sh.tail && 2*c.dead >= len(c.buf) {
		sh.compact(ci, 0)
	}
}

// compact moves chunk ci's live entries to the tail, dropping those that
// have expired by now (Unix nanoseconds; 0 keeps them all), and lets ci
// go.
func (sh *cacheShard) compact(ci int, now int64) {
	buf := sh.chunks[ci].buf
	sh.chunks[ci] = cacheChunk{}
	for off := 0; off < len(buf); {
		e := entry(buf[off:])
		n := e.size()
		h := e.hash()
		if p, ok := sh.index[h]; ok && p == place(ci, off) {
			if now != 0 && now >= e.expires() {
				delete(sh.index, h)
			} else if np, ok := sh.add(e[:n]); ok {
				sh.index[h] = np
			} else {
				delete(sh.index, h)
			}
		}
		off += n
	}
	sh.free = append(sh.free, uint16(ci))
}

// An entry is an answer in wire form with what the cache needs to know of
// it, laid out in bytes:
//
//	0  hash of the key, 8 bytes
//	8  expiry, Unix nanoseconds, 8 bytes
//	16 TTL stored for, seconds, 4 bytes
//	20 length of the wire form, 2 bytes
//	22 length of the TTL offsets, 2 bytes
//	24 length of the CNAME targets, 2 bytes
//	26 hits, 1 byte (counted up to prefetchHits)
//	27 bits: the key's flags (keyDO, keyCD), entryFast, entryPrefetching
//	28 the wire form, compressed, with no OPT record (the server adds
//	   its own for the client) unless the upstream's carried an Extended
//	   DNS Error worth passing on
//	   then, when fast, the offset of each record's TTL in the wire form
//	   (2 bytes each, big-endian)
//	   then the CNAME targets in the answer, which each client's policy
//	   must allow (lower-case, no final dot; a length byte and the name)
//
// A typical answer takes about 90 bytes, and its place in the index
// about 20 more (BenchmarkCacheMemory). Everything but the hits and the
// prefetching bit is fixed once stored. An entry read from the cache is
// a copy, made under the shard's lock: the original may move.
type entry []byte

const (
	entryHeader = 28
	// Bits at entry[27], above the key's flags.
	entryFast        = 1 << 2 // the UDP fast path may serve it
	entryPrefetching = 1 << 3
	entryKeyFlags    = keyDO | keyCD
)

func (e entry) hash() uint64      { return binary.LittleEndian.Uint64(e) }
func (e entry) expires() int64    { return int64(binary.LittleEndian.Uint64(e[8:])) }
func (e entry) ttl() uint32       { return binary.LittleEndian.Uint32(e[16:]) }
func (e entry) wireLen() int      { return int(binary.LittleEndian.Uint16(e[20:])) }
func (e entry) offsLen() int      { return int(binary.LittleEndian.Uint16(e[22:])) }
func (e entry) cnamesLen() int    { return int(binary.LittleEndian.Uint16(e[24:])) }
func (e entry) size() int         { return entryHeader + e.wireLen() + e.offsLen() + e.cnamesLen() }
func (e entry) fast() bool        { return e[27]&entryFast != 0 }
func (e entry) prefetching() bool { return e[27]&entryPrefetching != 0 }

// stored returns when the entry was stored, in Unix nanoseconds.
func (e entry) stored() int64 { return e.expires() - int64(e.ttl())*int64(time.Second) }

// wire returns the packed answer.
func (e entry) wire() []byte { return e[entryHeader : entryHeader+e.wireLen()] }

// ttlOffsets returns the offsets of the records' TTLs in the wire form
// (fast entries only), two bytes each.
func (e entry) ttlOffsets() []byte {
	at := entryHeader + e.wireLen()
	return e[at : at+e.offsLen()]
}

// targets returns the CNAME targets in the answer.
func (e entry) targets() []string {
	at := entryHeader + e.wireLen() + e.offsLen()
	b := e[at : at+e.cnamesLen()]
	var names []string
	for len(b) > 0 && 1+int(b[0]) <= len(b) {
		names = append(names, string(b[1:1+b[0]]))
		b = b[1+b[0]:]
	}
	return names
}

// answers reports whether e is the answer for k: same flags, and the
// question in the wire form has k's name (in any letter case) and type.
func (e entry) answers(k cacheKey) bool {
	if e[27]&entryKeyFlags != k.flags {
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

func newCache(entries int, now func() time.Time) *cache {
	if entries <= 0 {
		entries = DefaultCacheEntries
	}
	c := &cache{now: now, seed: maphash.MakeSeed(), perMax: entries/cacheShards + 1}
	c.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	for i := range c.shards {
		c.shards[i] = cacheShard{index: map[uint64]uint32{}, tail: -1, maxChunks: maxChunks}
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
	buf := c.bufs.Get().(*[]byte)
	e, elapsed := c.lookup(k, now, req.Client, req.Protocol, *buf)
	if e != nil {
		*buf = e[:0]
		m := new(dns.Msg)
		err := m.Unpack(e.wire()) // copies what it keeps
		c.bufs.Put(buf)
		if err == nil {
			ageTTLs(m, elapsed)
			m.Id = req.Msg.Id
			req.Upstream = "cache"
			return m, nil
		}
		// Cannot happen for what store packed; answer afresh.
	} else {
		c.bufs.Put(buf)
	}
	c.misses.Add(1)
	ans, err := c.next.Resolve(ctx, req)
	if err == nil {
		c.store(k, ans, now)
	}
	return ans, err
}

// lookup returns a copy of the fresh entry for k, appended to buf[:0],
// and the whole seconds it has been stored, or nil. A hit on a popular
// entry near its expiry starts a refresh in the background (for the
// client and protocol given).
func (c *cache) lookup(k cacheKey, now time.Time, client netip.Addr, proto string, buf []byte) (entry, uint32) {
	h, sh := c.hash(k)
	sh.mu.Lock()
	p, ok := sh.index[h]
	if !ok {
		sh.mu.Unlock()
		return nil, 0
	}
	e := sh.entryAt(p)
	if !e.answers(k) {
		sh.mu.Unlock()
		return nil, 0
	}
	at := now.UnixNano()
	if at >= e.expires() {
		sh.remove(h, p)
		sh.mu.Unlock()
		return nil, 0
	}
	if e[26] < prefetchHits {
		e[26]++
	}
	left := time.Duration(e.expires() - at)
	prefetch := !e.prefetching() && e[26] >= prefetchHits && left*prefetchShare < time.Duration(e.ttl())*time.Second
	if prefetch {
		e[27] |= entryPrefetching
	}
	e = append(entry(buf[:0]), e[:e.size()]...)
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
		if p, ok := sh.index[h]; ok {
			if e := sh.entryAt(p); e.answers(k) {
				e[27] &^= entryPrefetching
			}
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
	h, sh := c.hash(k)
	buf := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(buf)
	e, ok := packEntry((*buf)[:0], m, k.flags)
	if !ok || !e.answers(k) {
		return
	}
	if cap(e) <= 64<<10 {
		*buf = e[:0]
	}
	binary.LittleEndian.PutUint64(e, h)
	binary.LittleEndian.PutUint64(e[8:], uint64(now.Add(ttl).UnixNano()))
	binary.LittleEndian.PutUint32(e[16:], uint32(ttl/time.Second))
	sh.mu.Lock()
	if _, ok := sh.index[h]; !ok && len(sh.index) >= c.perMax {
		c.evict(sh, now)
	}
	sh.put(h, e)
	sh.mu.Unlock()
}

// packEntry appends m to buf as an entry for a key with the given flags
// (see entry; the hash, expiry and TTL are left for the caller): in wire
// form, without its OPT record unless that carries an Extended DNS
// Error, with what the fast path needs. It reports false if m cannot be
// packed.
func packEntry(buf []byte, m *dns.Msg, flags uint8) (entry, bool) {
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
	buf = append(buf[:0], make([]byte, entryHeader)...)
	wire, err := mm.PackBuffer(buf[entryHeader:cap(buf)])
	if err != nil || len(wire) > 0xFFFF {
		return nil, false
	}
	e := entry(append(buf, wire...)) // in place when it was packed there
	bits := flags & entryKeyFlags
	offs := len(e)
	if !keepOPT {
		var fast bool
		if e, fast = appendTTLOffsets(e, wire); fast {
			bits |= entryFast
		}
	}
	cnames := len(e)
	for _, rr := range m.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			t := strings.TrimSuffix(strings.ToLower(c.Target), ".")
			e = append(append(e, byte(len(t))), t...)
		}
	}
	if len(e)-cnames > 0xFFFF {
		return nil, false
	}
	binary.LittleEndian.PutUint16(e[20:], uint16(len(wire)))
	binary.LittleEndian.PutUint16(e[22:], uint16(cnames-offs))
	binary.LittleEndian.PutUint16(e[24:], uint16(len(e)-cnames))
	e[26], e[27] = 0, bits
	return e, true
}

// evict makes room in a full shard: expired entries first, else a few
// arbitrary ones (map order is random).
func (c *cache) evict(sh *cacheShard, now time.Time) {
	var victims [16]uint64
	n := 0
	at := now.UnixNano()
	for h, p := range sh.index {
		if at >= sh.entryAt(p).expires() {
			victims[n] = h
			if n++; n == len(victims) {
				break
			}
		}
	}
	if n == 0 {
		for h := range sh.index {
			victims[n] = h
			if n++; n == len(victims) {
				break
			}
		}
	}
	for _, h := range victims[:n] {
		if p, ok := sh.index[h]; ok { // a compaction may have dropped it
			sh.remove(h, p)
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
