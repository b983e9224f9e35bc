package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCAInitShow(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	r := mustWarden(t, "ca", "init", "--data", data, "--name", "Hillside Primary")
	for _, want := range []string{
		filepath.Join(data, "ca", "root.crt"), filepath.Join(data, "ca", "root.cer"), "Warden school root CA (Hillside Primary)",
		"Back it up", "Group Policy", "Intune", "configuration profile", "Google Admin console", "HTTPS certificate authority", "MDM",
		"inspect: true",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ca init output lacks %q:\n%s", want, r.stdout)
		}
	}
	pemData, err := os.ReadFile(filepath.Join(data, "ca", "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatal("root.crt is not PEM")
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(root.Raw)
	fp := strings.ToUpper(strings.Join(strings.Split(fmt.Sprintf("% x", sum[:]), " "), ":"))
	if !strings.Contains(r.stdout, fp) {
		t.Errorf("ca init does not print the fingerprint %s", fp)
	}
	if fi, err := os.Stat(filepath.Join(data, "master.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("master key: %v %v", fi, err)
	}

	show := mustWarden(t, "ca", "show", "--data", data)
	for _, want := range []string{"Warden school root CA (Hillside Primary)", fp, root.NotAfter.Local().Format("2006-01-02"), "days left", "opens with"} {
		if !strings.Contains(show.stdout, want) {
			t.Errorf("ca show output lacks %q:\n%s", want, show.stdout)
		}
	}

	// Not replaced without --force; replaced with it, keeping the master key.
	again := warden(t, "ca", "init", "--data", data)
	if again.code != 1 || !strings.Contains(again.stderr, "--force") {
		t.Errorf("second ca init: exit %d, stderr %s", again.code, again.stderr)
	}
	key, _ := os.ReadFile(filepath.Join(data, "master.key"))
	forced := mustWarden(t, "ca", "init", "--data", data, "--force")
	if strings.Contains(forced.stdout, fp) || strings.Contains(forced.stdout, "Back it up") {
		t.Errorf("--force kept the old root or made a new master key:\n%s", forced.stdout)
	}
	if key2, _ := os.ReadFile(filepath.Join(data, "master.key")); string(key2) != string(key) {
		t.Error("--force replaced the master key")
	}

	// A lost master key is reported by show.
	os.Rename(filepath.Join(data, "master.key"), filepath.Join(data, "master.key.bak"))
	lost := warden(t, "ca", "show", "--data", data)
	if lost.code != 1 || !strings.Contains(lost.stdout, "UNUSABLE") || !strings.Contains(lost.stderr, "master key") {
		t.Errorf("show without the master key: exit %d\n%s\n%s", lost.code, lost.stdout, lost.stderr)
	}
}

func TestCAUsage(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ca"}, 2, "give init or show"},
		{[]string{"ca", "rotate"}, 2, "unknown subcommand"},
		{[]string{"ca", "init", "extra", "--data", data}, 2, "unexpected argument"},
		{[]string{"ca", "show", "--data", data}, 1, "warden ca init"},
	}
	for _, tt := range tests {
		r := warden(t, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("warden %v: exit %d, stderr %q; want %d with %q", tt.args, r.code, r.stderr, tt.code, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "master.key")); err == nil {
		t.Error("a failed command created a master key")
	}
}
