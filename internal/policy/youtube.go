package policy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// YouTube approvals. A teacher approves one YouTube video or channel for a
// group, for teaching, and the inspecting proxy then forwards that video's
// (or channel's) requests without the YouTube-Restrict header, while
// Restricted Mode stays on for everything else.
//
// An approval is an ordinary allow exception whose pattern is a YouTube
// video or channel URL (YouTubeRef.Pattern gives the canonical one), so it
// is added, removed and recorded in the change log like every other
// exception. A block exception for a video or channel vetoes an approval
// of it, whichever scope either is in.

// YouTubeKind says whether a YouTubeRef names a video or a channel.
type YouTubeKind uint8

// YouTube kinds.
const (
	YouTubeVideo YouTubeKind = iota + 1
	YouTubeChannel
)

// String returns "video" or "channel".
func (k YouTubeKind) String() string {
	switch k {
	case YouTubeVideo:
		return "video"
	case YouTubeChannel:
		return "channel"
	}
	return "none"
}

// YouTubeRef names one YouTube video (by its 11-character id) or channel
// (by its "UC" id, 24 characters). The zero YouTubeRef names nothing.
type YouTubeRef struct {
	Kind YouTubeKind
	ID   string
}

// Lengths of YouTube ids.
const (
	youTubeVideoIDLen   = 11
	youTubeChannelIDLen = 24
)

// IsZero reports whether r names nothing.
func (r YouTubeRef) IsZero() bool { return r.Kind == 0 || r.ID == "" }

// Pattern returns the exception pattern that approves r:
// "youtube.com/watch?v=ID" or "youtube.com/channel/UC...". Without
// "www.", the URL-prefix exception also covers www. and m.youtube.com.
func (r YouTubeRef) Pattern() string {
	switch r.Kind {
	case YouTubeVideo:
		return "youtube.com/watch?v=" + r.ID
	case YouTubeChannel:
		return "youtube.com/channel/" + r.ID
	}
	return ""
}

// URL returns the page people open for r.
func (r YouTubeRef) URL() string {
	if r.IsZero() {
		return ""
	}
	return "https://www." + r.Pattern()
}

// String returns "video ID" or "channel ID".
func (r YouTubeRef) String() string {
	if r.IsZero() {
		return "nothing"
	}
	return r.Kind.String() + " " + r.ID
}

// ValidYouTubeVideoID reports whether s has the form of a YouTube video
// id: 11 characters of [A-Za-z0-9_-].
func ValidYouTubeVideoID(s string) bool {
	return len(s) == youTubeVideoIDLen && base64URLChars(s)
}

// ValidYouTubeChannelID reports whether s has the form of a YouTube
// channel id: "UC" and 22 characters of [A-Za-z0-9_-].
func ValidYouTubeChannelID(s string) bool {
	return len(s) == youTubeChannelIDLen && strings.HasPrefix(s, "UC") && base64URLChars(s[2:])
}

func base64URLChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// youTubeSiteHosts serve YouTube pages under their usual paths.
var youTubeSiteHosts = map[string]bool{
	"youtube.com": true, "www.youtube.com": true, "m.youtube.com": true, "music.youtube.com": true,
	"youtube-nocookie.com": true, "www.youtube-nocookie.com": true,
}

// youTubeVideoPaths are the first path segments followed by a video id.
var youTubeVideoPaths = map[string]bool{"embed": true, "shorts": true, "live": true, "v": true, "e": true}

