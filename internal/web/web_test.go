package web

import (
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/reviews"
	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

var testNow = time.Date(2026, 6, 3, 9, 41, 7, 0, time.UTC)

// testPolicy blocks gambling and has a mandatory URL list whose entry is
// under an otherwise ordinary host.
func testPolicy(t testing.TB) *policy.Snapshot {
	t.Helper()
	mk := func(id string, cats []string, mandatory bool, entries ...string) *lists.List {
		c := &lists.Collector{}
		if err := c.Parse(strings.NewReader(strings.Join(entries, "\n")), id, lists.FormatPlain); err != nil {
			t.Fatal(err)
		}
		c.Finish()
		src, sc, _ := strings.Cut(id, "/")
		return &lists.List{Info: lists.Info{ID: id, Source: src, SourceCategory: sc, Categories: cats, Mandatory: mandatory},
			Domains: c.Domains, URLs: c.URLs}
	}
	m, err := lists.Compile([]*lists.List{
		mk("ut1/gambling", []string{"gambling"}, false, "bet365.com"),
		mk("ut1/audio-video", []string{"streaming"}, false, "youtube.com"),
		mk("iwf", []string{"child-abuse"}, true, "images.example-host.net/secret-abuse-path"),
	})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Compile(policy.Config{
		Version: 42, Taxonomy: lists.DefaultTaxonomy(), Lists: m,
		Groups: []policy.Group{{ID: "key-stage-2", DefaultAction: policy.Allow, Categories: map[string]policy.Action{"streaming": policy.Block}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// testIdentity puts 127.0.0.1 on device 5, owned by person 17, in
// key-stage-2.
func testIdentity() *identity.Table {
	return identity.New(identity.Data{
		Devices:      []identity.Device{{ID: 5, Name: "KS2-iPad-12", IP: netip.MustParseAddr("127.0.0.1"), OwnerID: 17}},
		People:       []identity.Person{{ID: 17, Name: "Amara Okafor", GroupID: "key-stage-2"}},
		UnknownGroup: "unknown",
	})
}

type fixture struct {
	srv     *httptest.Server
	web     *Web
	reviews *reviews.Store
	db      *store.DB
	snap    atomic.Pointer[policy.Snapshot]
	mu      sync.Mutex
	now     time.Time
	client  *http.Client
}

func (fx *fixture) clock() time.Time {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return fx.now
}

func (fx *fixture) advance(d time.Duration) {
	fx.mu.Lock()
	fx.now = fx.now.Add(d)
	fx.mu.Unlock()
}

// newFixture starts the web listener on 127.0.0.1:0 with the real review
// store; "/" on Warden's own host answers "console".
func newFixture(t *testing.T, edit func(*Options)) *fixture {
	t.Helper()
	fx := &fixture{now: testNow}
	fx.db = wardentest.OpenStore(t)
	for _, q := range []string{
		`INSERT INTO people (id, kind, legal_forename, surname, created_at, updated_at) VALUES (17, 'pupil', 'Amara', 'Okafor', 0, 0)`,
		`INSERT INTO devices (id, name, kind, owner_id, ip, created_at, updated_at) VALUES (5, 'KS2-iPad-12', 'school', 17, '127.0.0.1', 0, 0)`,
	} {
		if _, err := fx.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	fx.reviews = reviews.New(fx.db, fx.clock)
	page, err := blockpage.New(blockpage.Options{Key: bytes.Repeat([]byte("k"), 32), ActionURL: "http://warden.school.example",
		SchoolName: "Riverside Primary", Now: fx.clock, Rand: strings.NewReader(strings.Repeat("0123456789abcdef", 1000))})
	if err != nil {
		t.Fatal(err)
	}
	fx.snap.Store(testPolicy(t))
	ident := testIdentity()
	opts := Options{Page: page, Reviews: fx.reviews, Policy: fx.snap.Load, Identity: func() *identity.Table { return ident },
		OwnHosts: []string{"warden.school.example:8080", "https://filter.school.example/"}, Now: fx.clock}
	if edit != nil {
		edit(&opts)
	}
	fx.web, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	fx.web.Register(mux)
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, "console") })
	fx.srv = httptest.NewServer(fx.web.BlockForeignHosts(mux))
	t.Cleanup(fx.srv.Close)
	fx.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return fx
}

type response struct {
	status int
	header http.Header
	body   string
}

func (fx *fixture) do(t *testing.T, method, path, host string, form url.Values) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, fx.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := fx.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

var tokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)

func tokenOf(t *testing.T, page string) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page has no token:\n%s", page)
	}
	return html.UnescapeString(m[1])
}

func must(t *testing.T, r response, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d; body:\n%s", r.status, status, r.body)
	}
	for _, c := range contains {
		if !strings.Contains(r.body, c) {
			t.Errorf("body lacks %q:\n%s", c, r.body)
		}
	}
}

