package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/config"
	"github.com/warden-schools/warden/internal/lists/liststest"
	"github.com/warden-schools/warden/internal/reviews"
	"github.com/warden-schools/warden/internal/wardentest"
)

// serveDemo runs the demo school's server in-process with cfg's changes,
// on loopback ports, until the test ends.
func serveDemo(t *testing.T, change func(*config.Config)) (*App, Listening) {
	t.Helper()
	a := openDemo(t)
	a.cfg.Listen = config.Listen{HTTP: "127.0.0.1:0", DNS: "127.0.0.1:0"}
	a.cfg.Upstreams = []string{wardentest.Resolver(t)}
	change(&a.cfg)
	if err := a.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Listening, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(l Listening) { ready <- l }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case l := <-ready:
		return a, l
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return nil, Listening{}
}

// dohA asks for name's address over DoH at url and returns the HTTP
// status and the first address.
func dohA(t *testing.T, c *http.Client, url, name string) (int, string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	buf, _ := m.Pack()
	resp, err := c.Post(url, "application/dns-message", bytes.NewReader(buf))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		t.Fatal(err)
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return resp.StatusCode, a.A.String()
		}
	}
	return resp.StatusCode, ""
}

// waitFor polls until cond holds, for at most a few reloads. Tests
// reload at once after a change rather than wait for the server's tick.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * ReloadInterval)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeTLS runs the web listener over HTTPS with DNS-over-HTTPS and
// DNS-over-TLS, issues the DSL's laptop (staff) a token, and uses it from
// loopback, which the demo otherwise treats as a key stage 2 pupil.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	cert := wardentest.NewCert(t, "dns.school.test", "*.dns.school.test")
	certFile, keyFile := cert.WriteFiles(t, dir)
	tlsFiles := config.TLS{CertFile: certFile, KeyFile: keyFile}
	roots := cert.Roots
	a, l := serveDemo(t, func(c *config.Config) {
		c.TLS = tlsFiles
		c.Listen.DoT = "127.0.0.1:0"
		c.DNS.DoTHostname = "dns.school.test"
	})
	if !l.HTTPS || !l.DoH || l.DoT == "" || l.DNS == "" {
		t.Fatalf("listening %+v", l)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	resp, err := client.Get("https://" + l.HTTP + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("healthz over HTTPS: %s %s", resp.Proto, resp.Status)
	}

	ctx := context.Background()
	issued, err := a.IssueDeviceToken(ctx, "test", "DSL-Laptop", "https://"+l.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	if issued.Device != "dsl-laptop" || issued.Replaced || issued.DoHURL != "https://"+l.HTTP+"/dns-query/"+issued.Token ||
		issued.DoTName != issued.Token+".dns.school.test" {
		t.Fatalf("issued %+v", issued)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// Games are blocked for key stage 2 and allowed for staff.
	waitFor(t, "the new token", func() bool {
		code, addr := dohA(t, client, issued.DoHURL, "roblox.com")
		return code == http.StatusOK && addr == "192.0.2.7"
	})
	dot := func(serverName string) string {
		m := new(dns.Msg)
		m.SetQuestion("roblox.com.", dns.TypeA)
		c := &dns.Client{Net: "tcp-tls", Timeout: 3 * time.Second, TLSConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}
		r, _, err := c.Exchange(m, l.DoT)
		if err != nil {
			t.Fatalf("DoT via %s: %v", serverName, err)
		}
		if len(r.Answer) == 0 {
			return dns.RcodeToString[r.Rcode]
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	if got := dot(issued.DoTName); got != "192.0.2.7" {
		t.Errorf("DoT with the token: %s, want the staff answer", got)
	}
	if got := dot("dns.school.test"); got != "127.0.0.1" {
		t.Errorf("DoT without a token: %s, want the block page for a pupil", got)
	}

	name, had, err := a.RevokeDeviceToken(ctx, "test", "dsl-laptop")
	if err != nil || !had || name != "dsl-laptop" {
		t.Fatalf("revoke = %q, %v, %v", name, had, err)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revocation", func() bool {
		code, _ := dohA(t, client, issued.DoHURL, "roblox.com")
		return code == http.StatusNotFound
	})
	if got := dot(issued.DoTName); got != "127.0.0.1" {
		t.Errorf("DoT with a revoked token: %s, want the pupil's block page", got)
	}
	if _, had, err := a.RevokeDeviceToken(ctx, "test", "dsl-laptop"); err != nil || had {
		t.Errorf("revoking twice = %v, %v", had, err)
	}
}

// TestServeDoHPlainHTTP: without a certificate DoH is on the web listener
// over HTTP, for loopback only.
func TestServeDoHPlainHTTP(t *testing.T) {
	a, l := serveDemo(t, func(*config.Config) {})
	if l.HTTPS || !l.DoH || l.DoT != "" {
		t.Fatalf("listening %+v", l)
	}
	issued, err := a.IssueDeviceToken(context.Background(), "test", "head-laptop", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !issued.DoHURLGuessed || !strings.HasPrefix(issued.DoHURL, "http://127.0.0.1:0/dns-query/") {
		t.Errorf("DoH URL %q (guessed %v)", issued.DoHURL, issued.DoHURLGuessed)
	}
	url := "http://" + l.HTTP + "/dns-query/" + issued.Token
	waitFor(t, "the new token", func() bool {
		code, addr := dohA(t, http.DefaultClient, url, "roblox.com")
		return code == http.StatusOK && addr == "192.0.2.7"
	})
}

func TestServeRefusesBadCertificate(t *testing.T) {
	a := openDemo(t)
	dir := t.TempDir()
	a.cfg.Listen = config.Listen{HTTP: "127.0.0.1:0"}
	certA, _ := wardentest.NewCert(t, "a.example").WriteFiles(t, dir)
	_, keyB := wardentest.NewCert(t, "b.example").WriteFiles(t, dir)
	a.cfg.TLS = config.TLS{CertFile: certA, KeyFile: keyB}
	err := a.Serve(context.Background(), func(Listening) { t.Error("listening with a mismatched key") })
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("Serve = %v", err)
	}
}

func TestDoHURL(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*config.Config)
		urlBase string
		want    string
		guessed bool
	}{
		{"public URL", func(c *config.Config) { c.PublicURL = "https://warden.school.example/" }, "", "https://warden.school.example/dns-query/T", false},
		{"flag wins", func(c *config.Config) { c.PublicURL = "https://warden.school.example" }, "https://dns.trust.example:8443", "https://dns.trust.example:8443/dns-query/T", false},
		{"listener with a certificate", func(c *config.Config) {
			c.Listen.HTTP = "10.0.0.5:443"
			c.TLS = config.TLS{CertFile: "a", KeyFile: "b"}
		}, "", "https://10.0.0.5/dns-query/T", true},
		{"listener without a certificate", func(c *config.Config) { c.Listen.HTTP = "127.0.0.1:8080" }, "", "http://127.0.0.1:8080/dns-query/T", true},
		{"listener on every address", func(c *config.Config) {
			c.Listen.HTTP = "0.0.0.0:8443"
			c.TLS = config.TLS{CertFile: "a", KeyFile: "b"}
		}, "", "https://WARDEN-HOST:8443/dns-query/T", true},
		{"IPv6 listener", func(c *config.Config) { c.Listen.HTTP = "[fd00::5]:80" }, "", "http://[fd00::5]/dns-query/T", true},
		{"no host", func(c *config.Config) { c.Listen.HTTP = ":8080" }, "", "http://WARDEN-HOST:8080/dns-query/T", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &App{cfg: config.Default()}
			tt.cfg(&a.cfg)
			got, guessed := a.dohURL(tt.urlBase, "T")
			if got != tt.want || guessed != tt.guessed {
				t.Errorf("dohURL = %q, %v; want %q, %v", got, guessed, tt.want, tt.guessed)
			}
		})
	}
}

