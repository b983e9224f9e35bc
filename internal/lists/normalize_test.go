package lists_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
)

func TestNormalizeHost(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// 4 labels of 63 and a dot between each: 255; trim to exactly 253.
	name253 := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61)
	if len(name253) != 253 {
		t.Fatalf("name253 is %d long", len(name253))
	}
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error // nil: must succeed
	}{
		// Case, dots and wildcard markers.
		{name: "canonical", in: "example.com", want: "example.com"},
		{name: "upper case", in: "Example.COM", want: "example.com"},
		{name: "single label", in: "localhost", want: "localhost"},
		{name: "top-level only", in: "com", want: "com"},
		{name: "trailing dot", in: "example.com.", want: "example.com"},
		{name: "upper case and trailing dot", in: "WWW.Example.Com.", want: "www.example.com"},
		{name: "two trailing dots", in: "example.com..", wantErr: lists.ErrBadHost},
		{name: "wildcard", in: "*.example.com", want: "example.com"},
		{name: "leading dot", in: ".example.com", want: "example.com"},
		{name: "wildcard and trailing dot", in: "*.Example.com.", want: "example.com"},
		{name: "two leading dots", in: "..example.com", wantErr: lists.ErrBadHost},
		{name: "two wildcards", in: "*.*.example.com", wantErr: lists.ErrBadHost},
		{name: "inner wildcard", in: "a.*.example.com", wantErr: lists.ErrBadHost},
		{name: "bare wildcard", in: "*.", wantErr: lists.ErrEmptyHost},
		{name: "bare dot", in: ".", wantErr: lists.ErrEmptyHost},
		{name: "empty", in: "", wantErr: lists.ErrEmptyHost},

		// Whitespace.
		{name: "surrounding spaces", in: "  example.com\t", want: "example.com"},
		{name: "trailing newline", in: "example.com\r\n", want: "example.com"},
		{name: "only spaces", in: "   ", wantErr: lists.ErrEmptyHost},
		{name: "inner space", in: "exa mple.com", wantErr: lists.ErrBadHost},
		{name: "inner tab", in: "example.\tcom", wantErr: lists.ErrBadHost},

		// Internationalised names.
		{name: "IDN", in: "bücher.example", want: "xn--bcher-kva.example"},
		{name: "IDN upper case", in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{name: "IDN trailing dot", in: "bücher.example.", want: "xn--bcher-kva.example"},
		{name: "IDN wildcard", in: "*.bücher.example", want: "xn--bcher-kva.example"},
		{name: "punycode kept", in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{name: "punycode upper case", in: "XN--BCHER-KVA.EXAMPLE", want: "xn--bcher-kva.example"},
		{name: "punycode top-level", in: "xn--80a0aejb8dva.xn--p1ai", want: "xn--80a0aejb8dva.xn--p1ai"},
		{name: "IDN eszett kept (non-transitional)", in: "faß.de", want: "xn--fa-hia.de"},
		{name: "IDN full-width digits are an IPv4 address", in: "１.２.３.４", want: "1.2.3.4"},
		{name: "IDN invalid joiner", in: "a\u200db.example", wantErr: lists.ErrBadHost},
		{name: "invalid UTF-8", in: "\xff.example", wantErr: lists.ErrBadHost},

		// Characters.
		{name: "underscore label", in: "_dmarc.example.com", want: "_dmarc.example.com"},
		{name: "underscore inside", in: "a_b.example.com", want: "a_b.example.com"},
		{name: "underscore upper case", in: "A_B.Example.com", want: "a_b.example.com"},
		{name: "inner hyphens", in: "a-b.ex--ample.com", want: "a-b.ex--ample.com"},
		{name: "digits in labels", in: "123.4u.com", want: "123.4u.com"},
		{name: "punctuation", in: "exa!mple.com", wantErr: lists.ErrBadHost},
		{name: "slash", in: "example.com/", wantErr: lists.ErrBadHost},
		{name: "port", in: "example.com:80", wantErr: lists.ErrBadHost},
		{name: "percent", in: "ex%41mple.com", wantErr: lists.ErrBadHost},

		// Hyphens at label ends.
		{name: "leading hyphen", in: "-a.example.com", wantErr: lists.ErrBadHost},
		{name: "trailing hyphen", in: "a-.example.com", wantErr: lists.ErrBadHost},
		{name: "leading hyphen in inner label", in: "a.-b.example.com", wantErr: lists.ErrBadHost},
		{name: "leading hyphen in inner label, upper case", in: "A.-b.example.com", wantErr: lists.ErrBadHost},
		{name: "trailing hyphen in last label", in: "example.com-", wantErr: lists.ErrBadHost},
		{name: "leading hyphen in last label", in: "example.-com", wantErr: lists.ErrBadHost},

		// Empty labels and lengths.
		{name: "empty inner label", in: "a..example.com", wantErr: lists.ErrBadHost},
		{name: "label of 63", in: label63 + ".com", want: label63 + ".com"},
		{name: "label of 64", in: label63 + "a.com", wantErr: lists.ErrBadHost},
		{name: "label of 64 upper case", in: strings.ToUpper(label63) + "A.com", wantErr: lists.ErrBadHost},
		{name: "name of 253", in: name253, want: name253},
		{name: "name of 253 with trailing dot", in: name253 + ".", want: name253},
		{name: "name of 254", in: name253 + "b", wantErr: lists.ErrHostTooLong},
		{name: "name of 254 upper case", in: strings.ToUpper(name253) + "B", wantErr: lists.ErrHostTooLong},

		// IPv4.
		{name: "IPv4", in: "192.0.2.1", want: "192.0.2.1"},
		{name: "IPv4 trailing dot", in: "192.0.2.1.", want: "192.0.2.1"},
		{name: "IPv4 spaces", in: " 10.0.0.1 ", want: "10.0.0.1"},
		{name: "IPv4 octet too big", in: "1.2.3.999", wantErr: lists.ErrBadHost},
		{name: "IPv4 octet 256", in: "256.1.1.1", wantErr: lists.ErrBadHost},
		{name: "IPv4 leading zero", in: "01.2.3.4", wantErr: lists.ErrBadHost},
		{name: "IPv4 three parts", in: "1.2.3", wantErr: lists.ErrBadHost},
		{name: "IPv4 five parts", in: "1.2.3.4.5", wantErr: lists.ErrBadHost},
		{name: "IPv4 with port", in: "1.2.3.4:80", wantErr: lists.ErrBadHost},

		// All-numeric last label that is not an IPv4 address.
		{name: "numeric top-level", in: "example.123", wantErr: lists.ErrBadHost},
		{name: "numeric single label", in: "123", wantErr: lists.ErrBadHost},
		{name: "numeric last of names", in: "a.b.0", wantErr: lists.ErrBadHost},
		{name: "digits elsewhere are fine", in: "1.2.3.com", want: "1.2.3.com"},

		// IPv6.
		{name: "IPv6 loopback", in: "::1", want: "::1"},
		{name: "IPv6 brackets", in: "[::1]", want: "::1"},
		{name: "IPv6 upper case", in: "2001:DB8::1", want: "2001:db8::1"},
		{name: "IPv6 brackets upper case", in: "[2001:DB8::1]", want: "2001:db8::1"},
		{name: "IPv6 long form", in: "2001:0db8:0000:0000:0000:0000:0000:0001", want: "2001:db8::1"},
		{name: "IPv6 zone dropped", in: "fe80::1%eth0", want: "fe80::1"},
		{name: "IPv6 mapped IPv4", in: "[::ffff:192.0.2.1]", want: "::ffff:192.0.2.1"},
		{name: "IPv6 unclosed bracket", in: "[::1", wantErr: lists.ErrBadHost},
		{name: "IPv6 stray bracket", in: "::1]", wantErr: lists.ErrBadHost},
		{name: "IPv6 bad group", in: "2001:db8::g", wantErr: lists.ErrBadHost},
		{name: "IPv6 with port", in: "[::1]:80", wantErr: lists.ErrBadHost},
		{name: "empty brackets", in: "[]", wantErr: lists.ErrEmptyHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lists.NormalizeHost(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("NormalizeHost(%q) = %q, %v; want error %v", tt.in, got, err, tt.wantErr)
				}
				if got != "" {
					t.Errorf("NormalizeHost(%q) returned %q with its error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeHost(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			// A canonical name is kept as it is, and its upper-case
			// spelling (which takes the slow path) gives the same name.
			for _, again := range []string{got, strings.ToUpper(got)} {
				if g, err := lists.NormalizeHost(again); err != nil || g != got {
					t.Errorf("NormalizeHost(%q) = %q, %v; want %q", again, g, err, got)
				}
			}
		})
	}
}

func TestIsIP(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"192.0.2.1", true},
		{"::1", true},
		{"2001:db8::1", true},
		{"example.com", false},
		{"1.2.3.com", false},
		{"com", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := lists.IsIP(tt.host); got != tt.want {
			t.Errorf("IsIP(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestNormalizeURL(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    lists.URLKey
		wantErr error
	}{
		// Scheme.
		{name: "http", in: "http://example.com/a", want: "example.com/a"},
		{name: "https", in: "https://example.com/a", want: "example.com/a"},
		{name: "no scheme", in: "example.com/a", want: "example.com/a"},
		{name: "scheme-relative", in: "//example.com/a", want: "example.com/a"},
		{name: "other scheme", in: "ftp://example.com/a", want: "example.com/a"},
		{name: "upper-case scheme", in: "HTTPS://example.com/a", want: "example.com/a"},
		{name: "surrounding spaces", in: "  http://example.com/a \n", want: "example.com/a"},

		// Host.
		{name: "host lower-cased, path kept", in: "HTTP://EXAMPLE.COM/A/B", want: "example.com/A/B"},
		{name: "IDN host", in: "http://Bücher.example/x", want: "xn--bcher-kva.example/x"},
		{name: "host trailing dot", in: "http://example.com./x", want: "example.com/x"},
		{name: "IPv4 host", in: "http://192.0.2.1/x", want: "192.0.2.1/x"},
		{name: "bad IPv4 host", in: "http://1.2.3.999/x", wantErr: lists.ErrBadURL},
		{name: "bad host", in: "http://exa mple.com/x", wantErr: lists.ErrBadURL},
		{name: "empty host", in: "http:///x", wantErr: lists.ErrBadURL},
		{name: "scheme only", in: "http://", wantErr: lists.ErrBadURL},
		{name: "empty", in: "", wantErr: lists.ErrBadURL},
		{name: "spaces only", in: "  ", wantErr: lists.ErrBadURL},

		// Ports.
		{name: "port 80 dropped", in: "http://example.com:80/a", want: "example.com/a"},
		{name: "port 443 dropped", in: "https://example.com:443/a", want: "example.com/a"},
		{name: "port 443 on http dropped too", in: "http://example.com:443/a", want: "example.com/a"},
		{name: "other port kept", in: "http://example.com:8080/a", want: "example.com:8080/a"},
		{name: "port without path", in: "example.com:8443", want: "example.com:8443/"},
		{name: "port leading zeros", in: "example.com:08080/", want: "example.com:8080/"},
		{name: "empty port", in: "example.com:/a", want: "example.com/a"},
		{name: "port 0", in: "example.com:0/", wantErr: lists.ErrBadURL},
		{name: "port too big", in: "example.com:65536/", wantErr: lists.ErrBadURL},
		{name: "port not a number", in: "example.com:http/", wantErr: lists.ErrBadURL},
		{name: "port with sign", in: "example.com:+8080/", wantErr: lists.ErrBadURL},

		// Userinfo.
		{name: "userinfo dropped", in: "https://user:secret@example.com/a", want: "example.com/a"},
		{name: "user dropped", in: "user@example.com", want: "example.com/"},
		{name: "userinfo with at signs", in: "http://a@b@example.com:8080/", want: "example.com:8080/"},
		{name: "at sign in path kept", in: "example.com/a@b", want: "example.com/a@b"},

		// Percent-encoding.
		{name: "unreserved decoded", in: "example.com/%7euser", want: "example.com/~user"},
		{name: "unreserved decoded upper", in: "example.com/%7Euser/%41%2d%5F%2E", want: "example.com/~user/A-_."},
		{name: "reserved slash kept upper", in: "example.com/a%2fb", want: "example.com/a%2Fb"},
		{name: "reserved kept", in: "example.com/a%2Fb%3f%25", want: "example.com/a%2Fb%3F%25"},
		{name: "raw space escaped", in: "example.com/a b", want: "example.com/a%20b"},
		{name: "raw non-ASCII escaped", in: "example.com/café", want: "example.com/caf%C3%A9"},
		{name: "raw control escaped", in: "example.com/a\x01b", want: "example.com/a%01b"},
		{name: "escaped non-ASCII upper", in: "example.com/caf%c3%a9", want: "example.com/caf%C3%A9"},
		{name: "bad escape", in: "example.com/%zz", wantErr: lists.ErrBadURL},
		{name: "half escape", in: "example.com/a%4", wantErr: lists.ErrBadURL},
		{name: "bare percent", in: "example.com/a%", wantErr: lists.ErrBadURL},
		{name: "bad escape in query", in: "example.com/?q=%g1", wantErr: lists.ErrBadURL},
		{name: "query unreserved decoded", in: "example.com/?q=%7e%2f", want: "example.com/?q=~%2F"},
		{name: "query space escaped", in: "example.com/?q=a b", want: "example.com/?q=a%20b"},

		// Dot segments.
		{name: "dot segments", in: "example.com/a/./b/../c", want: "example.com/a/c"},
		{name: "dot-dot above root", in: "example.com/../../a", want: "example.com/a"},
		{name: "dot-dot at end", in: "example.com/a/b/..", want: "example.com/a/"},
		{name: "dot at end", in: "example.com/a/.", want: "example.com/a/"},
		{name: "only dot-dot", in: "example.com/..", want: "example.com/"},
		{name: "encoded dots", in: "example.com/a/%2E%2e/b", want: "example.com/b"},
		{name: "dots in names kept", in: "example.com/a.b/.c/d..", want: "example.com/a.b/.c/d.."},
		{name: "dots in query kept", in: "example.com/a?p=../b", want: "example.com/a?p=../b"},

		// Fragment, path and query.
		{name: "fragment dropped", in: "http://example.com/a#top", want: "example.com/a"},
		{name: "fragment after query dropped", in: "example.com/a?q=1#top", want: "example.com/a?q=1"},
		{name: "fragment without path", in: "example.com#top", want: "example.com/"},
		{name: "empty path", in: "http://example.com", want: "example.com/"},
		{name: "bare host", in: "example.com", want: "example.com/"},
		{name: "query kept", in: "example.com/search?b=2&a=1", want: "example.com/search?b=2&a=1"},
		{name: "query without path", in: "example.com?q=1", want: "example.com/?q=1"},
		{name: "empty query dropped", in: "example.com/a?", want: "example.com/a"},
		{name: "double slash path kept", in: "example.com//a", want: "example.com//a"},

		// IPv6 hosts.
		{name: "IPv6", in: "http://[2001:DB8::1]/a", want: "[2001:db8::1]/a"},
		{name: "IPv6 with port", in: "http://[::1]:8080/a", want: "[::1]:8080/a"},
		{name: "IPv6 default port", in: "https://[::1]:443/", want: "[::1]/"},
		{name: "IPv6 no path", in: "[::1]:8080", want: "[::1]:8080/"},
		{name: "IPv6 unclosed", in: "http://[::1/a", wantErr: lists.ErrBadURL},
		{name: "IPv6 junk after bracket", in: "http://[::1]x/a", wantErr: lists.ErrBadURL},
		{name: "IPv6 bad port", in: "http://[::1]:99999/a", wantErr: lists.ErrBadURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lists.NormalizeURL(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("NormalizeURL(%q) = %q, %v; want error %v", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if again, err := lists.NormalizeURL(string(got)); err != nil || again != got {
				t.Errorf("NormalizeURL(%q) = %q, %v; not idempotent", got, again, err)
			}
		})
	}
}

func TestURLKeyParts(t *testing.T) {
	tests := []struct {
		key                   lists.URLKey
		host, port, pathQuery string
	}{
		{"example.com/", "example.com", "", "/"},
		{"example.com/a/b?q=1", "example.com", "", "/a/b?q=1"},
		{"example.com:8080/a", "example.com", "8080", "/a"},
		{"example.com:8080/a:b", "example.com", "8080", "/a:b"},
		{"192.0.2.1:81/x", "192.0.2.1", "81", "/x"},
		{"[::1]/x", "::1", "", "/x"},
		{"[2001:db8::1]:8080/x?y", "2001:db8::1", "8080", "/x?y"},
		{"example.com", "example.com", "", "/"},
	}
	for _, tt := range tests {
		t.Run(string(tt.key), func(t *testing.T) {
			if got := tt.key.Host(); got != tt.host {
				t.Errorf("Host() = %q, want %q", got, tt.host)
			}
			if got := tt.key.Port(); got != tt.port {
				t.Errorf("Port() = %q, want %q", got, tt.port)
			}
			if got := tt.key.PathQuery(); got != tt.pathQuery {
				t.Errorf("PathQuery() = %q, want %q", got, tt.pathQuery)
			}
		})
	}
}

// TestURLKeyPartsOfNormalized checks that the parts of keys made by
// NormalizeURL are themselves normalised.
func TestURLKeyPartsOfNormalized(t *testing.T) {
	for _, raw := range []string{
		"https://WWW.Example.com:8443/a/../b?x=1",
		"http://[2001:DB8::1]:8080/",
		"http://Bücher.example/",
		"192.0.2.1:81/x",
	} {
		k, err := lists.NormalizeURL(raw)
		if err != nil {
			t.Fatalf("NormalizeURL(%q): %v", raw, err)
		}
		if h, err := lists.NormalizeHost(k.Host()); err != nil || h != k.Host() {
			t.Errorf("%q: NormalizeHost(Host() = %q) = %q, %v", k, k.Host(), h, err)
		}
		if !strings.HasPrefix(k.PathQuery(), "/") {
			t.Errorf("%q: PathQuery() = %q, want a leading '/'", k, k.PathQuery())
		}
	}
}
