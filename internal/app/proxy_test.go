package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/config"
	"github.com/warden-schools/warden/internal/wardentest"
)

// The proxy filters by the demo school's policy, shows the block page
// with forms that post to the web listener, and proxy.pac points at it.
func TestServeProxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin saw %s", r.URL.Path)
	}))
	defer origin.Close()
	a, l := serveDemo(t, func(c *config.Config) {
		c.Listen.Proxy = "127.0.0.1:0"
		c.ProxyAllowLoopback = true
	})
	if l.Proxy == "" || l.Inspect {
		t.Fatalf("listening %+v", l)
	}
	proxyURL, _ := url.Parse("http://" + l.Proxy)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	resp, err := client.Get(origin.URL + "/lesson")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "origin saw /lesson" {
		t.Fatalf("allowed: %d %q", resp.StatusCode, body)
	}

	// Games are blocked for key stage 2 (the demo puts loopback there);
	// the proxy decides before it looks the name up.
	resp, err = client.Get("http://roblox.com/games")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `action="http://`+l.HTTP+`/blocked/review"`) {
		t.Fatalf("blocked: %d\n%s", resp.StatusCode, body)
	}

	resp, err = http.Get("http://" + l.HTTP + "/proxy.pac")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "PROXY "+l.Proxy) || strings.Contains(string(body), "PROXY "+l.Proxy+"; DIRECT") {
		t.Fatalf("proxy.pac: %d\n%s", resp.StatusCode, body)
	}

	// WPAD finds the file by the school's own "wpad" name.
	req, _ := http.NewRequest("GET", "http://"+l.HTTP+"/wpad.dat", nil)
	req.Host = "wpad.school.test"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ns-proxy-autoconfig" {
		t.Fatalf("wpad.dat by name: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Both requests are in the access log.
	waitFor(t, "the proxy's events", func() bool {
		n, err := a.Access.Count(t.Context())
		return err == nil && n >= 2
	})
}

// With inspection on, HTTPS through the proxy is opened with a
// certificate from the school CA, and an upstream certificate that does
// not verify shows the block page instead of passing.
func TestServeProxyInspect(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "secret origin")
	}))
	defer origin.Close()
	var cfg config.Config
	_, l := serveDemo(t, func(c *config.Config) {
		if _, err := InitCA(*c, "Test School", false, time.Now); err != nil {
			t.Fatal(err)
		}
		c.Listen.Proxy = "127.0.0.1:0"
		c.ProxyAllowLoopback = true
		c.Proxy.Inspect = true
		c.Proxy.ConnectPorts = []int{mustPort(t, origin.URL)}
		cfg = *c
	})
	if !l.Inspect {
		t.Fatalf("listening %+v", l)
	}
	rootPEM, err := os.ReadFile(filepath.Join(CADir(cfg), "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	proxyURL, _ := url.Parse("http://" + l.Proxy)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections() // before the server stops, which waits for open tunnels
	resp, err := client.Get(origin.URL + "/")
	if err != nil {
		t.Fatal(err) // the minted certificate must chain to the school root
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "secret origin") || !strings.Contains(string(body), "certificate") {
		t.Fatalf("untrusted upstream: %d\n%s", resp.StatusCode, body)
	}
}

func mustPort(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	if _, err := fmt.Sscan(u.Port(), &port); err != nil {
		t.Fatal(err)
	}
	return port
}

// With the school CA made, an HTTPS request for a name the DNS filter
// blocked gets the block page under a certificate for that name; other
// names get Warden's own certificate.
func TestBlockPageOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	own := wardentest.NewCert(t, "warden.school.test")
	certFile, keyFile := own.WriteFiles(t, dir)
	var cfg config.Config
	_, l := serveDemo(t, func(c *config.Config) {
		if _, err := InitCA(*c, "Test School", false, time.Now); err != nil {
			t.Fatal(err)
		}
		c.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
		c.PublicURL = "https://warden.school.test"
		cfg = *c
	})
	rootPEM, err := os.ReadFile(filepath.Join(CADir(cfg), "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	schoolRoot := x509.NewCertPool()
	schoolRoot.AppendCertsFromPEM(rootPEM)
	get := func(name string, roots *x509.CertPool) (*http.Response, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+l.HTTP+"/", nil)
		req.Host = name
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	resp, err := get("roblox.com", schoolRoot)
	if err != nil {
		t.Fatalf("blocked name over HTTPS: %v", err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("blocked name: %d, want the block page", resp.StatusCode)
	}
	// An allowed name is not minted for: only Warden's own certificate.
	if _, err := get("www.bbc.co.uk", schoolRoot); err == nil {
		t.Error("a certificate from the school CA for an allowed name")
	}
	// Warden's own name gets the console (its sign-in page).
	if resp, err := get("warden.school.test", own.Roots); err != nil || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" {
		t.Errorf("own name: %v %v", resp, err)
	}
}

// With proxy.require_auth, a client without credentials gets 407; a
// person's own login and Warden password identify them (their group's
// policy applies, and the block page names them); a wrong password is
// refused again.
func TestServeProxyPersonAuth(t *testing.T) {
	a, l := serveDemo(t, func(c *config.Config) {
		c.Listen.Proxy = "127.0.0.1:0"
		c.ProxyAllowLoopback = true
		c.Proxy.RequireAuth = true
	})
	ctx := t.Context()
	for login, pw := range map[string]string{"mia.jones": "purple otter 42", "gsmith": "paper lantern over the river"} {
		p, err := a.Directory.PersonByLogin(ctx, login)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Accounts.Set(ctx, "test", p.ID, pw, auth.SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(user *url.Userinfo, target string) (int, string) {
		t.Helper()
		proxyURL := &url.URL{Scheme: "http", Host: l.Proxy, User: user}
		client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()
		resp, err := client.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get(nil, "http://roblox.com/"); code != http.StatusProxyAuthRequired {
		t.Fatalf("no credentials: %d, want 407", code)
	}
	if code, _ := get(url.UserPassword("mia.jones", "wrong password"), "http://roblox.com/"); code != http.StatusProxyAuthRequired {
		t.Fatalf("wrong password: %d, want 407", code)
	}
	code, body := get(url.UserPassword("mia.jones", "purple otter 42"), "http://roblox.com/")
	if code != http.StatusForbidden || !strings.Contains(body, "Mia Jones") || !strings.Contains(body, "key-stage-2") {
		t.Fatalf("pupil: %d\n%s", code, body)
	}
	code, body = get(url.UserPassword("gsmith@demo-school.example", "paper lantern over the river"), "http://tiktok.com/")
	if code != http.StatusForbidden || !strings.Contains(body, "Grace Smith") || !strings.Contains(body, "<dd>staff</dd>") {
		t.Fatalf("staff by email: %d\n%s", code, body)
	}

	// The same with curl, as a school's scripts would.
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://"+l.Proxy,
		"--proxy-user", "mia.jones:purple otter 42", "http://roblox.com/").CombinedOutput()
	if err != nil || string(out) != "403" {
		t.Fatalf("curl with a person's credentials: %v %s", err, out)
	}
	out, _ = exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://"+l.Proxy,
		"--proxy-user", "mia.jones:not her password", "http://roblox.com/").CombinedOutput()
	if string(out) != "407" {
		t.Fatalf("curl with a wrong password: %s", out)
	}
}
