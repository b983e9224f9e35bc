package lists

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
)

// SetID names a set of lists in an Index. Zero is the empty set.
type SetID uint16

// maxSets bounds the number of distinct list combinations an Index holds.
const maxSets = 1<<16 - 1

// loadFactor is the share of table slots in use after building: low
// enough that a miss probes few slots, high enough to stay compact.
const loadFactor = 0.7

// ErrTooManySets is returned when more distinct combinations of lists
// share domains than an Index can name.
var ErrTooManySets = errors.New("too many distinct list combinations")

// Index is a compact, read-only map from domain names to the set of lists
// that contain them. Lookups walk a host's suffixes ("a.b.example.com",
// "b.example.com", "example.com", "com"), so an entry covers every
// subdomain; IP literals match only themselves.
//
// Memory: every name is stored once in an arena with a 3-byte header (set
// and length), and an open-addressed table holds one 8-byte slot (32-bit
// hash tag, 32-bit arena offset) per name at a load of about 0.7.
type Index struct {
	seed  maphash.Seed
	slots []uint64 // 0 = empty; else tag<<32 | (offset+1)
	arena []byte   // per entry: set (2 bytes, little-endian), len (1), name
	sets  [][]uint16
	names int
}

// Hit is one suffix of a looked-up host that the index holds.
type Hit struct {
	// Start is the byte offset in the host where the matching suffix
	// begins; host[Start:] is the listed name.
	Start int
	// Set is the set of lists that hold that name.
	Set SetID
}

// Len returns the number of distinct names in the index.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.names
}

// Bytes returns the memory held by the index's arena and table.
func (ix *Index) Bytes() int {
	if ix == nil {
		return 0
	}
	n := len(ix.slots)*8 + len(ix.arena)
	for _, s := range ix.sets {
		n += 24 + 2*len(s)
	}
	return n
}

// Set returns the list numbers (as given to IndexBuilder.Add) in a set,
// sorted. The slice must not be modified.
func (ix *Index) Set(id SetID) []uint16 {
	if ix == nil || int(id) >= len(ix.sets) {
		return nil
	}
	return ix.sets[id]
}

// Lookup appends to hits every suffix of host that the index holds, the
// longest first, and returns the extended slice. host must be normalised
// (see NormalizeHost). Passing a stack array's slice as hits keeps the
// lookup free of allocation.
func (ix *Index) Lookup(host string, hits []Hit) []Hit {
	if ix == nil || ix.names == 0 || host == "" {
		return hits
	}
	if IsIP(host) {
		if set, ok := ix.get(host); ok {
			hits = append(hits, Hit{Start: 0, Set: set})
		}
		return hits
	}
	start := 0
	for {
		if set, ok := ix.get(host[start:]); ok {
			hits = append(hits, Hit{Start: start, Set: set})
		}
		i := strings.IndexByte(host[start:], '.')
		if i < 0 {
			return hits
		}
		start += i + 1
	}
}

// Get returns the set of lists holding exactly name.
func (ix *Index) Get(name string) (SetID, bool) {
	if ix == nil || ix.names == 0 {
		return 0, false
	}
	return ix.get(name)
}

func (ix *Index) get(name string) (SetID, bool) {
	h := maphash.String(ix.seed, name)
	tag := h >> 32
	m := uint64(len(ix.slots))
	i := (h & 0xffffffff) * m >> 32
	for {
		s := ix.slots[i]
		if s == 0 {
			return 0, false
		}
		if s>>32 == tag {
			off := int(uint32(s)) - 1
			n := int(ix.arena[off+2])
			if n == len(name) && string(ix.arena[off+3:off+3+n]) == name {
				return SetID(uint16(ix.arena[off]) | uint16(ix.arena[off+1])<<8), true
			}
		}
		i++
		if i == m {
			i = 0
		}
	}
}

// IndexBuilder builds an Index. Names must be normalised. The same name
// may be added for several lists; the index records the set of them.
type IndexBuilder struct {
	ix      Index
	setKeys map[string]SetID
	err     error
}

// NewIndexBuilder returns a builder sized for about capacity names.
func NewIndexBuilder(capacity int) *IndexBuilder {
	return NewIndexBuilderSized(capacity, capacity*16)
}

// NewIndexBuilderSized returns a builder sized for about capacity names
// of nameBytes bytes in all, so that building allocates the arena once.
func NewIndexBuilderSized(capacity, nameBytes int) *IndexBuilder {
	if capacity < 8 {
		capacity = 8
	}
	b := &IndexBuilder{setKeys: map[string]SetID{"": 0}}
	b.ix.seed = maphash.MakeSeed()
	b.ix.sets = [][]uint16{nil}
	b.ix.slots = make([]uint64, slotsFor(capacity))
	b.ix.arena = make([]byte, 0, nameBytes+3*capacity)
	return b
}