// A browser sent to Warden by the DNS filter's answer for a blocked name
// gets the block page, and its review form reaches the queue.
func TestBlockPageOnWebListener(t *testing.T) {
	a, l := serveDemo(t, func(*config.Config) {})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+l.HTTP+"/some/page", nil)
	req.Host = "roblox.com"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "roblox.com") || !strings.Contains(page, `action="http://`+l.HTTP+`/blocked/review"`) {
		t.Fatalf("block page: %d\n%s", resp.StatusCode, page)
	}
	m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no token in the review form")
	}
	form := url.Values{"token": {html.UnescapeString(m[1])}, "message": {"We use it in computing club."}}
	resp, err = client.PostForm("http://"+l.HTTP+"/blocked/review", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("review: %d", resp.StatusCode)
	}
	got, err := reviews.New(a.DB(), time.Now).ListRequests(context.Background(), reviews.Filter{})
	if err != nil || len(got) != 1 || got[0].Host != "roblox.com" || got[0].Message != "We use it in computing club." || got[0].Category != "games" {
		t.Fatalf("review requests %+v, %v", got, err)
	}

	// Warden's own address still serves its own pages.
	resp, err = client.Get("http://" + l.HTTP + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
}

// A school without a console account gets a one-time set-up link when
// Warden starts; it opens the first administrator's form.
func TestServeSetupLink(t *testing.T) {
	a, l := serveDemo(t, func(*config.Config) {})
	if !strings.HasPrefix(l.SetupLink, "http://"+l.HTTP+"/setup/") {
		t.Fatalf("set-up link %q", l.SetupLink)
	}
	resp, err := http.Get(l.SetupLink)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Create the first administrator") {
		t.Fatalf("set-up page: %d\n%s", resp.StatusCode, body)
	}
	// Once an administrator exists, no link is made.
	p, err := a.Directory.PersonByLogin(t.Context(), "pshah")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Accounts.Set(t.Context(), "test", p.ID, "copper kettle on the hill", auth.SetOptions{Role: auth.RoleIT}); err != nil {
		t.Fatal(err)
	}
	if link, err := a.SetupLink(t.Context(), "http://"+l.HTTP); err != nil || link != "" {
		t.Fatalf("link with an administrator: %q %v", link, err)
	}
}

