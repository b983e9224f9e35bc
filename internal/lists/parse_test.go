package lists_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/warden-schools/warden/internal/lists"
)

// parse runs one Collector over text and finishes it.
func parse(t *testing.T, file, text string, format lists.Format, redact bool) *lists.Collector {
	t.Helper()
	c := &lists.Collector{Redact: redact}
	if err := c.Parse(strings.NewReader(text), file, format); err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	c.Finish()
	return c
}

func problemStrings(r lists.Report) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.Error())
	}
	return out
}

func urlStrings(us []lists.URLKey) []string {
	var out []string
	for _, u := range us {
		out = append(out, string(u))
	}
	return out
}

// crlf gives text CRLF line ends.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func TestParseFormats(t *testing.T) {
	hashA := strings.Repeat("0a", 32)
	hashB := strings.Repeat("b1", 32)
	tests := []struct {
		name        string
		format      lists.Format
		text        string
		domains     []string
		urls        []string
		hashes      int
		lines       int
		unsupported int
		problems    []string
	}{
		{
			name:   "plain",
			format: lists.FormatPlain,
			text: "\ufeff# a plain list\n" +
				"example.com\n" +
				"  Example.ORG  \n" +
				"*.wild.example\n" +
				".dot.example\n" +
				"\n" +
				"# comment\n" +
				"   # indented comment\n" +
				"inline.example # inline comment\n" +
				"tab.example\t# tab comment\n" +
				"http://url.example/path?q=1\n" +
				"url.example/a/\n" +
				"https://whole.example/\n" +
				"host-slash.example/\n" +
				"port.example:8080/\n" +
				"bücher.example\n" +
				"192.0.2.1\n" +
				"bad..example\n" +
				"two words.example\n" +
				"http://bad-url.example/%zz\n" +
				"example.com\n", // duplicate
			domains: []string{"192.0.2.1", "dot.example", "example.com", "example.org", "host-slash.example",
				"inline.example", "tab.example", "whole.example", "wild.example", "xn--bcher-kva.example"},
			urls:  []string{"port.example:8080/", "url.example/a/", "url.example/path?q=1"},
			lines: 17,
			problems: []string{
				`list.txt:18: not a valid host name: "bad..example" has an empty label`,
				`list.txt:19: not a valid host name: "two words.example" contains spaces`,
				`list.txt:20: not a valid URL: bad percent-escape at "%zz"`,
			},
		},
		{
			name:   "hosts",
			format: lists.FormatHosts,
			text: "# hosts file\n" +
				"127.0.0.1 localhost\n" +
				"::1 localhost ip6-localhost ip6-loopback\n" +
				"255.255.255.255 broadcasthost\n" +
				"0.0.0.0 0.0.0.0\n" +
				"0.0.0.0 ads.example Tracker.example # two names\n" +
				"127.0.0.1\ttab.example\n" +
				"\n" +
				"0.0.0.0 Bad..name good.example\n" +
				"justaname\n" +
				"notanip host.example\n",
			domains: []string{"ads.example", "good.example", "tab.example", "tracker.example"},
			lines:   9,
			problems: []string{
				`hosts:9: not a valid host name: "bad..name" has an empty label`,
				`hosts:10: hosts line must be an IP address followed by host names: "justaname"`,
				`hosts:11: hosts line must be an IP address followed by host names: "notanip" is not an IP address`,
			},
		},
		{
			name:   "adblock",
			format: lists.FormatAdblock,
			text: "[Adblock Plus 2.0]\n" +
				"! Title: test\n" +
				"# a hash comment\n" +
				"||ads.example^\n" +
				"||Tracker.Example^$important\n" +
				"||doc.example^$document\n" +
				"||pipe.example^|\n" +
				"||noanchor.example\n" +
				"plain.example\n" +
				"||script.example^$third-party\n" +
				"@@||allowed.example^\n" +
				"example.com##.banner\n" +
				"##.ad\n" +
				"example.com#@#.banner\n" +
				"/banner[0-9]+/\n" +
				"||path.example/ads^\n" +
				"||wild*.example^\n" +
				"|http://anchor.example/\n" +
				"||bad..example^\n",
			domains:     []string{"ads.example", "doc.example", "noanchor.example", "pipe.example", "plain.example", "tracker.example"},
			lines:       16,
			unsupported: 9,
			problems: []string{
				`rules.txt:19: not a valid host name: "bad..example" has an empty label`,
			},
		},
		{
			name:   "sha256",
			format: lists.FormatSHA256,
			text: "# hashed URLs\n" +
				hashA + "\n" +
				"sha256:" + strings.ToUpper(hashB) + "\n" +
				hashA + " # again\n" +
				"abc\n" +
				hashA[:63] + "g\n",
			hashes: 2,
			lines:  5,
			problems: []string{
				`iwf.txt:5: not a hex SHA-256 hash`,
				`iwf.txt:6: not a hex SHA-256 hash`,
			},
		},
		{
			name:    "ut1 is plain",
			format:  lists.FormatUT1,
			text:    "a.example\nb.example/x\n",
			domains: []string{"a.example"},
			urls:    []string{"b.example/x"},
			lines:   2,
		},
	}
	files := map[lists.Format]string{lists.FormatHosts: "hosts", lists.FormatAdblock: "rules.txt", lists.FormatSHA256: "iwf.txt"}
	for _, tt := range tests {
		file := files[tt.format]
		if file == "" {
			file = "list.txt"
		}
		for _, ending := range []string{"LF", "CRLF"} {
			t.Run(tt.name+"/"+ending, func(t *testing.T) {
				text := tt.text
				if ending == "CRLF" {
					text = crlf(text)
				}
				c := parse(t, file, text, tt.format, false)
				if !slices.Equal(c.Domains, tt.domains) {
					t.Errorf("Domains = %q\nwant      %q", c.Domains, tt.domains)
				}
				if got := urlStrings(c.URLs); !slices.Equal(got, tt.urls) {
					t.Errorf("URLs = %q, want %q", got, tt.urls)
				}
				if len(c.Hashes) != tt.hashes {
					t.Errorf("%d hashes, want %d", len(c.Hashes), tt.hashes)
				}
				if c.Entries() != len(tt.domains)+len(tt.urls)+tt.hashes {
					t.Errorf("Entries() = %d", c.Entries())
				}
				r := c.Report
				if r.Lines != tt.lines || r.Unsupported != tt.unsupported || r.Malformed != len(tt.problems) {
					t.Errorf("Lines, Unsupported, Malformed = %d, %d, %d; want %d, %d, %d",
						r.Lines, r.Unsupported, r.Malformed, tt.lines, tt.unsupported, len(tt.problems))
				}
				if got := problemStrings(r); !slices.Equal(got, tt.problems) {
					t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.problems, "\n"))
				}
			})
		}
	}
}

