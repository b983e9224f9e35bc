package lists

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// Format names a list file format.
type Format string

// List formats Warden imports.
const (
	// FormatUT1 is a squidGuard/UT1 set: a folder or .tar.gz holding
	// CATEGORY/domains and CATEGORY/urls files (plain or gzipped).
	FormatUT1 Format = "ut1"
	// FormatPlain is one domain or URL per line, '#' comments.
	FormatPlain Format = "plain"
	// FormatHosts is a hosts file: "0.0.0.0 name [name...]".
	FormatHosts Format = "hosts"
	// FormatAdblock is Adblock-style "||domain^" rules; other rule kinds
	// (cosmetic, exceptions, path rules) are counted as unsupported.
	FormatAdblock Format = "adblock"
	// FormatSHA256 is one hex SHA-256 per line of a normalised URL key
	// (see NormalizeURL), as the mandatory lists may be supplied.
	FormatSHA256 Format = "sha256"
)

// Formats lists the formats accepted by ParseFormat.
var Formats = []Format{FormatUT1, FormatPlain, FormatHosts, FormatAdblock, FormatSHA256}

// ParseFormat checks a format name given by a person.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == strings.ToLower(s) {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown list format %q (want one of ut1, plain, hosts, adblock, sha256)", s)
}

// MaxProblems is how many malformed lines a Report keeps; the rest are
// only counted.
const MaxProblems = 10

// MaxLineLen is the longest line a list may hold; longer lines are
// reported as malformed.
const MaxLineLen = 8 << 10

// Problem is one malformed line of a list file.
type Problem struct {
	File string
	Line int
	Err  error
	// Redacted problems belong to a mandatory list: their text is never
	// shown, only their position and the kind of fault.
	Redacted bool
}

// Error formats the problem as "file:line: what is wrong".
func (p Problem) Error() string {
	if p.Redacted {
		return fmt.Sprintf("%s:%d: %s (entry not shown: mandatory list)", p.File, p.Line, faultKind(p.Err))
	}
	return fmt.Sprintf("%s:%d: %v", p.File, p.Line, p.Err)
}

func faultKind(err error) string {
	for _, e := range []error{ErrBadHost, ErrHostTooLong, ErrBadURL, ErrBadHash, ErrLineTooLong, ErrBadHostsLine} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "malformed entry"
}

// Errors for malformed lines.
var (
	ErrBadHash      = errors.New("not a hex SHA-256 hash")
	ErrLineTooLong  = errors.New("line longer than 8 KiB")
	ErrBadHostsLine = errors.New("hosts line must be an IP address followed by host names")
)

// Report says what a parse found.
type Report struct {
	// Lines is the number of entry lines read (not blank, not comments).
	Lines int
	// Malformed is the number of lines rejected; the first MaxProblems
	// are in Problems.
	Malformed int
	// Unsupported counts well-formed rules of a kind Warden does not apply
	// (Adblock cosmetic or exception rules, regular expressions).
	Unsupported int
	Problems    []Problem
}

func (r *Report) problem(p Problem) {
	r.Malformed++
	if len(r.Problems) < MaxProblems {
		r.Problems = append(r.Problems, p)
	}
}

// Merge adds another report's counts and problems to r.
func (r *Report) Merge(o Report) {
	r.Lines += o.Lines
	r.Malformed += o.Malformed
	r.Unsupported += o.Unsupported
	for _, p := range o.Problems {
		if len(r.Problems) < MaxProblems {
			r.Problems = append(r.Problems, p)
		}
	}
}

// Summary describes the problems in one paragraph: the count and the first
// few positions.
func (r *Report) Summary() string {
	if r.Malformed == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d malformed line(s) skipped", r.Malformed)
	for _, p := range r.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	if r.Malformed > len(r.Problems) {
		fmt.Fprintf(&b, "\n  ... and %d more", r.Malformed-len(r.Problems))
	}
	return b.String()
}

// Collector gathers the entries of one list from one or more files.
type Collector struct {
	Domains []string
	URLs    []URLKey
	Hashes  [][32]byte
	Report  Report
	// Redact hides entry text in problems (for mandatory lists).
	Redact bool
}

