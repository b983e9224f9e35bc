package app

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/config"
	"github.com/warden-schools/warden/internal/wardentest"
)

// writeStamped writes data to path, stamped with mod as its
// modification time.
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
	first := wardentest.NewCert(t, "first.example")
	writeStamped(t, files.CertFile, first.CertPEM, day)
	writeStamped(t, files.KeyFile, first.KeyPEM, day)
	third := wardentest.NewCert(t, "third.example")
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
			second := wardentest.NewCert(t, "second.example")
			writeStamped(t, files.CertFile, second.CertPEM, day.Add(time.Hour))
			writeStamped(t, files.KeyFile, second.KeyPEM, day.Add(time.Hour))
		}, time.Second, "first.example"},
		{"renewal picked up at the next check", func() {}, certCheckInterval, "second.example"},
		{"new certificate before its key: the old one stays", func() {
			writeStamped(t, files.CertFile, third.CertPEM, day.Add(2*time.Hour))
		}, certCheckInterval, "second.example"},
		{"still mismatched: tried again, logged once", func() {}, certCheckInterval, "second.example"},
		{"the key arrives", func() {
			// A matching pair, as the renewal finishes writing.
			writeStamped(t, files.CertFile, third.CertPEM, day.Add(3*time.Hour))
			writeStamped(t, files.KeyFile, third.KeyPEM, day.Add(3*time.Hour))
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
	certA, _ := wardentest.NewCert(t, "first.example").WriteFiles(t, dir)
	_, keyB := wardentest.NewCert(t, "other.example").WriteFiles(t, dir)
	if _, err := newCertReloader(config.TLS{CertFile: certA, KeyFile: keyB}, slog.New(slog.DiscardHandler), time.Now); err == nil ||
		!strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched pair at start: %v", err)
	}
}
