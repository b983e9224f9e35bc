package accesslog

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/events"
)

// encoder turns batches of events into segments, reusing its buffers from
// one batch to the next. It is not safe for concurrent use.
type encoder struct {
	times, devices, people, policies, latencies, sizes []int64
	alerts                                             []byte

	client addrDict
	// strs are the string columns (by stringColumns' order), gathered in
	// the row pass and then encoded a column at a time.
	strs [numStrings]struct {
		in []string
		d  strDict
	}

	seed                 maphash.Seed
	peopleSet, deviceSet idSet
	grams                gramFilter
	names                []string
	out, col             []byte
	peopleSum, devSum    []byte
	groupSum, catSum     []byte
}

// encode encodes batch (1..maxSegmentEvents events) as one segment. The
// returned slices are the encoder's and valid until the next call.
func (e *encoder) encode(batch []events.Event) (summary, error) {
	n := len(batch)
	if n == 0 || n > maxSegmentEvents {
		return summary{}, fmt.Errorf("encode segment: %d events (want 1 to %d)", n, maxSegmentEvents)
	}
	e.times, e.devices, e.people = e.times[:0], e.devices[:0], e.people[:0]
	e.policies, e.latencies, e.sizes = e.policies[:0], e.latencies[:0], e.sizes[:0]
	e.alerts = slices.Grow(e.alerts[:0], (n+7)/8)[:(n+7)/8]
	clear(e.alerts)
	if e.seed == (maphash.Seed{}) {
		e.seed = maphash.MakeSeed()
	}
	e.client.reset(n)
	for k := range e.strs {
		e.strs[k].d.reset(n, e.seed)
		e.strs[k].in = slices.Grow(e.strs[k].in[:0], n)[:n]
	}
	source, group, host, url := e.strs[strSource].in, e.strs[strGroup].in, e.strs[strHost].in, e.strs[strURL].in
	qtype, action, category, list := e.strs[strQType].in, e.strs[strAction].in, e.strs[strCategory].in, e.strs[strList].in
	rule, upstream, status := e.strs[strRule].in, e.strs[strUpstream].in, e.strs[strStatus].in
	method, search := e.strs[strMethod].in, e.strs[strSearch].in
	e.peopleSet.reset(n)
	e.deviceSet.reset(n)

	minUs, maxUs := int64(math.MaxInt64), int64(math.MinInt64)
	blocked, alerts := 0, false
	// One pass over the events, row by row: each event is read once,
	// while it is in cache, and spread over the columns.
	for i := range batch {
		ev := &batch[i]
		t := ev.Time.UnixMicro()
		minUs, maxUs = min(minUs, t), max(maxUs, t)
		e.times = append(e.times, t)
		source[i] = ev.Source
		e.client.add(i, ev.ClientIP)
		e.devices = append(e.devices, ev.DeviceID)
		e.deviceSet.add(ev.DeviceID)
		e.people = append(e.people, ev.PersonID)
		e.peopleSet.add(ev.PersonID)
		group[i] = ev.Group
		host[i] = ev.Host
		url[i] = ev.URL
		qtype[i] = ev.QType
		action[i] = ev.Action
		if ev.Action == "block" {
			blocked++
		}
		if ev.Alert {
			e.alerts[i>>3] |= 1 << (i & 7)
			alerts = true
		}
		category[i] = ev.Category
		list[i] = ev.List
		rule[i] = ev.Rule
		e.policies = append(e.policies, ev.PolicyVersion)
		e.latencies = append(e.latencies, ev.Latency.Microseconds())
		upstream[i] = ev.Upstream
		status[i] = ev.Status
		method[i] = ev.Method
		search[i] = ev.SearchTerm
		e.sizes = append(e.sizes, ev.Bytes)
	}

	for k := range e.strs {
		e.strs[k].d.addAll(e.strs[k].in)
	}
	out := append(e.out[:0], segmentFormat)
	out = binary.AppendUvarint(out, uint64(n))
	out = e.appendInts(out, colTime, e.times, intDelta)
	if !e.client.zero() {
		e.col = e.client.appendBody(e.col[:0])
		out = appendColumn(out, colClientIP, e.col)
	}
	out = e.appendInts(out, colDevice, e.devices, intPlain)
	out = e.appendInts(out, colPerson, e.people, intPlain)
	if alerts {
		out = appendColumn(out, colAlert, e.alerts)
	}
	out = e.appendInts(out, colPolicy, e.policies, intDelta)
	out = e.appendInts(out, colLatency, e.latencies, intPlain)
	out = e.appendInts(out, colBytes, e.sizes, intPlain)
	e.grams.reset()
	for k, c := range stringColumns {
		d := &e.strs[k].d
		if out = e.appendStrings(out, c.id, d); k == strHost && !(len(d.vals) == 1 && d.vals[0] == "") {
			e.grams.addText(e.col[d.text[0]:d.text[1]], d.folded, d.vals)
		}
	}
	e.out = out

	e.peopleSum = e.peopleSet.appendSorted(e.peopleSum[:0])
	e.devSum = e.deviceSet.appendSorted(e.devSum[:0])
	e.groupSum = e.appendNames(e.groupSum[:0], e.strs[strGroup].d.vals)
	e.catSum = e.appendNames(e.catSum[:0], e.strs[strCategory].d.vals)
	return summary{
		firstAt: floorDiv(minUs, 1000), lastAt: floorDiv(maxUs, 1000),
		events: n, blocked: blocked,
		people: nilIfEmpty(e.peopleSum), devices: nilIfEmpty(e.devSum),
		groups: string(e.groupSum), categories: string(e.catSum),
		hostGrams: e.grams.appendBytes(), data: out,
	}, nil
}

