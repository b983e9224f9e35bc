package inspect

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/keyring"
)

func testRing(t testing.TB) *keyring.Ring {
	t.Helper()
	key := make([]byte, keyring.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	r, err := keyring.New(key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testCA(t testing.TB, opts CAOptions) (*CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if opts.SchoolName == "" {
		opts.SchoolName = "Hillside Primary School"
	}
	ca, err := InitCA(dir, testRing(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	return ca, dir
}

func rootPool(ca *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root)
	return p
}

func TestInitCA(t *testing.T) {
	ring := testRing(t)
	dir := filepath.Join(t.TempDir(), "data", "ca")
	ca, err := InitCA(dir, ring, CAOptions{SchoolName: "Hillside Primary School"})
	if err != nil {
		t.Fatal(err)
	}
	root := ca.Root
	if root.Subject.CommonName != "Warden school root CA (Hillside Primary School)" {
		t.Errorf("common name %q", root.Subject.CommonName)
	}
	if !root.IsCA || root.MaxPathLen != 0 || !root.MaxPathLenZero || root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root constraints: IsCA %v MaxPathLen %d zero %v usage %v", root.IsCA, root.MaxPathLen, root.MaxPathLenZero, root.KeyUsage)
	}
	if root.PublicKeyAlgorithm != x509.ECDSA || root.SerialNumber.BitLen() < 120 {
		t.Errorf("key %v serial %d bits", root.PublicKeyAlgorithm, root.SerialNumber.BitLen())
	}
	if d := root.NotAfter.Sub(root.NotBefore); d < RootValidity || d > RootValidity+2*time.Hour {
		t.Errorf("validity %v", d)
	}
	if len(root.PermittedDNSDomains) > 0 || len(root.ExcludedDNSDomains) > 0 {
		t.Error("root has name constraints")
	}
	// Files: modes, and the PEM and DER copies are the same certificate.
	for name, mode := range map[string]os.FileMode{RootCertFile: 0o644, RootDERFile: 0o644, RootKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v", fi.Mode().Perm())
	}
	der, _ := os.ReadFile(filepath.Join(dir, RootDERFile))
	pemData, _ := os.ReadFile(filepath.Join(dir, RootCertFile))
	if b, _ := pem.Decode(pemData); b == nil || string(b.Bytes) != string(der) || string(der) != string(root.Raw) {
		t.Error("root.crt and root.cer differ")
	}
	// The key is sealed, not stored in the clear.
	sealed, _ := os.ReadFile(filepath.Join(dir, RootKeyFile))
	if strings.Contains(string(sealed), "PRIVATE KEY") || sealed[0] != 1 {
		t.Error("root key is not sealed")
	}

	// Loaded back, it is the same CA and mints certificates that chain to it.
	loaded, err := LoadCA(dir, ring, CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Root.Equal(root) {
		t.Error("loaded another root")
	}
	checkLeaf(t, loaded, "www.example.org")

	// Not replaced without Force; replaced with it.
	if _, err := InitCA(dir, ring, CAOptions{}); !errors.Is(err, ErrCAExists) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second init: %v", err)
	}
	again, err := InitCA(dir, ring, CAOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.Root.Equal(root) {
		t.Error("--force kept the old root")
	}
	if again.Root.Subject.CommonName != "Warden school root CA" {
		t.Errorf("unnamed school: %q", again.Root.Subject.CommonName)
	}
}

func TestLoadCAErrors(t *testing.T) {
	ring := testRing(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		ring  *keyring.Ring
		want  string
	}{
		{"no CA", func(t *testing.T, dir string) { os.RemoveAll(dir) }, ring, "root.crt"},
		{"no key", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, RootKeyFile)) }, ring, "root.key.sealed"},
		{"other master key", func(t *testing.T, dir string) {}, testRing(t), "root.key.sealed"},
		{"bad PEM", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, RootCertFile), []byte("not a certificate"), 0o644)
		}, ring, "no PEM CERTIFICATE"},
		{"not a CA", func(t *testing.T, dir string) {
			c := leafCert(t, ring)
			os.WriteFile(filepath.Join(dir, RootCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c}), 0o644)
		}, ring, "not a CA"},
		{"key of another CA", func(t *testing.T, dir string) {
			_, other := testCAWithRing(t, ring)
			data, _ := os.ReadFile(filepath.Join(other, RootKeyFile))
			os.WriteFile(filepath.Join(dir, RootKeyFile), data, 0o600)
		}, ring, "does not belong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir := testCAWithRing(t, ring)
			tt.setup(t, dir)
			_, err := LoadCA(dir, tt.ring, CAOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func testCAWithRing(t *testing.T, ring *keyring.Ring) (*CA, string) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := InitCA(dir, ring, CAOptions{SchoolName: "Test"})
	if err != nil {
		t.Fatal(err)
	}
	return ca, dir
}

// leafCert returns the DER of a minted (non-CA) certificate.
func leafCert(t *testing.T, ring *keyring.Ring) []byte {
	ca, _ := testCAWithRing(t, ring)
	c, err := ca.Certificate("leaf.example")
	if err != nil {
		t.Fatal(err)
	}
	return c.Certificate[0]
}

// checkLeaf mints for host and verifies the result as a TLS client
// would, returning the leaf.
func checkLeaf(t *testing.T, ca *CA, host string) *x509.Certificate {
	t.Helper()
	c, err := ca.Certificate(host)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || string(c.Certificate[1]) != string(ca.Root.Raw) {
		t.Errorf("%s: chain of %d, want leaf and root", host, len(c.Certificate))
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Trim(host, "[]")
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: rootPool(ca), CurrentTime: ca.now()}); err != nil {
		t.Errorf("%s: %v", host, err)
	}
	return leaf
}

