package inspect

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/policy"
)

func TestSearchTerm(t *testing.T) {
	tests := []struct {
		url    string
		engine string
		term   string
	}{
		{"https://www.google.com/search?q=how+to+tie+a+tie&hl=en", EngineGoogle, "how to tie a tie"},
		{"https://www.google.co.uk/search?client=firefox&q=caf%C3%A9%20near%20me", EngineGoogle, "café near me"},
		{"https://google.de/search?q=wetter", EngineGoogle, "wetter"},
		{"https://WWW.GOOGLE.COM./search?q=Upper", EngineGoogle, "Upper"},
		{"https://www.google.com:443/search?q=port", EngineGoogle, "port"},
		{"https://www.google.com/maps?q=london", "", ""},
		{"https://www.google.com/search?tbm=isch", "", ""},
		{"https://www.google.com/search?q=+++", "", ""},
		{"https://www.google.invalid/search?q=no", "", ""},
		{"https://mail.google.com/search?q=no", "", ""},
		{"https://www.bing.com/search?q=bing+term&form=QBLH", EngineBing, "bing term"},
		{"https://www.bing.com/images/search?q=x", "", ""},
		{"https://www.youtube.com/results?search_query=minecraft+tutorial", EngineYouTube, "minecraft tutorial"},
		{"https://m.youtube.com/results?search_query=cats", EngineYouTube, "cats"},
		{"https://www.youtube.com/watch?v=abc", "", ""},
		{"https://duckduckgo.com/?q=duck+term&t=h_", EngineDuckDuckGo, "duck term"},
		{"https://html.duckduckgo.com/html?q=html+term", EngineDuckDuckGo, "html term"},
		{"https://html.duckduckgo.com/html/?q=html+slash", EngineDuckDuckGo, "html slash"},
		{"https://duckduckgo.com/about?q=no", "", ""},
		{"https://en.wikipedia.org/w/index.php?search=Ada+Lovelace&title=Special%3ASearch", EngineWikipedia, "Ada Lovelace"},
		{"https://en.wikipedia.org/wiki/Special:Search?search=Charles+Babbage", EngineWikipedia, "Charles Babbage"},
		{"https://fr.wikipedia.org/wiki/Special:Search/Marie_Curie", EngineWikipedia, "Marie Curie"},
		{"https://en.wikipedia.org/wiki/Special:Search/a%2Fb_c", EngineWikipedia, "a/b c"},
		{"https://en.wikipedia.org/wiki/Ada_Lovelace", "", ""},
		{"https://wikipedia.org.evil.example/w/index.php?search=x", "", ""},
		// Normalised: whitespace, control characters, invalid UTF-8.
		{"https://www.google.com/search?q=%20a%09%0A%0Db%20%20c%20", EngineGoogle, "a b c"},
		{"https://www.google.com/search?q=a%00b%1Bc", EngineGoogle, "a b c"},
		{"https://www.google.com/search?q=ok%FFthen", EngineGoogle, "ok then"},
		{"https://www.google.com/search?q=100%25%zz", EngineGoogle, "100%25%zz"},
		{"https://www.google.com/search?foo&q=first&q=second", EngineGoogle, "first"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			engine, term, ok := SearchTerm(u)
			if ok != (tt.engine != "") || engine != tt.engine || term != tt.term {
				t.Errorf("got %q %q %v, want %q %q", engine, term, ok, tt.engine, tt.term)
			}
		})
	}
	if _, _, ok := SearchTerm(nil); ok {
		t.Error("nil URL is a search")
	}
}

