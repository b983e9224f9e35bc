package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/warden-schools/warden/internal/accesslog"
	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/keyring"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/listsync"
	"github.com/warden-schools/warden/internal/policy/policystore"
	"github.com/warden-schools/warden/internal/reviews"
	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

// consoleFixture is a console over a real store and real accounts, on a
// loopback test server.
type consoleFixture struct {
	db       *store.DB
	dir      *directory.Directory
	accounts *auth.Accounts
	audit    *audit.Log
	access   *accesslog.Log
	console  *Console
	srv      *httptest.Server
	mu       sync.Mutex
	now      time.Time
	// secrets holds each login's TOTP secret once enrolled.
	secrets map[string]string
}

func (f *consoleFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *consoleFixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func newConsoleFixture(t testing.TB, edit func(*ConsoleOptions)) *consoleFixture {
	t.Helper()
	f := &consoleFixture{db: wardentest.OpenStore(t), now: time.Date(2026, 9, 3, 8, 30, 0, 0, time.UTC), secrets: map[string]string{}}
	f.dir = directory.New(f.db, f.clock)
	ring, err := keyring.New(bytes.Repeat([]byte{9}, 32), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	school := func(context.Context) string { return "Riverside Primary" }
	f.accounts, err = auth.New(f.db, f.dir, auth.Options{Now: f.clock, Rand: rand.Reader, Sealer: ring, SchoolName: school,
		Params: auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		t.Fatal(err)
	}
	f.audit, err = audit.New(f.db, bytes.Repeat([]byte("k"), 32), f.clock)
	if err != nil {
		t.Fatal(err)
	}
	f.access = accesslog.New(f.db)
	opts := ConsoleOptions{Accounts: f.accounts, Audit: f.audit, Access: f.access, Directory: f.dir, Key: bytes.Repeat([]byte("c"), 32),
		Now: f.clock, SchoolName: school, Checker: snapshotChecker{snap: testPolicy(t), dir: f.dir, now: f.clock},
		Changes: policystore.New(f.db, lists.DefaultTaxonomy(), f.clock), Reviews: reviews.New(f.db, f.clock), Tokens: dirTokens{f.dir},
		Lists: listsync.New(f.db, lists.DefaultTaxonomy(), f.clock), Importer: f.dir}
	if edit != nil {
		edit(&opts)
	}
	c, err := NewConsole(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.console = c
	mux := http.NewServeMux()
	c.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// browser is one person's client: a cookie jar, redirects not followed.
type browser struct {
	t   *testing.T
	f   *consoleFixture
	c   *http.Client
	hdr http.Header
}

func (f *consoleFixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.f.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.hdr {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(raw), header: resp.Header}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// csrf reads the CSRF token of a page's form.
func (b *browser) csrf(p page) string {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no CSRF token in page (%d):\n%s", p.status, p.body)
	}
	return html.UnescapeString(m[1])
}

// submit fetches a form page and posts fields with its CSRF token.
func (b *browser) submit(formPath, postPath string, fields url.Values) page {
	b.t.Helper()
	p := b.do("GET", formPath, nil)
	if fields == nil {
		fields = url.Values{}
	}
	fields.Set("csrf", b.csrf(p))
	return b.do("POST", postPath, fields)
}

// code is the current TOTP code of a secret at the fixture's clock.
func (f *consoleFixture) code(t *testing.T, secret string) string {
	c, err := totp.GenerateCodeCustom(secret, f.clock(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var secretRE = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)

// signIn signs login in with password, enrolling or giving the second
// factor as the role needs, and returns the page signing in ended on.
func (b *browser) signIn(login, password string) page {
	b.t.Helper()
	p := b.submit("/login", "/login", url.Values{"login": {login}, "password": {password}})
	if p.status != http.StatusSeeOther {
		return p
	}
	switch p.location {
	case "/account/2fa":
		enrol := b.do("GET", "/account/2fa", nil)
		m := secretRE.FindStringSubmatch(enrol.body)
		if m == nil || !strings.Contains(enrol.body, `src="data:image/png;base64,`) {
			b.t.Fatalf("enrolment page:\n%s", enrol.body)
		}
		b.f.secrets[login] = m[1]
		p = b.do("POST", "/account/2fa", url.Values{"csrf": {b.csrf(enrol)}, "code": {b.f.code(b.t, m[1])}})
		b.f.advance(30 * time.Second) // the next sign-in needs the next code
	case "/login/2fa":
		p = b.submit("/login/2fa", "/login/2fa", url.Values{"code": {b.f.code(b.t, b.f.secrets[login])}})
		b.f.advance(30 * time.Second)
	}
	return p
}

// account adds a member of staff with a role and password.
func (f *consoleFixture) account(t testing.TB, login string, role auth.Role, opts ...func(*auth.SetOptions)) int64 {
	t.Helper()
	ctx := context.Background()
	kind := directory.KindStaff
	if role == auth.RoleNone {
		kind = directory.KindPupil
	}
	p := directory.Person{Kind: kind, LegalForename: "Test", Surname: "Person " + login, Username: login, Active: true}
	if kind == directory.KindPupil {
		p.Year, p.HasYear = 5, true
	}
	id, err := f.dir.AddPerson(ctx, "test", p)
	if err != nil {
		t.Fatal(err)
	}
	so := auth.SetOptions{Role: role}
	for _, o := range opts {
		o(&so)
	}
	if err := f.accounts.Set(ctx, "test", id, "lighthouse pebble orchard", so); err != nil {
		t.Fatal(err)
	}
	return id
}

const testPassword = "lighthouse pebble orchard"

func TestConsoleFirstAdminSetup(t *testing.T) {
	f := newConsoleFixture(t, nil)
	token, err := f.accounts.NewSetupToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	if p := b.do("GET", "/setup/not-a-token", nil); p.status != http.StatusNotFound || !strings.Contains(p.body, "warden accounts setup-link") {
		t.Fatalf("bad link: %d\n%s", p.status, p.body)
	}
	form := url.Values{"forename": {"Priya"}, "surname": {"Shah"}, "username": {"PShah"}, "email": {"pshah@riverside.sch.uk"},
		"role": {"it"}, "password": {"copper kettle on the hill"}, "again": {"copper kettle on the hill"}}
	weak := url.Values{}
	for k, v := range form {
		weak[k] = v
	}
	weak.Set("password", "riverside primary 1")
	weak.Set("again", "riverside primary 1")
	if p := b.submit("/setup/"+token, "/setup/"+token, weak); p.status != http.StatusBadRequest || !strings.Contains(p.body, "school&#39;s name") {
		t.Fatalf("school name in the password: %d\n%s", p.status, p.body)
	}
	p := b.submit("/setup/"+token, "/setup/"+token, form)
	if p.status != http.StatusSeeOther || p.location != "/account/2fa" {
		t.Fatalf("set-up: %d %s\n%s", p.status, p.location, p.body)
	}
	// IT signs in with two factors: the set-up goes straight to enrolment.
	if p := b.do("GET", "/", nil); p.location != "/account/2fa" {
		t.Fatalf("home before enrolment: %d %s", p.status, p.location)
	}
	enrol := b.do("GET", "/account/2fa", nil)
	secret := secretRE.FindStringSubmatch(enrol.body)[1]
	p = b.do("POST", "/account/2fa", url.Values{"csrf": {b.csrf(enrol)}, "code": {f.code(t, secret)}})
	if p.status != http.StatusSeeOther || p.location != "/" {
		t.Fatalf("enrolment: %d %s\n%s", p.status, p.location, p.body)
	}
	home := b.do("GET", "/", nil)
	for _, want := range []string{"Hello, Priya Shah", "Riverside Primary", `href="/filtering"`, `href="/monitoring"`, `href="/settings"`, `<nav aria-label="Main"`} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home lacks %q:\n%s", want, home.body)
		}
	}
	if strings.Contains(home.body, `href="/safeguarding"`) {
		t.Error("IT is shown safeguarding")
	}
	if home.header.Get("Cache-Control") != "no-store" || !strings.Contains(home.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("headers %v", home.header)
	}
	// The link is used up.
	if p := f.browser(t).do("GET", "/setup/"+token, nil); !strings.Contains(p.body, "has an administrator already") {
		t.Fatalf("link after set-up:\n%s", p.body)
	}
}

// Every page × every role: allowed or 403, as the matrix says.
func TestConsolePermissions(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 1000 })
	for _, role := range auth.Roles() {
		t.Run(string(role), func(t *testing.T) {
			login := "user-" + string(role)
			f.account(t, login, role)
			b := f.browser(t)
			if p := b.signIn(login, testPassword); p.status != http.StatusSeeOther || p.location != "/" {
				t.Fatalf("sign in: %d %s\n%s", p.status, p.location, p.body)
			}
			home := b.do("GET", "/", nil)
			if home.status != http.StatusOK {
				t.Fatalf("home: %d", home.status)
			}
			for _, s := range sections() {
				want := http.StatusForbidden
				if role.Can(s.Perm) {
					want = http.StatusOK
				}
				p := b.do("GET", s.Path, nil)
				if p.status != want {
					t.Errorf("%s: %d, want %d", s.Path, p.status, want)
				}
				if inNav := strings.Contains(home.body, `href="`+s.Path+`"`); inNav != role.Can(s.Perm) {
					t.Errorf("%s in the navigation: %v", s.Path, inNav)
				}
			}
		})
	}
}

func TestConsoleSignInRefusals(t *testing.T) {
	f := newConsoleFixture(t, nil)
	f.account(t, "pupil", auth.RoleNone)
	f.account(t, "teacher", auth.RoleStaff)
	b := f.browser(t)
	if p := b.signIn("pupil", testPassword); p.status != http.StatusForbidden || !strings.Contains(p.body, "internet only") {
		t.Fatalf("pupil: %d\n%s", p.status, p.body)
	}
	if p := b.signIn("teacher", "wrong password here"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "username or password is wrong") ||
		!strings.Contains(p.body, `value="teacher"`) {
		t.Fatalf("wrong password: %d\n%s", p.status, p.body)
	}
	for range 4 {
		b.signIn("teacher", "wrong password here")
	}
	if p := b.signIn("teacher", testPassword); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "locked until") {
		t.Fatalf("after five failures: %d\n%s", p.status, p.body)
	}
	// A redirect after sign-in stays on this site.
	f.advance(time.Hour)
	p := b.do("GET", "/login?next="+url.QueryEscape("//evil.example/x"), nil)
	if !strings.Contains(p.body, `name="next" value="/"`) {
		t.Fatalf("next not made safe:\n%s", p.body)
	}
}

func TestConsoleThrottle(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 3 })
	b := f.browser(t)
	for range 3 {
		b.signIn("nobody", "wrong password")
	}
	if p := b.signIn("nobody", "wrong password"); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("fourth attempt: %d %v", p.status, p.header)
	}
}

