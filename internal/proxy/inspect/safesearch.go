package inspect

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/warden-schools/warden/internal/policy"
)

// youTubeHosts are the names YouTube's Restricted Mode header applies to,
// as Google documents them for networks (the same names the DNS filter
// points at restrict.youtube.com), plus youtube.com and music.
var youTubeHosts = map[string]bool{
	"www.youtube.com": true, "m.youtube.com": true, "youtube.com": true, "music.youtube.com": true,
	"youtubei.googleapis.com": true, "youtube.googleapis.com": true,
	"www.youtube-nocookie.com": true, "youtube-nocookie.com": true,
}

// googleSafePaths are the Google paths that take the safe parameter:
// web, image and video search and the suggestions.
var googleSafePaths = map[string]bool{
	"/": true, "/search": true, "/webhp": true, "/images": true, "/imghp": true, "/imgres": true,
	"/videohp": true, "/complete/search": true,
}

// YouTubeRestrictHeader is the request header that sets YouTube's
// Restricted Mode.
const YouTubeRestrictHeader = "YouTube-Restrict"

// EnforceSafeSearch rewrites r, a request about to be forwarded, for a
// group's safe search level, by parameters and headers:
//
//   - Google search: safe=active (Google has one SafeSearch setting);
//   - Bing: adlt=strict;
//   - DuckDuckGo: kp=1 (strict);
//   - YouTube (every YouTube name, its API and youtube-nocookie): the
//     YouTube-Restrict header, Strict or Moderate as the level says.
//
// Any value the client sent for these is replaced. Bing and DuckDuckGo
// are strict at both levels, as the DNS filter makes them. At
// policy.SafeSearchOff nothing changes. The host is r.URL.Host, or
// r.Host when the URL has none.
func EnforceSafeSearch(r *http.Request, level policy.SafeSearch) {
	if level == policy.SafeSearchOff || r == nil || r.URL == nil {
		return
	}
	host := hostOf(r.URL)
	if host == "" {
		host = hostOf(&url.URL{Host: r.Host})
	}
	switch {
	case youTubeHosts[host]:
		v := "Moderate"
		if level == policy.SafeSearchStrict {
			v = "Strict"
		}
		if r.Header == nil {
			r.Header = http.Header{}
		}
		r.Header.Set(YouTubeRestrictHeader, v)
	case googleHosts[host]:
		if googleSafePaths[r.URL.Path] {
			setParam(r.URL, "safe", "active")
		}
	case host == "www.bing.com" || host == "bing.com" || host == "cn.bing.com":
		if strings.HasSuffix(r.URL.Path, "/search") || r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/AS/") {
			setParam(r.URL, "adlt", "strict")
		}
	case host == "duckduckgo.com" || host == "www.duckduckgo.com" || host == "start.duckduckgo.com" ||
		host == "html.duckduckgo.com" || host == "lite.duckduckgo.com" || host == "links.duckduckgo.com":
		setParam(r.URL, "kp", "1")
	}
}

// setParam sets key=value in u's query, removing every other value of
// key and keeping the rest of the query as it was, in order.
func setParam(u *url.URL, key, value string) {
	raw := u.RawQuery
	var b strings.Builder
	b.Grow(len(raw) + len(key) + len(value) + 2)
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, _, _ := strings.Cut(pair, "=")
		if k == key {
			continue
		}
		if dk, err := url.QueryUnescape(k); err == nil && dk == key {
			continue
		}
		b.WriteString(pair)
		b.WriteByte('&')
	}
	b.WriteString(url.QueryEscape(key))
	b.WriteByte('=')
	b.WriteString(url.QueryEscape(value))
	u.RawQuery = b.String()
	u.ForceQuery = false
}
