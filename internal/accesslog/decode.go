package accesslog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/events"
)

// summaryHas reports whether a people or devices summary may hold id. A
// malformed summary may hold anything.
func summaryHas(b []byte, id int64) bool {
	v := uint64(0)
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return true
		}
		b = b[n:]
		v += d
		switch {
		case v == uint64(id):
			return true
		case v > uint64(id):
			return false
		}
	}
	return false
}

// gramsMayHold reports whether hosts with the gram filter f may contain
// needle (lower case). Without a filter (or with a malformed one) any
// needle may be there; so may a needle of one byte.
func gramsMayHold(f []byte, needle string) bool {
	m := len(f) * 8
	if m < gramMinBits || m&(m-1) != 0 {
		return len(f) != 0 || len(needle) < 2
	}
	has := func(h uint32) bool {
		h &= uint32(m - 1)
		return f[h>>3]&(1<<(h&7)) != 0
	}
	if len(needle) == 2 {
		return has(gramHash(needle[0], needle[1], 0))
	}
	for i := 0; i+3 <= len(needle); i++ {
		if !has(gramHash(needle[i], needle[i+1], needle[i+2])) {
			return false
		}
	}
	return true
}

// segment is a parsed segment blob: its row count and the bodies of the
// columns this version knows (nil when absent).
type segment struct {
	rows int
	cols [numColumns][]byte
}

// parseSegment checks a blob's framing and finds its columns.
func parseSegment(b []byte) (segment, error) {
	var s segment
	if len(b) == 0 {
		return s, corrupt("empty")
	}
	if b[0] != segmentFormat {
		return s, fmt.Errorf("segment format %d is not known to this version (%d)", b[0], segmentFormat)
	}
	rows, n := binary.Uvarint(b[1:])
	if n <= 0 || rows == 0 || rows > maxSegmentEvents {
		return s, corrupt("row count")
	}
	s.rows = int(rows)
	var seen [numColumns]bool
	for p := 1 + n; p < len(b); {
		id, n := binary.Uvarint(b[p:])
		if n <= 0 {
			return s, corrupt("column id at byte %d", p)
		}
		p += n
		size, n := binary.Uvarint(b[p:])
		if n <= 0 || size > uint64(len(b)-p-n) {
			return s, corrupt("length of column %d", id)
		}
		p += n
		if id < numColumns {
			if seen[id] {
				return s, corrupt("column %d twice", id)
			}
			seen[id] = true
			s.cols[id] = b[p : p+int(size)]
		}
		p += int(size)
	}
	return s, nil
}

// decodeInts decodes an int column of rows values into dst (all zero when
// body is empty).
func decodeInts(body []byte, rows int, dst []int64) ([]int64, error) {
	dst = slices.Grow(dst[:0], rows)[:rows]
	if len(body) == 0 {
		clear(dst)
		return dst, nil
	}
	mode, b := body[0], body[1:]
	switch mode {
	case intConst:
		v, n := binary.Varint(b)
		if n <= 0 || n != len(b) {
			return nil, corrupt("constant int")
		}
		for i := range dst {
			dst[i] = v
		}
		return dst, nil
	case intPlain, intDelta:
		prev := int64(0)
		for i := range dst {
			v, n := binary.Varint(b)
			if n <= 0 {
				return nil, corrupt("int at row %d", i)
			}
			b = b[n:]
			if mode == intDelta {
				v += prev
				prev = v
			}
			dst[i] = v
		}
		if len(b) != 0 {
			return nil, corrupt("%d bytes after an int column", len(b))
		}
		return dst, nil
	}
	return nil, corrupt("int mode %d", mode)
}

// strColumn is a string column of one segment, parsed in steps: reset
// reads the header and finds the values' bytes, which is all a substring
// search needs; index reads the value lengths and the rows' indexes.
type strColumn struct {
	rows, n int
	folded  bool
	absent  bool // every row ""
	text    []byte
	rest    []byte // lengths and indexes, until index
	indexed bool
	ends    []uint32 // end of value i in text
	idx     packed
	strs    []string // values copied out of text, on demand
	copied  []bool
}

