package inspect

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// FuzzCertificateName: whatever a client sends as SNI (or Host), the CA
// either refuses it with an error or mints a certificate that verifies
// for the name it normalised to.
func FuzzCertificateName(f *testing.F) {
	for _, s := range []string{"www.example.org", "EXAMPLE.org.", "192.0.2.1", "[::1]", "fe80::1%eth0", "bücher.example",
		"a..b", "-bad-.example", "*.example.org", "x.y.z.w.v.example", "", "\x00", "ff..", "1.2.3.4.5"} {
		f.Add(s)
	}
	ca, _ := testCA(f, CAOptions{CacheSize: 64})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	f.Fuzz(func(t *testing.T, host string) {
		name, _, err := leafName(host)
		if err != nil {
			return
		}
		c, err := ca.GetCertificate("fallback.example")(&tls.ClientHelloInfo{ServerName: host})
		if err != nil {
			t.Fatalf("%q normalised to %q but did not mint: %v", host, name, err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Fatalf("%q (as %q): %v", host, name, err)
		}
	})
}
