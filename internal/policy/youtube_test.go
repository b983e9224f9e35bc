package policy

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/lists"
)

const (
	vidA = "dQw4w9WgXcQ"
	vidB = "M7lc1UVf-VE"
	chA  = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
	chB  = "UCsXVk37bltHxD1rDPwtNM8Q"
)

func TestParseYouTubeURL(t *testing.T) {
	video := func(id string) YouTubeRef { return YouTubeRef{YouTubeVideo, id} }
	channel := func(id string) YouTubeRef { return YouTubeRef{YouTubeChannel, id} }
	tests := []struct {
		name string
		url  string
		want YouTubeRef // zero: names nothing
	}{
		{"watch", "https://www.youtube.com/watch?v=" + vidA, video(vidA)},
		{"watch with more", "https://www.youtube.com/watch?v=" + vidA + "&t=42s&list=PL123", video(vidA)},
		{"watch v later", "https://www.youtube.com/watch?feature=share&v=" + vidA, video(vidA)},
		{"watch v twice same", "https://www.youtube.com/watch?v=" + vidA + "&v=" + vidA, video(vidA)},
		{"watch fragment", "https://www.youtube.com/watch?v=" + vidA + "#t=30", video(vidA)},
		{"no scheme", "www.youtube.com/watch?v=" + vidA, video(vidA)},
		{"bare host", "youtube.com/watch?v=" + vidA, video(vidA)},
		{"http", "http://youtube.com/watch?v=" + vidA, video(vidA)},
		{"mobile", "https://m.youtube.com/watch?v=" + vidA, video(vidA)},
		{"music", "https://music.youtube.com/watch?v=" + vidA, video(vidA)},
		{"upper host", "https://WWW.YouTube.COM./watch?v=" + vidA, video(vidA)},
		{"port", "https://www.youtube.com:443/watch?v=" + vidA, video(vidA)},
		{"short link", "https://youtu.be/" + vidA, video(vidA)},
		{"short link time", "https://youtu.be/" + vidA + "?t=10", video(vidA)},
		{"embed", "https://www.youtube.com/embed/" + vidA + "?autoplay=1", video(vidA)},
		{"nocookie embed", "https://www.youtube-nocookie.com/embed/" + vidA, video(vidA)},
		{"shorts", "https://www.youtube.com/shorts/" + vidA, video(vidA)},
		{"shorts slash", "https://www.youtube.com/shorts/" + vidA + "/", video(vidA)},
		{"live", "https://www.youtube.com/live/" + vidA + "?si=abc", video(vidA)},
		{"old v", "https://www.youtube.com/v/" + vidA, video(vidA)},
		{"get_video_info", "https://www.youtube.com/get_video_info?video_id=" + vidA + "&el=embedded", video(vidA)},
		{"escaped value", "https://www.youtube.com/watch?v=dQw4w9WgXc%51", video(vidA)},
		{"escaped key", "https://www.youtube.com/watch?%76=" + vidA, video(vidA)},
		{"channel", "https://www.youtube.com/channel/" + chA, channel(chA)},
		{"channel tab", "https://www.youtube.com/channel/" + chA + "/videos", channel(chA)},
		{"channel mobile", "m.youtube.com/channel/" + chA + "/", channel(chA)},

		// Hostile or not YouTube.
		{"empty", "", YouTubeRef{}},
		{"other host", "https://www.example.com/watch?v=" + vidA, YouTubeRef{}},
		{"lookalike host", "https://youtube.com.evil.example/watch?v=" + vidA, YouTubeRef{}},
		{"subdomain not served", "https://kids.youtube.com/watch?v=" + vidA, YouTubeRef{}},
		{"ftp", "ftp://www.youtube.com/watch?v=" + vidA, YouTubeRef{}},
		{"userinfo", "https://" + vidA + "@www.youtube.com/watch?v=" + vidB, YouTubeRef{}},
		{"two videos", "https://www.youtube.com/watch?v=" + vidA + "&v=" + vidB, YouTubeRef{}},
		{"two videos semicolon", "https://www.youtube.com/watch?x=1;v=" + vidB + "&v=" + vidA, YouTubeRef{}},
		{"escaped key twice", "https://www.youtube.com/watch?%76=" + vidB + "&v=" + vidA, YouTubeRef{}},
		{"bad escape", "https://www.youtube.com/watch?%zz=1&v=" + vidA, YouTubeRef{}},
		{"short id", "https://www.youtube.com/watch?v=dQw4w9WgXc", YouTubeRef{}},
		{"long id", "https://www.youtube.com/watch?v=" + vidA + "x", YouTubeRef{}},
		{"bad char", "https://www.youtube.com/watch?v=dQw4w9WgX.Q", YouTubeRef{}},
		{"no v", "https://www.youtube.com/watch?list=PL123", YouTubeRef{}},
		{"results", "https://www.youtube.com/results?search_query=" + vidA, YouTubeRef{}},
		{"embed extra", "https://www.youtube.com/embed/" + vidA + "/extra", YouTubeRef{}},
		{"embed dot dot", "https://www.youtube.com/embed/" + vidA + "/../" + vidB, YouTubeRef{}},
		{"embed double slash", "https://www.youtube.com/embed//" + vidA, YouTubeRef{}},
		{"youtu.be path", "https://youtu.be/watch?v=" + vidA, YouTubeRef{}},
		{"watch upper", "https://www.youtube.com/Watch?v=" + vidA, YouTubeRef{}},
		{"channel short", "https://www.youtube.com/channel/UC123", YouTubeRef{}},
		{"channel not UC", "https://www.youtube.com/channel/HC_x5XG1OV2P6uZZ5FSM9Ttw", YouTubeRef{}},
		{"channel dot dot", "https://www.youtube.com/channel/" + chA + "/../../watch?v=" + vidA, YouTubeRef{}},
		{"channel empty seg", "https://www.youtube.com/channel/" + chA + "//videos", YouTubeRef{}},
		{"handle", "https://www.youtube.com/@SomeTeacher", YouTubeRef{}},
		{"nul", "https://www.youtube.com/watch?v=" + vidA + "\x00", YouTubeRef{}},
		{"space in host", "https://www.you tube.com/watch?v=" + vidA, YouTubeRef{}},
		{"huge", "https://www.youtube.com/watch?v=" + vidA + "&x=" + strings.Repeat("a", 5000), YouTubeRef{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseYouTubeURL(tt.url)
			if ok != !tt.want.IsZero() || got != tt.want {
				t.Errorf("ParseYouTubeURL(%q) = %+v, %v; want %+v", tt.url, got, ok, tt.want)
			}
			vid, vok := YouTubeVideoID(tt.url)
			if vok != (tt.want.Kind == YouTubeVideo) || vok && vid != tt.want.ID {
				t.Errorf("YouTubeVideoID = %q, %v", vid, vok)
			}
			ch, cok := YouTubeChannelID(tt.url)
			if cok != (tt.want.Kind == YouTubeChannel) || cok && ch != tt.want.ID {
				t.Errorf("YouTubeChannelID = %q, %v", ch, cok)
			}
		})
	}
}

