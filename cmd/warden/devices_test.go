package main

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/wardentest"
)

func TestDevicesAddAndTokens(t *testing.T) {
	data := demoData(t)
	r := mustWarden(t, "devices", "add", "--data", data, "loan-laptop-07", "--group", "staff", "--owner", "awilliams",
		"--mac", "02-00-5E-99-00-07", "--ip", "10.20.9.7", "--kind", "school")
	if !strings.Contains(r.stdout, "Added device loan-laptop-07") || !strings.Contains(r.stdout, "warden devices token issue loan-laptop-07") {
		t.Errorf("add output:\n%s", r.stdout)
	}
	list := mustWarden(t, "devices", "list", "--data", data).stdout
	if !regexp.MustCompile(`loan-laptop-07\s+school\s+10\.20\.9\.7\s+02:00:5e:99:00:07\s+staff\s+Alfie Williams\s+no`).MatchString(list) {
		t.Errorf("devices list:\n%s", list)
	}
	check := checkJSONOf(t, "--data", data, "--ip", "10.20.9.7", "roblox.com")
	if check.Group != "staff" || check.Action != "allow" {
		t.Errorf("the new device's address: %+v", check)
	}

	first := tokenOf(t, mustWarden(t, "devices", "token", "issue", "--data", data, "loan-laptop-07", "--url-base", "https://warden.school.example/"))
	if !strings.HasPrefix(first.url, "https://warden.school.example/dns-query/") || first.replaced || first.dot != "" {
		t.Errorf("first token: %+v", first)
	}
	if list := mustWarden(t, "devices", "list", "--data", data).stdout; !regexp.MustCompile(`loan-laptop-07 .*issued \d{4}-\d\d-\d\d`).MatchString(list) {
		t.Errorf("devices list after issuing:\n%s", list)
	}
	second := tokenOf(t, mustWarden(t, "devices", "token", "issue", "--data", data, "loan-laptop-07"))
	if second.token == first.token || !second.replaced || !strings.Contains(second.out, "public_url") {
		t.Errorf("second token: %+v", second)
	}
	if r := mustWarden(t, "devices", "token", "revoke", "--data", data, "LOAN-laptop-07"); !strings.Contains(r.stdout, "Revoked the token of loan-laptop-07") {
		t.Errorf("revoke output:\n%s", r.stdout)
	}
	if r := mustWarden(t, "devices", "token", "revoke", "--data", data, "loan-laptop-07"); !strings.Contains(r.stdout, "has no token") {
		t.Errorf("revoking again:\n%s", r.stdout)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"devices", "add", "--data", data, "x", "--group", "nope"}, 1, `no group "nope"`},
		{[]string{"devices", "add", "--data", data, "x", "--owner", "nobody"}, 1, `no person with the login "nobody"`},
		{[]string{"devices", "add", "--data", data, "x", "--ip", "10.1"}, 2, "not an IP address"},
		{[]string{"devices", "add", "--data", data, "x", "--kind", "borrowed"}, 2, "want school or personal"},
		{[]string{"devices", "add", "--data", data, "x", "--mac", "zz"}, 2, "MAC address"},
		{[]string{"devices", "add", "--data", data, "dsl-laptop"}, 1, "already used"},
		{[]string{"devices", "add", "--data", data, "y", "--ip", "10.20.9.7"}, 1, "already used"},
		{[]string{"devices", "add", "--data", data}, 2, "one device name"},
		{[]string{"devices", "token", "issue", "--data", data, "nope"}, 1, `no device "nope"`},
		{[]string{"devices", "token", "issue", "--data", data, "dsl-laptop", "--url-base", "warden.school.example"}, 2, "--url-base"},
		{[]string{"devices", "token", "revoke", "--data", data, "nope"}, 1, `no device "nope"`},
		{[]string{"devices", "token", "--data", data}, 2, "issue or revoke"},
		{[]string{"devices", "token"}, 2, "issue or revoke"},
		{[]string{"devices", "frob"}, 2, "unknown subcommand"},
		{[]string{"devices"}, 2, "list, add or token"},
	} {
		r := warden(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("warden %v: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}

// issued is what `warden devices token issue` printed.
type issued struct {
	out, token, url, dot string
	replaced             bool
}

func tokenOf(t *testing.T, r result) issued {
	t.Helper()
	grab := func(re string) string {
		if m := regexp.MustCompile(re).FindStringSubmatch(r.stdout); m != nil {
			return m[1]
		}
		return ""
	}
	is := issued{out: r.stdout, token: grab(`token:\s+([a-z2-7]{52})\n`), url: grab(`DNS-over-HTTPS URL:\s+(\S+)`),
		dot: grab(`DNS-over-TLS name:\s+(\S+)`), replaced: strings.Contains(r.stdout, "earlier token no longer works")}
	if is.token == "" || !strings.HasSuffix(is.url, "/dns-query/"+is.token) {
		t.Fatalf("token issue output:\n%s", r.stdout)
	}
	return is
}

// dohA asks for name's address by DoH GET at url, and returns the HTTP
// status and the first address.
func dohA(t *testing.T, c *http.Client, url, name string) (int, string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.Id = 0
	buf, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, url+"?dns="+base64.RawURLEncoding.EncodeToString(buf), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/dns-message")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/dns-message" {
		t.Errorf("DoH answer Content-Type %q", ct)
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		t.Fatalf("DoH answer: %v", err)
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return resp.StatusCode, a.A.String()
		}
	}
	return resp.StatusCode, dns.RcodeToString[r.Rcode]
}

// eventually polls until cond holds: a running server picks changes up
// within two seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("the running server did not pick up %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeDoH issues a token to a staff laptop from the command line
// and uses it through the real server's DNS-over-HTTPS (plain HTTP on
// loopback), where the demo otherwise treats loopback as a key stage 2
// pupil; then replaces and revokes it.
func TestServeDoH(t *testing.T) {
	up := wardentest.Resolver(t)
	data := demoData(t)
	mustWarden(t, "devices", "add", "--data", data, "loan-laptop-07", "--group", "staff")
	s := serve(t, data, "--dns-addr", "127.0.0.1:0", "--upstream", up)
	base := "http://" + s.http
	first := tokenOf(t, mustWarden(t, "devices", "token", "issue", "--data", data, "loan-laptop-07", "--url-base", base))
	// Games: blocked for key stage 2, allowed for staff.
	eventually(t, "the new token", func() bool {
		code, a := dohA(t, http.DefaultClient, first.url, "roblox.com")
		return code == http.StatusOK && a == "192.0.2.7"
	})
	if code, a := dohA(t, http.DefaultClient, first.url, "www.bet365.com"); code != http.StatusOK || a != "127.0.0.1" {
		t.Errorf("gambling for staff over DoH: %d %s, want the block page", code, a)
	}
	m := new(dns.Msg)
	m.SetQuestion("roblox.com.", dns.TypeA)
	if r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, s.dns); err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Errorf("plain DNS from loopback (a pupil): %v %v", r, err)
	}

	// Issuing again replaces the token: the old one stops, the new works.
	second := tokenOf(t, mustWarden(t, "devices", "token", "issue", "--data", data, "loan-laptop-07", "--url-base", base))
	eventually(t, "the replaced token", func() bool {
		code, _ := dohA(t, http.DefaultClient, first.url, "roblox.com")
		return code == http.StatusNotFound
	})
	if code, a := dohA(t, http.DefaultClient, second.url, "roblox.com"); code != http.StatusOK || a != "192.0.2.7" {
		t.Errorf("the new token: %d %s", code, a)
	}

	// Revoked: 404, exactly as for a page that does not exist.
	mustWarden(t, "devices", "token", "revoke", "--data", data, "loan-laptop-07")
	eventually(t, "the revocation", func() bool {
		code, _ := dohA(t, http.DefaultClient, second.url, "roblox.com")
		return code == http.StatusNotFound
	})
	resp, err := http.Get(base + "/no-such-page")
	if err != nil {
		t.Fatal(err)
	}
	missing, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	q, _ := m.Pack()
	resp, err = http.Get(second.url + "?dns=" + base64.RawURLEncoding.EncodeToString(q))
	if err != nil {
		t.Fatal(err)
	}
	revoked, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(missing, revoked) {
		t.Errorf("a revoked token's answer %q differs from a missing page's %q", revoked, missing)
	}
	s.stop(t)
}