// appendNames appends the distinct non-empty values, sorted and
// newline-joined.
func (e *encoder) appendNames(b []byte, vals []string) []byte {
	e.names = e.names[:0]
	for _, v := range vals {
		if v != "" {
			e.names = append(e.names, v)
		}
	}
	slices.Sort(e.names)
	for i, v := range e.names {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, v...)
	}
	return b
}

// appendInts appends an int column, or nothing when every value is zero.
func (e *encoder) appendInts(out []byte, id int, vs []int64, mode byte) []byte {
	same := true
	for _, v := range vs[1:] {
		if v != vs[0] {
			same = false
			break
		}
	}
	b := e.col[:0]
	switch {
	case same && vs[0] == 0:
		return out
	case same:
		b = binary.AppendVarint(append(b, intConst), vs[0])
	case mode == intDelta:
		b = append(b, intDelta)
		prev := int64(0)
		for _, v := range vs {
			b = binary.AppendVarint(b, v-prev)
			prev = v
		}
	default:
		b = append(b, intPlain)
		for _, v := range vs {
			b = binary.AppendVarint(b, v)
		}
	}
	e.col = b
	return appendColumn(out, id, b)
}

// appendStrings appends a string column, or nothing when every value is
// empty.
func (e *encoder) appendStrings(out []byte, id int, d *strDict) []byte {
	if len(d.vals) == 1 && d.vals[0] == "" {
		return out
	}
	e.col = d.appendBody(e.col[:0])
	return appendColumn(out, id, e.col)
}

