package inspect

import (
	"bytes"
	"encoding/json"
	"io"
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

// RuleYouTubeApproved starts the Rule of an event for a YouTube request
// forwarded without Restricted Mode because the group has approved the
// video or channel it concerns: "youtube-approved:video:ID" or
// "youtube-approved:channel:UC...".
const RuleYouTubeApproved = "youtube-approved"

// maxYouTubeBody is how much of a YouTube API request's body the
// inspector reads to find the video or channel it concerns. The web
// player's requests are a few KiB; a longer body keeps Restricted Mode.
const maxYouTubeBody = 64 << 10

// youTubeAPIKinds are the YouTube (InnerTube) API calls whose JSON body
// names what they concern, and which kind each may name: the player and
// the watch page's data name a video ("videoId"), a channel page's data
// names the channel ("browseId"). Each call is read only for its own
// kind, so a body cannot pair a video with an approved channel.
var youTubeAPIKinds = map[string]policy.YouTubeKind{
	"/youtubei/v1/player": policy.YouTubeVideo,
	"/youtubei/v1/next":   policy.YouTubeVideo,
	"/youtubei/v1/browse": policy.YouTubeChannel,
}

// youTubeApproval reports the YouTube video or channel that r, a request
// about to be forwarded under decision d, concerns, when d's group has
// approved it and so r is to go without the YouTube-Restrict header. It
// looks only at requests to YouTube's names from groups with safe search
// on and with approvals. The video or channel comes from the URL (watch,
// embed, shorts, live, get_video_info, channel pages) or, for a POST to
// the player, next or browse API, from the JSON body: at most
// maxYouTubeBody bytes of it are read, and r.Body is replaced by a reader
// giving exactly the bytes the client sent.
func youTubeApproval(snap *policy.Snapshot, d policy.Decision, r *http.Request) (policy.YouTubeRef, bool) {
	if snap == nil || d.SafeSearch == policy.SafeSearchOff || r == nil || r.URL == nil {
		return policy.YouTubeRef{}, false
	}
	host := hostOf(r.URL)
	if host == "" {
		host = hostOf(&url.URL{Host: r.Host})
	}
	if !youTubeHosts[host] || !snap.HasYouTubeApprovals(d.Group) {
		return policy.YouTubeRef{}, false
	}
	ref, ok := policy.YouTubeRefOf(host, r.URL.Path, r.URL.RawQuery)
	if !ok {
		kind, api := youTubeAPIKinds[r.URL.Path]
		if !api || r.Method != http.MethodPost {
			return policy.YouTubeRef{}, false
		}
		if ref, ok = youTubeBodyRef(r, kind); !ok {
			return policy.YouTubeRef{}, false
		}
	}
	if ref.Kind == policy.YouTubeVideo && snap.YouTubeApproved(d.Group, ref.ID, "") ||
		ref.Kind == policy.YouTubeChannel && snap.YouTubeApproved(d.Group, "", ref.ID) {
		return ref, true
	}
	return policy.YouTubeRef{}, false
}

// youTubeBodyRef reads the start of r's body, puts it back, and returns
// the video or channel (as kind says) the JSON body names.
func youTubeBodyRef(r *http.Request, kind policy.YouTubeKind) (policy.YouTubeRef, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return policy.YouTubeRef{}, false
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return policy.YouTubeRef{}, false // not read compressed: Restricted Mode stays
	}
	if r.ContentLength > maxYouTubeBody {
		return policy.YouTubeRef{}, false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxYouTubeBody+1))
	// What was read goes first, then whatever is left (or the error the
	// body gave), so the site gets exactly what the client sent.
	r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), r.Body), Closer: r.Body}
	if err != nil || len(buf) > maxYouTubeBody {
		return policy.YouTubeRef{}, false
	}
	keys := [2]string{"videoId", "video_id"}
	if kind == policy.YouTubeChannel {
		keys = [2]string{"browseId", "browse_id"}
	}
	id, ok := jsonTopLevelString(buf, keys)
	if !ok {
		return policy.YouTubeRef{}, false
	}
	ref := policy.YouTubeRef{Kind: kind, ID: id}
	if kind == policy.YouTubeVideo && !policy.ValidYouTubeVideoID(id) || kind == policy.YouTubeChannel && !policy.ValidYouTubeChannelID(id) {
		return policy.YouTubeRef{}, false
	}
	return ref, true
}

// replayBody is a request body put back after being read in part.
type replayBody struct {
	io.Reader
	io.Closer
}

// jsonTopLevelString returns the string value of the member of body's
// top-level JSON object named by either of keys (compared without regard
// to case, as lenient parsers do). The body must be one well-formed
// object; a member named more than once must have the same value each
// time; a value that is not a string names nothing.
func jsonTopLevelString(body []byte, keys [2]string) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	var val string
	found := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		k, ok := t.(string)
		if !ok {
			return "", false
		}
		if !strings.EqualFold(k, keys[0]) && !strings.EqualFold(k, keys[1]) {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", false
			}
			continue
		}
		t, err = dec.Token()
		if err != nil {
			return "", false
		}
		s, ok := t.(string)
		if !ok || found && s != val {
			return "", false
		}
		val, found = s, true
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return "", false
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", false // something after the object
	}
	return val, found
}