// TestServeTLS runs the real server with a certificate: the web listener
// on HTTPS with DoH, and DNS-over-TLS with the token in the server name.
func TestServeTLS(t *testing.T) {
	up := wardentest.Resolver(t)
	data := demoData(t)
	dir := t.TempDir()
	cert := wardentest.NewCert(t, "dns.school.test", "*.dns.school.test")
	certFile, keyFile := cert.WriteFiles(t, dir)
	roots := cert.Roots
	config := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(config, []byte("listen:\n  dot: 127.0.0.1:0\ntls:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\ndns:\n  dot_hostname: dns.school.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustWarden(t, "devices", "add", "--data", data, "--config", config, "loan-laptop-07", "--group", "staff")
	s := serve(t, data, "--config", config, "--dns-addr", "127.0.0.1:0", "--dot-addr", "127.0.0.1:0", "--upstream", up)
	if s.scheme != "https" {
		t.Fatalf("web listener scheme %q", s.scheme)
	}
	tok := tokenOf(t, mustWarden(t, "devices", "token", "issue", "--data", data, "--config", config, "loan-laptop-07", "--url-base", "https://"+s.http))
	if tok.dot != tok.token+".dns.school.test" {
		t.Errorf("DoT name %q", tok.dot)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	eventually(t, "the new token", func() bool {
		code, a := dohA(t, client, tok.url, "roblox.com")
		return code == http.StatusOK && a == "192.0.2.7"
	})
	dot := func(serverName string) string {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion("roblox.com.", dns.TypeA)
		c := &dns.Client{Net: "tcp-tls", Timeout: 3 * time.Second, TLSConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}
		r, _, err := c.Exchange(m, s.dot)
		if err != nil {
			t.Fatalf("DoT via %s: %v", serverName, err)
		}
		if len(r.Answer) != 1 {
			return dns.RcodeToString[r.Rcode]
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	if got := dot(tok.dot); got != "192.0.2.7" {
		t.Errorf("DoT with the token in the server name: %s, want the staff answer", got)
	}
	if got := dot("dns.school.test"); got != "127.0.0.1" {
		t.Errorf("DoT without a token, from loopback (a pupil): %s, want the block page", got)
	}
	mustWarden(t, "devices", "token", "revoke", "--data", data, "--config", config, "loan-laptop-07")
	eventually(t, "the revocation", func() bool {
		code, _ := dohA(t, client, tok.url, "roblox.com")
		return code == http.StatusNotFound
	})
	if got := dot(tok.dot); got != "127.0.0.1" {
		t.Errorf("DoT with a revoked token: %s, want the pupil's block page", got)
	}
	s.stop(t)
}