// reset starts on a column body; an empty body is a column of "".
func (c *strColumn) reset(body []byte, rows int) error {
	c.rows, c.indexed, c.absent = rows, false, len(body) == 0
	if c.absent {
		c.n, c.folded, c.text, c.rest = 1, true, nil, nil
		return nil
	}
	n, k := binary.Uvarint(body)
	if k <= 0 || n == 0 || n > uint64(rows) {
		return corrupt("string column size")
	}
	body = body[k:]
	if len(body) == 0 {
		return corrupt("string column flags")
	}
	c.folded = body[0]&flagFolded != 0
	body = body[1:]
	size, k := binary.Uvarint(body)
	if k <= 0 || size > uint64(len(body)-k) {
		return corrupt("string column text")
	}
	c.n = int(n)
	c.text = body[k : k+int(size)]
	c.rest = body[k+int(size):]
	return nil
}

// index reads the value lengths and the rows' indexes.
func (c *strColumn) index() error {
	if c.indexed {
		return nil
	}
	c.ends = slices.Grow(c.ends[:0], c.n)[:c.n]
	c.strs = slices.Grow(c.strs[:0], c.n)[:c.n]
	c.copied = slices.Grow(c.copied[:0], c.n)[:c.n]
	clear(c.copied)
	b, end := c.rest, uint64(0)
	if c.absent {
		c.ends[0], c.indexed = 0, true
		return c.idx.set(nil, c.rows, 1)
	}
	for i := range c.ends {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(c.text)) || end+l > uint64(len(c.text)) {
			return corrupt("string length %d", i)
		}
		b = b[k:]
		end += l
		c.ends[i] = uint32(end)
	}
	if end != uint64(len(c.text)) {
		return corrupt("string lengths do not add up")
	}
	if err := c.idx.set(b, c.rows, c.n); err != nil {
		return err
	}
	c.indexed = true
	return nil
}

// at returns row's value index (after index).
func (c *strColumn) at(row int) int { return int(c.idx.at(row)) }

func (c *strColumn) start(i int) uint32 {
	if i == 0 {
		return 0
	}
	return c.ends[i-1]
}

// value returns value i as a string of its own (after index).
func (c *strColumn) value(i int) string {
	if !c.copied[i] {
		c.strs[i] = string(c.text[c.start(i):c.ends[i]])
		c.copied[i] = true
	}
	return c.strs[i]
}

// find returns the index of value s, or -1 (after index).
func (c *strColumn) find(s string) int {
	for i := range c.n {
		if string(c.text[c.start(i):c.ends[i]]) == s {
			return i
		}
	}
	return -1
}

// mayContain reports whether some value may contain needle (lower case):
// false is certain, true only when the column is not folded or the bytes
// hold it. It needs only reset.
func (c *strColumn) mayContain(needle string) bool {
	return !c.folded || bytes.Contains(c.text, []byte(needle))
}

// containing marks in match (len n) the values that contain needle (lower
// case), case-insensitively, and reports whether any does (after index).
func (c *strColumn) containing(needle string, match []bool, scratch *[]byte) ([]bool, bool) {
	match = slices.Grow(match[:0], c.n)[:c.n]
	clear(match)
	any := false
	text, ok := c.text, c.folded
	if !ok {
		*scratch, ok = lowerASCII((*scratch)[:0], c.text)
		text = *scratch // same offsets: ASCII keeps lengths
	}
	if ok {
		nb := []byte(needle)
		for off := 0; off <= len(text)-len(nb); {
			k := bytes.Index(text[off:], nb)
			if k < 0 {
				break
			}
			off += k
			i := sort.Search(c.n, func(i int) bool { return int(c.ends[i]) > off })
			if i < c.n && off+len(nb) <= int(c.ends[i]) {
				match[i], any = true, true
				off = int(c.ends[i])
				continue
			}
			off++
		}
		return match, any
	}
	for i := range c.n {
		v := c.text[c.start(i):c.ends[i]]
		*scratch = lower((*scratch)[:0], v)
		if bytes.Contains(*scratch, []byte(needle)) {
			match[i], any = true, true
		}
	}
	return match, any
}

