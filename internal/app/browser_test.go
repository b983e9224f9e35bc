package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/miekg/dns"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/config"
)

// newBrowser starts Debian's headless Chromium (installed by .ci/run) for
// a test, with a fresh profile and no background traffic: every request
// it makes goes to the loopback server under test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("WARDEN_BROWSER_TESTS") == "required" {
			t.Fatal("chromium is not installed, and WARDEN_BROWSER_TESTS=required")
		}
		t.Skip("chromium is not installed (.ci/run installs it)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshotDir is where the browser tests save the console's pages: the
// folder named by WARDEN_SCREENSHOTS (docs/screenshots, for the README),
// else a temporary one.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("WARDEN_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// In a real browser: the first administrator opens the set-up link
// printed at start, creates their account, sets up two-factor
// authentication from the page's key, reaches the console, visits every
// page their role opens, signs out and signs in again with a code. Each
// page is saved as a screenshot.
func TestBrowserFirstAdminAndSignIn(t *testing.T) {
	a, l := serveDemo(t, func(*config.Config) {})
	// Some traffic for the Monitoring page: this computer is a key stage
	// 2 pupil's device in the demo.
	for _, name := range []string{"www.bet365.com.", "roblox.com.", "www.bbc.co.uk.", "www.google.co.uk."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		if _, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, l.DNS); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the queries in the access log", func() bool {
		n, err := a.Access.Count(t.Context())
		return err == nil && n >= 4
	})
	ctx := newBrowser(t)
	dir := screenshotDir(t)
	base := "http://" + l.HTTP
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				return fmt.Errorf("screenshot %s: %w", name, err)
			}
			return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
		})
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			body, _ := chromedp.Run(ctx, chromedp.Text("body"))
			t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	const password = "copper kettle on the hill"

	// The set-up link: the demo school's IT technician, Priya Shah.
	do("open the set-up link", chromedp.Navigate(l.SetupLink), chromedp.WaitVisible("#forename"), shot("setup"))
	do("fill in the set-up form",
		chromedp.SendKeys("#forename", "Priya"), chromedp.SendKeys("#surname", "Shah"), chromedp.SendKeys("#username", "pshah"),
		chromedp.SendKeys("#email", "pshah@demo-school.example"),
		chromedp.SendKeys("#password", password), chromedp.SendKeys("#again", password),
		chromedp.Click("form.card button[type=submit]"), chromedp.WaitVisible("code.secret"), shot("two-factor-setup"))
	secret := text("code.secret")
	enrolledAt := time.Now()
	do("confirm the authenticator", chromedp.SendKeys("#code", totpCode(t, secret, enrolledAt)),
		chromedp.Click("form.card button[type=submit]"), chromedp.WaitVisible("ul.cards"))
	if h := text("h1"); h != "Hello, Priya Shah" {
		t.Fatalf("home heading %q", h)
	}
	do("home", shot("home"))
	nav := text("nav")
	for _, want := range []string{"Why is this blocked?", "Filtering", "People & devices", "Monitoring", "Settings"} {
		if !strings.Contains(nav, want) {
			t.Errorf("IT's navigation lacks %s: %q", want, nav)
		}
	}
	if strings.Contains(nav, "Safeguarding") {
		t.Errorf("IT's navigation shows Safeguarding: %q", nav)
	}
	do("monitoring", chromedp.Navigate(base+"/monitoring"), chromedp.WaitVisible("table"))
	if rows := text("tbody"); !strings.Contains(rows, "www.bet365.com") || !strings.Contains(rows, "block") {
		t.Errorf("the access log's page lacks the blocked query:\n%s", rows)
	}
	for _, page := range []struct{ path, name string }{
		{"/filtering", "filtering"}, {"/people", "people"}, {"/monitoring", "monitoring"}, {"/settings", "settings"},
		{"/account/password", "change-password"},
		{"/check?target=https%3A%2F%2Fwww.bet365.com%2Fcasino&group=key-stage-2", "why-is-this-blocked"},
	} {
		do(page.name, chromedp.Navigate(base+page.path), chromedp.WaitVisible("main h1"), shot(page.name))
	}
	do("zones", chromedp.Navigate(base+"/people"), chromedp.WaitVisible("#zones-h"))
	if z := text("section[aria-labelledby=zones-h] tbody"); !strings.Contains(z, "staff-room") || !strings.Contains(z, "10.20.0.0/24") {
		t.Errorf("zones on the people page: %q", z)
	}
	do("back to the check", chromedp.Navigate(base+"/check?target=https%3A%2F%2Fwww.bet365.com%2Fcasino&group=key-stage-2"), chromedp.WaitVisible("#verdict"))
	if v := text("#verdict"); !strings.HasPrefix(v, "Blocked") || !strings.Contains(text("main"), "gambling") {
		t.Errorf("why is this blocked: %q", v)
	}
	// Keyboard: the skip link is the first thing Tab reaches.
	do("skip link", chromedp.Navigate(base+"/"), chromedp.WaitVisible("main h1"), chromedp.KeyEvent("\t"))
	if focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.activeElement.textContent")); focused != "Skip to content" {
		t.Errorf("first Tab stop is %q, want the skip link", focused)
	}

	// Sign out, and in again: password, then the next code.
	do("sign out", chromedp.Click("header button.link"), chromedp.WaitVisible("#login"), shot("sign-in"))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != base+"/login" {
		t.Fatalf("after sign-out at %s", loc)
	}
	do("sign in", chromedp.SendKeys("#login", "pshah"), chromedp.SendKeys("#password", password),
		chromedp.Click("form.card button[type=submit]"), chromedp.WaitVisible("#code"), shot("two-factor"))
	do("second factor", chromedp.SendKeys("#code", totpCode(t, secret, enrolledAt.Add(30*time.Second))),
		chromedp.Click("form.card button[type=submit]"), chromedp.WaitVisible("ul.cards"))
	if h := text("h1"); h != "Hello, Priya Shah" {
		t.Fatalf("after signing in again: %q", h)
	}

	// A review request from the block page, answered through change
	// control: the pupil (this computer is a key stage 2 device) asks for
	// roblox.com; IT proposes the exception from the queue, which waits
	// for leadership as it loosens protection for pupils; the headteacher
	// approves it; the engine warden check uses then allows it.
	do("review request", chromedp.Navigate(base+"/blocked?host=roblox.com"), chromedp.WaitVisible("#review-message"),
		chromedp.SendKeys("#review-message", "For the Year 6 game design club"),
		chromedp.Click("form[action$='/blocked/review'] button"))
	waitFor(t, "the thanks page after asking for a review", func() bool {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.Contains(loc, "/blocked/thanks")
	})
	do("thanks page", chromedp.WaitVisible("main h1"), shot("review-request-sent"))
	if h := text("h1"); h != "Your request has been sent" {
		t.Fatalf("after asking for a review: %q", h)
	}
	do("review queue", chromedp.Navigate(base+"/filtering"), chromedp.WaitVisible("#requests-h"), shot("filtering-review-requests"),
		chromedp.Click("section[aria-labelledby=requests-h] details summary"),
		chromedp.SendKeys("form[action^='/filtering/requests/'] textarea[name=risk]", "Roblox has chat; the club is supervised and chat is off on the club's accounts."),
		chromedp.Click("form[action^='/filtering/requests/'][action$='/approve'] button"), chromedp.WaitVisible("p.flash"),
		shot("filtering-proposed"))
	if flash := text("p.flash"); !strings.Contains(flash, "when a member of leadership other than you approves it") {
		t.Fatalf("after proposing: %q", flash)
	}
	if res, _ := a.Check(t.Context(), CheckRequest{Target: "roblox.com", Group: DemoKeyStage2}); !res.Explanation.Decision.Blocked() {
		t.Fatal("the proposal took effect before approval")
	}
	do("IT signs out", chromedp.Click("header button.link"), chromedp.WaitVisible("#login"))
	head, err := a.Directory.PersonByLogin(t.Context(), "gsmith")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Accounts.Set(t.Context(), "test", head.ID, "quiet harbour at dawn", auth.SetOptions{Role: auth.RoleHeadteacher}); err != nil {
		t.Fatal(err)
	}
	do("headteacher signs in", chromedp.SendKeys("#login", "gsmith"), chromedp.SendKeys("#password", "quiet harbour at dawn"),
		chromedp.Click("form.card button[type=submit]"), chromedp.WaitVisible("code.secret"))
	do("headteacher's second factor", chromedp.SendKeys("#code", totpCode(t, text("code.secret"), time.Now())),
		chromedp.Click("form.card button[type=submit]"), chromedp.WaitVisible("ul.cards"))
	do("approve", chromedp.Navigate(base+"/filtering"), chromedp.WaitVisible("form[action$='/approve'] button"), shot("filtering-approval"),
		chromedp.SendKeys("form[action$='/approve'] input[name=note]", "Agreed for the club, this term"),
		chromedp.Click("form[action$='/approve'] button"), chromedp.WaitVisible("p.flash"))
	if flash := text("p.flash"); !strings.Contains(flash, "approved and applied") {
		t.Fatalf("after approving: %q", flash)
	}
	do("change log", shot("filtering-change-log"))
	// The headteacher's other pages, and the console on a tablet: no page
	// is wider than a portrait iPad's screen.
	for _, page := range []struct{ path, name string }{{"/audit", "audit-log"}, {"/safeguarding", "safeguarding"}, {"/reports", "reports"}} {
		do(page.name, chromedp.Navigate(base+page.path), chromedp.WaitVisible("main h1"), shot(page.name))
	}
	do("tablet", chromedp.EmulateViewport(768, 1024))
	for _, path := range []string{"/", "/filtering", "/people", "/monitoring", "/audit", "/check"} {
		do("tablet "+path, chromedp.Navigate(base+path), chromedp.WaitVisible("main h1"))
		if wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("document.documentElement.scrollWidth > window.innerWidth + 1")); err != nil || wide {
			t.Errorf("%s is wider than a tablet's screen (%v)", path, err)
		}
	}
	do("tablet shot", chromedp.Navigate(base+"/filtering"), chromedp.WaitVisible("main h1"), shot("tablet-filtering"))
	if err := a.ReloadIfChanged(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, err := a.Check(t.Context(), CheckRequest{Target: "roblox.com", Group: DemoKeyStage2})
	if err != nil || res.Explanation.Decision.Blocked() || !strings.HasPrefix(res.Explanation.Decision.Rule, "exception:allow") {
		t.Fatalf("warden check after approval: %+v %v", res.Explanation.Decision, err)
	}
}