// Finish sorts the entries and removes duplicates.
func (c *Collector) Finish() {
	slices.Sort(c.Domains)
	c.Domains = slices.Compact(c.Domains)
	slices.Sort(c.URLs)
	c.URLs = slices.Compact(c.URLs)
	slices.SortFunc(c.Hashes, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	c.Hashes = slices.Compact(c.Hashes)
}

// Entries returns the number of entries collected.
func (c *Collector) Entries() int { return len(c.Domains) + len(c.URLs) + len(c.Hashes) }

// Parse reads list lines in the given format from r, adding entries to c.
// file names the source in problems. Malformed lines are counted and
// skipped; the returned error is only for a failure to read.
func (c *Collector) Parse(r io.Reader, file string, format Format) error {
	if format == FormatUT1 {
		format = FormatPlain
	}
	br := bufio.NewReaderSize(r, 64<<10)
	lineNo := 0
	for {
		line, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			// Skip the rest of an over-long line.
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if len(line) > 0 || err == nil {
			lineNo++
			if tooLong || contentLen(line) > MaxLineLen {
				c.Report.Lines++
				c.Report.problem(Problem{File: file, Line: lineNo, Err: ErrLineTooLong, Redacted: c.Redact})
			} else {
				c.parseLine(line, file, lineNo, format)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", file, err)
		}
	}
}

// contentLen returns the length of a line without its LF or CRLF end, so
// that a line of exactly MaxLineLen bytes is accepted whatever its ending.
func contentLen(line []byte) int {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
		if n > 0 && line[n-1] == '\r' {
			n--
		}
	}
	return n
}

func (c *Collector) parseLine(raw []byte, file string, lineNo int, format Format) {
	line := bytes.TrimSpace(raw)
	if lineNo == 1 {
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // UTF-8 byte-order mark
	}
	if len(line) == 0 {
		return
	}
	var err error
	switch format {
	case FormatHosts:
		if line[0] == '#' {
			return
		}
		c.Report.Lines++
		err = c.hostsLine(line)
	case FormatAdblock:
		if line[0] == '!' || line[0] == '#' && !bytes.HasPrefix(line, []byte("##")) || line[0] == '[' {
			return
		}
		c.Report.Lines++
		err = c.adblockLine(line)
	case FormatSHA256:
		if line[0] == '#' {
			return
		}
		c.Report.Lines++
		err = c.hashLine(line)
	default:
		if line[0] == '#' {
			return
		}
		c.Report.Lines++
		err = c.plainLine(line)
	}
	if err != nil {
		c.Report.problem(Problem{File: file, Line: lineNo, Err: err, Redacted: c.Redact})
	}
}

// stripComment removes a trailing " # comment".
func stripComment(line []byte) []byte {
	if i := bytes.Index(line, []byte(" #")); i >= 0 {
		line = line[:i]
	}
	if i := bytes.Index(line, []byte("\t#")); i >= 0 {
		line = line[:i]
	}
	return bytes.TrimSpace(line)
}

// plainLine takes a domain ("example.com", "*.example.com",
// ".example.com") or URL ("example.com/path", "https://example.com/path").
func (c *Collector) plainLine(line []byte) error {
	line = stripComment(line)
	if bytes.ContainsAny(line, " \t") {
		return fmt.Errorf("%w: %q contains spaces", ErrBadHost, truncate(string(line), 80))
	}
	return c.addEntry(string(line))
}

// addEntry adds a domain or URL; URLs that name a whole host ("host/")
// are domain entries.
func (c *Collector) addEntry(s string) error {
	if strings.ContainsAny(s, "/?") || strings.Contains(s, "://") {
		k, err := NormalizeURL(s)
		if err != nil {
			return err
		}
		if k.PathQuery() == "/" && !strings.Contains(string(k), ":") {
			c.Domains = append(c.Domains, k.Host())
			return nil
		}
		c.URLs = append(c.URLs, k)
		return nil
	}
	h, err := NormalizeHost(s)
	if err != nil {
		return err
	}
	c.Domains = append(c.Domains, h)
	return nil
}

// hostsNames are names hosts files carry for the machine itself.
var hostsNames = map[string]bool{
	"localhost": true, "localhost.localdomain": true, "local": true, "broadcasthost": true,
	"ip6-localhost": true, "ip6-loopback": true, "ip6-localnet": true, "ip6-mcastprefix": true,
	"ip6-allnodes": true, "ip6-allrouters": true, "ip6-allhosts": true, "0.0.0.0": true,
}

func (c *Collector) hostsLine(line []byte) error {
	line = stripComment(line)
	fields := strings.Fields(string(line))
	if len(fields) < 2 {
		return fmt.Errorf("%w: %q", ErrBadHostsLine, truncate(string(line), 80))
	}
	if _, err := netip.ParseAddr(fields[0]); err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrBadHostsLine, truncate(fields[0], 40))
	}
	var bad error
	for _, name := range fields[1:] {
		if hostsNames[strings.TrimSuffix(strings.ToLower(name), ".")] {
			continue
		}
		h, err := NormalizeHost(name)
		if err != nil {
			bad = err
			continue
		}
		c.Domains = append(c.Domains, h)
	}
	return bad
}

