package inspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/wardentest"
)

const (
	ytApproved   = "dQw4w9WgXcQ" // approved for key-stage-2
	ytOther      = "M7lc1UVf-VE" // not approved
	ytChannel    = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
	ytNotChannel = "UCsXVk37bltHxD1rDPwtNM8Q"
)

// youTubePolicy: key-stage-2 (strict safe search) has approved one video
// and one channel; with approvals false, it has none.
func youTubePolicy(t testing.TB, approvals bool) *policy.Snapshot {
	t.Helper()
	g := policy.Group{ID: "key-stage-2", DefaultAction: policy.Allow, SafeSearch: policy.SafeSearchStrict}
	if approvals {
		g.Exceptions = []policy.Exception{
			{ID: 1, Action: policy.Allow, Pattern: policy.YouTubeRef{Kind: policy.YouTubeVideo, ID: ytApproved}.Pattern(), Note: "volcanoes lesson"},
			{ID: 2, Action: policy.Allow, Pattern: policy.YouTubeRef{Kind: policy.YouTubeChannel, ID: ytChannel}.Pattern()},
		}
	}
	snap, err := policy.Compile(policy.Config{Version: 4, Taxonomy: lists.DefaultTaxonomy(), Groups: []policy.Group{g}})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// ytEcho is what the YouTube test origin answers.
type ytEcho struct {
	Host, Path, YouTube string
	BodyLen             int
	BodySHA             string
}

// newYouTubeEnv runs the inspector as newEnv does, with an origin that
// answers for YouTube's names and echoes the YouTube-Restrict header and
// a digest of the body it received.
func newYouTubeEnv(t testing.TB) *env {
	t.Helper()
	e := &env{events: make(chan events.Event, 100), who: identity.Subject{Group: "key-stage-2", DeviceID: 7, PersonID: 9, Device: "ipad-07"}}
	e.originCrt = wardentest.NewCert(t, "www.youtube.com", "m.youtube.com", "youtubei.googleapis.com", "www.youtube-nocookie.com")
	e.origin = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ytEcho{Host: r.Host, Path: r.URL.Path, YouTube: r.Header.Get(YouTubeRestrictHeader),
			BodyLen: len(body), BodySHA: hex.EncodeToString(sum[:])})
	}))
	e.origin.EnableHTTP2 = true
	e.origin.TLS = &tls.Config{Certificates: []tls.Certificate{e.originCrt.TLS}}
	e.origin.StartTLS()
	t.Cleanup(e.origin.Close)

	e.ca, _ = testCA(t, CAOptions{})
	snap := youTubePolicy(t, true)
	e.snap.Store(snap)
	e.reg = prometheus.NewRegistry()
	origin := e.origin.Listener.Addr().String()
	var err error
	e.in, err = New(Options{
		CA: e.ca, Policy: e.snap.Load,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, origin)
		},
		RootCAs: e.originCrt.Roots,
		Events:  func(ev events.Event) bool { e.events <- ev; return true },
		Metrics: e.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.in.Close)
	e.proxy = e.startProxy(t, snap)
	return e
}

func ytDo(t testing.TB, c *http.Client, method, rawURL string, body []byte, hdr ...string) ytEcho {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %v %s", method, rawURL, resp.StatusCode, err, b)
	}
	var got ytEcho
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("origin answer %q: %v", b, err)
	}
	if body != nil {
		sum := sha256.Sum256(body)
		if got.BodyLen != len(body) || got.BodySHA != hex.EncodeToString(sum[:]) {
			t.Errorf("%s %s: the body reached the site changed (%d bytes, want %d)", method, rawURL, got.BodyLen, len(body))
		}
	}
	return got
}

// playerBody is a request body like the web player's.
func playerBody(fields string) []byte {
	return []byte(`{"context":{"client":{"hl":"en-GB","gl":"GB","clientName":"WEB","clientVersion":"2.20240101.00.00"}},` + fields + `}`)
}