func TestForeignHost(t *testing.T) {
	fx := newFixture(t, nil)
	tests := []struct {
		name   string
		host   string
		path   string
		status int
		want   []string
	}{
		{"blocked", "bet365.com", "/en/sports?x=1", http.StatusForbidden,
			[]string{"This site is blocked", "Gambling", "http://bet365.com/en/sports?x=1", "Amara Okafor (on KS2-iPad-12)", "key-stage-2", "/blocked/review"}},
		{"blocked with port and dot", "BET365.com.:80", "/", http.StatusForbidden, []string{"bet365.com"}},
		{"allowed now", "wikipedia.org", "/wiki/Probability", http.StatusOK,
			[]string{"This site is allowed now", `href="http://wikipedia.org/wiki/Probability"`}},
		{"own name", "warden.school.example", "/", http.StatusOK, []string{"console"}},
		{"own name with port", "warden.school.example:8080", "/", http.StatusOK, []string{"console"}},
		{"own name from URL", "filter.school.example", "/", http.StatusOK, []string{"console"}},
		{"address literal", "", "/", http.StatusOK, []string{"console"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fx.do(t, "GET", tt.path, tt.host, nil)
			must(t, r, tt.status, tt.want...)
			if tt.status == http.StatusForbidden || strings.Contains(tt.name, "allowed") {
				if r.header.Get("Cache-Control") != "no-store" || !strings.Contains(r.header.Get("Content-Security-Policy"), "form-action http://warden.school.example") {
					t.Errorf("headers: %v", r.header)
				}
			}
		})
	}
	// POST and HEAD to a blocked name get the block page too.
	must(t, fx.do(t, "POST", "/login", "bet365.com", url.Values{"a": {"b"}}), http.StatusForbidden, "This site is blocked")
	if r := fx.do(t, "HEAD", "/", "bet365.com", nil); r.status != http.StatusForbidden || r.body != "" {
		t.Errorf("HEAD: %d %q", r.status, r.body)
	}
}

// TestForeignHostNoPolicy: while the policy is not loaded, foreign hosts
// are blocked, not passed.
func TestForeignHostNoPolicy(t *testing.T) {
	fx := newFixture(t, nil)
	fx.snap.Store(nil)
	must(t, fx.do(t, "GET", "/", "wikipedia.org", nil), http.StatusForbidden, "This site is blocked", "starting")
}

func TestForeignHostCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	fx := newFixture(t, nil)
	out, err := exec.Command(curl, "-sS", "-H", "Host: bet365.com", "-w", "\n%{http_code}", fx.srv.URL+"/casino").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !bytes.HasSuffix(out, []byte("\n403")) || !bytes.Contains(out, []byte("http://bet365.com/casino")) {
		t.Errorf("curl got:\n%s", out)
	}
}

func TestGetBlocked(t *testing.T) {
	fx := newFixture(t, nil)
	must(t, fx.do(t, "GET", "/blocked?host=bet365.com", "", nil), http.StatusForbidden, "Gambling", "Ask for a review")
	must(t, fx.do(t, "GET", "/blocked?url="+url.QueryEscape("http://bet365.com/poker"), "", nil), http.StatusForbidden, "http://bet365.com/poker")
	// A URL of another host is not shown.
	r := fx.do(t, "GET", "/blocked?host=bet365.com&url="+url.QueryEscape("http://evil.example/x"), "", nil)
	must(t, r, http.StatusForbidden)
	if strings.Contains(r.body, "evil.example") {
		t.Error("page shows a URL of another host")
	}
	must(t, fx.do(t, "GET", "/blocked", "", nil), http.StatusBadRequest, "No site given")
	must(t, fx.do(t, "GET", "/blocked?host=bbc.co.uk", "", nil), http.StatusOK, "allowed now")
}

