package dnsfilter

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/wardentest"
)

// answerA answers every A question with 192.0.2.53.
func answerA(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	if q := r.Question[0]; q.Qtype == dns.TypeA {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.53")})
	}
	return m
}

func encryptedFilter(t *testing.T, upstream string, roots *x509.CertPool) *Filter {
	t.Helper()
	snap := testPolicy(t)
	ident := testIdentity()
	f, err := New(Options{
		Policy: func() *policy.Snapshot { return snap }, Identity: func() *identity.Table { return ident },
		Upstreams: []string{upstream}, UpstreamRoots: roots, UpstreamTimeout: time.Second,
		Block: BlockResponse{Mode: BlockPage, IPv4: netip.MustParseAddr("127.0.0.80")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func resolveA(t *testing.T, f *Filter, name string) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	return (&Server{f: f, opts: ServerOptions{Allowed: identity.LocalNetworks()}}).answer(netip.MustParseAddr("127.0.0.1"), "udp", q)
}

func TestDoTUpstream(t *testing.T) {
	cert := wardentest.NewCert(t, "dot.test")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Net: "tcp-tls", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { w.WriteMsg(answerA(r)) })}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	f := encryptedFilter(t, "tls://"+ln.Addr().String()+"#dot.test", cert.Roots)
	for i := 0; i < 3; i++ { // the connection is reused
		if r := resolveA(t, f, "dot-example"+string(rune('a'+i))+".org"); firstA(r) != "192.0.2.53" {
			t.Fatalf("over DoT: %v", r)
		}
	}
	// A certificate Warden does not trust is never used.
	other := wardentest.NewCert(t, "dot.test").Roots
	if r := resolveA(t, encryptedFilter(t, "tls://"+ln.Addr().String()+"#dot.test", other), "example.org"); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("untrusted DoT upstream answered: %v", r)
	}
	if _, err := parseUpstream("tls://192.0.2.1", time.Second, nil); err == nil {
		t.Error("DoT to an address without a certificate name accepted")
	}
}

func TestDoHUpstream(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := new(dns.Msg)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/dns-message" || q.Unpack(body) != nil || q.Id != 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		out, _ := answerA(q).Pack()
		w.Header().Set("Content-Type", "application/dns-message")
		w.Write(out)
	}))
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	f := encryptedFilter(t, ts.URL+"/dns-query", pool)
	r := resolveA(t, f, "doh-example.org")
	if firstA(r) != "192.0.2.53" {
		t.Fatalf("over DoH: %v", r)
	}
	if r := resolveA(t, encryptedFilter(t, ts.URL+"/dns-query", x509.NewCertPool()), "example.org"); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("untrusted DoH upstream answered: %v", r)
	}
}