func TestParseYouTubeRef(t *testing.T) {
	tests := []struct {
		in      string
		want    YouTubeRef
		wantErr string
	}{
		{vidA, YouTubeRef{YouTubeVideo, vidA}, ""},
		{"  " + chA + "\n", YouTubeRef{YouTubeChannel, chA}, ""},
		{"https://youtu.be/" + vidB, YouTubeRef{YouTubeVideo, vidB}, ""},
		{"https://www.youtube.com/channel/" + chB, YouTubeRef{YouTubeChannel, chB}, ""},
		{"https://www.youtube.com/@SomeTeacher", YouTubeRef{}, "channel's name"},
		{"https://www.youtube.com/c/SomeTeacher", YouTubeRef{}, "channel's name"},
		{"https://www.example.com/", YouTubeRef{}, "not a YouTube video or channel"},
		{"", YouTubeRef{}, "not a YouTube video or channel"},
		{strings.Repeat("x", 200), YouTubeRef{}, "..."},
	}
	for _, tt := range tests {
		got, err := ParseYouTubeRef(tt.in)
		if tt.wantErr != "" {
			if err == nil || !errors.Is(err, ErrNotYouTube) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseYouTubeRef(%q) = %+v, %v; want error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseYouTubeRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestYouTubePatternRoundTrip: the canonical pattern is already in the
// form the exception store writes, and reads back as the same video or
// channel.
func TestYouTubePatternRoundTrip(t *testing.T) {
	for _, r := range []YouTubeRef{{YouTubeVideo, vidA}, {YouTubeVideo, "-_-_-_-_-_-"}, {YouTubeChannel, chA}} {
		k, err := lists.NormalizeURL(r.Pattern())
		if err != nil || string(k) != r.Pattern() {
			t.Errorf("%s: pattern %q normalises to %q, %v", r, r.Pattern(), k, err)
		}
		if got, ok := ParseYouTubeURL(r.Pattern()); !ok || got != r {
			t.Errorf("%s: pattern reads back as %+v", r, got)
		}
		if got, ok := ParseYouTubeURL(r.URL()); !ok || got != r {
			t.Errorf("%s: URL %s reads back as %+v", r, r.URL(), got)
		}
	}
	if (YouTubeRef{}).Pattern() != "" || (YouTubeRef{}).URL() != "" || (YouTubeRef{}).String() != "nothing" {
		t.Error("the zero YouTubeRef names something")
	}
}

func youTubeSnapshot(t testing.TB) *Snapshot {
	t.Helper()
	allow := func(p, note string) Exception { return Exception{Action: Allow, Pattern: p, Note: note} }
	block := func(p string) Exception { return Exception{Action: Block, Pattern: p} }
	snap, err := Compile(Config{
		Taxonomy: lists.DefaultTaxonomy(),
		Groups: []Group{
			{ID: "key-stage-2", DefaultAction: Allow, SafeSearch: SafeSearchStrict, Exceptions: []Exception{
				allow(YouTubeRef{YouTubeVideo, vidA}.Pattern(), "volcano lesson"),
				allow("https://www.youtube.com/channel/"+chA, "science channel"),
				allow("youtu.be/"+vidB, ""), // any video URL form counts
				block("youtube.com/watch?v=" + "blockedVid1"),
				allow("bbc.co.uk", ""),
			}},
			{ID: "staff", DefaultAction: Allow, Exceptions: []Exception{
				block("www.youtube.com/watch?v=" + "schoolWide1"), // vetoes a school-wide approval
			}},
			{ID: "visitors", DefaultAction: Allow},
			{ID: "early-years", DefaultAction: Allow, Exceptions: []Exception{
				// Block exceptions are not approvals.
				block("youtube.com/watch?v=" + vidA),
			}},
		},
		Exceptions: []Exception{
			allow("youtube.com/embed/schoolWide1", "assembly"),
			allow("youtube.com/watch?v=blockedVid1", "school-wide, but key-stage-2 blocks it"),
			allow("youtube.com/channel/"+chB, ""),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestYouTubeApproved(t *testing.T) {
	snap := youTubeSnapshot(t)
	tests := []struct {
		name           string
		group          string
		video, channel string
		want           bool
	}{
		{"group video", "key-stage-2", vidA, "", true},
		{"group video other form", "key-stage-2", vidB, "", true},
		{"group channel", "key-stage-2", "", chA, true},
		{"school-wide video", "key-stage-2", "schoolWide1", "", true},
		{"school-wide channel", "key-stage-2", "", chB, true},
		{"group block vetoes school-wide", "key-stage-2", "blockedVid1", "", false},
		{"not approved", "key-stage-2", "unapproved1", "", false},
		{"other group: not its approval", "visitors", vidA, "", false},
		{"other group: channel not its", "visitors", "", chA, false},
		{"other group: school-wide", "visitors", "schoolWide1", "", true},
		{"staff blocks the school-wide video", "staff", "schoolWide1", "", false},
		{"block exception is no approval", "early-years", vidA, "", false},
		{"unknown group: school-wide only", "no-such-group", "schoolWide1", "", true},
		{"unknown group: not key-stage-2's", "no-such-group", vidA, "", false},
		{"nothing", "key-stage-2", "", "", false},
		{"domain exception is no approval", "key-stage-2", "bbc.co.uk", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := snap.YouTubeApproved(tt.group, tt.video, tt.channel); got != tt.want {
				t.Errorf("YouTubeApproved(%s, %q, %q) = %v", tt.group, tt.video, tt.channel, got)
			}
		})
	}
	for group, want := range map[string]bool{"key-stage-2": true, "visitors": true, "no-such-group": true} {
		if got := snap.HasYouTubeApprovals(group); got != want {
			t.Errorf("HasYouTubeApprovals(%s) = %v", group, got)
		}
	}

	// Without school-wide approvals, a group with none has none.
	plain, err := Compile(Config{Taxonomy: lists.DefaultTaxonomy(), Groups: []Group{
		{ID: "a", Exceptions: []Exception{{Action: Allow, Pattern: "youtu.be/" + vidA}}},
		{ID: "b"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !plain.HasYouTubeApprovals("a") || plain.HasYouTubeApprovals("b") || plain.YouTubeApproved("b", vidA, "") {
		t.Error("one group's approval reached another")
	}
}

// TestYouTubeApprovalAllowsPage: the approval is an ordinary exception,
// so the video's page is allowed by it and the reason says so.
func TestYouTubeApprovalAllowsPage(t *testing.T) {
	snap := youTubeSnapshot(t)
	d := snap.Decide(Request{URL: "https://m.youtube.com/watch?v=" + vidA + "&t=5", Group: "key-stage-2"})
	if d.Blocked() || !strings.HasPrefix(d.Rule, "exception:allow:youtube.com/watch?v="+vidA) || !strings.Contains(d.Reason, "volcano lesson") {
		t.Errorf("decision %+v", d)
	}
}

func TestYouTubeApprovedDoesNotAllocate(t *testing.T) {
	snap := youTubeSnapshot(t)
	if n := testing.AllocsPerRun(100, func() {
		snap.YouTubeApproved("key-stage-2", vidA, "")
		snap.YouTubeApproved("visitors", "", chA)
	}); n != 0 {
		t.Errorf("YouTubeApproved allocates %v times", n)
	}
}

func FuzzParseYouTubeURL(f *testing.F) {
	for _, s := range []string{
		"https://www.youtube.com/watch?v=" + vidA, "youtu.be/" + vidA, "https://www.youtube.com/embed/" + vidA,
		"https://www.youtube.com/channel/" + chA + "/videos", "https://www.youtube.com/watch?v=" + vidA + "&v=" + vidB,
		"https://www.youtube.com/watch?%76=" + vidA, "//m.youtube.com/shorts/" + vidA + "/", "https://[::1]/watch?v=" + vidA,
		"https://www.youtube.com/get_video_info?video_id=" + vidA, "%", "https://",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := ParseYouTubeURL(s)
		if !ok {
			if !r.IsZero() {
				t.Fatalf("not ok but %+v", r)
			}
			return
		}
		switch r.Kind {
		case YouTubeVideo:
			if !ValidYouTubeVideoID(r.ID) {
				t.Fatalf("bad video id %q from %q", r.ID, s)
			}
		case YouTubeChannel:
			if !ValidYouTubeChannelID(r.ID) {
				t.Fatalf("bad channel id %q from %q", r.ID, s)
			}
		default:
			t.Fatalf("kind %d from %q", r.Kind, s)
		}
		if !utf8.ValidString(r.ID) {
			t.Fatal("invalid UTF-8")
		}
		// The canonical form reads back the same.
		if back, ok := ParseYouTubeURL(r.Pattern()); !ok || back != r {
			t.Fatalf("%q: pattern %q reads back as %+v", s, r.Pattern(), back)
		}
		if _, err := ParseYouTubeRef(s); err != nil {
			t.Fatalf("ParseYouTubeURL accepts %q but ParseYouTubeRef does not: %v", s, err)
		}
	})
}
