package lists_test

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
)

// matchIDs renders matches as "listID:entry" (or "listID:#" for hashed
// and "listID:url:entry" for URL entries), sorted.
func matchIDs(m *lists.Matcher, ms *lists.Matches) []string {
	var out []string
	for _, x := range ms.All() {
		id := m.Info(x.List).ID
		switch {
		case x.Entry == "":
			out = append(out, id+":#")
		case x.ByURL:
			out = append(out, id+":url:"+x.Entry)
		default:
			out = append(out, id+":"+x.Entry)
		}
	}
	slices.Sort(out)
	return out
}

func mustURL(t *testing.T, raw string) lists.URLKey {
	t.Helper()
	k, err := lists.NormalizeURL(raw)
	if err != nil {
		t.Fatalf("NormalizeURL(%q): %v", raw, err)
	}
	return k
}

func mustHash(t *testing.T, raw string) [32]byte {
	t.Helper()
	h, err := lists.HashURL(raw)
	if err != nil {
		t.Fatalf("HashURL(%q): %v", raw, err)
	}
	return h
}

func TestCompileOrder(t *testing.T) {
	in := []*lists.List{
		{Info: lists.Info{ID: "a"}, Domains: []string{"a.example"}},
		{Info: lists.Info{ID: "iwf", Mandatory: true}, Hashes: [][32]byte{{1}, {2}}},
		{Info: lists.Info{ID: "b"}, URLs: []lists.URLKey{"b.example/x"}},
		{Info: lists.Info{ID: "ctiru", Mandatory: true}, URLs: []lists.URLKey{"c.example/x"}},
	}
	m, err := lists.Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, info := range m.Lists() {
		ids = append(ids, info.ID)
	}
	if want := []string{"iwf", "ctiru", "a", "b"}; !slices.Equal(ids, want) {
		t.Errorf("list order = %v, want %v", ids, want)
	}
	for i, want := range []int{2, 1, 1, 1} {
		if got := m.Count(uint16(i)); got != want {
			t.Errorf("Count(%d) (%s) = %d, want %d", i, m.Info(uint16(i)).ID, got, want)
		}
	}
	if m.Domains() != 1 {
		t.Errorf("Domains() = %d, want 1", m.Domains())
	}
	if m.Bytes() <= 0 {
		t.Errorf("Bytes() = %d", m.Bytes())
	}
	// The caller's slice is not reordered.
	if in[0].ID != "a" || in[1].ID != "iwf" {
		t.Error("Compile reordered its argument")
	}
}

func TestCompileRejectsBadDomain(t *testing.T) {
	_, err := lists.Compile([]*lists.List{{Info: lists.Info{ID: "broken"}, Domains: []string{""}}})
	if err == nil || !strings.Contains(err.Error(), "compile list broken") {
		t.Errorf("Compile = %v, want an error naming the list", err)
	}
}

