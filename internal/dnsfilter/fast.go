package dnsfilter

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// The UDP fast path answers the two commonest questions a school's
// resolver gets, a blocked name and an allowed name already in the cache,
// straight from the packet into the reply buffer, on the goroutine that
// read the packet: no dns.Msg, no hand-off, no waiting. It makes the same
// decisions as the full chain (same identity, policy, cache and CNAME
// checks, same answer bytes, same events and metrics) and leaves
// everything else to it: cache misses, safe-search names, circumvention
// names, CNAMEs into blocked names, unusual queries and answers too big
// for the client. fast_test.go holds both paths to the same answers.

// fastState is one reader's scratch space.
type fastState struct {
	q    wireQuery
	name []byte
	// entry holds the copy of a cache entry.
	entry []byte
}

// fastReply answers the UDP query p from client, appending the answer to
// out. It reports false, having changed nothing, when the full chain must
// answer instead.
func (s *Server) fastReply(p []byte, client netip.Addr, st *fastState, out []byte) ([]byte, bool) {
	q := &st.q
	var ok bool
	if st.name, ok = parseWireQuery(p, q, st.name); !ok || !s.allowed(client) {
		return out, false
	}
	f := s.f
	if _, ok := circumventionNames[string(st.name)]; ok {
		return out, false
	}
	if s.limiter != nil && !s.limiter.allow(client) {
		out = appendHeader(out, q.id, q.replyFlags(dns.RcodeRefused), 1, 0, 0, 0)
		f.metrics.query(q.qtype, idxRefused)
		return append(out, q.question...), true
	}
	start := f.now()
	subject := f.opts.Identity().ByAddr(client)
	snap := f.opts.Policy()
	host := string(st.name)
	d := snap.Decide(policy.Request{Host: host, Group: subject.Group, ClientIP: client, Time: start})
	upstream := ""
	if d.Action == policy.Block {
		out = f.opts.Block.appendWire(out, q, blockText(d))
	} else {
		if _, ok := f.safe.target(host, d.SafeSearch); ok {
			return out, false
		}
		k := cacheKey{name: host, qtype: q.qtype}
		if q.do {
			k.flags |= keyDO
		}
		if q.flags&flagCD != 0 {
			k.flags |= keyCD
		}
		e, elapsed := f.cache.lookup(k, start, client, "udp", st.entry)
		if e == nil {
			return out, false
		}
		st.entry = e[:0]
		if !e.fast() {
			return out, false
		}
		for _, target := range e.targets() {
			if snap.Decide(policy.Request{Host: target, Group: subject.Group, ClientIP: client, Time: start}).Action == policy.Block {
				return out, false // the chain's CNAME guard answers
			}
		}
		if out, ok = appendCached(out, q, e, elapsed); !ok {
			return out, false
		}
		upstream = "cache"
	}
	if len(out) > q.replyLimit() {
		return out[:0], false
	}
	rcode := int(binary.BigEndian.Uint16(out[2:]) & rcodeMask)
	f.count(q.qtype, rcode, &d)
	if f.opts.Events != nil {
		f.record(start, "udp", client, &subject, &d, host, q.qtype, rcode, upstream)
	}
	return out, true
}

// appendCached appends the cached answer e for q: the client's id, flags
// and question (in the client's letter case), TTLs aged by elapsed
// seconds, and Warden's OPT record if the client sent one.
func appendCached(out []byte, q *wireQuery, e entry, elapsed uint32) ([]byte, bool) {
	base := len(out)
	out = append(out, e.wire()...)
	m := out[base:]
	qend := headerLen + len(q.question)
	if len(m) < qend || binary.BigEndian.Uint16(m[4:]) != 1 || !equalFoldASCII(m[headerLen:qend], q.question) {
		return out[:base], false
	}
	copy(m[headerLen:], q.question)
	binary.BigEndian.PutUint16(m, q.id)
	binary.BigEndian.PutUint16(m[2:], q.replyFlags(binary.BigEndian.Uint16(m[2:])))
	offs := e.ttlOffsets()
	for i := 0; i+1 < len(offs); i += 2 {
		off := binary.BigEndian.Uint16(offs[i:])
		ttl := binary.BigEndian.Uint32(m[off:])
		if ttl > elapsed {
			ttl -= elapsed
		} else {
			ttl = 0
		}
		binary.BigEndian.PutUint32(m[off:], ttl)
	}
	if q.edns {
		binary.BigEndian.PutUint16(m[10:], binary.BigEndian.Uint16(m[10:])+1)
		out = appendOPT(out, q, 0, "")
	}
	return out, true
}

// appendWire appends the blocked answer for q, as answer builds it for
// the full chain.
func (b *BlockResponse) appendWire(out []byte, q *wireQuery, why string) []byte {
	rcode := dns.RcodeSuccess
	var addr netip.Addr
	switch b.Mode {
	case BlockNXDomain:
		rcode = dns.RcodeNameError
	case BlockNull:
		switch q.qtype {
		case dns.TypeA:
			addr = netip.IPv4Unspecified()
		case dns.TypeAAAA:
			addr = netip.IPv6Unspecified()
		}
	default:
		switch {
		case q.qtype == dns.TypeA:
			addr = b.IPv4
		case q.qtype == dns.TypeAAAA && b.IPv6.IsValid():
			addr = b.IPv6
		}
	}
	var an, ar uint16
	if addr.IsValid() {
		an = 1
	}
	if q.edns {
		ar = 1
	}
	out = appendHeader(out, q.id, q.replyFlags(uint16(rcode)), 1, an, 0, ar)
	out = append(out, q.question...)
	if addr.IsValid() {
		out = append(out, q.qname...)
		out = binary.BigEndian.AppendUint16(out, q.qtype)
		out = binary.BigEndian.AppendUint16(out, dns.ClassINET)
		out = binary.BigEndian.AppendUint32(out, b.TTL)
		a := addr.AsSlice()
		out = binary.BigEndian.AppendUint16(out, uint16(len(a)))
		out = append(out, a...)
	}
	if q.edns {
		if len(why) > 200 {
			why = why[:200]
		}
		out = appendOPT(out, q, dns.ExtendedErrorCodeBlocked, why)
	}
	return out
}

// count adds an answered query to the metrics.
func (f *Filter) count(qtype uint16, rcode int, d *policy.Decision) {
	switch {
	case rcode == dns.RcodeServerFailure:
		f.metrics.query(qtype, idxError)
	case d.Action == policy.Block:
		f.metrics.query(qtype, idxBlock)
		f.metrics.blockedBy(d.Category)
	default:
		f.metrics.query(qtype, idxAllow)
	}
}

// record hands an answered query to the event pipeline.
func (f *Filter) record(start time.Time, proto string, client netip.Addr, who *identity.Subject, d *policy.Decision,
	host string, qtype uint16, rcode int, upstream string) {
	action := "allow"
	if d.Action == policy.Block {
		action = "block"
	}
	f.opts.Events(events.Event{
		Time:          start,
		Source:        proto,
		ClientIP:      client,
		DeviceID:      who.DeviceID,
		PersonID:      who.PersonID,
		Group:         who.Group,
		Host:          host,
		QType:         dns.TypeToString[qtype],
		Action:        action,
		Alert:         d.Alert,
		Category:      d.Category,
		List:          d.List,
		Rule:          d.Rule,
		PolicyVersion: d.PolicyVersion,
		Latency:       f.now().Sub(start),
		Upstream:      upstream,
		Status:        dns.RcodeToString[rcode],
	})
}
