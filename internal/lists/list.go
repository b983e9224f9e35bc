package lists

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Info describes a list without its entries.
type Info struct {
	// ID names the list: "ut1/gambling", "local/education", "iwf".
	ID string
	// Source is where the list comes from: "ut1", "local", "iwf", "ctiru",
	// or the name given at import.
	Source string
	// SourceCategory is the source's own category name ("drogue"); it is
	// kept in decision reasons.
	SourceCategory string
	// Categories are the Warden categories the list's entries belong to.
	Categories []string
	// Mandatory lists (IWF, CTIRU) always block, cannot be overridden,
	// and their entries are never shown.
	Mandatory bool
}

// Label is how decisions name the list's origin: "UT1 drogue".
func (i Info) Label() string {
	src := i.Source
	switch src {
	case "ut1":
		src = "UT1"
	case "iwf":
		return "IWF URL list"
	case "ctiru":
		return "CTIRU list"
	}
	if i.SourceCategory != "" {
		return src + " " + i.SourceCategory
	}
	return src
}

// List is a list with its entries, normalised, sorted and de-duplicated.
type List struct {
	Info
	Domains []string
	URLs    []URLKey
	Hashes  [][32]byte
}

// Len returns the number of entries.
func (l *List) Len() int { return len(l.Domains) + len(l.URLs) + len(l.Hashes) }

// listMagic starts the stored encoding of a list's entries.
const listMagic = "warden-list 1\n"

// MarshalEntries encodes the entries for storage: a header, then one
// section per kind ("domains N", "urls N", "sha256 N") of one entry per
// line. Decoding slices the encoded text without copying.
func (l *List) MarshalEntries() []byte {
	n := len(listMagic) + 64
	for _, d := range l.Domains {
		n += len(d) + 1
	}
	for _, u := range l.URLs {
		n += len(u) + 1
	}
	n += len(l.Hashes) * 65
	b := bytes.NewBuffer(make([]byte, 0, n))
	b.WriteString(listMagic)
	fmt.Fprintf(b, "domains %d\n", len(l.Domains))
	for _, d := range l.Domains {
		b.WriteString(d)
		b.WriteByte('\n')
	}
	fmt.Fprintf(b, "urls %d\n", len(l.URLs))
	for _, u := range l.URLs {
		b.WriteString(string(u))
		b.WriteByte('\n')
	}
	fmt.Fprintf(b, "sha256 %d\n", len(l.Hashes))
	var hx [64]byte
	for _, h := range l.Hashes {
		hex.Encode(hx[:], h[:])
		b.Write(hx[:])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ErrBadEncoding is returned for stored entries that do not decode.
var ErrBadEncoding = errors.New("stored list entries are corrupt")

// UnmarshalEntries decodes entries written by MarshalEntries. The domain
// and URL strings share data's memory.
func (l *List) UnmarshalEntries(data string) error {
	rest, ok := strings.CutPrefix(data, listMagic)
	if !ok {
		return fmt.Errorf("%w: bad header", ErrBadEncoding)
	}
	section := func(name string) ([]string, error) {
		line, after, ok := strings.Cut(rest, "\n")
		if !ok {
			return nil, fmt.Errorf("%w: missing %s section", ErrBadEncoding, name)
		}
		countText, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			return nil, fmt.Errorf("%w: missing %s section", ErrBadEncoding, name)
		}
		n, err := strconv.Atoi(countText)
		// Only the canonical spelling MarshalEntries writes ("12", not
		// "+12" or "012") is accepted, so a decoded list encodes back to
		// the same bytes.
		if err != nil || n < 0 || n > len(after) || strconv.Itoa(n) != countText {
			return nil, fmt.Errorf("%w: bad %s count", ErrBadEncoding, name)
		}
		out := make([]string, n)
		for i := range out {
			j := strings.IndexByte(after, '\n')
			if j < 0 {
				return nil, fmt.Errorf("%w: %s section cut short", ErrBadEncoding, name)
			}
			out[i] = after[:j]
			after = after[j+1:]
		}
		rest = after
		return out, nil
	}
	domains, err := section("domains")
	if err != nil {
		return err
	}
	urls, err := section("urls")
	if err != nil {
		return err
	}
	hashes, err := section("sha256")
	if err != nil {
		return err
	}
	if rest != "" {
		return fmt.Errorf("%w: trailing data", ErrBadEncoding)
	}
	// Decode everything before touching l, so that a corrupt encoding
	// leaves the list as it was.
	sums := make([][32]byte, len(hashes))
	for i, h := range hashes {
		if len(h) != 64 || !isLowerHex(h) {
			return fmt.Errorf("%w: bad hash", ErrBadEncoding)
		}
		if _, err := hex.Decode(sums[i][:], []byte(h)); err != nil {
			return fmt.Errorf("%w: bad hash", ErrBadEncoding)
		}
	}
	l.Domains = domains
	l.URLs = make([]URLKey, len(urls))
	for i, u := range urls {
		l.URLs[i] = URLKey(u)
	}
	l.Hashes = sums
	return nil
}

// isLowerHex reports whether s holds only the lower-case hex digits that
// MarshalEntries writes.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