func TestParseHashValues(t *testing.T) {
	c := parse(t, "h", strings.Repeat("0A", 32)+"\n", lists.FormatSHA256, false)
	if len(c.Hashes) != 1 || c.Hashes[0] != [32]byte(bytes.Repeat([]byte{0x0a}, 32)) {
		t.Errorf("Hashes = %x", c.Hashes)
	}
}

func TestParseRedact(t *testing.T) {
	text := "ok.example\n" +
		"http://secret-one.example/%zz\n" +
		"secret..two.example\n" +
		strings.Repeat("x", lists.MaxLineLen+1) + "\n" +
		"*.\n"
	c := parse(t, "iwf", text, lists.FormatPlain, true)
	want := []string{
		"iwf:2: not a valid URL (entry not shown: mandatory list)",
		"iwf:3: not a valid host name (entry not shown: mandatory list)",
		"iwf:4: line longer than 8 KiB (entry not shown: mandatory list)",
		"iwf:5: malformed entry (entry not shown: mandatory list)",
	}
	got := problemStrings(c.Report)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	summary := c.Report.Summary()
	for _, secret := range []string{"secret", "xxx", "*."} {
		if strings.Contains(summary, secret) {
			t.Errorf("redacted summary shows %q:\n%s", secret, summary)
		}
	}
	// The detail is still there for errors.Is.
	if !c.Report.Problems[0].Redacted || !errors.Is(c.Report.Problems[0].Err, lists.ErrBadURL) {
		t.Errorf("problem 0 = %+v", c.Report.Problems[0])
	}
	hashes := parse(t, "ctiru", "nothex\n", lists.FormatSHA256, true)
	if got := problemStrings(hashes.Report); !slices.Equal(got, []string{"ctiru:1: not a hex SHA-256 hash (entry not shown: mandatory list)"}) {
		t.Errorf("hash problems = %q", got)
	}
	hosts := parse(t, "h", "nothing-here\n0.0.0.0 bad..secret\n", lists.FormatHosts, true)
	if got := problemStrings(hosts.Report); !slices.Equal(got, []string{
		"h:1: hosts line must be an IP address followed by host names (entry not shown: mandatory list)",
		"h:2: not a valid host name (entry not shown: mandatory list)",
	}) {
		t.Errorf("hosts problems = %q", got)
	}
}

