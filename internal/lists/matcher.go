package lists

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
)

// Matcher answers which lists hold a host or URL. It is built once by
// Compile from every list in force and is then immutable and safe for
// concurrent use.
type Matcher struct {
	infos   []Info
	domains *Index
	// urls holds URL-prefix entries by host (without port).
	urls map[string][]urlRule
	// hashes holds SHA-256 entries of normalised URL keys.
	hashes map[[32]byte][]uint16
	counts []int
}

// urlRule is one URL entry. Its port and path prefix are read from the
// entry when a host matches rather than kept apart: tens of thousands of
// rules stay at 24 bytes each.
type urlRule struct {
	entry URLKey
	list  uint16
}

// Match is one list that holds a host or URL.
type Match struct {
	// List is the list's number in the Matcher (see Info).
	List uint16
	// Entry is what matched: the listed domain (a suffix of the host) or
	// URL prefix. It is empty for hashed entries; callers must never show
	// the Entry of a mandatory list.
	Entry string
	// ByURL is true when a URL entry (not a whole domain) matched.
	ByURL bool
}

// MaxMatches bounds the matches reported for one lookup. Mandatory lists
// are numbered first, so their matches are never the ones left out.
const MaxMatches = 32

// Matches holds the lists that hold a host or URL, in a fixed array so a
// lookup allocates nothing.
type Matches struct {
	N int
	M [MaxMatches]Match
}

func (ms *Matches) add(m Match) {
	if ms.N < MaxMatches {
		ms.M[ms.N] = m
		ms.N++
	}
}

// All returns the matches as a slice of the fixed array.
func (ms *Matches) All() []Match { return ms.M[:ms.N] }

// Compile builds a Matcher from lists. Mandatory lists are numbered first,
// then the rest in the order given.
func Compile(ls []*List) (*Matcher, error) {
	if len(ls) > 1<<16-1 {
		return nil, fmt.Errorf("compile lists: %d lists is more than 65535", len(ls))
	}
	ordered := make([]*List, len(ls))
	copy(ordered, ls)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Mandatory && !ordered[j].Mandatory })
	total := 0
	for _, l := range ordered {
		total += len(l.Domains)
	}
	m := &Matcher{
		infos:  make([]Info, len(ordered)),
		urls:   map[string][]urlRule{},
		hashes: map[[32]byte][]uint16{},
		counts: make([]int, len(ordered)),
	}
	b := NewIndexBuilder(total)
	for i, l := range ordered {
		m.infos[i] = l.Info
		m.counts[i] = l.Len()
		n := uint16(i)
		for _, d := range l.Domains {
			if err := b.Add(d, n); err != nil {
				return nil, fmt.Errorf("compile list %s: %w", l.ID, err)
			}
		}
		for _, u := range l.URLs {
			// A copy: the entry may share the memory of a whole stored
			// list, which must not stay alive for its URL entries.
			u := URLKey(strings.Clone(string(u)))
			host := u.Host()
			m.urls[host] = append(m.urls[host], urlRule{entry: u, list: n})
		}
		for _, h := range l.Hashes {
			m.hashes[h] = append(m.hashes[h], n)
		}
	}
	ix, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("compile lists: %w", err)
	}
	m.domains = ix
	return m, nil
}

// Lists returns the lists' descriptions, numbered as in Match.List.
func (m *Matcher) Lists() []Info { return m.infos }

// Info returns the description of list number i.
func (m *Matcher) Info(i uint16) Info { return m.infos[i] }

// Count returns the number of entries of list number i.
func (m *Matcher) Count(i uint16) int { return m.counts[i] }

// Domains returns the number of distinct domain names held.
func (m *Matcher) Domains() int { return m.domains.Len() }

// Bytes estimates the memory held by the matcher's domain index.
func (m *Matcher) Bytes() int { return m.domains.Bytes() }

// MatchHost adds to out every list that holds host (a normalised host
// name) or one of its parent domains. Hashed entries are checked for the
// exact host only ("host" and "host/").
func (m *Matcher) MatchHost(host string, out *Matches) {
	if len(m.hashes) > 0 {
		m.matchHostHashes(host, out)
	}
	var buf [8]Hit
	for _, h := range m.domains.Lookup(host, buf[:0]) {
		for _, l := range m.domains.Set(h.Set) {
			out.add(Match{List: l, Entry: host[h.Start:]})
		}
	}
}

// MatchURL adds to out every list that holds the URL's host (as
// MatchHost) or a prefix of the URL.
func (m *Matcher) MatchURL(k URLKey, out *Matches) {
	host := k.Host()
	if len(m.hashes) > 0 {
		s := string(k)
		if k.Port() != "" {
			// Host-level entries ("host/") hold on every port.
			m.matchHostHashes(host, out)
		} else {
			m.matchHashes(host, out) // "host/" comes with the prefixes below
		}
		m.matchHashes(s, out)
		if i := strings.IndexByte(s, '?'); i >= 0 {
			m.matchHashes(s[:i], out)
			s = s[:i]
		}
		for i := 0; i < len(s)-1; i++ {
			if s[i] == '/' {
				m.matchHashes(s[:i+1], out)
			}
		}
	}
	var buf [8]Hit
	for _, h := range m.domains.Lookup(host, buf[:0]) {
		for _, l := range m.domains.Set(h.Set) {
			out.add(Match{List: l, Entry: host[h.Start:]})
		}
	}
	if len(m.urls) == 0 {
		return
	}
	port := k.Port()
	pq := k.PathQuery()
	suffix := host
	for {
		for _, r := range m.urls[suffix] {
			if r.entry.Port() == port && strings.HasPrefix(pq, r.entry.PathQuery()) {
				out.add(Match{List: r.list, Entry: string(r.entry), ByURL: true})
			}
		}
		if IsIP(host) {
			return
		}
		i := strings.IndexByte(suffix, '.')
		if i < 0 {
			return
		}
		suffix = suffix[i+1:]
	}
}

// matchHostHashes checks hashed entries for the bare host and for "host/"
// as NormalizeURL writes it (IPv6 literals in brackets).
func (m *Matcher) matchHostHashes(host string, out *Matches) {
	m.matchHashes(host, out)
	// A longer host is not normalised and has no URL key to match.
	if len(host) > MaxHostLen {
		return
	}
	var buf [MaxHostLen + 3]byte
	n := 0
	if strings.IndexByte(host, ':') >= 0 {
		buf[n] = '['
		n++
		n += copy(buf[n:], host)
		buf[n] = ']'
		n++
	} else {
		n += copy(buf[n:], host)
	}
	buf[n] = '/'
	m.matchHashBytes(buf[:n+1], out)
}

func (m *Matcher) matchHashes(s string, out *Matches) {
	m.matchHashBytes([]byte(s), out)
}

func (m *Matcher) matchHashBytes(b []byte, out *Matches) {
	sum := sha256.Sum256(b)
	for _, l := range m.hashes[sum] {
		out.add(Match{List: l})
	}
}

// HashURL returns the SHA-256 of a URL's normalised key, as hashed
// mandatory lists hold it.
func HashURL(raw string) ([32]byte, error) {
	k, err := NormalizeURL(raw)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256([]byte(k)), nil
}