// blockedPage fetches the block page for a URL and returns its token.
func (fx *fixture) token(t *testing.T, rawURL string) string {
	t.Helper()
	r := fx.do(t, "GET", "/blocked?url="+url.QueryEscape(rawURL), "", nil)
	must(t, r, http.StatusForbidden)
	return tokenOf(t, r.body)
}

func TestReview(t *testing.T) {
	fx := newFixture(t, nil)
	tok := fx.token(t, "http://bet365.com/maths/probability")
	msg := "  We need it for\r\nprobability\u202e \x00lessons.\t "
	r := fx.do(t, "POST", "/blocked/review", "", url.Values{"token": {tok}, "message": {msg}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("status %d:\n%s", r.status, r.body)
	}
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, "thanks?kind=review&ref=") {
		t.Fatalf("Location %q", loc)
	}
	got, err := fx.reviews.ListRequests(context.Background(), reviews.Filter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("stored %d requests, %v", len(got), err)
	}
	req := got[0]
	want := reviews.Request{ID: req.ID, Ref: req.Ref, CreatedAt: testNow, BlockedAt: testNow,
		Host: "bet365.com", URL: "http://bet365.com/maths/probability", Category: "gambling", List: "ut1/gambling", Rule: "category",
		Reason: "Blocked: gambling is blocked for key-stage-2 (list ut1/gambling, from UT1 gambling).", GroupID: "key-stage-2",
		PolicyVersion: 42, ClientIP: netip.MustParseAddr("127.0.0.1"), DeviceID: 5, PersonID: 17,
		Message: "We need it for\nprobability lessons.", Status: reviews.StatusOpen}
	if req != want {
		t.Errorf("stored\n got %+v\nwant %+v", req, want)
	}
	if !strings.HasSuffix(loc, req.Ref) {
		t.Errorf("Location %q does not carry ref %s", loc, req.Ref)
	}
	// The thanks page (the Location is relative to /blocked/review).
	must(t, fx.do(t, "GET", "/blocked/"+loc, "", nil), http.StatusOK, "Your request has been sent", blockpage.FormatRef(req.Ref))
	// Sent again: still one request.
	must(t, fx.do(t, "POST", "/blocked/review", "", url.Values{"token": {tok}}), http.StatusSeeOther)
	if got, _ := fx.reviews.ListRequests(context.Background(), reviews.Filter{}); len(got) != 1 {
		t.Errorf("second submission stored %d requests", len(got))
	}
}

func TestReviewRefused(t *testing.T) {
	fx := newFixture(t, nil)
	tok := fx.token(t, "http://bet365.com/")
	dot := strings.LastIndexByte(tok, '.')
	other, err := blockpage.New(blockpage.Options{Key: bytes.Repeat([]byte("x"), 32), ActionURL: "http://warden.school.example",
		Now: fx.clock, Rand: strings.NewReader(strings.Repeat("z", 100))})
	if err != nil {
		t.Fatal(err)
	}
	otherPage := other.HTML(blockpage.Info{Host: "bet365.com", Decision: policy.Decision{Action: policy.Block, Group: "staff"}})
	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"no token", url.Values{"message": {"hi"}}, http.StatusBadRequest, "could not be sent"},
		{"altered token", url.Values{"token": {tok[:20] + "A" + tok[21:]}}, http.StatusBadRequest, "could not be sent"},
		{"altered signature", url.Values{"token": {tok[:dot+1] + strings.Repeat("A", len(tok)-dot-1)}}, http.StatusBadRequest, "could not be sent"},
		{"other key", url.Values{"token": {tokenOf(t, string(otherPage))}}, http.StatusBadRequest, "could not be sent"},
		{"message too long", url.Values{"token": {tok}, "message": {strings.Repeat("é", 1001)}}, http.StatusBadRequest, "1001 characters long"},
		{"field twice", url.Values{"token": {tok, tok}}, http.StatusBadRequest, "twice"},
		{"bad UTF-8", url.Values{"token": {tok}, "message": {"a\xffb"}}, http.StatusBadRequest, "could not be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, fx.do(t, "POST", "/blocked/review", "", tt.form), tt.status, tt.want)
		})
	}
	fx.advance(8 * 24 * time.Hour)
	must(t, fx.do(t, "POST", "/blocked/review", "", url.Values{"token": {tok}}), http.StatusBadRequest, "expired")
	if got, _ := fx.reviews.ListRequests(context.Background(), reviews.Filter{}); len(got) != 0 {
		t.Errorf("refused forms stored %d requests", len(got))
	}
}