func TestYouTubeApprovals(t *testing.T) {
	big := playerBody(`"videoId":"` + ytApproved + `","padding":"` + strings.Repeat("x", maxYouTubeBody) + `"`)
	tests := []struct {
		name     string
		method   string
		url      string
		body     []byte
		hdr      []string
		restrict string // the YouTube-Restrict header the site gets
		rule     string // the event's rule
	}{
		{"approved video page", "GET", "https://www.youtube.com/watch?v=" + ytApproved + "&t=30s", nil, nil,
			"", "youtube-approved:video:" + ytApproved},
		{"approved video on mobile", "GET", "https://m.youtube.com/watch?v=" + ytApproved, nil, nil,
			"", "youtube-approved:video:" + ytApproved},
		{"approved video embedded", "GET", "https://www.youtube-nocookie.com/embed/" + ytApproved, nil, nil,
			"", "youtube-approved:video:" + ytApproved},
		{"approved video player", "POST", "https://www.youtube.com/youtubei/v1/player?prettyPrint=false", playerBody(`"videoId":"` + ytApproved + `"`), nil,
			"", "youtube-approved:video:" + ytApproved},
		{"approved video next", "POST", "https://www.youtube.com/youtubei/v1/next", playerBody(`"videoId":"` + ytApproved + `","racyCheckOk":false`), nil,
			"", "youtube-approved:video:" + ytApproved},
		{"approved video app API", "POST", "https://youtubei.googleapis.com/youtubei/v1/player", playerBody(`"video_id":"` + ytApproved + `"`), nil,
			"", "youtube-approved:video:" + ytApproved},
		{"client's own header stays", "GET", "https://www.youtube.com/watch?v=" + ytApproved, nil, []string{YouTubeRestrictHeader, "Moderate"},
			"Moderate", "youtube-approved:video:" + ytApproved},
		{"approved channel page", "GET", "https://www.youtube.com/channel/" + ytChannel + "/videos", nil, nil,
			"", "youtube-approved:channel:" + ytChannel},
		{"approved channel browse", "POST", "https://www.youtube.com/youtubei/v1/browse", playerBody(`"browseId":"` + ytChannel + `","params":"EgZ2aWRlb3M%3D"`), nil,
			"", "youtube-approved:channel:" + ytChannel},

		{"other video page", "GET", "https://www.youtube.com/watch?v=" + ytOther, nil, []string{YouTubeRestrictHeader, "Off"},
			"Strict", "default"},
		{"other video player", "POST", "https://www.youtube.com/youtubei/v1/player", playerBody(`"videoId":"` + ytOther + `"`), nil,
			"Strict", "default"},
		{"search", "GET", "https://www.youtube.com/results?search_query=volcanoes", nil, nil, "Strict", "default"},
		{"home", "GET", "https://www.youtube.com/", nil, nil, "Strict", "default"},
		{"other channel", "GET", "https://www.youtube.com/channel/" + ytNotChannel, nil, nil, "Strict", "default"},
		// Hostile requests keep Restricted Mode.
		{"two videos in the URL", "GET", "https://www.youtube.com/watch?v=" + ytOther + "&v=" + ytApproved, nil, nil, "Strict", "default"},
		{"approved id nested, other on top", "POST", "https://www.youtube.com/youtubei/v1/player",
			playerBody(`"playbackContext":{"videoId":"` + ytApproved + `"},"videoId":"` + ytOther + `"`), nil, "Strict", "default"},
		{"id given twice", "POST", "https://www.youtube.com/youtubei/v1/player",
			playerBody(`"videoId":"` + ytApproved + `","video_id":"` + ytOther + `"`), nil, "Strict", "default"},
		{"id given twice in another case", "POST", "https://www.youtube.com/youtubei/v1/player",
			playerBody(`"videoId":"` + ytApproved + `","VIDEOID":"` + ytOther + `"`), nil, "Strict", "default"},
		{"approved channel with another video", "POST", "https://www.youtube.com/youtubei/v1/player",
			playerBody(`"browseId":"` + ytChannel + `","videoId":"` + ytOther + `"`), nil, "Strict", "default"},
		{"video id in a browse call", "POST", "https://www.youtube.com/youtubei/v1/browse",
			playerBody(`"videoId":"` + ytApproved + `"`), nil, "Strict", "default"},
		{"approved id in the player URL", "POST", "https://www.youtube.com/youtubei/v1/player?v=" + ytApproved,
			playerBody(`"videoId":"` + ytOther + `"`), nil, "Strict", "default"},
		{"body too long to read", "POST", "https://www.youtube.com/youtubei/v1/player", big, nil, "Strict", "default"},
		{"body not JSON", "POST", "https://www.youtube.com/youtubei/v1/player", []byte(`videoId=` + ytApproved), nil, "Strict", "default"},
		{"body compressed", "POST", "https://www.youtube.com/youtubei/v1/player", playerBody(`"videoId":"` + ytApproved + `"`),
			[]string{"Content-Encoding", "gzip"}, "Strict", "default"},
		{"player by GET", "GET", "https://www.youtube.com/youtubei/v1/player", nil, nil, "Strict", "default"},
	}
	for _, proto := range []struct {
		name string
		h2   bool
	}{{"HTTP/1.1", false}, {"HTTP/2", true}} {
		t.Run(proto.name, func(t *testing.T) {
			e := newYouTubeEnv(t)
			c := e.client(t, proto.h2)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got := ytDo(t, c, tt.method, tt.url, tt.body, tt.hdr...)
					if got.YouTube != tt.restrict {
						t.Errorf("the site got YouTube-Restrict %q, want %q", got.YouTube, tt.restrict)
					}
					ev := e.event(t)
					if ev.Rule != tt.rule || ev.Action != "allow" || ev.Method != tt.method || ev.Status != "200" || ev.Group != "key-stage-2" {
						t.Errorf("event %+v, want rule %s", ev, tt.rule)
					}
				})
			}

			// Revoked: the next request, on the same connection, is
			// restricted again.
			e.snap.Store(youTubePolicy(t, false))
			if got := ytDo(t, c, "GET", "https://www.youtube.com/watch?v="+ytApproved, nil); got.YouTube != "Strict" {
				t.Errorf("after revoking, YouTube-Restrict %q", got.YouTube)
			}
			if got := ytDo(t, c, "POST", "https://www.youtube.com/youtubei/v1/player", playerBody(`"videoId":"`+ytApproved+`"`)); got.YouTube != "Strict" {
				t.Errorf("after revoking, player YouTube-Restrict %q", got.YouTube)
			}
			for range 2 {
				if ev := e.event(t); ev.Rule != "default" {
					t.Errorf("after revoking, event %+v", ev)
				}
			}
		})
	}
}