func TestCertificate(t *testing.T) {
	now := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ca, _ := testCA(t, CAOptions{Now: clock})
	tests := []struct {
		host   string
		dns    string
		ip     string
		errHas string
	}{
		{host: "www.example.org", dns: "www.example.org"},
		{host: "WWW.Example.ORG.", dns: "www.example.org"},
		{host: "bücher.example", dns: "xn--bcher-kva.example"},
		{host: "192.0.2.10", ip: "192.0.2.10"},
		{host: "[2001:db8::1]", ip: "2001:db8::1"},
		{host: "::ffff:192.0.2.7", ip: "192.0.2.7"},
		{host: "", errHas: "mint"},
		{host: "bad host", errHas: "mint"},
		{host: "fe80::1%eth0", errHas: "zone"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			c, err := ca.Certificate(tt.host)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("got %v, want error with %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := x509.ParseCertificate(c.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if tt.dns != "" && (len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != tt.dns || len(leaf.IPAddresses) != 0) {
				t.Errorf("DNS %v IP %v, want %s", leaf.DNSNames, leaf.IPAddresses, tt.dns)
			}
			if tt.ip != "" && (len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP(tt.ip)) || len(leaf.DNSNames) != 0) {
				t.Errorf("DNS %v IP %v, want %s", leaf.DNSNames, leaf.IPAddresses, tt.ip)
			}
			verify := x509.VerifyOptions{DNSName: tt.dns + tt.ip, Roots: rootPool(ca), CurrentTime: now}
			if _, err := leaf.Verify(verify); err != nil {
				t.Error(err)
			}
			if !leaf.NotBefore.Equal(now.Add(-time.Hour)) || !leaf.NotAfter.Equal(now.Add(LeafValidity)) {
				t.Errorf("valid %v to %v", leaf.NotBefore, leaf.NotAfter)
			}
			if leaf.IsCA || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
				t.Errorf("IsCA %v ext key usage %v", leaf.IsCA, leaf.ExtKeyUsage)
			}
			if leaf.PublicKeyAlgorithm != x509.ECDSA {
				t.Errorf("key %v", leaf.PublicKeyAlgorithm)
			}
		})
	}
}

