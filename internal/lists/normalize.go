package lists

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxHostLen is the longest host name accepted, as DNS allows.
const MaxHostLen = 253

// idnaProfile converts internationalised names to their ASCII (punycode)
// form. It is lenient about underscores and other characters seen in real
// lists, because a list is a description of names, not a registration.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// Errors returned by NormalizeHost and NormalizeURL. They describe what is
// wrong with an entry in words a person can act on.
var (
	ErrEmptyHost   = errors.New("empty host name")
	ErrHostTooLong = errors.New("host name longer than 253 characters")
	ErrBadHost     = errors.New("not a valid host name")
	ErrBadURL      = errors.New("not a valid URL")
)

// NormalizeHost returns the canonical form of a host name or IP literal as
// lists and decisions use it: lower case, IDNA (punycode) encoded, without
// a trailing dot, a leading "*." or "." wildcard marker, or IPv6 brackets.
// IP literals are returned in their canonical text form.
func NormalizeHost(h string) (string, error) {
	if isCanonicalASCIIHost(h) {
		return h, nil
	}
	h = strings.TrimSpace(h)
	h = strings.TrimPrefix(h, "*.")
	h = strings.TrimPrefix(h, ".")
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", ErrEmptyHost
	}
	if h[0] == '[' {
		if h[len(h)-1] != ']' {
			return "", fmt.Errorf("%w: unclosed IPv6 bracket", ErrBadHost)
		}
		h = h[1 : len(h)-1]
	}
	if strings.IndexByte(h, ':') >= 0 {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() {
			return "", fmt.Errorf("%w: %q", ErrBadHost, h)
		}
		return a.WithZone("").String(), nil
	}
	if !isASCII(h) {
		if !utf8.ValidString(h) {
			return "", fmt.Errorf("%w: invalid UTF-8", ErrBadHost)
		}
		a, err := idnaProfile.ToASCII(h)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrBadHost, h, err)
		}
		h = a
	} else {
		h = strings.ToLower(h)
	}
	if err := checkHostSyntax(h); err != nil {
		return "", err
	}
	return h, nil
}

// isCanonicalASCIIHost reports, cheaply, whether h is already a lower-case
// ASCII host name with no trailing dot, so that the hot path allocates
// nothing.
func isCanonicalASCIIHost(h string) bool {
	if h == "" || len(h) > MaxHostLen || h[len(h)-1] == '.' || h[0] == '.' || h[0] == '-' {
		return false
	}
	label := 0
	digitsOnlyLast := true
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c == '-', c == '_':
			if c == '-' && label == 0 {
				return false // a label may not start with '-'
			}
			digitsOnlyLast = false
			label++
		case c >= '0' && c <= '9':
			label++
		case c == '.':
			if label == 0 || h[i-1] == '-' {
				return false
			}
			label = 0
			digitsOnlyLast = true
		default:
			return false
		}
		if label > 63 {
			return false
		}
	}
	if h[len(h)-1] == '-' {
		return false
	}
	if digitsOnlyLast {
		// An all-digit last label is only valid as part of an IPv4
		// address; leave that to the slow path.
		return false
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// checkHostSyntax validates a lower-case ASCII name: labels of letters,
// digits, hyphens and underscores, 1 to 63 long, at most 253 in all; an
// all-numeric last label is accepted only as an IPv4 address.
func checkHostSyntax(h string) error {
	if len(h) > MaxHostLen {
		return ErrHostTooLong
	}
	if h == "" {
		return ErrEmptyHost
	}
	last := h
	if i := strings.LastIndexByte(h, '.'); i >= 0 {
		last = h[i+1:]
	}
	if allDigits(last) {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is4() {
			return fmt.Errorf("%w: %q (numeric top-level label but not an IPv4 address)", ErrBadHost, h)
		}
		return nil
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("%w: %q has an empty label", ErrBadHost, h)
		}
		if len(label) > 63 {
			return fmt.Errorf("%w: %q has a label longer than 63 characters", ErrBadHost, h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: %q has a label starting or ending with '-'", ErrBadHost, h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%w: %q contains %q", ErrBadHost, h, c)
			}
		}
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsIP reports whether a normalised host is an IP literal. IP entries match
// only themselves, never "subdomains".
func IsIP(host string) bool {
	if host == "" {
		return false
	}
	if strings.IndexByte(host, ':') >= 0 {
		return true
	}
	last := host
	if i := strings.LastIndexByte(host, '.'); i >= 0 {
		last = host[i+1:]
	}
	return allDigits(last)
}

// URLKey is a normalised URL without its scheme: "host[:port]/path[?query]".
// Lists store URL entries in this form and match them by prefix.
type URLKey string

// Host returns the host part of the key (without port).
func (k URLKey) Host() string {
	s := string(k)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i >= 0 {
			return s[1:i]
		}
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		return s[:i]
	}
	return s
}