func appendColumn(out []byte, id int, body []byte) []byte {
	out = binary.AppendUvarint(out, uint64(id))
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// appendIndexes appends the rows' value indexes packed in indexBits(n)
// bits each.
func appendIndexes(b []byte, rows []uint16, n int) []byte {
	w := indexBits(n)
	if w == 0 {
		return b
	}
	if w == 8 || w == 16 {
		for _, r := range rows {
			if b = append(b, byte(r)); w == 16 {
				b = append(b, byte(r>>8))
			}
		}
		return b
	}
	// Fill 64 bits at a time; a value that does not fit is split.
	var acc uint64
	var have uint
	for _, r := range rows {
		acc |= uint64(r) << have
		have += w
		if have >= 64 {
			b = binary.LittleEndian.AppendUint64(b, acc)
			have -= 64
			acc = uint64(r) >> (w - have)
		}
	}
	for ; have > 0; have -= min(have, 8) {
		b = append(b, byte(acc))
		acc >>= 8
	}
	return b
}

// linearMax is how many distinct values a dictionary searches one by one
// before it hashes: most columns (action, qtype, status...) have a
// handful, and comparing a few strings costs less than hashing one.
const linearMax = 8

// slots is an open-addressing hash table from values to their indexes in
// a dictionary: a slot holds 15 bits of the value's hash above the index
// plus one (zero marks an empty slot), so most probes compare no value.
type slots struct {
	s      []uint32
	hashes []uint64 // by index, to grow without hashing again
	mask   uint64
}

func (t *slots) reset() {
	clear(t.s)
	t.hashes = t.hashes[:0]
}

// probe returns where to look first for hash h, and its tag.
func (t *slots) probe(h uint64) (uint64, uint32) { return h & t.mask, uint32(h>>49) << 17 }

// insert records that index i has hash h, growing to keep the table at
// most half full.
func (t *slots) insert(h uint64, i int) {
	t.hashes = append(t.hashes, h)
	if 2*len(t.hashes) > len(t.s) {
		size := max(64, 2*len(t.s))
		t.s = make([]uint32, size)
		t.mask = uint64(size - 1)
		for j, h := range t.hashes {
			t.place(h, j)
		}
		return
	}
	t.place(h, i)
}

func (t *slots) place(h uint64, i int) {
	p, tag := t.probe(h)
	for t.s[p] != 0 {
		p = (p + 1) & t.mask
	}
	t.s[p] = tag | uint32(i+1)
}

// strDict dictionary-encodes one string column.
type strDict struct {
	vals []string
	// text is where appendBody put the values' bytes, and folded
	// whether they are all lower-case ASCII.
	text    [2]int
	folded  bool
	rows    []uint16
	last    string
	lastIdx uint16
	hasLast bool
	hashed  bool // table holds vals
	table   slots
	seed    maphash.Seed
}

// reset empties the dictionary for a batch of n rows.
func (d *strDict) reset(n int, seed maphash.Seed) {
	d.vals, d.hasLast, d.seed = d.vals[:0], false, seed
	d.rows = slices.Grow(d.rows[:0], n)[:n]
	if d.hashed {
		d.table.reset()
		d.hashed = false
	}
}

// addAll sets the rows' values, in order.
func (d *strDict) addAll(in []string) {
	rows := d.rows[:len(in)]
	last, lastIdx, has := d.last, d.lastIdx, d.hasLast
	for i, s := range in {
		if has && s == last {
			rows[i] = lastIdx
			continue
		}
		lastIdx = d.index(s)
		last, has = s, true
		rows[i] = lastIdx
	}
	d.last, d.lastIdx, d.hasLast = last, lastIdx, has
}

// index returns s's index, adding it if new.
func (d *strDict) index(s string) uint16 {
	idx := -1
	if !d.hashed {
		for j, v := range d.vals {
			if v == s {
				idx = j
				break
			}
		}
		if idx < 0 && len(d.vals) == linearMax {
			for j, v := range d.vals {
				d.table.insert(maphash.String(d.seed, v), j)
			}
			d.hashed = true
		}
	}
	if d.hashed {
		h := maphash.String(d.seed, s)
		p, tag := d.table.probe(h)
		for {
			e := d.table.s[p]
			if e == 0 {
				break
			}
			if e&^(1<<17-1) == tag && d.vals[e&(1<<17-1)-1] == s {
				idx = int(e&(1<<17-1)) - 1
				break
			}
			p = (p + 1) & d.table.mask
		}
		if idx < 0 {
			d.table.insert(h, len(d.vals))
		}
	}
	if idx < 0 {
		idx = len(d.vals)
		d.vals = append(d.vals, s)
	}
	return uint16(idx)
}

func (d *strDict) appendBody(b []byte) []byte {
	size := 0
	for _, v := range d.vals {
		size += len(v)
	}
	b = binary.AppendUvarint(b, uint64(len(d.vals)))
	flags := len(b)
	b = append(b, 0)
	b = binary.AppendUvarint(b, uint64(size))
	text := len(b)
	for _, v := range d.vals {
		b = append(b, v...)
	}
	d.text, d.folded = [2]int{text, len(b)}, isFolded(b[text:])
	if d.folded {
		b[flags] |= flagFolded
	}
	for _, v := range d.vals {
		b = binary.AppendUvarint(b, uint64(len(v)))
	}
	return appendIndexes(b, d.rows, len(d.vals))
}

// isFolded reports whether b has neither an upper-case ASCII letter nor
// a byte outside ASCII, eight bytes at a time.
func isFolded(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		// See lowerASCII; a byte >= 0x80 sets its own top bit.
		if (w|(w+0x3f3f3f3f3f3f3f3f)&^(w+0x2525252525252525))&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c >= utf8.RuneSelf || c-'A' < 26 {
			return false
		}
	}
	return true
}