func TestParseMaxProblems(t *testing.T) {
	var b strings.Builder
	for i := range 25 {
		fmt.Fprintf(&b, "bad%d..example\ngood%d.example\n", i, i)
	}
	c := parse(t, "f", b.String(), lists.FormatPlain, false)
	r := c.Report
	if r.Malformed != 25 || len(r.Problems) != lists.MaxProblems || r.Lines != 50 || len(c.Domains) != 25 {
		t.Fatalf("Malformed %d, %d problems, %d lines, %d domains", r.Malformed, len(r.Problems), r.Lines, len(c.Domains))
	}
	if p := r.Problems[9]; p.Line != 19 || p.File != "f" {
		t.Errorf("tenth problem at %s:%d, want f:19", p.File, p.Line)
	}
	s := r.Summary()
	if !strings.HasPrefix(s, "25 malformed line(s) skipped\n  f:1: ") || !strings.HasSuffix(s, "\n  ... and 15 more") {
		t.Errorf("Summary() =\n%s", s)
	}
	if n := strings.Count(s, "\n"); n != lists.MaxProblems+1 {
		t.Errorf("Summary() has %d lines, want %d", n+1, lists.MaxProblems+2)
	}
}

func TestReportSummary(t *testing.T) {
	var r lists.Report
	if s := r.Summary(); s != "" {
		t.Errorf("empty Summary() = %q", s)
	}
	c := parse(t, "list.txt", "ok.example\nbad..example\nnot!ok.example\n", lists.FormatPlain, false)
	want := "2 malformed line(s) skipped\n" +
		"  list.txt:2: not a valid host name: \"bad..example\" has an empty label\n" +
		"  list.txt:3: not a valid host name: \"not!ok.example\" contains '!'"
	if got := c.Report.Summary(); got != want {
		t.Errorf("Summary() =\n%s\nwant\n%s", got, want)
	}
}

func TestReportMerge(t *testing.T) {
	var total lists.Report
	for i := range 3 {
		var b strings.Builder
		for j := range 4 {
			fmt.Fprintf(&b, "ok%d.example\nbad%d..example\n", j, j)
		}
		b.WriteString("@@||x.example^\n")
		c := parse(t, fmt.Sprintf("f%d", i), b.String(), lists.FormatAdblock, false)
		total.Merge(c.Report)
	}
	if total.Lines != 27 || total.Malformed != 12 || total.Unsupported != 3 || len(total.Problems) != lists.MaxProblems {
		t.Errorf("merged %+v", total)
	}
	if p := total.Problems[lists.MaxProblems-1]; p.File != "f2" || p.Line != 4 {
		t.Errorf("last kept problem at %s:%d, want f2:4", p.File, p.Line)
	}
}

