package blockpage

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"html"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testNow is the tests' clock: a Wednesday morning in term, in summer
// time (BST).
var testNow = time.Date(2026, 6, 3, 9, 41, 7, 0, time.UTC)

var testKey = bytes.Repeat([]byte("k"), 32)

// zeroRand is a random source of zero bytes, so that reference ids (and
// therefore tokens) are the same on every run.
type zeroRand struct{}

func (zeroRand) Read(b []byte) (int, error) { clear(b); return len(b), nil }

func newTestPage(t testing.TB, school string) *Page {
	t.Helper()
	p, err := New(Options{
		Key: testKey, ActionURL: "https://warden.school.example/", SchoolName: school,
		Now: func() time.Time { return testNow }, Rand: zeroRand{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testPolicy has a category list, a mandatory URL list whose entry is
// under an otherwise ordinary host, and a rule.
func testPolicy(t testing.TB) *policy.Snapshot {
	t.Helper()
	mk := func(id, src string, cats []string, mandatory bool, entries ...string) *lists.List {
		c := &lists.Collector{}
		if err := c.Parse(strings.NewReader(strings.Join(entries, "\n")), id, lists.FormatPlain); err != nil {
			t.Fatal(err)
		}
		c.Finish()
		source := "ut1"
		if mandatory {
			source = id
		}
		return &lists.List{Info: lists.Info{ID: id, Source: source, SourceCategory: src, Categories: cats, Mandatory: mandatory},
			Domains: c.Domains, URLs: c.URLs}
	}
	m, err := lists.Compile([]*lists.List{
		mk("ut1/gambling", "gambling", []string{"gambling"}, false, "bet365.com"),
		mk("ut1/games", "games", []string{"games"}, false, "coolmathgames.com"),
		mk("ut1/social_networks", "social_networks", []string{"social-media"}, false, "facebook.com"),
		mk("iwf", "", []string{"child-abuse"}, true, "images.example-host.net/secret-abuse-path"),
	})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Compile(policy.Config{
		Version: 42, Taxonomy: lists.DefaultTaxonomy(), Lists: m,
		Groups: []policy.Group{
			{ID: "key-stage-2", DefaultAction: policy.Allow},
			{ID: "staff", DefaultAction: policy.Allow, Categories: map[string]policy.Action{"social-media": policy.Allow, "games": policy.Allow},
				Rules: []policy.Rule{{ID: 3, Name: "no-video-in-exams", Action: policy.Block, Domains: []string{"video.example"}}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

var (
	pupil = identity.Subject{Group: "key-stage-2", PersonID: 17, Person: "Amara Okafor", DeviceID: 5, Device: "KS2-iPad-12", Via: identity.ByDeviceIP}
	staff = identity.Subject{Group: "staff", DeviceID: 9, Device: "staff-laptop-3", Via: identity.ByDeviceIP}
)

type pageCase struct {
	name    string
	host    string
	url     string
	subject identity.Subject
}

var pageCases = []pageCase{
	{name: "category", host: "bet365.com", url: "http://bet365.com/en/sports/football?match=1234", subject: pupil},
	{name: "mandatory", host: "images.example-host.net", url: "http://images.example-host.net/secret-abuse-path/photo.jpg", subject: pupil},
	{name: "rule", host: "video.example", subject: staff},
	{name: "unknown", host: "coolmathgames.com", subject: identity.Subject{Group: "unknown", Via: identity.Unknown}},
}

func (c pageCase) info(t testing.TB, snap *policy.Snapshot) Info {
	d := snap.Decide(policy.Request{Host: c.host, URL: c.url, Group: c.subject.Group, ClientIP: netip.MustParseAddr("10.1.2.3"), Time: testNow})
	if !d.Blocked() {
		t.Fatalf("%s: test decision does not block: %+v", c.name, d)
	}
	return Info{Time: testNow.Add(-2 * time.Second), Host: c.host, URL: c.url, Decision: d, Subject: c.subject, ClientIP: netip.MustParseAddr("10.1.2.3")}
}

// TestGolden renders the page for a few decisions and compares it with
// testdata/NAME.golden.html; run with -update to rewrite them.
func TestGolden(t *testing.T) {
	p := newTestPage(t, "Riverside Primary School")
	snap := testPolicy(t)
	for _, c := range pageCases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := p.Render(&buf, c.info(t, snap)); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", c.name+".golden.html")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("page differs from %s (run go test -update after checking the change):\n%s", golden, buf.String())
			}
		})
	}
}

// TestPageContent checks what each page must and must not say.
func TestPageContent(t *testing.T) {
	p := newTestPage(t, "")
	snap := testPolicy(t)
	tests := []struct {
		name       string
		want, none []string
	}{
		{"category", []string{"bet365.com", "Gambling", "Amara Okafor (on KS2-iPad-12)", "key-stage-2", "Ask for a review", "Send report",
			`action="https://warden.school.example/blocked/review"`, "Wednesday 3 June 2026 at 10:41 BST"}, nil},
		{"mandatory", []string{"images.example-host.net", "Internet Watch Foundation", "can never be unblocked", "Send report"},
			[]string{"secret-abuse-path", "photo.jpg", "Ask for a review", "/blocked/review"}},
		{"rule", []string{"video.example", "no-video-in-exams", "staff-laptop-3", "Ask for a review"}, nil},
		{"unknown", []string{"coolmathgames.com", "unknown device", "<dd>unknown</dd>"}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(p.HTML(pageCases[i].info(t, snap)))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tt.none {
				if strings.Contains(got, w) {
					t.Errorf("page shows %q", w)
				}
			}
		})
	}
}

var tokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)

func tokenOf(t testing.TB, page []byte) string {
	t.Helper()
	m := tokenRE.FindSubmatch(page)
	if m == nil {
		t.Fatal("page has no token")
	}
	return html.UnescapeString(string(m[1]))
}

// TestMandatoryEntryNeverShown holds that neither the page nor its token
// (which a pupil can decode) carries the URL or the list entry of a
// mandatory block, even if a decision wrongly carried the entry.
func TestMandatoryEntryNeverShown(t *testing.T) {
	p := newTestPage(t, "")
	info := pageCases[1].info(t, testPolicy(t))
	info.Decision.Matched = "images.example-host.net/secret-abuse-path"
	info.Decision.Reason = "Blocked: matched images.example-host.net/secret-abuse-path"
	page := p.HTML(info)
	tok := tokenOf(t, page)
	body, _ := base64.RawURLEncoding.DecodeString(strings.Split(strings.TrimPrefix(tok, tokenPrefix), ".")[0])
	for what, s := range map[string]string{"page": string(page), "token": string(body)} {
		if strings.Contains(s, "secret-abuse-path") || strings.Contains(s, "photo.jpg") {
			t.Errorf("%s shows the mandatory entry or URL:\n%s", what, s)
		}
	}
	c, err := p.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Mandatory || c.URL != "" || c.List != "iwf" || c.Host != "images.example-host.net" {
		t.Errorf("claims = %+v", c)
	}
}

// TestTokenClaims checks that the token carries every detail of the
// block.
func TestTokenClaims(t *testing.T) {
	p := newTestPage(t, "")
	info := pageCases[0].info(t, testPolicy(t))
	c, err := p.Verify(tokenOf(t, p.HTML(info)))
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{
		Ref: "1DJ0A00000", Issued: testNow, Time: testNow.Add(-2 * time.Second),
		Host: "bet365.com", URL: "http://bet365.com/en/sports/football?match=1234",
		Category: "gambling", List: "ut1/gambling", Rule: "category", Reason: info.Decision.Reason,
		Group: "key-stage-2", PolicyVersion: 42, ClientIP: netip.MustParseAddr("10.1.2.3"), DeviceID: 5, PersonID: 17,
	}
	if c != want {
		t.Errorf("claims\n got %+v\nwant %+v", c, want)
	}
}

func TestVerifyToken(t *testing.T) {
	p := newTestPage(t, "")
	tok := tokenOf(t, p.HTML(pageCases[0].info(t, testPolicy(t))))
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	dot := strings.LastIndexByte(tok, '.')
	tests := []struct {
		name  string
		key   []byte
		token string
		now   time.Time
		want  error
	}{
		{"genuine", testKey, tok, testNow, nil},
		{"six days later", testKey, tok, testNow.Add(6 * 24 * time.Hour), nil},
		{"expired", testKey, tok, testNow.Add(7*24*time.Hour + time.Second), ErrTokenExpired},
		{"issued in the future", testKey, tok, testNow.Add(-time.Hour), ErrTokenInvalid},
		{"other key", bytes.Repeat([]byte("x"), 32), tok, testNow, ErrTokenInvalid},
		{"body altered", testKey, flip(tok, len(tokenPrefix)+10), testNow, ErrTokenInvalid},
		{"signature altered", testKey, flip(tok, dot+3), testNow, ErrTokenInvalid},
		{"no signature", testKey, tok[:dot], testNow, ErrTokenInvalid},
		{"empty", testKey, "", testNow, ErrTokenInvalid},
		{"other format", testKey, "wbp2." + tok[len(tokenPrefix):], testNow, ErrTokenInvalid},
		{"huge", testKey, tokenPrefix + strings.Repeat("A", 9000), testNow, ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyToken(tt.key, tt.token, tt.now, 0)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := VerifyToken([]byte("short"), tok, testNow, 0); err == nil {
		t.Error("short key accepted")
	}
}

// TestForgedClaims signs claims the client chose with another key: the
// page's key must reject them.
func TestForgedClaims(t *testing.T) {
	forged, err := signToken(bytes.Repeat([]byte("z"), 32), Claims{Ref: "0RT1S00000", Issued: testNow, Host: "bet365.com", Group: "staff"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyToken(testKey, forged, testNow, 0); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("forged token: err = %v", err)
	}
}

func TestRef(t *testing.T) {
	ref, err := newRef(testNow, zeroRand{})
	if err != nil {
		t.Fatal(err)
	}
	if !ValidRef(ref) || FormatRef(ref) != ref[:5]+"-"+ref[5:] {
		t.Fatalf("ref %q", ref)
	}
	// Later minutes sort after earlier ones.
	later, _ := newRef(testNow.Add(time.Minute), zeroRand{})
	if later <= ref {
		t.Errorf("ref of a later minute %q sorts before %q", later, ref)
	}
	if _, err := newRef(testNow, iotest.ErrReader(io.ErrUnexpectedEOF)); err == nil {
		t.Error("failing random source gave a ref")
	}
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"0RT1S00000", "0RT1S00000", true},
		{"0rt1s-00000", "0RT1S00000", true},
		{" ort1s ooooo ", "0RT1S00000", true},
		{"0RTIS0000O", "0RT1S00000", true},
		{"0RTLS00000", "0RT1S00000", true},
		{"0RT1S0000", "", false},
		{"0RT1S000000", "", false},
		{"0RT1S0000U", "", false},
		{"0RT1S0000é", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseRef(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadRef) {
			t.Errorf("ParseRef(%q): err %v is not ErrBadRef", tt.in, err)
		}
	}
}

// TestCSP checks that the policy's style hash matches the page's inline
// style, so browsers apply it.
func TestCSP(t *testing.T) {
	p := newTestPage(t, "")
	page := string(p.HTML(pageCases[0].info(t, testPolicy(t))))
	start, end := strings.Index(page, "<style>")+len("<style>"), strings.Index(page, "</style>")
	sum := sha256.Sum256([]byte(page[start:end]))
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if !strings.Contains(p.ContentSecurityPolicy(), want) {
		t.Errorf("CSP %q lacks %q", p.ContentSecurityPolicy(), want)
	}
	if !strings.Contains(p.ContentSecurityPolicy(), "form-action https://warden.school.example;") {
		t.Errorf("CSP %q does not limit form-action", p.ContentSecurityPolicy())
	}
}

func TestNew(t *testing.T) {
	good := Options{Key: testKey, ActionURL: "https://warden.school.example", Rand: zeroRand{}}
	tests := []struct {
		name string
		edit func(*Options)
		ok   bool
	}{
		{"good", func(*Options) {}, true},
		{"base path", func(o *Options) { o.ActionURL = "http://10.0.0.5:8080/warden/" }, true},
		{"short key", func(o *Options) { o.Key = []byte("short") }, false},
		{"no rand", func(o *Options) { o.Rand = nil }, false},
		{"relative URL", func(o *Options) { o.ActionURL = "/blocked" }, false},
		{"javascript URL", func(o *Options) { o.ActionURL = "javascript:alert(1)" }, false},
		{"query", func(o *Options) { o.ActionURL = "https://w.example/?a=b" }, false},
		{"user", func(o *Options) { o.ActionURL = "https://u:p@w.example" }, false},
	}
	for _, tt := range tests {
		o := good
		tt.edit(&o)
		if _, err := New(o); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

// TestFallback: a page that cannot be rendered still says "blocked".
func TestFallback(t *testing.T) {
	p, err := New(Options{Key: testKey, ActionURL: "https://w.example", Rand: iotest.ErrReader(io.ErrUnexpectedEOF)})
	if err != nil {
		t.Fatal(err)
	}
	info := pageCases[0].info(t, testPolicy(t))
	if err := p.Render(io.Discard, info); err == nil {
		t.Error("Render succeeded without randomness")
	}
	if got := string(p.HTML(info)); !strings.Contains(got, "This site is blocked") || strings.Contains(got, "<form") {
		t.Errorf("fallback page:\n%s", got)
	}
	if err := p.Render(io.Discard, Info{}); err == nil {
		t.Error("Render succeeded with no host")
	}
}

// TestEscaping: hostile hosts, URLs and names are escaped.
func TestEscaping(t *testing.T) {
	p := newTestPage(t, `<script>school</script>`)
	d := policy.Decision{Action: policy.Block, Rule: "default", Reason: `<b>reason</b>`}
	page := string(p.HTML(Info{Host: `evil"><script>x</script>`, URL: `http://evil/<script>alert(1)</script>`, Decision: d,
		Subject: identity.Subject{Person: "<img src=x onerror=alert(1)>"}}))
	if strings.Contains(page, "<script>") || strings.Contains(page, "<img") || strings.Contains(page, "<b>") {
		t.Errorf("page is not escaped:\n%s", page)
	}
}

func TestLongURL(t *testing.T) {
	p := newTestPage(t, "")
	long := "http://bet365.com/" + strings.Repeat("é", 3000)
	info := pageCases[0].info(t, testPolicy(t))
	info.URL = long
	page := p.HTML(info)
	c, err := p.Verify(tokenOf(t, page))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.URL) > maxURLLen || !strings.HasPrefix(long, c.URL) {
		t.Errorf("token URL is %d bytes", len(c.URL))
	}
	if !bytes.Contains(page, []byte("…")) {
		t.Error("long URL not shortened on the page")
	}
}

func TestNotice(t *testing.T) {
	p := newTestPage(t, "Riverside")
	var buf bytes.Buffer
	err := p.RenderNotice(&buf, Notice{Title: "Thank you", Paragraphs: []string{"One <two>"}, Ref: "0rt1s00000", Link: "javascript:alert(1)", LinkText: "Go"})
	if err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	for _, w := range []string{"<h1>Thank you</h1>", "One &lt;two&gt;", "0RT1S-00000", `href="#ZgotmplZ"`, `lang="en-GB"`} {
		if !strings.Contains(got, w) {
			t.Errorf("notice lacks %q:\n%s", w, got)
		}
	}
}

func BenchmarkHTML(b *testing.B) {
	p := newTestPage(b, "Riverside Primary School")
	info := pageCases[0].info(b, testPolicy(b))
	// A request seen for the first time this second: rendered (from the
	// skeleton) and signed.
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			info.Time = info.Time.Add(time.Second)
			p.HTML(info)
		}
	})
	// The same request again within the second: the page is reused.
	b.Run("repeat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.HTML(info)
		}
	})
}

// TestSkeletonCache: a page rendered from the cache carries its own
// reference and token, and is otherwise the page rendered afresh.
func TestSkeletonCache(t *testing.T) {
	p, err := New(Options{Key: testKey, ActionURL: "https://warden.school.example/", SchoolName: "Riverside Primary School",
		Now: func() time.Time { return testNow }, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	info := pageCases[0].info(t, testPolicy(t))
	first := string(p.HTML(info))
	if again := string(p.HTML(info)); again != first {
		t.Error("the same request within the second got another page")
	}
	clear(p.recent) // as if a second had passed, but with the same time shown
	second := string(p.HTML(info))
	token := func(page string) string {
		m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no token in\n%s", page)
		}
		return html.UnescapeString(m[1])
	}
	c1, err := p.Verify(token(first))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := p.Verify(token(second))
	if err != nil {
		t.Fatal(err)
	}
	if c1.Ref == c2.Ref {
		t.Fatal("two pages with one reference")
	}
	if !strings.Contains(second, FormatRef(c2.Ref)) || strings.Contains(second, FormatRef(c1.Ref)) {
		t.Error("the cached page does not show its own reference")
	}
	swapped := strings.ReplaceAll(strings.ReplaceAll(second, token(second), token(first)), FormatRef(c2.Ref), FormatRef(c1.Ref))
	if swapped != first {
		t.Errorf("cached page differs beyond its reference and token:\n%s\n---\n%s", first, second)
	}
	if strings.Contains(first, p.slot) {
		t.Error("a stand-in left in the page")
	}
}

// The YouTube approval form, which carries a staff password, is offered
// only where it works and is safe: a YouTube video or channel seen whole
// (URL-level filtering), a group to approve it for, not a mandatory
// list, and an action URL over HTTPS or on loopback.
func TestTeacherApprovalForm(t *testing.T) {
	const video = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
	dec := policy.Decision{Action: policy.Block, Category: "streaming", Reason: "Blocked: streaming is blocked for infants.", Group: "infants"}
	info := Info{Host: "www.youtube.com", URL: video, Decision: dec, URLFiltered: true, ClientIP: netip.MustParseAddr("10.1.2.3")}
	page := func(action string, teacher bool) *Page {
		p, err := New(Options{Key: testKey, ActionURL: action, Now: func() time.Time { return testNow }, Rand: zeroRand{}, TeacherApproval: teacher})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	channel := info
	channel.URL = "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw"
	dnsBlocked := info
	dnsBlocked.URLFiltered = false
	notYouTube := info
	notYouTube.Host, notYouTube.URL = "vimeo.com", "https://vimeo.com/12345"
	mandatory := info
	mandatory.Decision.Mandatory, mandatory.Decision.List = true, "iwf"
	noGroup := info
	noGroup.Decision.Group = ""
	for _, tc := range []struct {
		name    string
		action  string
		teacher bool
		info    Info
		want    string // "" for no form
	}{
		{"video over HTTPS", "https://warden.school.example", true, info, "Teachers: approve this video for infants"},
		{"channel", "https://warden.school.example", true, channel, "Teachers: approve this channel for infants"},
		{"loopback", "http://127.0.0.1:8080", true, info, "Teachers: approve this video"},
		{"plain HTTP on the network", "http://warden.school.example", true, info, ""},
		{"not enabled", "https://warden.school.example", false, info, ""},
		{"blocked by DNS", "https://warden.school.example", true, dnsBlocked, ""},
		{"not YouTube", "https://warden.school.example", true, notYouTube, ""},
		{"mandatory list", "https://warden.school.example", true, mandatory, ""},
		{"no group", "https://warden.school.example", true, noGroup, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := string(page(tc.action, tc.teacher).HTML(tc.info))
			has := strings.Contains(body, `action="`+strings.TrimSuffix(tc.action, "/")+YouTubePath+`"`)
			if tc.want == "" {
				if has || strings.Contains(body, `type="password"`) {
					t.Fatalf("approval form offered:\n%s", body)
				}
				return
			}
			if !has || !strings.Contains(body, tc.want) || !strings.Contains(body, `name="password" type="password" autocomplete="current-password"`) {
				t.Fatalf("no approval form (want %q):\n%s", tc.want, body)
			}
		})
	}
}

func TestPasswordSafe(t *testing.T) {
	for url, want := range map[string]bool{
		"https://warden.school.example": true, "http://127.0.0.1:8080": true, "http://[::1]:8080": true,
		"http://localhost:8080": true, "http://warden.school.example": false, "http://10.0.0.5": false, "::bad": false,
	} {
		if got := PasswordSafe(url); got != want {
			t.Errorf("PasswordSafe(%q) = %v, want %v", url, got, want)
		}
	}
}