func TestCleanTerm(t *testing.T) {
	long := strings.Repeat("é", MaxSearchTerm) // two bytes each
	got := CleanTerm(long)
	if len(got) != MaxSearchTerm || !utf8.ValidString(got) {
		t.Errorf("long term: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got := CleanTerm(strings.Repeat("a ", 300)); len(got) > MaxSearchTerm || strings.HasSuffix(got, " ") {
		t.Errorf("spaced term: %d bytes, %q at the end", len(got), got[len(got)-3:])
	}
	if got := CleanTerm("zero\u200bwidth\ufeff"); got != "zero width" {
		t.Errorf("zero-width: %q", got)
	}
}

func FuzzSearchTerm(f *testing.F) {
	for _, s := range []string{
		"https://www.google.com/search?q=hello+world",
		"https://en.wikipedia.org/wiki/Special:Search/A_b",
		"https://duckduckgo.com/?q=%ff%fe",
		"https://www.youtube.com/results?search_query=%00%01",
		"https://www.bing.com/search?q=" + strings.Repeat("x", 600),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		engine, term, ok := SearchTerm(u)
		if !ok {
			if engine != "" || term != "" {
				t.Fatalf("not ok but %q %q", engine, term)
			}
			return
		}
		if term == "" || len(term) > MaxSearchTerm || !utf8.ValidString(term) || strings.TrimSpace(term) != term || strings.Contains(term, "  ") {
			t.Fatalf("bad term %q", term)
		}
		for _, r := range term {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", term)
			}
		}
		// Enforcing safe search on a search never panics and always
		// leaves the engine's parameter or header set.
		req := &http.Request{URL: u, Header: http.Header{}}
		EnforceSafeSearch(req, policy.SafeSearchStrict)
		switch engine {
		case EngineGoogle:
			if queryValue(req.URL.RawQuery, "safe") != "active" {
				t.Fatalf("no safe=active in %q", req.URL.RawQuery)
			}
		case EngineYouTube:
			if req.Header.Get(YouTubeRestrictHeader) != "Strict" {
				t.Fatal("no YouTube-Restrict")
			}
		}
	})
}

func TestEnforceSafeSearch(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		host    string // r.Host when the URL has none
		level   policy.SafeSearch
		query   string // want RawQuery ("" = unchanged)
		youtube string // want YouTube-Restrict
	}{
		{name: "google adds", url: "https://www.google.com/search?q=x", level: policy.SafeSearchStrict, query: "q=x&safe=active"},
		{name: "google replaces", url: "https://www.google.co.uk/search?safe=off&q=x&safe=images", level: policy.SafeSearchModerate, query: "q=x&safe=active"},
		{name: "google encoded key", url: "https://www.google.com/search?s%61fe=off&q=x", level: policy.SafeSearchStrict, query: "q=x&safe=active"},
		{name: "google images", url: "https://www.google.com/images?q=x", level: policy.SafeSearchStrict, query: "q=x&safe=active"},
		{name: "google maps untouched", url: "https://www.google.com/maps?q=x", level: policy.SafeSearchStrict, query: "q=x"},
		{name: "google off", url: "https://www.google.com/search?q=x&safe=off", level: policy.SafeSearchOff, query: "q=x&safe=off"},
		{name: "google by Host", url: "/search?q=x", host: "www.google.fr:443", level: policy.SafeSearchStrict, query: "q=x&safe=active"},
		{name: "bing", url: "https://www.bing.com/search?q=x&adlt=off", level: policy.SafeSearchModerate, query: "q=x&adlt=strict"},
		{name: "bing images", url: "https://www.bing.com/images/search?q=x", level: policy.SafeSearchStrict, query: "q=x&adlt=strict"},
		{name: "duckduckgo", url: "https://duckduckgo.com/?q=x&kp=-2", level: policy.SafeSearchStrict, query: "q=x&kp=1"},
		{name: "duckduckgo html", url: "https://html.duckduckgo.com/html/?q=x", level: policy.SafeSearchModerate, query: "q=x&kp=1"},
		{name: "youtube strict", url: "https://www.youtube.com/results?search_query=x", level: policy.SafeSearchStrict, query: "search_query=x", youtube: "Strict"},
		{name: "youtube moderate", url: "https://m.youtube.com/watch?v=1", level: policy.SafeSearchModerate, query: "v=1", youtube: "Moderate"},
		{name: "youtube api", url: "https://youtubei.googleapis.com/youtubei/v1/search", level: policy.SafeSearchStrict, youtube: "Strict"},
		{name: "youtube nocookie", url: "https://www.youtube-nocookie.com/embed/x", level: policy.SafeSearchStrict, youtube: "Strict"},
		{name: "youtube off", url: "https://www.youtube.com/", level: policy.SafeSearchOff},
		{name: "other site", url: "https://example.org/search?q=x&safe=off", level: policy.SafeSearchStrict, query: "q=x&safe=off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			r := &http.Request{URL: u, Host: tt.host, Header: http.Header{YouTubeRestrictHeader: {"Off"}}}
			if tt.youtube == "" {
				r.Header = http.Header{}
			}
			EnforceSafeSearch(r, tt.level)
			if r.URL.RawQuery != tt.query {
				t.Errorf("query %q, want %q", r.URL.RawQuery, tt.query)
			}
			if got := r.Header.Get(YouTubeRestrictHeader); got != tt.youtube || len(r.Header.Values(YouTubeRestrictHeader)) > 1 {
				t.Errorf("YouTube-Restrict %q, want %q", r.Header.Values(YouTubeRestrictHeader), tt.youtube)
			}
		})
	}
}