// YouTubeRefOf returns the video or channel a YouTube URL concerns, given
// its host (any case, port allowed), decoded path and raw query:
//
//   - videos: /watch?v=ID, /embed/ID, /shorts/ID, /live/ID, /v/ID, /e/ID,
//     /get_video_info?video_id=ID on youtube.com (www., m., music.) and
//     youtube-nocookie.com, and youtu.be/ID;
//   - channels: /channel/UC... (and the channel's own pages under it).
//
// It is strict, because an approval lifts Restricted Mode: a query that
// names the video twice with different ids, a path with extra, empty or
// dot segments, or an id of the wrong form names nothing.
func YouTubeRefOf(host, path, rawQuery string) (YouTubeRef, bool) {
	host = strings.ToLower(host)
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1] // one trailing slash
	}
	switch {
	case host == "youtu.be" || host == "www.youtu.be":
		if len(segs) == 1 && ValidYouTubeVideoID(segs[0]) {
			return YouTubeRef{YouTubeVideo, segs[0]}, true
		}
	case youTubeSiteHosts[host]:
		switch {
		case len(segs) == 1 && segs[0] == "watch":
			return videoFromQuery(rawQuery, "v")
		case len(segs) == 1 && segs[0] == "get_video_info":
			return videoFromQuery(rawQuery, "video_id")
		case len(segs) == 2 && youTubeVideoPaths[segs[0]]:
			if ValidYouTubeVideoID(segs[1]) {
				return YouTubeRef{YouTubeVideo, segs[1]}, true
			}
		case len(segs) >= 2 && segs[0] == "channel" && ValidYouTubeChannelID(segs[1]):
			for _, s := range segs[2:] {
				if s == "" || !base64URLChars(s) {
					return YouTubeRef{}, false // no dot segments, nothing odd
				}
			}
			return YouTubeRef{YouTubeChannel, segs[1]}, true
		}
	}
	return YouTubeRef{}, false
}

// videoFromQuery reads the one video id a query gives for key.
func videoFromQuery(rawQuery, key string) (YouTubeRef, bool) {
	id, ok := queryOne(rawQuery, key)
	if !ok || !ValidYouTubeVideoID(id) {
		return YouTubeRef{}, false
	}
	return YouTubeRef{YouTubeVideo, id}, true
}

