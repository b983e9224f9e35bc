package app

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/config"
)

// writeTestCert writes a new self-signed certificate for name (and
// 127.0.0.1) with its key as PEM files, stamped with mod as their
// modification time, and returns a pool that trusts it.
func writeTestCert(t *testing.T, certFile, keyFile, name string, mod time.Time) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name, "*." + name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if certFile != "" {
		writeStamped(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), mod)
	}
	if keyFile != "" {
		writeStamped(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), mod)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return pool
}

func writeStamped(t *testing.T, path string, data []byte, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	files := config.TLS{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	day := time.Date(2026, 9, 1, 3, 0, 0, 0, time.UTC)
	writeTestCert(t, files.CertFile, files.KeyFile, "first.example", day)
	now := day
	var logs bytes.Buffer
	r, err := newCertReloader(files, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		c, err := r.getCertificate(nil)
		if err != nil || c == nil || c.Leaf == nil {
			t.Fatalf("getCertificate = %v, %v", c, err)
		}
		return c.Leaf.Subject.CommonName
	}
	steps := []struct {
		name    string
		change  func()
		advance time.Duration
		want    string
	}{
		{"loaded at start", func() {}, 0, "first.example"},
		{"renewed, not yet looked at", func() {
			writeTestCert(t, files.CertFile, files.KeyFile, "second.example", day.Add(time.Hour))
		}, time.Second, "first.example"},
		{"renewal picked up at the next check", func() {}, certCheckInterval, "second.example"},
		{"new certificate before its key: the old one stays", func() {
			writeTestCert(t, files.CertFile, "", "third.example", day.Add(2*time.Hour))
		}, certCheckInterval, "second.example"},
		{"still mismatched: tried again, logged once", func() {}, certCheckInterval, "second.example"},
		{"the key arrives", func() {
			// A matching pair, as the renewal finishes writing.
			writeTestCert(t, files.CertFile, files.KeyFile, "third.example", day.Add(3*time.Hour))
		}, certCheckInterval, "third.example"},
		{"files gone: the certificate in use stays", func() {
			os.Remove(files.CertFile)
		}, certCheckInterval, "third.example"},
	}
	for _, st := range steps {
		st.change()
		now = now.Add(st.advance)
		if got := served(); got != st.want {
			t.Errorf("%s: serving %s, want %s", st.name, got, st.want)
		}
	}
	if n := strings.Count(logs.String(), "does not match"); n != 1 {
		t.Errorf("mismatched key logged %d times:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "certificate_reloaded"); n != 2 {
		t.Errorf("%d reloads logged:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "tls.cert_file") {
		t.Errorf("missing file not logged:\n%s", logs.String())
	}

	// A bad pair at start is an error naming the problem.
	_, keyB := filepath.Join(dir, "b.crt"), filepath.Join(dir, "b.key")
	writeTestCert(t, "", keyB, "other.example", day)
	writeTestCert(t, files.CertFile, "", "first.example", day)
	if _, err := newCertReloader(config.TLS{CertFile: files.CertFile, KeyFile: keyB}, slog.New(slog.DiscardHandler), time.Now); err == nil ||
		!strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched pair at start: %v", err)
	}
}
