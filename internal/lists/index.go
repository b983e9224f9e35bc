package lists

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
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
// Memory: the index keeps no names, only their 64-bit hashes (seeded
// afresh in every process, so nobody can aim for a collision), in an
// open-addressed table of 8-byte hashes and 2-byte set ids at a load of
// about 0.7: some 14 bytes a name, where the names alone would take more.
// Two names share a hash with probability 2^-64 a pair: with a million
// names, once in some 40 million builds two would be taken for one (and
// share their lists), and a name not listed is taken for a listed one
// about once in 10^18 lookups.
type Index struct {
	seed   maphash.Seed
	hashes []uint64 // 0 = empty slot
	ids    []SetID  // the set of each slot's name
	sets   [][]uint16
	names  int
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

// Bytes returns the memory held by the index's table and sets.
func (ix *Index) Bytes() int {
	if ix == nil {
		return 0
	}
	n := len(ix.hashes)*8 + len(ix.ids)*2
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
	h := hashName(ix.seed, name)
	m := uint64(len(ix.hashes))
	i, _ := bits.Mul64(h, m)
	for {
		switch ix.hashes[i] {
		case h:
			return ix.ids[i], true
		case 0:
			return 0, false
		}
		i++
		if i == m {
			i = 0
		}
	}
}

// hashName is a name's hash in the table; never 0, which marks an empty
// slot.
func hashName(seed maphash.Seed, name string) uint64 {
	if h := maphash.String(seed, name); h != 0 {
		return h
	}
	return 1
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
	if capacity < 8 {
		capacity = 8
	}
	b := &IndexBuilder{setKeys: map[string]SetID{"": 0}}
	b.ix.seed = maphash.MakeSeed()
	b.ix.sets = [][]uint16{nil}
	b.ix.hashes = make([]uint64, slotsFor(capacity))
	b.ix.ids = make([]SetID, len(b.ix.hashes))
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
	if float64(b.ix.names+1) > float64(len(b.ix.hashes))*0.85 {
		b.rehash(slotsFor(2 * (b.ix.names + 1)))
	}
	h := hashName(b.ix.seed, name)
	m := uint64(len(b.ix.hashes))
	i, _ := bits.Mul64(h, m)
	for b.ix.hashes[i] != 0 && b.ix.hashes[i] != h {
		i++
		if i == m {
			i = 0
		}
	}
	set, err := b.union(b.ix.ids[i], list)
	if err != nil {
		b.err = err
		return err
	}
	if b.ix.hashes[i] == 0 {
		b.ix.hashes[i] = h
		b.ix.names++
	}
	b.ix.ids[i] = set
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
	hashes, ids := make([]uint64, m), make([]SetID, m)
	mm := uint64(m)
	for j, h := range b.ix.hashes {
		if h == 0 {
			continue
		}
		i, _ := bits.Mul64(h, mm)
		for hashes[i] != 0 {
			i++
			if i == mm {
				i = 0
			}
		}
		hashes[i], ids[i] = h, b.ix.ids[j]
	}
	b.ix.hashes, b.ix.ids = hashes, ids
}

// Build returns the finished index. The builder must not be used again.
func (b *IndexBuilder) Build() (*Index, error) {
	if b.err != nil {
		return nil, b.err
	}
	want := slotsFor(b.ix.names)
	if len(b.ix.hashes) > want+want/4 {
		// Many duplicates (or a generous capacity hint): shrink.
		b.rehash(want)
	}
	ix := b.ix
	b.ix = Index{}
	b.setKeys = nil
	return &ix, nil
}