func TestCertificateCache(t *testing.T) {
	now := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	ca, _ := testCA(t, CAOptions{Now: func() time.Time { return now }, CacheSize: 2})
	a1, _ := ca.Certificate("a.example")
	a2, _ := ca.Certificate("A.example")
	if a1 != a2 || ca.Minted() != 1 {
		t.Errorf("second ask minted again (%d minted)", ca.Minted())
	}
	// Six days on, still cached; within a day of expiry, reminted.
	now = now.Add(5 * 24 * time.Hour)
	if c, _ := ca.Certificate("a.example"); c != a1 {
		t.Error("reminted with two days to run")
	}
	now = now.Add(24*time.Hour + time.Minute)
	a3, _ := ca.Certificate("a.example")
	if a3 == a1 || ca.Minted() != 2 {
		t.Error("not reminted within a day of expiry")
	}
	// The least recently used goes when the cache is full.
	ca.Certificate("b.example")
	ca.Certificate("a.example")
	ca.Certificate("c.example") // evicts b
	if ca.Cached() != 2 {
		t.Errorf("cache holds %d, bound 2", ca.Cached())
	}
	before := ca.Minted()
	ca.Certificate("a.example")
	if ca.Minted() != before {
		t.Error("a.example was evicted (it was used more recently than b)")
	}
	ca.Certificate("b.example")
	if ca.Minted() != before+1 {
		t.Error("b.example was not evicted")
	}
}

func TestCertificateConcurrent(t *testing.T) {
	ca, _ := testCA(t, CAOptions{})
	var wg sync.WaitGroup
	certs := make([]*tls.Certificate, 64)
	for i := range certs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ca.Certificate("same.example")
			if err != nil {
				t.Error(err)
			}
			certs[i] = c
		}()
	}
	wg.Wait()
	if ca.Minted() != 1 {
		t.Errorf("64 concurrent asks minted %d certificates", ca.Minted())
	}
	for _, c := range certs {
		if c != certs[0] {
			t.Fatal("callers got different certificates")
		}
	}
}

func TestLeafNeverOutlivesRoot(t *testing.T) {
	now := time.Now()
	ca, _ := testCA(t, CAOptions{Now: func() time.Time { return now }})
	now = ca.Root.NotAfter.Add(-48 * time.Hour)
	leaf := checkLeaf(t, ca, "late.example")
	if !leaf.NotAfter.Equal(ca.Root.NotAfter) {
		t.Errorf("leaf expires %v, root %v", leaf.NotAfter, ca.Root.NotAfter)
	}
	now = ca.Root.NotAfter.Add(time.Hour)
	if _, err := ca.Certificate("expired.example"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("minting after the root expired: %v", err)
	}
}

func TestGetCertificate(t *testing.T) {
	ca, _ := testCA(t, CAOptions{})
	get := ca.GetCertificate("connect.example")
	for sni, want := range map[string]string{"sni.example": "sni.example", "": "connect.example", "not a name!": "connect.example"} {
		c, err := get(&tls.ClientHelloInfo{ServerName: sni})
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		if leaf.DNSNames[0] != want {
			t.Errorf("SNI %q: certificate for %v, want %s", sni, leaf.DNSNames, want)
		}
	}
}

func TestRootName(t *testing.T) {
	long := strings.Repeat("Very Long School Name ", 10)
	if n := RootName(long); len([]rune(n)) > 64 || !strings.HasSuffix(n, "…)") {
		t.Errorf("RootName(long) = %q (%d)", n, len([]rune(n)))
	}
	if n := RootName("  St  Mary's \n C of E "); n != "Warden school root CA (St Mary's C of E)" {
		t.Errorf("RootName = %q", n)
	}
}

func TestFingerprint(t *testing.T) {
	ca, _ := testCA(t, CAOptions{})
	fp := Fingerprint(ca.Root)
	if len(fp) != 32*3-1 || strings.Count(fp, ":") != 31 || strings.ToUpper(fp) != fp {
		t.Errorf("fingerprint %q", fp)
	}
}

func BenchmarkMint(b *testing.B) {
	ca, _ := testCA(b, CAOptions{})
	name, ip, _ := leafName("www.example.org")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ca.mint(name, ip, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCertificateCached(b *testing.B) {
	ca, _ := testCA(b, CAOptions{})
	if _, err := ca.Certificate("www.example.org"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ca.Certificate("www.example.org"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