func TestConsoleSecondFactor(t *testing.T) {
	f := newConsoleFixture(t, nil)
	f.account(t, "dsl", auth.RoleDSL)
	b := f.browser(t)
	b.signIn("dsl", testPassword) // enrols
	b.do("POST", "/logout", url.Values{"csrf": {b.csrf(b.do("GET", "/", nil))}})
	if p := b.do("GET", "/", nil); p.location != "/login" {
		t.Fatalf("after sign-out: %d %s", p.status, p.location)
	}
	p := b.submit("/login", "/login", url.Values{"login": {"dsl"}, "password": {testPassword}})
	if p.location != "/login/2fa" {
		t.Fatalf("password step: %d %s", p.status, p.location)
	}
	// With only the password, nothing but the second step opens.
	for _, path := range []string{"/", "/safeguarding", "/account/password", "/account/2fa"} {
		if p := b.do("GET", path, nil); p.status != http.StatusSeeOther || p.location != "/login/2fa" {
			t.Errorf("%s before the second factor: %d %s", path, p.status, p.location)
		}
	}
	if p := b.submit("/login/2fa", "/login/2fa", url.Values{"code": {"000000"}}); p.status != http.StatusUnauthorized {
		t.Fatalf("wrong code: %d", p.status)
	}
	if p := b.submit("/login/2fa", "/login/2fa", url.Values{"code": {f.code(t, f.secrets["dsl"])}}); p.location != "/" {
		t.Fatalf("right code: %d %s\n%s", p.status, p.location, p.body)
	}
	if p := b.do("GET", "/safeguarding", nil); p.status != http.StatusOK {
		t.Fatalf("DSL's safeguarding page: %d", p.status)
	}
}