// addrDict dictionary-encodes the client address column.
type addrDict struct {
	vals    []netip.Addr
	rows    []uint16
	last    netip.Addr
	lastIdx uint16
	hasLast bool
	table   slots
}

func (d *addrDict) reset(n int) {
	d.vals, d.hasLast = d.vals[:0], false
	d.rows = slices.Grow(d.rows[:0], n)[:n]
	d.table.reset()
}

// add sets row i's address to a.
func (d *addrDict) add(i int, a netip.Addr) {
	if d.hasLast && a == d.last {
		d.rows[i] = d.lastIdx
		return
	}
	d.addNew(i, a)
}

func (d *addrDict) addNew(i int, a netip.Addr) {
	var h uint64
	if a.Is4() { // As16 costs several times more
		b := a.As4()
		h = uint64(binary.LittleEndian.Uint32(b[:])) * 0x9E3779B97F4A7C15
	} else {
		b := a.As16()
		h = binary.LittleEndian.Uint64(b[:8])*0x9E3779B97F4A7C15 ^ binary.LittleEndian.Uint64(b[8:])*0xC2B2AE3D27D4EB4F
	}
	h ^= h >> 29
	h *= 0x165667B19E3779F9
	h ^= h >> 32
	idx := -1
	if len(d.table.s) > 0 {
		p, tag := d.table.probe(h)
		for {
			e := d.table.s[p]
			if e == 0 {
				break
			}
			if e&^(1<<17-1) == tag && d.vals[e&(1<<17-1)-1] == a {
				idx = int(e&(1<<17-1)) - 1
				break
			}
			p = (p + 1) & d.table.mask
		}
	}
	if idx < 0 {
		idx = len(d.vals)
		d.vals = append(d.vals, a)
		d.table.insert(h, idx)
	}
	d.last, d.lastIdx, d.hasLast = a, uint16(idx), true
	d.rows[i] = uint16(idx)
}

func (d *addrDict) zero() bool { return len(d.vals) == 1 && !d.vals[0].IsValid() }

func (d *addrDict) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(d.vals)))
	for _, a := range d.vals {
		n := len(b)
		b = binary.AppendUvarint(b, 0) // placeholder, one byte while short
		b, _ = a.AppendBinary(b)
		if l := len(b) - n - 1; l < 0x80 {
			b[n] = byte(l)
		} else { // a very long IPv6 zone: redo with a longer length
			raw, _ := a.MarshalBinary()
			b = append(binary.AppendUvarint(b[:n], uint64(len(raw))), raw...)
		}
	}
	return appendIndexes(b, d.rows, len(d.vals))
}

// idSet collects the distinct positive ids of a batch in an open-addressing
// table (zero marks an empty slot).
type idSet struct {
	slots []int64
	shift uint
	keys  []int64
	last  int64
}

// reset empties the set, sized for up to n ids.
func (s *idSet) reset(n int) {
	size := 1 << 10
	for size < 2*n {
		size <<= 1
	}
	if len(s.slots) < size {
		s.slots = make([]int64, size)
	} else {
		clear(s.slots)
	}
	s.shift = uint(65 - bits.Len(uint(len(s.slots))))
	s.keys, s.last = s.keys[:0], 0
}

