package lists_test

// Fuzz tests of everything that reads outside input. Seeds are added here
// and committed under testdata/fuzz/FuzzXxx/; run one with
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 60s ./internal/lists/

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
)

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{
		"example.com", "Example.COM.", "*.example.com", ".example.com", "bücher.example",
		"xn--bcher-kva.example", "_dmarc.example.com", "a.-b.com", "1.2.3.4", "1.2.3.999",
		"[::1]", "2001:DB8::1", "fe80::1%eth0", "example.123", " example.com ", "a..b",
		"１.２.３.４", "faß.de", strings.Repeat("a", 64) + ".com", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := lists.NormalizeHost(in)
		if err != nil {
			if got != "" {
				t.Fatalf("NormalizeHost(%q) = %q with error %v", in, got, err)
			}
			return
		}
		again, err := lists.NormalizeHost(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeHost(%q) = %q, but NormalizeHost(%q) = %q, %v", in, got, got, again, err)
		}
		// The slow path (upper case) agrees with the fast path.
		if upper, err := lists.NormalizeHost(strings.ToUpper(got)); err != nil || upper != got {
			t.Fatalf("NormalizeHost(%q) = %q, %v; want %q", strings.ToUpper(got), upper, err, got)
		}
		if got == "" || len(got) > lists.MaxHostLen || got != strings.ToLower(got) {
			t.Fatalf("NormalizeHost(%q) = %q: empty, too long or not lower case", in, got)
		}
		_, addrErr := netip.ParseAddr(got)
		if lists.IsIP(got) != (addrErr == nil) {
			t.Fatalf("NormalizeHost(%q) = %q: IsIP %v but ParseAddr error %v", in, got, lists.IsIP(got), addrErr)
		}
	})
}

func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{
		"http://example.com/a", "HTTPS://User:pw@Bücher.example:443/a/./b/../c%7e%2f d?x=%7e#f",
		"//example.com", "example.com:8080", "[::1]:8080/x", "http://[2001:DB8::1]/", "a.com/%zz",
		"a.com/%2E%2E/x", "a.com?q", "a.com/?", "ftp://a.com/../..", "a.com:+80/", "a.com:/",
		"example.com://foo", "http://1.2.3.4:81/x?y#z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		k, err := lists.NormalizeURL(in)
		if err != nil {
			if !errors.Is(err, lists.ErrBadURL) {
				t.Fatalf("NormalizeURL(%q) error %v is not ErrBadURL", in, err)
			}
			return
		}
		again, err := lists.NormalizeURL(string(k))
		if err != nil || again != k {
			t.Fatalf("NormalizeURL(%q) = %q, but NormalizeURL(%q) = %q, %v", in, k, k, again, err)
		}
		host := k.Host()
		if h, err := lists.NormalizeHost(host); err != nil || h != host {
			t.Fatalf("NormalizeURL(%q) = %q: Host() %q normalises to %q, %v", in, k, host, h, err)
		}
		pq := k.PathQuery()
		if !strings.HasPrefix(pq, "/") || !strings.HasSuffix(string(k), pq) {
			t.Fatalf("NormalizeURL(%q) = %q: PathQuery() = %q", in, k, pq)
		}
		if p := k.Port(); p == "80" || p == "443" || strings.Trim(p, "0123456789") != "" {
			t.Fatalf("NormalizeURL(%q) = %q: Port() = %q", in, k, p)
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; c <= ' ' || c >= 0x7f || c == '#' {
				t.Fatalf("NormalizeURL(%q) = %q holds byte %q", in, k, c)
			}
		}
	})
}