func TestConsoleCSRFAndOrigin(t *testing.T) {
	f := newConsoleFixture(t, nil)
	f.account(t, "teacher", auth.RoleStaff)
	b := f.browser(t)
	b.signIn("teacher", testPassword)
	if p := b.do("POST", "/logout", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("sign-out without a token: %d", p.status)
	}
	if p := b.do("POST", "/logout", url.Values{"csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Errorf("sign-out with a forged token: %d", p.status)
	}
	tok := b.csrf(b.do("GET", "/", nil))
	b.hdr = http.Header{"Origin": {"https://evil.example"}}
	if p := b.do("POST", "/logout", url.Values{"csrf": {tok}}); p.status != http.StatusForbidden {
		t.Errorf("sign-out from another origin: %d", p.status)
	}
	b.hdr = nil
	if p := b.do("GET", "/", nil); p.status != http.StatusOK {
		t.Fatalf("still signed in after refused forms: %d", p.status)
	}
	// The sign-in form needs its pre-session cookie and token.
	fresh := f.browser(t)
	if p := fresh.do("POST", "/login", url.Values{"login": {"teacher"}, "password": {testPassword}}); p.status != http.StatusForbidden {
		t.Errorf("sign-in without a token: %d", p.status)
	}
}

func TestConsoleSessionExpiry(t *testing.T) {
	f := newConsoleFixture(t, nil)
	f.account(t, "teacher", auth.RoleStaff)
	b := f.browser(t)
	b.signIn("teacher", testPassword)
	f.advance(auth.DefaultSessionIdle + time.Second)
	p := b.do("GET", "/reports", nil)
	if p.status != http.StatusSeeOther || p.location != "/login?next=%2Freports" {
		t.Fatalf("after the idle timeout: %d %s", p.status, p.location)
	}
}

func TestConsolePasswordChange(t *testing.T) {
	f := newConsoleFixture(t, nil)
	f.account(t, "leader", auth.RoleLeadership, func(o *auth.SetOptions) { o.MustChange = true })
	b := f.browser(t)
	p := b.signIn("leader", testPassword)
	if p.location != "/" {
		t.Fatalf("sign in: %d %s", p.status, p.location)
	}
	if p := b.do("GET", "/reports", nil); p.location != "/account/password" {
		t.Fatalf("pages before the change: %d %s", p.status, p.location)
	}
	form := b.do("GET", "/account/password", nil)
	if !strings.Contains(form.body, "Someone else set your password") {
		t.Fatalf("password page:\n%s", form.body)
	}
	post := func(current, next, again string) page {
		return b.do("POST", "/account/password", url.Values{"csrf": {b.csrf(b.do("GET", "/account/password", nil))},
			"current": {current}, "new": {next}, "again": {again}})
	}
	if p := post(testPassword, "meadow", "meadow"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "at least 12") {
		t.Errorf("short: %d", p.status)
	}
	if p := post("not it at all", "violet harbour stones", "violet harbour stones"); p.status != http.StatusUnauthorized {
		t.Errorf("wrong current: %d", p.status)
	}
	if p := post(testPassword, "violet harbour stones", "violet harbour stone"); p.status != http.StatusBadRequest {
		t.Errorf("mismatch: %d", p.status)
	}
	if p := post(testPassword, "violet harbour stones", "violet harbour stones"); p.status != http.StatusSeeOther || p.location != "/" {
		t.Fatalf("change: %d %s\n%s", p.status, p.location, p.body)
	}
	if p := b.do("GET", "/reports", nil); p.status != http.StatusOK {
		t.Fatalf("after the change: %d %s", p.status, p.location)
	}
	// A year on, the password is due again.
	f.advance(auth.PasswordMaxAge)
	b2 := f.browser(t)
	b2.signIn("leader", "violet harbour stones")
	if p := b2.do("GET", "/", nil); p.location != "/account/password" {
		t.Fatalf("a year on: %d %s", p.status, p.location)
	}
	if p := b2.do("GET", "/account/password", nil); !strings.Contains(p.body, "over a year old") {
		t.Fatalf("expiry page:\n%s", p.body)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"": "/", "/reports": "/reports", "//evil.example": "/", "/\\evil.example": "/",
		"https://evil.example/": "/", "reports": "/", "/a\r\nb": "/", "/filtering?x=1": "/filtering?x=1"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// Over plain HTTP, only this machine may sign in or set up: a password
// must not cross the network in clear.
func TestConsoleNeedsHTTPS(t *testing.T) {
	for _, secure := range []bool{false, true} {
		f := newConsoleFixture(t, func(o *ConsoleOptions) { o.Secure = secure })
		c, _ := NewConsole(ConsoleOptions{Accounts: f.accounts, Audit: f.audit, Access: f.access, Directory: f.dir,
			Key: bytes.Repeat([]byte("c"), 32), Secure: secure, Checker: snapshotChecker{snap: testPolicy(t), dir: f.dir, now: f.clock},
			Changes: policystore.New(f.db, lists.DefaultTaxonomy(), f.clock), Reviews: reviews.New(f.db, f.clock), Tokens: dirTokens{f.dir},
			Lists: listsync.New(f.db, lists.DefaultTaxonomy(), f.clock), Importer: f.dir})
		mux := http.NewServeMux()
		c.Register(mux)
		for _, path := range []string{"/login", "/setup/x"} {
			req := httptest.NewRequest("GET", path, nil)
			req.RemoteAddr = "10.20.0.15:51234"
			rw := httptest.NewRecorder()
			mux.ServeHTTP(rw, req)
			refused := rw.Code == http.StatusForbidden && strings.Contains(rw.Body.String(), "needs HTTPS")
			if refused == secure {
				t.Errorf("secure=%v %s from the network: %d", secure, path, rw.Code)
			}
			if secure && path == "/login" && !strings.Contains(rw.Header().Get("Set-Cookie"), "__Host-warden_presession=") {
				t.Errorf("secure cookie: %q", rw.Header().Get("Set-Cookie"))
			}
		}
	}
}

// Sign-ins, refusals and reading the audit log are recorded; the
// headteacher sees the log and checks its chain; a sign-in whose record
// cannot be written does not happen.
func TestConsoleAudit(t *testing.T) {
	f := newConsoleFixture(t, nil)
	f.account(t, "head", auth.RoleHeadteacher)
	f.account(t, "teacher", auth.RoleStaff)
	ctx := context.Background()

	staff := f.browser(t)
	staff.signIn("teacher", "not the password")
	staff.signIn("teacher", testPassword)
	if p := staff.do("GET", "/audit", nil); p.status != http.StatusForbidden {
		t.Fatalf("staff opening the audit log: %d", p.status)
	}
	head := f.browser(t)
	head.signIn("head", testPassword)
	p := head.do("GET", "/audit", nil)
	if p.status != http.StatusOK {
		t.Fatalf("headteacher's audit log: %d\n%s", p.status, p.body)
	}
	for _, want := range []string{"sign-in", "failed", "permission-refused", "/audit", "two-factor-enrolled", "127.0.0.1"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
	p = head.do("POST", "/audit/verify", url.Values{"csrf": {head.csrf(p)}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "The chain is intact") {
		t.Fatalf("verify: %d\n%s", p.status, p.body)
	}
	entries, total, err := f.audit.List(ctx, audit.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range entries {
		seen[e.Action+"/"+e.Outcome]++
	}
	for _, want := range []string{"sign-in/failed", "sign-in/ok", "permission-refused/refused", "audit-log-viewed/ok", "audit-log-verified/ok",
		"two-factor-enrolled/ok"} {
		if seen[want] == 0 {
			t.Errorf("no %s entry among %d: %v", want, total, seen)
		}
	}
	// The audit log cannot be written: signing in is refused.
	if _, err := f.db.Exec(`CREATE TRIGGER audit_broken BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	if p := b.signIn("teacher", testPassword); p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "audit log") {
		t.Fatalf("sign-in without an audit record: %d\n%s", p.status, p.body)
	}
	if p := b.do("GET", "/reports", nil); p.location == "" || !strings.HasPrefix(p.location, "/login") {
		t.Fatalf("a session was left open: %d %s", p.status, p.location)
	}
}

// Every console route for every role: 403 exactly when the role lacks
// the route's permission (the permissions matrix), whatever the route
// would then do with the request.
func TestConsoleEveryRouteEveryRole(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 1 << 20 })
	routes := []struct {
		method, path string
		perm         auth.Permission // "" = anyone signed in
	}{
		{"GET", "/", ""},
		{"GET", "/account/password", ""},
		{"GET", "/check", auth.PermCheckSite},
		{"GET", "/filtering", auth.PermViewFiltering},
		{"POST", "/filtering/propose", auth.PermProposeChange},
		{"POST", "/filtering/changes/999/approve", auth.PermApproveChange},
		{"POST", "/filtering/changes/999/reject", auth.PermApproveChange},
		{"POST", "/filtering/changes/999/revert", auth.PermProposeChange},
		{"POST", "/filtering/requests/999/approve", auth.PermProposeChange},
		{"POST", "/filtering/requests/999/decline", auth.PermProposeChange},
		{"POST", "/filtering/reports/999/block", auth.PermProposeChange},
		{"POST", "/filtering/reports/999/dismiss", auth.PermProposeChange},
		{"POST", "/filtering/lists/update", auth.PermProposeChange},
		{"GET", "/people", auth.PermViewPeople},
		{"GET", "/people/import", auth.PermManagePeople},
		{"POST", "/people/import", auth.PermManagePeople},
		{"POST", "/people/import/confirm", auth.PermManagePeople},
		{"POST", "/people/devices/999/token", auth.PermManagePeople},
		{"POST", "/people/devices/999/token/revoke", auth.PermManagePeople},
		{"GET", "/monitoring", auth.PermViewAccessLog},
		{"GET", "/monitoring/export.csv", auth.PermViewAccessLog},
		{"GET", "/audit", auth.PermViewAudit},
		{"POST", "/audit/verify", auth.PermViewAudit},
		{"GET", "/settings", auth.PermManageAccounts},
		{"POST", "/settings/accounts", auth.PermManageAccounts},
		{"POST", "/settings/accounts/999/unlock", auth.PermManageAccounts},
		{"GET", "/safeguarding", auth.PermViewSafeguarding},
		{"GET", "/reports", auth.PermViewReports},
	}
	for _, role := range auth.Roles() {
		t.Run(string(role), func(t *testing.T) {
			login := "every-" + string(role)
			f.account(t, login, role)
			b := f.browser(t)
			if p := b.signIn(login, testPassword); p.location != "/" {
				t.Fatalf("sign in: %d %s", p.status, p.location)
			}
			tok := b.csrf(b.do("GET", "/", nil))
			for _, r := range routes {
				var form url.Values
				if r.method == "POST" {
					form = url.Values{"csrf": {tok}, "url": {"not a url"}}
				}
				p := b.do(r.method, r.path, form)
				allowed := r.perm == "" || role.Can(r.perm)
				if (p.status == http.StatusForbidden) == allowed {
					t.Errorf("%s %s: %d (allowed: %v)", r.method, r.path, p.status, allowed)
				}
			}
		})
	}
}
