package dnsfilter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/wardentest"
)

// startDoT serves the fixture's filter over DNS-over-TLS on loopback.
func startDoT(t testing.TB, fx *tokenFixture, opts DoTOptions) (addr string, roots *x509.CertPool) {
	t.Helper()
	cert := wardentest.NewCert(t, "dns.school.test", "*.dns.school.test")
	opts.Addr = "127.0.0.1:0"
	opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	s, err := fx.f.ListenDoT(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s.Addr.String(), cert.Roots
}

// dotAsk asks one question over DNS-over-TLS, sending serverName as the
// TLS server name (SNI) and checking the certificate against roots.
func dotAsk(t testing.TB, addr string, roots *x509.CertPool, serverName, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: "tcp-tls", Timeout: 3 * time.Second, TLSConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("DoT %s via %s: %v", name, serverName, err)
	}
	return r
}

func TestDoT(t *testing.T) {
	fx := newTokenFixture(t)
	addr, roots := startDoT(t, fx, DoTOptions{})
	revoked := newToken(t)
	tests := []struct {
		name, serverName, q string
		a                   string
	}{
		{"no token: identified by address (a pupil)", "dns.school.test", "facebook.com", "127.0.0.80"},
		{"no token: allowed name", "dns.school.test", "example.org", "192.0.2.1"},
		{"staff token in the server name", fx.staffTok + ".dns.school.test", "facebook.com", "192.0.2.1"},
		{"staff token in upper case", strings.ToUpper(fx.staffTok) + ".DNS.school.test", "facebook.com", "192.0.2.1"},
		{"pupil token in the server name", fx.pupilTok + ".dns.school.test", "facebook.com", "127.0.0.80"},
		{"mandatory list blocked for staff", fx.staffTok + ".dns.school.test", "illegal.example", "127.0.0.80"},
		{"unknown token: identified by address", revoked + ".dns.school.test", "facebook.com", "127.0.0.80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dotAsk(t, addr, roots, tt.serverName, tt.q)
			if r.Rcode != dns.RcodeSuccess || firstA(r) != tt.a {
				t.Errorf("%s %v, want %s", dns.RcodeToString[r.Rcode], r.Answer, tt.a)
			}
		})
	}
	// Revoking the staff token takes effect with the next identity table,
	// on the next question.
	fx.setTokens(fx.pupilTok, "")
	if r := dotAsk(t, addr, roots, fx.staffTok+".dns.school.test", "facebook.com"); firstA(r) != "127.0.0.80" {
		t.Errorf("revoked staff token still allowed social media: %v", r.Answer)
	}
}

// TestDoTSources: clients identified by address must be on an allowed
// network, as over TCP; a device token is accepted from anywhere.
func TestDoTSources(t *testing.T) {
	fx := newTokenFixture(t)
	addr, roots := startDoT(t, fx, DoTOptions{Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if r := dotAsk(t, addr, roots, "dns.school.test", "example.org"); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
		t.Errorf("no token from a network not allowed: %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if r := dotAsk(t, addr, roots, fx.staffTok+".dns.school.test", "facebook.com"); r.Rcode != dns.RcodeSuccess || firstA(r) != "192.0.2.1" {
		t.Errorf("staff token from a network not allowed: %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if n := fx.up.queries.Load(); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
}

func TestDoTRateLimit(t *testing.T) {
	fx := newTokenFixture(t)
	addr, roots := startDoT(t, fx, DoTOptions{RateLimit: 5})
	refused := 0
	for i := 0; i < 30; i++ {
		if r := dotAsk(t, addr, roots, fx.pupilTok+".dns.school.test", "example.org"); r.Rcode == dns.RcodeRefused {
			refused++
		}
	}
	if refused == 0 {
		t.Error("30 quick queries at 5 per second: none refused")
	}
	// The limit is per device: the staff laptop on the same address, and
	// the address itself without a token, are not affected.
	if r := dotAsk(t, addr, roots, fx.staffTok+".dns.school.test", "example.org"); r.Rcode != dns.RcodeSuccess {
		t.Errorf("another token refused: %s", dns.RcodeToString[r.Rcode])
	}
	if r := dotAsk(t, addr, roots, "dns.school.test", "example.org"); r.Rcode != dns.RcodeSuccess {
		t.Errorf("the address without a token refused: %s", dns.RcodeToString[r.Rcode])
	}
}

// TestDoTConnectionReuse asks several questions on one TLS connection,
// as resolvers do (RFC 7858 section 3.4).
func TestDoTConnectionReuse(t *testing.T) {
	fx := newTokenFixture(t)
	addr, roots := startDoT(t, fx, DoTOptions{})
	c := &dns.Client{Net: "tcp-tls", Timeout: 3 * time.Second, TLSConfig: &tls.Config{RootCAs: roots, ServerName: fx.staffTok + ".dns.school.test"}}
	conn, err := c.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, tc := range []struct{ q, a string }{{"facebook.com", "192.0.2.1"}, {"bet365.com", "127.0.0.80"}, {"example.org", "192.0.2.1"}} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(tc.q), dns.TypeA)
		r, _, err := c.ExchangeWithConn(m, conn)
		if err != nil {
			t.Fatalf("question %d: %v", i, err)
		}
		if firstA(r) != tc.a {
			t.Errorf("%s: %v, want %s", tc.q, r.Answer, tc.a)
		}
	}
}

func TestListenDoTNeedsCertificate(t *testing.T) {
	fx := newTokenFixture(t)
	for _, cfg := range []*tls.Config{nil, {}} {
		if _, err := fx.f.ListenDoT(DoTOptions{Addr: "127.0.0.1:0", TLS: cfg}); err == nil {
			t.Error("listening without a certificate")
		}
	}
}