func TestParseLongLines(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		tooLong  bool
		ending   string
		atTheEnd bool
	}{
		{name: "max length LF", line: strings.Repeat("a", lists.MaxLineLen), ending: "\n"},
		{name: "max length CRLF", line: strings.Repeat("a", lists.MaxLineLen), ending: "\r\n"},
		{name: "max length last", line: strings.Repeat("a", lists.MaxLineLen), atTheEnd: true},
		{name: "one over LF", line: strings.Repeat("a", lists.MaxLineLen+1), ending: "\n", tooLong: true},
		{name: "one over CRLF", line: strings.Repeat("a", lists.MaxLineLen+1), ending: "\r\n", tooLong: true},
		{name: "one over last", line: strings.Repeat("a", lists.MaxLineLen+1), atTheEnd: true, tooLong: true},
		{name: "beyond the read buffer", line: strings.Repeat("b", 200<<10), ending: "\n", tooLong: true},
		{name: "beyond the read buffer last", line: strings.Repeat("b", 200<<10), atTheEnd: true, tooLong: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "first.example\n" + tt.line + tt.ending + "next.example\nlast.example\n"
			if tt.atTheEnd {
				text = "first.example\nnext.example\nlast.example\n" + tt.line
			}
			c := parse(t, "f", text, lists.FormatPlain, false)
			if want := []string{"first.example", "last.example", "next.example"}; !slices.Equal(c.Domains, want) {
				t.Errorf("Domains = %q, want %q", c.Domains, want)
			}
			r := c.Report
			if r.Lines != 4 || r.Malformed != 1 {
				t.Fatalf("Lines %d, Malformed %d; want 4, 1", r.Lines, r.Malformed)
			}
			wantLine := 2
			if tt.atTheEnd {
				wantLine = 4
			}
			p := r.Problems[0]
			if p.Line != wantLine {
				t.Errorf("problem on line %d, want %d", p.Line, wantLine)
			}
			// A line within the limit is judged as an entry (here: a name
			// too long); a longer one is not looked at.
			if got := errors.Is(p.Err, lists.ErrLineTooLong); got != tt.tooLong {
				t.Errorf("problem %v; line too long = %v, want %v", p.Err, got, tt.tooLong)
			}
			if !tt.tooLong && !errors.Is(p.Err, lists.ErrHostTooLong) {
				t.Errorf("problem %v, want ErrHostTooLong", p.Err)
			}
			if len(p.Error()) > 200 {
				t.Errorf("problem text is %d bytes long", len(p.Error()))
			}
		})
	}
}

// TestParseBOM checks that a byte-order mark before the first line is
// ignored in every format, including those that look at the first byte.
func TestParseBOM(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		format lists.Format
		text   string
	}{
		{lists.FormatPlain, "\ufeffa.example\n"},
		{lists.FormatPlain, "\ufeff# comment\na.example\n"},
		{lists.FormatHosts, "\ufeff0.0.0.0 a.example\n"},
		{lists.FormatHosts, "\ufeff# comment\n0.0.0.0 a.example\n"},
		{lists.FormatAdblock, "\ufeff||a.example^\n"},
		{lists.FormatAdblock, "\ufeff[Adblock Plus 2.0]\n||a.example^\n"},
		{lists.FormatSHA256, "\ufeff" + hash + "\n"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			c := parse(t, "f", tt.text, tt.format, false)
			if c.Entries() != 1 || c.Report.Malformed != 0 || c.Report.Lines != 1 {
				t.Errorf("%q: %d entries, %+v", tt.text, c.Entries(), c.Report)
			}
		})
	}
}

func TestParseNoFinalNewline(t *testing.T) {
	c := parse(t, "f", "a.example\nb.example", lists.FormatPlain, false)
	if !slices.Equal(c.Domains, []string{"a.example", "b.example"}) || c.Report.Lines != 2 {
		t.Errorf("Domains %q, Lines %d", c.Domains, c.Report.Lines)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	c := &lists.Collector{}
	err := c.Parse(io.MultiReader(strings.NewReader("a.example\n"), iotest.ErrReader(boom)), "f", lists.FormatPlain)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "read f") {
		t.Errorf("Parse = %v, want the read error naming the file", err)
	}
	if !slices.Equal(c.Domains, []string{"a.example"}) {
		t.Errorf("Domains = %q", c.Domains)
	}
}

