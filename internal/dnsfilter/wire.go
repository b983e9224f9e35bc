package dnsfilter

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// The UDP fast path (fast.go) reads the common query straight from the
// packet and writes its answer straight into the reply buffer, without
// building a dns.Msg. This file holds the wire-format pieces it needs.
// Anything out of the ordinary is left to the full chain, so these
// readers refuse rather than guess.

// Header flag bits (RFC 1035 4.1.1, RFC 4035 for AD and CD).
const (
	flagQR     = 1 << 15
	flagOpcode = 0xF << 11
	flagAA     = 1 << 10
	flagTC     = 1 << 9
	flagRD     = 1 << 8
	flagRA     = 1 << 7
	flagCD     = 1 << 4
	rcodeMask  = 0xF
	headerLen  = 12
)

// ednsDO is the DNSSEC OK bit in an OPT record's TTL field.
const ednsDO = 1 << 15

// wireQuery is a client's query as read from the packet: one question of
// class IN, no answer or authority records, and at most an OPT record of
// EDNS version 0.
type wireQuery struct {
	id    uint16
	flags uint16
	// question is the question section as sent (name, type, class), and
	// qname its name part; both alias the packet.
	question []byte
	qname    []byte
	qtype    uint16
	edns     bool
	do       bool
	udpSize  uint16
}

