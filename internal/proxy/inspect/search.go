package inspect

import (
	_ "embed"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/searchengines"
)

// googleHosts holds every Google search host: google.TLD and
// www.google.TLD for each of Google's country domains. It is built once,
// read only after.
var googleHosts = searchengines.GoogleHosts()

// MaxSearchTerm is the longest search term kept, in bytes.
const MaxSearchTerm = 512

// Search engines SearchTerm names.
const (
	EngineGoogle     = "google"
	EngineBing       = "bing"
	EngineYouTube    = "youtube"
	EngineDuckDuckGo = "duckduckgo"
	EngineWikipedia  = "wikipedia"
)

// hostOf returns u's host name in lower case without port or final dot.
func hostOf(u *url.URL) string {
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// SearchTerm returns the search engine and the term searched for when u
// is a search on Google (any country domain, /search?q=), Bing
// (/search?q=), YouTube (/results?search_query=), DuckDuckGo (/?q=, and
// html. or lite. with /html/ or /lite/) or Wikipedia (any language:
// /w/index.php?search=, /wiki/Special:Search?search= and
// /wiki/Special:Search/TERM). The term has its whitespace collapsed,
// control characters removed, is valid UTF-8 and at most MaxSearchTerm
// bytes; ok is false when u is no search or the term is empty.
func SearchTerm(u *url.URL) (engine, term string, ok bool) {
	if u == nil {
		return "", "", false
	}
	host := hostOf(u)
	path := u.Path
	switch {
	case googleHosts[host]:
		if path == "/search" {
			engine, term = EngineGoogle, queryValue(u.RawQuery, "q")
		}
	case host == "www.bing.com" || host == "bing.com" || host == "cn.bing.com":
		if path == "/search" {
			engine, term = EngineBing, queryValue(u.RawQuery, "q")
		}
	case host == "www.youtube.com" || host == "m.youtube.com" || host == "youtube.com" || host == "music.youtube.com":
		if path == "/results" || path == "/search" {
			engine, term = EngineYouTube, queryValue(u.RawQuery, "search_query")
			if term == "" {
				term = queryValue(u.RawQuery, "q")
			}
		}
	case host == "duckduckgo.com" || host == "www.duckduckgo.com" || host == "start.duckduckgo.com" || host == "safe.duckduckgo.com":
		if path == "/" || path == "" {
			engine, term = EngineDuckDuckGo, queryValue(u.RawQuery, "q")
		}
	case host == "html.duckduckgo.com" || host == "lite.duckduckgo.com":
		if path == "/html" || path == "/html/" || path == "/lite" || path == "/lite/" || path == "/" {
			engine, term = EngineDuckDuckGo, queryValue(u.RawQuery, "q")
		}
	case strings.HasSuffix(host, ".wikipedia.org"):
		switch {
		case path == "/w/index.php" || path == "/wiki/Special:Search":
			engine, term = EngineWikipedia, queryValue(u.RawQuery, "search")
		case strings.HasPrefix(path, "/wiki/Special:Search/"):
			engine = EngineWikipedia
			term = strings.ReplaceAll(strings.TrimPrefix(path, "/wiki/Special:Search/"), "_", " ")
		}
	}
	if engine == "" {
		return "", "", false
	}
	term = CleanTerm(term)
	if term == "" {
		return "", "", false
	}
	return engine, term, true
}

// queryValue returns the first value of key in a raw query, decoded; a
// malformed pair is skipped rather than failing the rest.
func queryValue(raw, key string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != key {
			if dk, err := url.QueryUnescape(k); err != nil || dk != key {
				continue
			}
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			// Keep what is readable: a stray "%" should not hide a search.
			dv = strings.ReplaceAll(v, "+", " ")
		}
		return dv
	}
	return ""
}

// CleanTerm makes a search term safe to store and show: invalid UTF-8
// and control characters become spaces, runs of white space one space,
// and the result is trimmed and cut to MaxSearchTerm bytes on a
// character boundary.
func CleanTerm(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), MaxSearchTerm))
	space := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u200b' || r == '\ufeff' {
			space = b.Len() > 0
			continue
		}
		n := utf8.RuneLen(r)
		extra := 0
		if space {
			extra = 1
		}
		if b.Len()+extra+n > MaxSearchTerm {
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