// lower appends v in lower case, as strings.ToLower would.
func lower(dst, v []byte) []byte {
	if out, ok := lowerASCII(dst, v); ok {
		return out
	}
	return append(dst, strings.ToLower(string(v))...)
}

// lowerASCII appends v with A-Z in lower case, eight bytes at a time,
// unless v has a byte outside ASCII (then ok is false and dst is as it
// was).
func lowerASCII(dst, v []byte) (out []byte, ok bool) {
	n := len(dst)
	out = slices.Grow(dst, len(v))[:n+len(v)]
	o := out[n:]
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := binary.LittleEndian.Uint64(v[i:])
		if w&0x8080808080808080 != 0 {
			return dst, false
		}
		// With every byte below 0x80, adding 0x3f sets a byte's top bit
		// when it is >= 'A', adding 0x25 when it is > 'Z'.
		upper := (w + 0x3f3f3f3f3f3f3f3f) &^ (w + 0x2525252525252525) & 0x8080808080808080
		binary.LittleEndian.PutUint64(o[i:], w|upper>>2)
	}
	for ; i < len(v); i++ {
		c := v[i]
		if c >= utf8.RuneSelf {
			return dst, false
		}
		if c-'A' < 26 {
			c += 'a' - 'A'
		}
		o[i] = c
	}
	return out, true
}

// addrColumn is the decoded client address column of one segment.
type addrColumn struct {
	vals []netip.Addr
	idx  packed
}

func (c *addrColumn) decode(body []byte, rows int) error {
	c.vals = c.vals[:0]
	if len(body) == 0 {
		c.vals = append(c.vals, netip.Addr{})
		return c.idx.set(nil, rows, 1)
	}
	n, k := binary.Uvarint(body)
	if k <= 0 || n == 0 || n > uint64(rows) {
		return corrupt("address column size")
	}
	b := body[k:]
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return corrupt("address %d", i)
		}
		var a netip.Addr
		if err := a.UnmarshalBinary(b[k : k+int(l)]); err != nil {
			return corrupt("address %d: %v", i, err)
		}
		c.vals = append(c.vals, a)
		b = b[k+int(l):]
	}
	if err := c.idx.set(b, rows, int(n)); err != nil {
		return err
	}
	return nil
}

func (c *addrColumn) at(row int) int { return int(c.idx.at(row)) }

// reader decodes segments and picks out the rows a query wants, reusing
// its buffers from one segment to the next. It is not safe for concurrent
// use.
type reader struct {
	seg                                                segment
	loaded                                             [numColumns]bool
	times, devices, people, policies, latencies, sizes []int64
	strs                                               [numColumns]strColumn
	client                                             addrColumn
	alerts                                             []byte
	hostMatch                                          []bool
	scratch                                            []byte
}

// packed is a column's row indexes, packed as appendIndexes writes them,
// copied with room to read three bytes at any row.
type packed struct {
	b    []byte
	w    uint
	mask uint32
}

// set checks and copies the rows' indexes into n values from b.
func (p *packed) set(b []byte, rows, n int) error {
	p.w = indexBits(n)
	p.mask = 1<<p.w - 1
	if size := (rows*int(p.w) + 7) / 8; len(b) != size {
		return corrupt("indexes: %d bytes for %d rows of %d bits", len(b), rows, p.w)
	}
	p.b = append(append(p.b[:0], b...), 0, 0, 0)
	if n != 1<<p.w { // some w-bit values are out of range
		for i := range rows {
			if int(p.at(i)) >= n {
				return corrupt("index %d of %d at row %d", p.at(i), n, i)
			}
		}
	}
	return nil
}