func TestMatchHost(t *testing.T) {
	m, err := lists.Compile([]*lists.List{
		{Info: lists.Info{ID: "gambling"}, Domains: []string{"bet.example", "casino.example", "192.0.2.7"}},
		{Info: lists.Info{ID: "games"}, Domains: []string{"casino.example", "play.example"}},
		{Info: lists.Info{ID: "urls"}, URLs: []lists.URLKey{"play.example/bad"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want []string
	}{
		{"bet.example", []string{"gambling:bet.example"}},
		{"www.bet.example", []string{"gambling:bet.example"}},
		{"casino.example", []string{"gambling:casino.example", "games:casino.example"}},
		{"play.example", []string{"games:play.example"}}, // URL entries are not host entries
		{"notbet.example", nil},
		{"example", nil},
		{"192.0.2.7", []string{"gambling:192.0.2.7"}},
		{"192.0.2.8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			var ms lists.Matches
			m.MatchHost(tt.host, &ms)
			if got := matchIDs(m, &ms); !slices.Equal(got, tt.want) {
				t.Errorf("MatchHost(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

func TestMatchURL(t *testing.T) {
	m, err := lists.Compile([]*lists.List{
		{Info: lists.Info{ID: "domains"}, Domains: []string{"blocked.example"}},
		{Info: lists.Info{ID: "urls"}, URLs: []lists.URLKey{
			"example.com/bad",
			"example.com:8080/p",
			"example.com/search?q=bad",
			"[::1]:8080/x",
			"192.0.2.1/ip",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		url  string
		want []string
	}{
		{"exact", "http://example.com/bad", []string{"urls:url:example.com/bad"}},
		{"https and default port", "https://example.com:443/bad", []string{"urls:url:example.com/bad"}},
		{"longer path", "http://example.com/bad/page.html", []string{"urls:url:example.com/bad"}},
		{"string prefix", "http://example.com/badger", []string{"urls:url:example.com/bad"}},
		{"with query", "http://example.com/bad?x=1", []string{"urls:url:example.com/bad"}},
		{"shorter path", "http://example.com/ba", nil},
		{"root", "http://example.com/", nil},
		{"path case matters", "http://example.com/BAD", nil},
		{"subdomain", "http://www.example.com/bad", []string{"urls:url:example.com/bad"}},
		{"deep subdomain", "http://a.b.example.com/bad/x", []string{"urls:url:example.com/bad"}},
		{"not a label boundary", "http://badexample.com/bad", nil},
		{"other port", "http://example.com:8080/bad", nil},
		{"entry port", "http://example.com:8080/p/q", []string{"urls:url:example.com:8080/p"}},
		{"entry port needs the port", "http://example.com/p/q", nil},
		{"query prefix", "http://example.com/search?q=bad+things", []string{"urls:url:example.com/search?q=bad"}},
		{"other query", "http://example.com/search?q=good", nil},
		{"IPv6 with port", "http://[::1]:8080/x/y", []string{"urls:url:[::1]:8080/x"}},
		{"IPv6 default port", "http://[::1]/x/y", nil},
		{"IPv4", "http://192.0.2.1/ip/1", []string{"urls:url:192.0.2.1/ip"}},
		{"domain entry", "http://blocked.example/anything", []string{"domains:blocked.example"}},
		{"domain entry, subdomain, port", "http://a.blocked.example:8080/", []string{"domains:blocked.example"}},
		{"unlisted", "http://fine.example/bad", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ms lists.Matches
			m.MatchURL(mustURL(t, tt.url), &ms)
			if got := matchIDs(m, &ms); !slices.Equal(got, tt.want) {
				t.Errorf("MatchURL(%q) = %v, want %v", tt.url, got, tt.want)
			}
		})
	}
}

func TestMatchHashes(t *testing.T) {
	iwf := &lists.List{
		Info: lists.Info{ID: "iwf", Source: "iwf", Mandatory: true},
		Hashes: [][32]byte{
			mustHash(t, "http://bad.example.net/abuse/"),       // a folder
			mustHash(t, "http://bad.example.net/page?id=1"),    // one page with a query
			mustHash(t, "http://whole.example.net/"),           // a whole host, as "host/"
			sha256.Sum256([]byte("bare.example.net")),          // a whole host, as "host"
			mustHash(t, "http://[2001:db8::7]/"),               // a whole IPv6 host
			mustHash(t, "http://port.example.net:8080/file"),   // a port
			mustHash(t, "https://Bücher.example/verboten.jpg"), // an IDN host
		},
	}
	m, err := lists.Compile([]*lists.List{{Info: lists.Info{ID: "other"}, Domains: []string{"other.example"}}, iwf})
	if err != nil {
		t.Fatal(err)
	}
	urls := []struct {
		url  string
		want bool
	}{
		{"http://bad.example.net/abuse/", true},
		{"https://bad.example.net/abuse/", true},
		{"http://bad.example.net/abuse/deeper/page.html", true},
		{"http://bad.example.net/abuse/?q=1", true},
		{"http://bad.example.net/abuse", false},
		{"http://bad.example.net/abusers/", false},
		{"http://bad.example.net/", false},
		{"http://www.bad.example.net/abuse/", false},
		{"http://bad.example.net/page?id=1", true},
		{"http://bad.example.net/page?id=1#frag", true},
		{"http://bad.example.net/page?id=2", false},
		{"http://bad.example.net/page", false},
		{"http://whole.example.net/", true},
		{"http://whole.example.net/any/thing?x", true},
		{"http://www.whole.example.net/", false},
		{"http://bare.example.net/x", true},
		{"http://[2001:db8::7]/x", true},
		{"http://port.example.net:8080/file", true},
		{"http://port.example.net/file", false},
		{"http://xn--bcher-kva.example/verboten.jpg", true},
		{"http://other.example/", false},
	}
	for _, tt := range urls {
		t.Run(tt.url, func(t *testing.T) {
			var ms lists.Matches
			m.MatchURL(mustURL(t, tt.url), &ms)
			var got bool
			for _, x := range ms.All() {
				if m.Info(x.List).ID == "iwf" {
					if x.Entry != "" {
						t.Errorf("hashed match shows an entry %q", x.Entry)
					}
					got = true
				}
			}
			if got != tt.want {
				t.Errorf("MatchURL(%q) hashed match = %v, want %v (%v)", tt.url, got, tt.want, matchIDs(m, &ms))
			}
		})
	}
	hosts := []struct {
		host string
		want bool
	}{
		{"whole.example.net", true},
		{"bare.example.net", true},
		{"2001:db8::7", true},
		{"www.whole.example.net", false},
		{"bad.example.net", false},
		{"port.example.net", false},
	}
	for _, tt := range hosts {
		t.Run("host "+tt.host, func(t *testing.T) {
			var ms lists.Matches
			m.MatchHost(tt.host, &ms)
			got := ms.N > 0 && m.Info(ms.M[0].List).Mandatory
			if got != tt.want {
				t.Errorf("MatchHost(%q) = %v, want hashed match %v", tt.host, matchIDs(m, &ms), tt.want)
			}
		})
	}
	// A host longer than any normalised name must not break the lookup.
	var ms lists.Matches
	m.MatchHost(strings.Repeat("a", 300), &ms)
	if ms.N != 0 {
		t.Errorf("MatchHost(300 bytes) = %v", matchIDs(m, &ms))
	}
}

func TestMaxMatchesKeepsMandatory(t *testing.T) {
	var ls []*lists.List
	for i := range 40 {
		ls = append(ls, &lists.List{Info: lists.Info{ID: fmt.Sprintf("l%02d", i)}, Domains: []string{"example.com"}})
	}
	ls = append(ls, &lists.List{Info: lists.Info{ID: "iwf", Mandatory: true}, Domains: []string{"example.com"}})
	m, err := lists.Compile(ls)
	if err != nil {
		t.Fatal(err)
	}
	var ms lists.Matches
	m.MatchHost("www.example.com", &ms)
	if ms.N != lists.MaxMatches || len(ms.All()) != lists.MaxMatches {
		t.Fatalf("N = %d, want %d", ms.N, lists.MaxMatches)
	}
	if id := m.Info(ms.M[0].List).ID; id != "iwf" {
		t.Errorf("first match is %s, want the mandatory list", id)
	}
}

func TestHashURL(t *testing.T) {
	a := mustHash(t, "HTTPS://Example.COM:443/a/./b#x")
	if want := sha256.Sum256([]byte("example.com/a/b")); a != want {
		t.Errorf("HashURL is not the SHA-256 of the normalised key")
	}
	if _, err := lists.HashURL("http://exa mple.com/"); err == nil {
		t.Error("HashURL of a bad URL succeeded")
	}
}

func TestInfoLabel(t *testing.T) {
	tests := []struct {
		info lists.Info
		want string
	}{
		{lists.Info{Source: "ut1", SourceCategory: "drogue"}, "UT1 drogue"},
		{lists.Info{Source: "iwf", SourceCategory: "x"}, "IWF URL list"},
		{lists.Info{Source: "ctiru"}, "CTIRU list"},
		{lists.Info{Source: "local", SourceCategory: "education"}, "local education"},
		{lists.Info{Source: "local"}, "local"},
	}
	for _, tt := range tests {
		if got := tt.info.Label(); got != tt.want {
			t.Errorf("%+v.Label() = %q, want %q", tt.info, got, tt.want)
		}
	}
}

func TestMatchURLHostHashOnOtherPort(t *testing.T) {
	h, err := lists.HashURL("http://hashed-host.example/")
	if err != nil {
		t.Fatal(err)
	}
	m, err := lists.Compile([]*lists.List{{Info: lists.Info{ID: "iwf", Mandatory: true, Categories: []string{"child-abuse"}}, Hashes: [][32]byte{h}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"http://hashed-host.example:8080/any/page", "https://hashed-host.example/x"} {
		k, err := lists.NormalizeURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		var ms lists.Matches
		m.MatchURL(k, &ms)
		if ms.N == 0 {
			t.Errorf("MatchURL(%s) missed the host-level hashed entry", raw)
		}
	}
}
