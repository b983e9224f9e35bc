package proxy

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func testPACOptions() PACOptions {
	return PACOptions{
		ProxyHostPort: "warden.school.example:3128",
		Bypass: []netip.Prefix{
			netip.MustParsePrefix("10.20.0.0/16"),
			netip.MustParsePrefix("192.168.1.7/24"), // not masked: written masked
			netip.MustParsePrefix("fd00::/8"),       // IPv6: left out
		},
		BypassHosts: []string{"warden.school.example", "*.warden.school.example"},
	}
}

func TestPACGolden(t *testing.T) {
	got, err := PACScript(testPACOptions())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "proxy.pac")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("script differs from %s (run go test -update if the change is meant):\n%s", golden, got)
	}
}

func TestPACScript(t *testing.T) {
	s, err := PACScript(testPACOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`return "PROXY warden.school.example:3128";`,
		`isInNet(ip, "10.20.0.0", "255.255.0.0")`,
		`isInNet(ip, "192.168.1.0", "255.255.255.0")`,
		`isInNet(ip, "127.0.0.0", "255.0.0.0")`,
		`var ip = dnsResolve(host);`,
		`dnsDomainIs(host, ".warden.school.example")`,
		`isPlainHostName(host)`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %s", want)
		}
	}
	// Never fail open: no DIRECT fallback after the proxy.
	if strings.Contains(s, "PROXY warden.school.example:3128; DIRECT") || strings.Contains(s, "fd00") {
		t.Errorf("script:\n%s", s)
	}
	// isInNet is only ever given the resolved address, never the name
	// (which would resolve once per network).
	if strings.Contains(s, "isInNet(host") {
		t.Error("isInNet on the host name")
	}
	for _, bad := range []PACOptions{
		{},
		{ProxyHostPort: "warden"},
		{ProxyHostPort: "warden:0"},
		{ProxyHostPort: `w"arden:3128`},
		{ProxyHostPort: "warden:3128", BypassHosts: []string{`x"); alert(1); ("`}},
	} {
		if _, err := PACScript(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestPACHandler(t *testing.T) {
	srv := httptest.NewServer(PAC(testPACOptions()))
	defer srv.Close()
	for _, path := range []string{"/proxy.pac", "/wpad.dat"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != PACContentType || !strings.Contains(string(body), "FindProxyForURL") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	resp, err := http.Post(srv.URL+"/proxy.pac", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	bad := httptest.NewServer(PAC(PACOptions{}))
	defer bad.Close()
	resp, err = http.Get(bad.URL + "/proxy.pac")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("unconfigured: %d, want 500", resp.StatusCode)
	}
}