func (s *idSet) add(id int64) {
	if id <= 0 || id == s.last {
		return
	}
	s.last = id
	mask := len(s.slots) - 1
	h := int((uint64(id) * 0x9E3779B97F4A7C15) >> s.shift)
	for {
		switch s.slots[h] {
		case id:
			return
		case 0:
			s.slots[h] = id
			s.keys = append(s.keys, id)
			return
		}
		h = (h + 1) & mask
	}
}

// appendSorted appends the ids in order as uvarint differences.
func (s *idSet) appendSorted(b []byte) []byte {
	slices.Sort(s.keys)
	prev := int64(0)
	for _, id := range s.keys {
		b = binary.AppendUvarint(b, uint64(id-prev))
		prev = id
	}
	return b
}

// gramFilter is a Bloom filter (one hash) of the bigrams and trigrams of a
// segment's hosts in lower case, so that a search for a rare host (two
// bytes or more) can skip the segments that cannot hold it without
// reading their data. It is built
// at the largest size, then folded in half (bit i | bit i+m/2, as the
// index is the hash's low bits) while that leaves at most gramFill of the
// bits set; stored as m/8 bytes, bit i in byte i/8.
type gramFilter struct {
	bits    []uint64
	scratch []byte
	out     []byte
}

const (
	gramMaxBits = 1 << 17
	gramMinBits = 1 << 9
	gramFill    = 0.4
)

// gramHash hashes a trigram, or a bigram as (a, b, 0).
func gramHash(a, b, c byte) uint32 {
	h := (uint32(a) | uint32(b)<<8 | uint32(c)<<16) * 0x9E3779B1
	return h ^ h>>15
}

func (g *gramFilter) reset() {
	if len(g.bits) != gramMaxBits/64 {
		g.bits = make([]uint64, gramMaxBits/64)
	} else {
		clear(g.bits)
	}
}

// addText adds the grams of every value, from their bytes back to back
// (text, which folded says is already in lower case).
func (g *gramFilter) addText(text []byte, folded bool, vals []string) {
	if !folded {
		var ascii bool
		if g.scratch, ascii = lowerASCII(g.scratch[:0], text); !ascii {
			for _, v := range vals {
				g.addLower(strings.ToLower(v))
			}
			return
		}
		text = g.scratch
	}
	for _, v := range vals {
		p := text[:len(v)]
		text = text[len(v):]
		for i := 0; i+1 < len(p); i++ {
			g.set(gramHash(p[i], p[i+1], 0))
			if i+2 < len(p) {
				g.set(gramHash(p[i], p[i+1], p[i+2]))
			}
		}
	}
}

// addLower adds the grams of a value already in lower case.
func (g *gramFilter) addLower(v string) {
	for i := 0; i+2 <= len(v); i++ {
		g.set(gramHash(v[i], v[i+1], 0))
		if i+3 <= len(v) {
			g.set(gramHash(v[i], v[i+1], v[i+2]))
		}
	}
}

func (g *gramFilter) set(h uint32) {
	h &= gramMaxBits - 1
	g.bits[h>>6] |= 1 << (h & 63)
}

// appendBytes folds the filter and returns it (nil when no host has two
// bytes).
func (g *gramFilter) appendBytes() []byte {
	words := len(g.bits)
	set := 0
	for _, w := range g.bits {
		set += bits.OnesCount64(w)
	}
	if set == 0 {
		return nil
	}
	for words*64 > gramMinBits {
		half, folded := words/2, 0
		for i := range half {
			folded += bits.OnesCount64(g.bits[i] | g.bits[i+half])
		}
		if float64(folded) > gramFill*float64(half*64) {
			break
		}
		for i := range half {
			g.bits[i] |= g.bits[i+half]
		}
		words = half
	}
	g.out = g.out[:0]
	for _, w := range g.bits[:words] {
		g.out = binary.LittleEndian.AppendUint64(g.out, w)
	}
	return g.out
}