func TestTooLarge(t *testing.T) {
	fx := newFixture(t, nil)
	r := fx.do(t, "POST", "/blocked/review", "", url.Values{"token": {"x"}, "message": {strings.Repeat("a", 20000)}})
	must(t, r, http.StatusRequestEntityTooLarge, "too long")
}

func TestReport(t *testing.T) {
	fx := newFixture(t, nil)
	tok := fx.token(t, "http://bet365.com/")
	r := fx.do(t, "POST", "/blocked/report", "", url.Values{"token": {tok}, "url": {" https://Bad.Example/videos\n"}, "message": {"Fighting videos."}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "thanks?kind=report&ref=") {
		t.Fatalf("status %d, Location %q:\n%s", r.status, r.header.Get("Location"), r.body)
	}
	got, err := fx.reviews.ListReports(context.Background(), reviews.Filter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("stored %d reports, %v", len(got), err)
	}
	rep := got[0]
	if rep.URL != "https://Bad.Example/videos" || rep.Host != "bad.example" || rep.Message != "Fighting videos." ||
		rep.GroupID != "key-stage-2" || rep.DeviceID != 5 || rep.PersonID != 17 || rep.ClientIP != netip.MustParseAddr("127.0.0.1") ||
		!blockpage.ValidRef(rep.Ref) || rep.Status != reviews.StatusOpen {
		t.Errorf("stored %+v", rep)
	}
	must(t, fx.do(t, "GET", "/blocked/"+r.header.Get("Location"), "", nil), http.StatusOK, "Thank you for your report", "adult you trust")
	must(t, fx.do(t, "POST", "/blocked/report", "", url.Values{"token": {tok}}), http.StatusBadRequest, "address of the site")
	must(t, fx.do(t, "POST", "/blocked/report", "", url.Values{"token": {tok}, "url": {"/// ?"}}), http.StatusBadRequest, "does not look like")
}

// TestMandatory: a mandatory block offers no review, refuses a review
// posted anyway, and still takes a report.
func TestMandatory(t *testing.T) {
	fx := newFixture(t, nil)
	r := fx.do(t, "GET", "/blocked?url="+url.QueryEscape("http://images.example-host.net/secret-abuse-path/1.jpg"), "", nil)
	must(t, r, http.StatusForbidden, "Internet Watch Foundation", "/blocked/report")
	for _, never := range []string{"/blocked/review", "Ask for a review", "secret-abuse-path"} {
		if strings.Contains(r.body, never) {
			t.Errorf("mandatory block page shows %q", never)
		}
	}
	tok := tokenOf(t, r.body)
	must(t, fx.do(t, "POST", "/blocked/review", "", url.Values{"token": {tok}}), http.StatusBadRequest, "cannot be unblocked")
	must(t, fx.do(t, "POST", "/blocked/report", "", url.Values{"token": {tok}, "url": {"other.example"}}), http.StatusSeeOther)
	if n, _ := fx.reviews.ListRequests(context.Background(), reviews.Filter{}); len(n) != 0 {
		t.Errorf("mandatory review stored")
	}
}

func TestRateLimit(t *testing.T) {
	fx := newFixture(t, func(o *Options) { o.RateLimit, o.RateWindow = 3, time.Minute })
	tok := fx.token(t, "http://bet365.com/")
	for i := range 3 {
		must(t, fx.do(t, "POST", "/blocked/report", "", url.Values{"token": {tok}, "url": {"a.example"}}), http.StatusSeeOther)
		_ = i
	}
	r := fx.do(t, "POST", "/blocked/review", "", url.Values{"token": {tok}})
	must(t, r, http.StatusTooManyRequests, "Too many requests")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	fx.advance(time.Minute)
	must(t, fx.do(t, "POST", "/blocked/review", "", url.Values{"token": {tok}}), http.StatusSeeOther)
}

// TestStoreFailure: a store that cannot write gives 503, never success.
func TestStoreFailure(t *testing.T) {
	fx := newFixture(t, nil)
	tok := fx.token(t, "http://bet365.com/")
	fx.db.Close()
	must(t, fx.do(t, "POST", "/blocked/review", "", url.Values{"token": {tok}}), http.StatusServiceUnavailable, "was not saved", "Reference")
	must(t, fx.do(t, "POST", "/blocked/report", "", url.Values{"token": {tok}, "url": {"a.example"}}), http.StatusServiceUnavailable, "was not saved")
}

func TestThanks(t *testing.T) {
	fx := newFixture(t, nil)
	must(t, fx.do(t, "GET", "/blocked/thanks?kind=review&ref=1djoa-00000", "", nil), http.StatusOK, "1DJ0A-00000")
	r := fx.do(t, "GET", "/blocked/thanks?kind=other&ref=<script>", "", nil)
	must(t, r, http.StatusOK, "Thank you")
	if strings.Contains(r.body, "script>") && strings.Contains(r.body, "<script>") {
		t.Error("thanks page reflects markup")
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New accepted empty options")
	}
	fx := newFixture(t, nil)
	opts := Options{Page: fx.web.page, Reviews: fx.reviews, Policy: fx.snap.Load, Identity: testIdentity, OwnHosts: []string{"http://"}}
	if _, err := New(opts); err == nil {
		t.Error("New accepted an empty own host")
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		in, want  string
		multiline bool
		ok        bool
	}{
		{"  hello  ", "hello", true, true},
		{"a\r\nb\rc", "a\nb\nc", true, true},
		{"a\r\nb", "a b", false, true},
		{"a\tb\x00c\x1bd\u0085e", "a bcde", true, true},
		{"abc\u202edcba\u2066x", "abcdcbax", true, true},
		{"emoji 👍🏽 ok", "emoji 👍🏽 ok", true, true},
		{"\xff", "", true, false},
		{strings.Repeat("a", 1001), "", true, false},
		{strings.Repeat("a", 1000) + "   ", strings.Repeat("a", 1000), true, true},
	}
	for _, tt := range tests {
		got, err := cleanText("Message", tt.in, 1000, tt.multiline)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("cleanText(%.30q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2, time.Minute, 3)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	steps := []struct {
		addr netip.Addr
		at   time.Duration
		want bool
	}{
		{a, 0, true}, {a, time.Second, true}, {a, 2 * time.Second, false},
		{b, 2 * time.Second, true},
		{a, 60 * time.Second, true}, // the first event left the window
		{a, 60*time.Second + 500*time.Millisecond, false},
		{a, 61 * time.Second, true}, // and the second
	}
	for i, s := range steps {
		if got := l.allow(s.addr, testNow.Add(s.at)); got != s.want {
			t.Errorf("step %d: allow = %v", i, got)
		}
	}
	// Full of live addresses: a new one is refused (fail closed).
	full := newLimiter(5, time.Minute, 2)
	for i, want := range []bool{true, true, false} {
		addr := netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})
		if got := full.allow(addr, testNow); got != want {
			t.Errorf("full limiter, address %d: allow = %v", i, got)
		}
	}
	if !full.allow(netip.AddrFrom4([4]byte{10, 0, 1, 9}), testNow.Add(2*time.Minute)) {
		t.Error("expired addresses were not forgotten")
	}
}