// parseWireQuery reads p into q, and the question's name, lower-case and
// without the final dot, into name (which it returns, grown as needed).
// It reports false for anything it does not handle: responses, other
// opcodes, several questions, records other than one OPT, names with
// characters that need escaping, the root, EDNS versions other than 0,
// and malformed or trailing bytes.
func parseWireQuery(p []byte, q *wireQuery, name []byte) ([]byte, bool) {
	name = name[:0]
	if len(p) < headerLen {
		return name, false
	}
	q.id = binary.BigEndian.Uint16(p)
	q.flags = binary.BigEndian.Uint16(p[2:])
	if q.flags&(flagQR|flagOpcode|flagTC) != 0 {
		return name, false
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(p[4:]), binary.BigEndian.Uint16(p[6:]), binary.BigEndian.Uint16(p[8:]), binary.BigEndian.Uint16(p[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return name, false
	}
	off := headerLen
	for {
		if off >= len(p) {
			return name, false
		}
		l := int(p[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(p) {
			return name, false // compression pointers have no place here
		}
		if len(name) > 0 {
			name = append(name, '.')
		}
		for _, c := range p[off : off+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return name, false
			}
			name = append(name, c)
		}
		off += l
	}
	if len(name) == 0 || off-headerLen > 255 || off+4 > len(p) {
		return name, false
	}
	q.qname = p[headerLen:off]
	q.qtype = binary.BigEndian.Uint16(p[off:])
	if binary.BigEndian.Uint16(p[off+2:]) != dns.ClassINET {
		return name, false
	}
	off += 4
	q.question = p[headerLen:off]
	q.edns, q.do, q.udpSize = false, false, 0
	if ar == 1 {
		// root name, type OPT, class = UDP size, TTL = extended rcode,
		// version and flags, then the options.
		if off+11 > len(p) || p[off] != 0 || binary.BigEndian.Uint16(p[off+1:]) != dns.TypeOPT {
			return name, false
		}
		q.udpSize = binary.BigEndian.Uint16(p[off+3:])
		if p[off+6] != 0 { // EDNS version
			return name, false
		}
		q.do = binary.BigEndian.Uint16(p[off+7:])&ednsDO != 0
		rdlen := int(binary.BigEndian.Uint16(p[off+9:]))
		off += 11 + rdlen
		q.edns = true
	}
	return name, off == len(p)
}

// replyLimit is the largest UDP answer the client takes: 512 bytes
// without EDNS, else its buffer size up to Warden's own.
func (q *wireQuery) replyLimit() int {
	if q.edns && int(q.udpSize) > dns.MinMsgSize {
		return min(int(q.udpSize), serverUDPSize)
	}
	return dns.MinMsgSize
}

// replyFlags are the header flags of Warden's answer to q: a response to
// a QUERY with recursion available, echoing RD and CD, plus the given
// flags and rcode of the answer itself.
func (q *wireQuery) replyFlags(answer uint16) uint16 {
	f := answer &^ (flagOpcode | flagRD | flagCD | flagTC)
	return f | flagQR | flagRA | q.flags&(flagRD|flagCD)
}

// appendHeader appends a header with the given flags and counts.
func appendHeader(b []byte, id, flags, qd, an, ns, ar uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, qd)
	b = binary.BigEndian.AppendUint16(b, an)
	b = binary.BigEndian.AppendUint16(b, ns)
	return binary.BigEndian.AppendUint16(b, ar)
}

// appendOPT appends Warden's OPT record for q (its buffer size, DO echoed),
// with an Extended DNS Error (RFC 8914) when ede is not empty.
func appendOPT(b []byte, q *wireQuery, edeCode uint16, ede string) []byte {
	b = append(b, 0) // root
	b = binary.BigEndian.AppendUint16(b, dns.TypeOPT)
	b = binary.BigEndian.AppendUint16(b, serverUDPSize)
	var ttl uint32
	if q.do {
		ttl = ednsDO
	}
	b = binary.BigEndian.AppendUint32(b, ttl)
	if ede == "" {
		return binary.BigEndian.AppendUint16(b, 0)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(4+2+len(ede)))
	b = binary.BigEndian.AppendUint16(b, dns.EDNS0EDE)
	b = binary.BigEndian.AppendUint16(b, uint16(2+len(ede)))
	b = binary.BigEndian.AppendUint16(b, edeCode)
	return append(b, ede...)
}

// skipName returns the offset just past the (possibly compressed) name
// at off, or -1 when it runs off the message.
func skipName(m []byte, off int) int {
	for {
		if off >= len(m) {
			return -1
		}
		l := int(m[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xC0 == 0xC0:
			if off+2 > len(m) {
				return -1
			}
			return off + 2
		case l&0xC0 != 0:
			return -1
		}
		off += 1 + l
	}
}

// appendTTLOffsets appends where the TTL of every record of a packed
// message sits (two bytes each, big-endian) to dst, or reports false if
// the message cannot be walked or holds an OPT record (answers are stored
// without one).
func appendTTLOffsets(dst, m []byte) ([]byte, bool) {
	if len(m) < headerLen || len(m) > 0xFFFF {
		return dst, false
	}
	qd := int(binary.BigEndian.Uint16(m[4:]))
	rrs := int(binary.BigEndian.Uint16(m[6:])) + int(binary.BigEndian.Uint16(m[8:])) + int(binary.BigEndian.Uint16(m[10:]))
	off := headerLen
	for i := 0; i < qd; i++ {
		if off = skipName(m, off); off < 0 || off+4 > len(m) {
			return dst, false
		}
		off += 4
	}
	start := len(dst)
	for i := 0; i < rrs; i++ {
		if off = skipName(m, off); off < 0 || off+10 > len(m) {
			return dst[:start], false
		}
		if binary.BigEndian.Uint16(m[off:]) == dns.TypeOPT {
			return dst[:start], false
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(off+4))
		off += 10 + int(binary.BigEndian.Uint16(m[off+8:]))
		if off > len(m) {
			return dst[:start], false
		}
	}
	if off != len(m) {
		return dst[:start], false
	}
	return dst, true
}

// equalFoldASCII says whether a and b are equal, ignoring the case of
// ASCII letters only.
func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i, c := range a {
		d := b[i]
		if c == d {
			continue
		}
		if c|0x20 != d|0x20 || c|0x20 < 'a' || c|0x20 > 'z' {
			return false
		}
	}
	return true
}

// wireNameIs reports whether the uncompressed name at the start of b
// spells name (lower-case, dot-separated, no final dot; "" for the root),
// ignoring the case of ASCII letters, and returns the offset just past
// it. A label holding a dot never matches.
func wireNameIs(b []byte, name string) (int, bool) {
	off := 0
	for {
		if off >= len(b) {
			return 0, false
		}
		l := int(b[off])
		off++
		if l == 0 {
			return off, name == ""
		}
		if l > 63 || off+l > len(b) || l > len(name) {
			return 0, false
		}
		for i, c := range b[off : off+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != name[i] || c == '.' {
				return 0, false
			}
		}
		off += l
		name = name[l:]
		if name != "" {
			if name[0] != '.' || len(name) == 1 {
				return 0, false
			}
			name = name[1:]
		}
	}
}