// redactedKinds are the only texts a redacted problem may show.
var redactedKinds = []string{
	lists.ErrBadHost.Error(), lists.ErrHostTooLong.Error(), lists.ErrBadURL.Error(), lists.ErrBadHash.Error(),
	lists.ErrLineTooLong.Error(), lists.ErrBadHostsLine.Error(), "malformed entry",
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"example.com\n# comment\n\n*.Wild.example # inline\nhttp://u.example/p?q=1\nbad..example\n",
		"\ufeff0.0.0.0 ads.example tracker.example\r\n127.0.0.1 localhost\r\njustaname\r\n",
		"[Adblock Plus 2.0]\n! c\n||ads.example^\n@@||ok.example^\nexample.com##.ad\n||x.example^$third-party\n",
		strings.Repeat("ab", 32) + "\nsha256:" + strings.Repeat("CD", 32) + " # c\nabc\n",
		"example.com/\nexample.com:8080/\n[::1]/\nhttp://[::1]:81/x\n",
		"a\x00b\n\xff\xfe\n%zz\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		maxLines := bytes.Count(data, []byte("\n")) + 1
		if f := lists.DetectFormat(data); f != lists.FormatPlain && f != lists.FormatHosts &&
			f != lists.FormatAdblock && f != lists.FormatSHA256 {
			t.Fatalf("DetectFormat = %q", f)
		}
		for _, format := range lists.Formats {
			for _, redact := range []bool{false, true} {
				c := &lists.Collector{Redact: redact}
				if err := c.Parse(bytes.NewReader(data), "fuzz", format); err != nil {
					t.Fatalf("%s: Parse: %v", format, err)
				}
				r := c.Report
				if r.Malformed+r.Unsupported > r.Lines || r.Lines > maxLines {
					t.Fatalf("%s: %d malformed + %d unsupported of %d lines (at most %d)",
						format, r.Malformed, r.Unsupported, r.Lines, maxLines)
				}
				if len(r.Problems) != min(r.Malformed, lists.MaxProblems) {
					t.Fatalf("%s: %d problems kept of %d", format, len(r.Problems), r.Malformed)
				}
				for _, p := range r.Problems {
					if p.File != "fuzz" || p.Line < 1 || p.Line > maxLines || p.Err == nil {
						t.Fatalf("%s: problem %+v", format, p)
					}
					if redact {
						checkRedacted(t, p)
					}
				}
				for _, d := range c.Domains {
					if h, err := lists.NormalizeHost(d); err != nil || h != d {
						t.Fatalf("%s: domain %q normalises to %q, %v", format, d, h, err)
					}
				}
				for _, u := range c.URLs {
					if k, err := lists.NormalizeURL(string(u)); err != nil || k != u {
						t.Fatalf("%s: URL %q normalises to %q, %v", format, u, k, err)
					}
					if u.PathQuery() == "/" && !strings.Contains(string(u), ":") {
						t.Fatalf("%s: URL %q names a whole host: should be a domain", format, u)
					}
				}
				c.Finish()
				if _, err := lists.Compile([]*lists.List{{Domains: c.Domains, URLs: c.URLs, Hashes: c.Hashes}}); err != nil {
					t.Fatalf("%s: Compile: %v", format, err)
				}
			}
		}
		// The same bytes as a possibly gzipped file.
		c := &lists.Collector{}
		_ = c.ParseMaybeGzip(bytes.NewReader(data), "fuzz", lists.FormatPlain)
		if head, _, err := lists.Peek(bytes.NewReader(data), 512); err != nil || len(head) > 512 {
			t.Fatalf("Peek = %d bytes, %v", len(head), err)
		}
	})
}

func checkRedacted(t *testing.T, p lists.Problem) {
	t.Helper()
	s := p.Error()
	_, rest, ok := strings.Cut(s, ": ")
	kind, ok2 := strings.CutSuffix(rest, " (entry not shown: mandatory list)")
	if !ok || !ok2 || !strings.HasPrefix(s, "fuzz:") {
		t.Fatalf("redacted problem %q not in the redacted form", s)
	}
	for _, k := range redactedKinds {
		if kind == k {
			return
		}
	}
	t.Fatalf("redacted problem %q shows %q", s, kind)
}

func FuzzUnmarshalEntries(f *testing.F) {
	f.Add(string(sampleList().MarshalEntries()))
	f.Add(string((&lists.List{}).MarshalEntries()))
	f.Add("warden-list 1\ndomains 1\n\nurls 0\nsha256 0\n")
	f.Add("warden-list 1\ndomains +1\na\nurls 0\nsha256 0\n")
	f.Add("warden-list 1\ndomains 0\nurls 0\nsha256 1\n" + strings.Repeat("AB", 32) + "\n")
	f.Add("warden-list 1\ndomains 3\n")
	f.Fuzz(func(t *testing.T, data string) {
		var l lists.List
		err := l.UnmarshalEntries(data)
		if err != nil {
			if !errors.Is(err, lists.ErrBadEncoding) {
				t.Fatalf("UnmarshalEntries error %v is not ErrBadEncoding", err)
			}
			if l.Domains != nil || l.URLs != nil || l.Hashes != nil {
				t.Fatalf("failed UnmarshalEntries changed the list")
			}
			return
		}
		if enc := string(l.MarshalEntries()); enc != data {
			t.Fatalf("UnmarshalEntries(%q) re-encodes as %q", data, enc)
		}
	})
}
