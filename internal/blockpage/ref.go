package blockpage

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// refAlphabet is Crockford's base32: digits and upper-case letters
// without I, L, O and U, so that a reference read aloud or copied by hand
// cannot be confused (ParseRef reads I and L as 1 and O as 0).
const refAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// RefLen is the length of a reference id in its canonical form.
const RefLen = 10

// refEpoch is the start of the reference ids' minute counter.
var refEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrBadRef means a string is not a reference id.
var ErrBadRef = errors.New("not a reference id")

// newRef makes a reference id: 24 bits of minutes since 2025 (enough for
// 31 years, so ids sort roughly by time) and 26 random bits, in 10
// characters of Crockford base32. Two block pages of the same minute
// share an id with a chance of one in 67 million.
func newRef(t time.Time, rand io.Reader) (string, error) {
	var rb [4]byte
	if _, err := io.ReadFull(rand, rb[:]); err != nil {
		return "", fmt.Errorf("reference id: %w", err)
	}
	mins := uint64(max(0, int64(t.Sub(refEpoch)/time.Minute))) & (1<<24 - 1)
	r := uint64(rb[0])<<24 | uint64(rb[1])<<16 | uint64(rb[2])<<8 | uint64(rb[3])
	v := mins<<26 | r&(1<<26-1)
	var b [RefLen]byte
	for i := RefLen - 1; i >= 0; i-- {
		b[i] = refAlphabet[v&31]
		v >>= 5
	}
	return string(b[:]), nil
}

// FormatRef writes a canonical reference id in two groups of five
// ("7K3MQ-9QX2T"), the form printed on the page for people to read.
func FormatRef(ref string) string {
	if len(ref) != RefLen {
		return ref
	}
	return ref[:5] + "-" + ref[5:]
}

// ParseRef reads a reference id as a person may type it: in either case,
// with spaces or hyphens, with I or L for 1 and O for 0. It returns the
// canonical form (10 upper-case characters) or ErrBadRef.
func ParseRef(s string) (string, error) {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == ' ' || c == '-':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'I', 'L':
			c = '1'
		case 'O':
			c = '0'
		}
		if c > 127 || !strings.ContainsRune(refAlphabet, c) {
			return "", fmt.Errorf("%w: %q has a character that is not used in references", ErrBadRef, truncate(s, 40))
		}
		b.WriteRune(c)
		if b.Len() > RefLen {
			break
		}
	}
	if b.Len() != RefLen {
		return "", fmt.Errorf("%w: a reference has %d characters", ErrBadRef, RefLen)
	}
	return b.String(), nil
}

// ValidRef reports whether s is a reference id in canonical form.
func ValidRef(s string) bool {
	if len(s) != RefLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(refAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