func slotsFor(n int) int {
	return int(float64(n)/loadFactor) + 8
}

// Add records that list holds name. It returns an error for a name that
// cannot be stored (empty or too long); the builder remains usable.
func (b *IndexBuilder) Add(name string, list uint16) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("index %q: %w", name, ErrBadHost)
	}
	if b.err != nil {
		return b.err
	}
	if float64(b.ix.names+1) > float64(len(b.ix.slots))*0.85 {
		b.rehash(slotsFor(2 * (b.ix.names + 1)))
	}
	h := maphash.String(b.ix.seed, name)
	tag := h >> 32
	m := uint64(len(b.ix.slots))
	i := (h & 0xffffffff) * m >> 32
	for {
		s := b.ix.slots[i]
		if s == 0 {
			break
		}
		if s>>32 == tag {
			off := int(uint32(s)) - 1
			n := int(b.ix.arena[off+2])
			if n == len(name) && string(b.ix.arena[off+3:off+3+n]) == name {
				old := SetID(uint16(b.ix.arena[off]) | uint16(b.ix.arena[off+1])<<8)
				set, err := b.union(old, list)
				if err != nil {
					b.err = err
					return err
				}
				b.ix.arena[off] = byte(set)
				b.ix.arena[off+1] = byte(set >> 8)
				return nil
			}
		}
		i++
		if i == m {
			i = 0
		}
	}
	set, err := b.union(0, list)
	if err != nil {
		b.err = err
		return err
	}
	off := len(b.ix.arena)
	if off+3+len(name) >= 1<<32-1 {
		b.err = errors.New("index larger than 4 GiB")
		return b.err
	}
	b.ix.arena = append(b.ix.arena, byte(set), byte(set>>8), byte(len(name)))
	b.ix.arena = append(b.ix.arena, name...)
	b.ix.slots[i] = tag<<32 | uint64(off+1)
	b.ix.names++
	return nil
}

// union returns the set that is old plus list, interning new sets.
func (b *IndexBuilder) union(old SetID, list uint16) (SetID, error) {
	cur := b.ix.sets[old]
	pos := 0
	for pos < len(cur) && cur[pos] < list {
		pos++
	}
	if pos < len(cur) && cur[pos] == list {
		return old, nil
	}
	next := make([]uint16, 0, len(cur)+1)
	next = append(next, cur[:pos]...)
	next = append(next, list)
	next = append(next, cur[pos:]...)
	key := setKey(next)
	if id, ok := b.setKeys[key]; ok {
		return id, nil
	}
	if len(b.ix.sets) >= maxSets {
		return 0, ErrTooManySets
	}
	id := SetID(len(b.ix.sets))
	b.ix.sets = append(b.ix.sets, next)
	b.setKeys[key] = id
	return id, nil
}

func setKey(s []uint16) string {
	k := make([]byte, 2*len(s))
	for i, v := range s {
		k[2*i] = byte(v)
		k[2*i+1] = byte(v >> 8)
	}
	return string(k)
}

// rehash moves every entry into a table of m slots.
func (b *IndexBuilder) rehash(m int) {
	slots := make([]uint64, m)
	mm := uint64(m)
	for off := 0; off < len(b.ix.arena); {
		n := int(b.ix.arena[off+2])
		name := b.ix.arena[off+3 : off+3+n]
		h := maphash.Bytes(b.ix.seed, name)
		i := (h & 0xffffffff) * mm >> 32
		for slots[i] != 0 {
			i++
			if i == mm {
				i = 0
			}
		}
		slots[i] = (h>>32)<<32 | uint64(off+1)
		off += 3 + n
	}
	b.ix.slots = slots
}

// Build returns the finished index. The builder must not be used again.
func (b *IndexBuilder) Build() (*Index, error) {
	if b.err != nil {
		return nil, b.err
	}
	want := slotsFor(b.ix.names)
	if len(b.ix.slots) > want+want/4 {
		// Many duplicates (or a generous capacity hint): shrink.
		b.rehash(want)
	}
	if cap(b.ix.arena) > len(b.ix.arena)+len(b.ix.arena)/8 {
		b.ix.arena = append([]byte(nil), b.ix.arena...)
	}
	ix := b.ix
	b.ix = Index{}
	b.setKeys = nil
	return &ix, nil
}