// lists.update_url on a schedule: a good archive is stored, a broken one
// keeps the lists in force; both are counted and audited.
func TestScheduledListUpdate(t *testing.T) {
	archive := liststest.Tar(t, []liststest.TarEntry{{Name: "blacklists/gambling/domains", Body: []byte("bet-only-here.example\n")}}, true)
	broken := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken {
			w.Write(archive[:len(archive)/2])
			return
		}
		w.Write(archive)
	}))
	defer srv.Close()
	a, _ := serveDemo(t, func(c *config.Config) {
		c.Lists = config.Lists{UpdateURL: srv.URL + "/blacklists.tar.gz", UpdateEvery: time.Hour}
	})
	ctx := t.Context()
	if _, err := a.UpdateListsNow(ctx); err == nil {
		t.Fatal("a set much smaller than the demo's lists was taken")
	}
	// The demo's lists hold far more: the small fixture is refused as cut
	// short, which is the point; a broken archive is refused too.
	broken = true
	if _, err := a.UpdateListsNow(ctx); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("broken archive: %v", err)
	}
	if v := wardentest.MetricValue(t, a.Metrics, "warden_lists_updates_total", map[string]string{"outcome": "failed"}); v != 2 {
		t.Errorf("failed updates counted: %v", v)
	}
	log, err := a.AuditLog()
	if err != nil {
		t.Fatal(err)
	}
	if entries, _, _ := log.List(ctx, audit.Filter{Action: audit.ActionListsUpdated}); len(entries) != 2 || entries[0].Actor != scheduledActor {
		t.Errorf("audit %+v", entries)
	}
}