func gzipBytes(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseMaybeGzip(t *testing.T) {
	for name, data := range map[string][]byte{
		"plain":   []byte("a.example\nb.example/x\n"),
		"gzipped": gzipBytes(t, "a.example\nb.example/x\n"),
	} {
		t.Run(name, func(t *testing.T) {
			c := &lists.Collector{}
			if err := c.ParseMaybeGzip(bytes.NewReader(data), "f", lists.FormatPlain); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Domains, []string{"a.example"}) || len(c.URLs) != 1 {
				t.Errorf("Domains %q, URLs %q", c.Domains, c.URLs)
			}
		})
	}
	// A gzip header that is not followed by gzip data.
	c := &lists.Collector{}
	if err := c.ParseMaybeGzip(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0}), "broken.gz", lists.FormatPlain); err == nil ||
		!strings.Contains(err.Error(), "broken.gz") {
		t.Errorf("ParseMaybeGzip(broken) = %v, want an error naming the file", err)
	}
}

func TestPeek(t *testing.T) {
	text := "0.0.0.0 a.example\n0.0.0.0 b.example\n"
	for name, data := range map[string][]byte{
		"plain":   []byte(text),
		"gzipped": gzipBytes(t, text),
	} {
		t.Run(name, func(t *testing.T) {
			head, r, err := lists.Peek(bytes.NewReader(data), 10)
			if err != nil {
				t.Fatal(err)
			}
			if string(head) != text[:10] {
				t.Errorf("head = %q, want %q", head, text[:10])
			}
			all, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(all, data) {
				t.Errorf("reader gave %d bytes (%v), want all %d", len(all), err, len(data))
			}
			if f := lists.DetectFormat(head); f != lists.FormatHosts {
				t.Errorf("DetectFormat(head) = %s", f)
			}
		})
	}
	head, _, err := lists.Peek(strings.NewReader("short"), 1000)
	if err != nil || string(head) != "short" {
		t.Errorf("Peek(short) = %q, %v", head, err)
	}
}

func TestDetectFormat(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		head string
		want lists.Format
	}{
		{"plain", "example.com\nexample.org\n", lists.FormatPlain},
		{"plain URLs", "example.com/a\n", lists.FormatPlain},
		{"plain after comments", "# list\n\n# more\nexample.com\n", lists.FormatPlain},
		{"plain IP", "192.0.2.1\n", lists.FormatPlain},
		{"empty", "", lists.FormatPlain},
		{"comments only", "# nothing\n", lists.FormatPlain},
		{"hosts", "0.0.0.0 example.com\n", lists.FormatHosts},
		{"hosts after comments", "# hosts\n127.0.0.1 localhost\n", lists.FormatHosts},
		{"hosts IPv6", "::1 localhost\n", lists.FormatHosts},
		{"hosts tab", "127.0.0.1\tlocalhost\n", lists.FormatHosts},
		{"hosts BOM CRLF", "\ufeff0.0.0.0 example.com\r\n", lists.FormatHosts},
		{"adblock pipes", "||example.com^\n", lists.FormatAdblock},
		{"adblock comment", "! Title: x\n||example.com^\n", lists.FormatAdblock},
		{"adblock header", "[Adblock Plus 2.0]\n", lists.FormatAdblock},
		{"sha256", hash + "\n", lists.FormatSHA256},
		{"sha256 upper case", strings.ToUpper(hash) + "\n", lists.FormatSHA256},
		{"sha256 prefixed", "# iwf\nsha256:" + hash + "\n", lists.FormatSHA256},
		{"sha256 comment", hash + " # x\n", lists.FormatSHA256},
		{"not quite a hash", hash[:63] + "z\n", lists.FormatPlain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lists.DetectFormat([]byte(tt.head)); got != tt.want {
				t.Errorf("DetectFormat(%q) = %s, want %s", tt.head, got, tt.want)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range lists.Formats {
		for _, s := range []string{string(f), strings.ToUpper(string(f))} {
			if got, err := lists.ParseFormat(s); err != nil || got != f {
				t.Errorf("ParseFormat(%q) = %q, %v", s, got, err)
			}
		}
	}
	for _, s := range []string{"", "csv", "host", " plain"} {
		_, err := lists.ParseFormat(s)
		want := fmt.Sprintf("unknown list format %q (want one of ut1, plain, hosts, adblock, sha256)", s)
		if err == nil || err.Error() != want {
			t.Errorf("ParseFormat(%q) = %v, want %q", s, err, want)
		}
	}
}