// queryOne returns the value of key in a raw query when the query gives
// it exactly one value, however many times it names it.
func queryOne(rawQuery, key string) (string, bool) {
	var val string
	found := false
	for rawQuery != "" {
		// Some servers also split on ';': so does this, so that
		// "x=1;v=A&v=B" reads as naming two videos, not one.
		var pair string
		if i := strings.IndexAny(rawQuery, "&;"); i >= 0 {
			pair, rawQuery = rawQuery[:i], rawQuery[i+1:]
		} else {
			pair, rawQuery = rawQuery, ""
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if k != key {
			dk, err := url.QueryUnescape(k)
			if err != nil {
				return "", false // cannot tell whether this is key
			}
			if dk != key {
				continue
			}
		}
		dv, err := url.QueryUnescape(v)
		if err != nil || found && dv != val {
			return "", false
		}
		val, found = dv, true
	}
	return val, found
}

// ParseYouTubeURL returns the video or channel a URL names (with or
// without its scheme), as YouTubeRefOf reads it.
func ParseYouTubeURL(rawURL string) (YouTubeRef, bool) {
	s := strings.TrimSpace(rawURL)
	if s == "" || len(s) > 4096 {
		return YouTubeRef{}, false
	}
	if !strings.Contains(s, "://") {
		s = "https://" + strings.TrimPrefix(s, "//")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Opaque != "" {
		return YouTubeRef{}, false
	}
	return YouTubeRefOf(u.Host, u.Path, u.RawQuery)
}

// YouTubeVideoID returns the id of the video a URL names (watch?v=,
// youtu.be/, /embed/, /shorts/, /live/, m.youtube.com,
// youtube-nocookie.com/embed/...).
func YouTubeVideoID(rawURL string) (string, bool) {
	r, ok := ParseYouTubeURL(rawURL)
	if !ok || r.Kind != YouTubeVideo {
		return "", false
	}
	return r.ID, true
}

// YouTubeChannelID returns the id of the channel a /channel/UC... URL
// names.
func YouTubeChannelID(rawURL string) (string, bool) {
	r, ok := ParseYouTubeURL(rawURL)
	if !ok || r.Kind != YouTubeChannel {
		return "", false
	}
	return r.ID, true
}

// ErrNotYouTube is returned by ParseYouTubeRef for text that names no
// YouTube video or channel.
var ErrNotYouTube = errors.New("not a YouTube video or channel")

// ParseYouTubeRef reads what a person gives to approve: a video or
// channel URL, or a bare video id (11 characters) or channel id (UC...).
func ParseYouTubeRef(s string) (YouTubeRef, error) {
	s = strings.TrimSpace(s)
	switch {
	case ValidYouTubeVideoID(s):
		return YouTubeRef{YouTubeVideo, s}, nil
	case ValidYouTubeChannelID(s):
		return YouTubeRef{YouTubeChannel, s}, nil
	}
	if r, ok := ParseYouTubeURL(s); ok {
		return r, nil
	}
	shown := s
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	if strings.Contains(s, "/@") || strings.HasPrefix(s, "@") || strings.Contains(s, "/c/") || strings.Contains(s, "/user/") {
		return YouTubeRef{}, fmt.Errorf("%w: %q is a channel's name, not its id; open the channel, choose About > Share channel > Copy channel ID, and give the UC... id", ErrNotYouTube, shown)
	}
	return YouTubeRef{}, fmt.Errorf("%w: %q (give a video link such as https://www.youtube.com/watch?v=..., https://youtu.be/..., "+
		"a channel link https://www.youtube.com/channel/UC..., or the 11-character video id or UC... channel id)", ErrNotYouTube, shown)
}

// youTubeSet holds the YouTube videos and channels a scope's exceptions
// name, by id (video and channel ids differ in length, so one map serves
// both): Allow for an approval, Block for a block exception, which wins.
type youTubeSet map[string]Action

// compileYouTube collects the YouTube videos and channels named by
// exceptions whose pattern is a YouTube video or channel URL. It returns
// nil when there are none.
func compileYouTube(excs []Exception) youTubeSet {
	var set youTubeSet
	for _, e := range excs {
		if e.Action != Allow && e.Action != Block {
			continue
		}
		r, ok := ParseYouTubeURL(e.Pattern)
		if !ok {
			continue
		}
		if set == nil {
			set = youTubeSet{}
		}
		if prev, dup := set[r.ID]; !dup || prev != Block {
			set[r.ID] = e.Action
		}
	}
	return set
}

// lookup reports whether set approves id, and whether it blocks it.
func (set youTubeSet) lookup(id string) (approved, blocked bool) {
	if id == "" {
		return false, false
	}
	a, ok := set[id]
	return ok && a == Allow, ok && a == Block
}

// YouTubeApproved reports whether a group (or the unknown-client policy,
// for an unknown group) may see a YouTube video or channel without
// Restricted Mode: the group or the whole school has approved the video
// or the channel, and neither has a block exception for either. Give the
// one id a request concerns and "" for the other: a request naming both
// must not pair a video with a channel it does not belong to. It does no
// I/O and does not allocate.
func (s *Snapshot) YouTubeApproved(group, videoID, channelID string) bool {
	g := s.group(group)
	if g.youTube == nil && s.globalYouTube == nil {
		return false
	}
	approved := false
	for _, id := range [2]string{videoID, channelID} {
		for _, set := range [2]youTubeSet{g.youTube, s.globalYouTube} {
			a, b := set.lookup(id)
			if b {
				return false
			}
			approved = approved || a
		}
	}
	return approved
}

// HasYouTubeApprovals reports whether any YouTube video or channel is
// approved for a group, directly or school-wide, so that the proxy looks
// no further at YouTube requests of groups with none.
func (s *Snapshot) HasYouTubeApprovals(group string) bool {
	g := s.group(group)
	return g.youTubeAny || s.globalYouTubeAny
}

// any reports whether the set approves anything.
func (set youTubeSet) any() bool {
	for _, a := range set {
		if a == Allow {
			return true
		}
	}
	return false
}