// adblockLine takes "||domain^" (with an optional "$important" or
// "$all"), a bare domain, and counts other rule kinds as unsupported.
func (c *Collector) adblockLine(line []byte) error {
	s := string(line)
	switch {
	case strings.HasPrefix(s, "@@"), strings.Contains(s, "##"), strings.Contains(s, "#@#"),
		strings.Contains(s, "#?#"), strings.Contains(s, "#$#"), strings.HasPrefix(s, "/") && strings.HasSuffix(s, "/"):
		c.Report.Unsupported++
		return nil
	}
	if strings.HasPrefix(s, "||") {
		s = s[2:]
		if i := strings.IndexByte(s, '$'); i >= 0 {
			switch s[i+1:] {
			case "important", "all", "document", "doc":
			default:
				// Modifiers that narrow the rule (third-party, script, ...)
				// cannot be applied to a whole name.
				c.Report.Unsupported++
				return nil
			}
			s = s[:i]
		}
		s = strings.TrimSuffix(s, "|")
		if !strings.HasSuffix(s, "^") {
			if strings.ContainsAny(s, "/*") {
				c.Report.Unsupported++
				return nil
			}
		}
		s = strings.TrimSuffix(s, "^")
		if strings.ContainsAny(s, "/*^|") {
			c.Report.Unsupported++
			return nil
		}
		h, err := NormalizeHost(s)
		if err != nil {
			return err
		}
		c.Domains = append(c.Domains, h)
		return nil
	}
	if strings.ContainsAny(s, "|^$*/") {
		c.Report.Unsupported++
		return nil
	}
	h, err := NormalizeHost(s)
	if err != nil {
		return err
	}
	c.Domains = append(c.Domains, h)
	return nil
}

func (c *Collector) hashLine(line []byte) error {
	line = stripComment(line)
	line = bytes.TrimPrefix(line, []byte("sha256:"))
	if len(line) != 64 {
		return ErrBadHash
	}
	var h [32]byte
	if _, err := hex.Decode(h[:], line); err != nil {
		return ErrBadHash
	}
	c.Hashes = append(c.Hashes, h)
	return nil
}

// DetectFormat guesses the format of a list file from its first line
// that is not blank or a comment: hosts lines start with an IP address,
// Adblock rules with "||", "!" or "[", hash lists hold 64 hex digits;
// anything else is plain.
func DetectFormat(head []byte) Format {
	sc := bufio.NewScanner(bytes.NewReader(head))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		if len(line) == 0 {
			continue
		}
		switch {
		case line[0] == '!' || line[0] == '[' || bytes.HasPrefix(line, []byte("||")):
			return FormatAdblock
		case line[0] == '#':
			continue
		}
		f := strings.Fields(string(line))
		if len(f) >= 2 {
			if _, err := netip.ParseAddr(f[0]); err == nil {
				return FormatHosts
			}
		}
		s := strings.TrimPrefix(f[0], "sha256:")
		if len(s) == 64 {
			if _, err := hex.DecodeString(s); err == nil {
				return FormatSHA256
			}
		}
		return FormatPlain
	}
	return FormatPlain
}