// TestYouTubeApprovalsCurl: the web player's POST through the proxy with
// curl, the body arriving intact.
func TestYouTubeApprovalsCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (.ci/run installs it)")
	}
	e := newYouTubeEnv(t)
	rootFile := filepath.Join(t.TempDir(), "root.crt")
	if err := os.WriteFile(rootFile, e.ca.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tt := range []struct{ id, want string }{{ytApproved, ""}, {ytOther, "Strict"}} {
		body := playerBody(`"videoId":"` + tt.id + `"`)
		out, err := exec.CommandContext(ctx, curl, "-sS", "--noproxy", "", "-x", "http://"+e.proxy, "--cacert", rootFile,
			"-H", "Content-Type: application/json", "--data-binary", string(body),
			"https://www.youtube.com/youtubei/v1/player?prettyPrint=false").CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		var got ytEcho
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("curl got %q: %v", out, err)
		}
		sum := sha256.Sum256(body)
		if got.YouTube != tt.want || got.BodySHA != hex.EncodeToString(sum[:]) {
			t.Errorf("video %s: %+v", tt.id, got)
		}
		<-e.events
	}
}

func TestYouTubeApprovalRequest(t *testing.T) {
	snap := youTubePolicy(t, true)
	strict := policy.Decision{Group: "key-stage-2", SafeSearch: policy.SafeSearchStrict}
	player := func() *http.Request {
		r := httptest.NewRequest("POST", "https://www.youtube.com/youtubei/v1/player", bytes.NewReader(playerBody(`"videoId":"`+ytApproved+`"`)))
		return r
	}
	if _, ok := youTubeApproval(snap, strict, player()); !ok {
		t.Error("the approved video's player request is restricted")
	}
	// Safe search off: nothing to lift, nothing read.
	off := strict
	off.SafeSearch = policy.SafeSearchOff
	r := player()
	body := r.Body
	if _, ok := youTubeApproval(snap, off, r); ok || r.Body != body {
		t.Error("safe search off: the request was looked into")
	}
	// A group with no approvals: the body is not read.
	other := strict
	other.Group = "no-such-group"
	r = player()
	body = r.Body
	if _, ok := youTubeApproval(snap, other, r); ok || r.Body != body {
		t.Error("a group without approvals: the body was read")
	}
	// No snapshot, no request.
	if _, ok := youTubeApproval(nil, strict, player()); ok {
		t.Error("no policy, approved")
	}
	if _, ok := youTubeApproval(snap, strict, nil); ok {
		t.Error("no request, approved")
	}
	// A read error part-way keeps Restricted Mode and passes the error on.
	boom := errors.New("client went away")
	r = httptest.NewRequest("POST", "https://www.youtube.com/youtubei/v1/player", nil)
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"videoId":"`+ytApproved), errReader{boom}))
	if _, ok := youTubeApproval(snap, strict, r); ok {
		t.Error("a broken body was approved")
	}
	b, err := io.ReadAll(r.Body)
	if string(b) != `{"videoId":"`+ytApproved || !errors.Is(err, boom) {
		t.Errorf("after a read error the body gives %q, %v", b, err)
	}
	// A body of unknown length over the limit: read up to it, not
	// approved, given on whole.
	big := playerBody(`"videoId":"` + ytApproved + `","padding":"` + strings.Repeat("x", 2*maxYouTubeBody) + `"`)
	r = httptest.NewRequest("POST", "https://www.youtube.com/youtubei/v1/player", nil)
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(big)), -1
	if _, ok := youTubeApproval(snap, strict, r); ok {
		t.Error("an unread long body was approved")
	}
	if b, err := io.ReadAll(r.Body); err != nil || !bytes.Equal(b, big) {
		t.Errorf("long body given on as %d bytes, %v", len(b), err)
	}
	// A Content-Length over the limit is not read.
	r = player()
	r.ContentLength = maxYouTubeBody + 1
	body = r.Body
	if _, ok := youTubeApproval(snap, strict, r); ok || r.Body != body {
		t.Error("a declared long body was read")
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestJSONTopLevelString(t *testing.T) {
	keys := [2]string{"videoId", "video_id"}
	tests := []struct {
		body string
		want string
		ok   bool
	}{
		{`{"videoId":"abc"}`, "abc", true},
		{` {"a":[1,{"videoId":"x"}],"videoId":"abc","b":{"c":null}} `, "abc", true},
		{`{"video_id":"abc"}`, "abc", true},
		{`{"VideoID":"abc"}`, "abc", true},
		{`{"videoId":"abc","videoId":"abc"}`, "abc", true},
		{`{"video\u0049d":"abc"}`, "abc", true},
		{`{"videoId":"\u0061bc"}`, "abc", true},
		{`{"videoId":"abc","videoId":"abd"}`, "", false},
		{`{"videoId":"abc","video_id":"abd"}`, "", false},
		{`{"videoId":1}`, "", false},
		{`{"videoId":null}`, "", false},
		{`{"videoId":["abc"]}`, "", false},
		{`{"other":"abc"}`, "", false},
		{`{"a":{"videoId":"abc"}}`, "", false},
		{`["videoId","abc"]`, "", false},
		{`{"videoId":"abc"`, "", false},
		{`{"videoId":"abc"}{}`, "", false},
		{`{"videoId":"abc"} x`, "", false},
		{`{"videoId":"abc",}`, "", false},
		{``, "", false},
		{`"videoId"`, "", false},
	}
	for _, tt := range tests {
		got, ok := jsonTopLevelString([]byte(tt.body), keys)
		if got != tt.want || ok != tt.ok {
			t.Errorf("jsonTopLevelString(%s) = %q, %v; want %q, %v", tt.body, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzYouTubeBody(f *testing.F) {
	for _, s := range []string{
		string(playerBody(`"videoId":"` + ytApproved + `"`)),
		`{"videoId":"` + ytApproved + `","video_id":"` + ytOther + `"}`,
		`{"browseId":"` + ytChannel + `"}`, `{"a":[{"videoId":"x"}]}`, `{`, `{"videoId":"\ud800"}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, kind := range []policy.YouTubeKind{policy.YouTubeVideo, policy.YouTubeChannel} {
			r := httptest.NewRequest("POST", "https://www.youtube.com/youtubei/v1/player", bytes.NewReader(body))
			ref, ok := youTubeBodyRef(r, kind)
			if ok && (ref.Kind != kind || kind == policy.YouTubeVideo && !policy.ValidYouTubeVideoID(ref.ID) ||
				kind == policy.YouTubeChannel && !policy.ValidYouTubeChannelID(ref.ID)) {
				t.Fatalf("bad ref %+v", ref)
			}
			if ok && !bytes.Contains(body, []byte(`"`)) {
				t.Fatal("a ref from a body with no string")
			}
			back, err := io.ReadAll(r.Body)
			if err != nil || !bytes.Equal(back, body) {
				t.Fatalf("body not restored: %q, %v", back, err)
			}
		}
	})
}

// BenchmarkYouTubeApproval: deciding whether to lift Restricted Mode for
// a player request (its body read and put back), a watch page, and a
// request to another host (the cost every request pays).
func BenchmarkYouTubeApproval(b *testing.B) {
	snap := youTubePolicy(b, true)
	d := policy.Decision{Group: "key-stage-2", SafeSearch: policy.SafeSearchStrict}
	body := playerBody(`"videoId":"` + ytApproved + `","playbackContext":{"contentPlaybackContext":{"html5Preference":"HTML5_PREF_WANTS"}}`)
	for _, bc := range []struct {
		name, method, url string
		body              []byte
	}{
		{"player", "POST", "https://www.youtube.com/youtubei/v1/player", body},
		{"watch", "GET", "https://www.youtube.com/watch?v=" + ytApproved, nil},
		{"other-host", "GET", "https://www.google.com/search?q=x", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(bc.method, bc.url, nil)
			rd := bytes.NewReader(bc.body)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(bc.body)
				req.Body = io.NopCloser(rd)
				req.ContentLength = int64(len(bc.body))
				youTubeApproval(snap, d, req)
			}
		})
	}
}