// Port returns the key's explicit port, or "" for the scheme's default.
func (k URLKey) Port() string {
	s := string(k)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	if strings.HasPrefix(s, "[") {
		if i := strings.LastIndex(s, "]:"); i >= 0 {
			return s[i+2:]
		}
		return ""
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// PathQuery returns everything after the host and port, starting with '/'.
func (k URLKey) PathQuery() string {
	s := string(k)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[i:]
	}
	return "/"
}

// NormalizeURL returns the list key of a URL: the scheme is ignored, the
// host lower-cased and IDNA-encoded, a default port (80, 443) dropped,
// percent-encoding normalised (unreserved characters decoded, hex digits in
// upper case), dot segments removed, and the fragment dropped. The input may
// have a scheme ("https://example.com/a") or not ("example.com/a").
func NormalizeURL(raw string) (URLKey, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrBadURL)
	}
	if i := strings.Index(s, "://"); i >= 0 && i < 12 && isScheme(s[:i]) {
		s = s[i+3:]
	} else {
		s = strings.TrimPrefix(s, "//")
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	end := strings.IndexAny(s, "/?")
	authority, rest := s, ""
	if end >= 0 {
		authority, rest = s[:end], s[end:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:] // userinfo is never part of the key
	}
	hostPart, port := authority, ""
	if strings.HasPrefix(hostPart, "[") {
		i := strings.IndexByte(hostPart, ']')
		if i < 0 {
			return "", fmt.Errorf("%w: unclosed IPv6 bracket", ErrBadURL)
		}
		if tail := hostPart[i+1:]; tail != "" {
			if tail[0] != ':' {
				return "", fmt.Errorf("%w: junk after IPv6 address", ErrBadURL)
			}
			port = tail[1:]
		}
		hostPart = hostPart[1:i]
	} else if i := strings.LastIndexByte(hostPart, ':'); i >= 0 {
		hostPart, port = hostPart[:i], hostPart[i+1:]
	}
	host, err := NormalizeHost(hostPart)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || !allDigits(port) || n < 1 || n > 65535 {
			return "", fmt.Errorf("%w: bad port %q", ErrBadURL, port)
		}
		if n == 80 || n == 443 {
			port = ""
		} else {
			port = strconv.Itoa(n)
		}
	}
	path, query := rest, ""
	hasQuery := false
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		path, query, hasQuery = rest[:i], rest[i+1:], true
	}
	path, err = normalizePercent(path)
	if err != nil {
		return "", err
	}
	path = removeDotSegments(path)
	if path == "" {
		path = "/"
	}
	var b strings.Builder
	b.Grow(len(host) + len(port) + len(path) + len(query) + 4)
	if strings.IndexByte(host, ':') >= 0 {
		b.WriteByte('[')
		b.WriteString(host)
		b.WriteByte(']')
	} else {
		b.WriteString(host)
	}
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(path)
	if hasQuery && query != "" {
		q, err := normalizePercent(query)
		if err != nil {
			return "", err
		}
		b.WriteByte('?')
		b.WriteString(q)
	}
	return URLKey(b.String()), nil
}

func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// normalizePercent decodes percent-escapes of unreserved characters
// (RFC 3986 §2.3), writes the remaining escapes with upper-case hex digits,
// and escapes bytes that may not appear raw in a URL (spaces, controls,
// non-ASCII), so that equivalent spellings give the same key.
func normalizePercent(s string) (string, error) {
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c <= ' ' || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", fmt.Errorf("%w: bad percent-escape at %q", ErrBadURL, truncate(s[i:], 8))
			}
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				b.WriteByte('%')
				b.WriteByte(upperHex[v>>4])
				b.WriteByte(upperHex[v&15])
			}
			i += 2
		case c <= ' ' || c >= 0x7f:
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// removeDotSegments applies RFC 3986 §5.2.4 to a path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	if !strings.Contains(p, "/.") && p != "." && p != ".." {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		switch seg {
		case ".":
			if i == len(segs)-1 {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if i == len(segs)-1 {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	r := strings.Join(out, "/")
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(r, "/") {
		r = "/" + r
	}
	return r
}