func (p *packed) at(row int) uint32 {
	if p.w == 0 {
		return 0
	}
	o := uint(row) * p.w
	b := p.b[o>>3:]
	_ = b[2]
	return (uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16) >> (o & 7) & p.mask
}

// start parses a blob as the segment to read.
func (r *reader) start(blob []byte) error {
	s, err := parseSegment(blob)
	if err != nil {
		return err
	}
	r.seg = s
	clear(r.loaded[:])
	return nil
}

// str returns string column id with its header read; indexed also reads
// its indexes.
func (r *reader) str(id int, indexed bool) (*strColumn, error) {
	c := &r.strs[id]
	if !r.loaded[id] {
		if err := c.reset(r.seg.cols[id], r.seg.rows); err != nil {
			return nil, fmt.Errorf("column %d: %w", id, err)
		}
		r.loaded[id] = true
	}
	if indexed {
		if err := c.index(); err != nil {
			return nil, fmt.Errorf("column %d: %w", id, err)
		}
	}
	return c, nil
}

// ints decodes int column id into *dst once per segment.
func (r *reader) ints(id int, dst *[]int64) error {
	if r.loaded[id] {
		return nil
	}
	v, err := decodeInts(r.seg.cols[id], r.seg.rows, *dst)
	if err != nil {
		return fmt.Errorf("column %d: %w", id, err)
	}
	*dst, r.loaded[id] = v, true
	return nil
}

// loadAll decodes every column, for turning rows into entries.
func (r *reader) loadAll() error {
	for _, c := range [...]struct {
		id  int
		dst *[]int64
	}{{colTime, &r.times}, {colDevice, &r.devices}, {colPerson, &r.people}, {colPolicy, &r.policies}, {colLatency, &r.latencies}, {colBytes, &r.sizes}} {
		if err := r.ints(c.id, c.dst); err != nil {
			return err
		}
	}
	for _, c := range stringColumns {
		if _, err := r.str(c.id, true); err != nil {
			return err
		}
	}
	if !r.loaded[colClientIP] {
		if err := r.client.decode(r.seg.cols[colClientIP], r.seg.rows); err != nil {
			return fmt.Errorf("column %d: %w", colClientIP, err)
		}
		r.loaded[colClientIP] = true
	}
	if !r.loaded[colAlert] {
		r.alerts = r.seg.cols[colAlert]
		if len(r.alerts) != 0 && len(r.alerts) != (r.seg.rows+7)/8 {
			return corrupt("alert bitmap: %d bytes for %d rows", len(r.alerts), r.seg.rows)
		}
		r.loaded[colAlert] = true
	}
	return nil
}

// event returns row as an event (after loadAll).
func (r *reader) event(row int) events.Event {
	e := events.Event{
		Time:          time.UnixMicro(r.times[row]).UTC(),
		ClientIP:      r.client.vals[r.client.at(row)],
		DeviceID:      r.devices[row],
		PersonID:      r.people[row],
		PolicyVersion: r.policies[row],
		Latency:       time.Duration(r.latencies[row]) * time.Microsecond,
		Bytes:         r.sizes[row],
		Alert:         len(r.alerts) != 0 && r.alerts[row>>3]&(1<<(row&7)) != 0,
	}
	for _, c := range stringColumns {
		s := &r.strs[c.id]
		*c.field(&e) = s.value(s.at(row))
	}
	return e
}

// decodeSegment appends a segment's events to dst, in order.
func (r *reader) decodeSegment(blob []byte, dst []events.Event) ([]events.Event, error) {
	if err := r.start(blob); err != nil {
		return dst, err
	}
	if err := r.loadAll(); err != nil {
		return dst, err
	}
	for row := range r.seg.rows {
		dst = append(dst, r.event(row))
	}
	return dst, nil
}
