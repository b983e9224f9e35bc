package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/wardentest"
)

func TestValidateTLS(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Config)
		want string // "" = valid
	}{
		{"no certificate", func(c *Config) {}, ""},
		{"both files", func(c *Config) { c.TLS = TLS{CertFile: "a.crt", KeyFile: "a.key"} }, ""},
		{"certificate without key", func(c *Config) { c.TLS.CertFile = "a.crt" }, "tls.key_file"},
		{"key without certificate", func(c *Config) { c.TLS.KeyFile = "a.key" }, "tls.cert_file"},
		{"DoT without certificate", func(c *Config) { c.Listen.DoT = "0.0.0.0:853" }, "listen.dot: DNS-over-TLS needs a certificate"},
		{"DoT with certificate", func(c *Config) {
			c.Listen.DoT = ":853"
			c.TLS = TLS{CertFile: "a.crt", KeyFile: "a.key"}
			c.DNS.DoTHostname = "dns.school.example"
		}, ""},
		{"DoT bad address", func(c *Config) {
			c.Listen.DoT = "853"
			c.TLS = TLS{CertFile: "a.crt", KeyFile: "a.key"}
		}, "listen.dot"},
		{"DoT host name without DoT", func(c *Config) { c.DNS.DoTHostname = "dns.school.example" }, "dns.dot_hostname: set listen.dot"},
		{"DoT host name not a name", func(c *Config) {
			c.Listen.DoT = ":853"
			c.TLS = TLS{CertFile: "a.crt", KeyFile: "a.key"}
			c.DNS.DoTHostname = "dns..school.example"
		}, "dns.dot_hostname"},
		{"DoT host name with upper case", func(c *Config) {
			c.Listen.DoT = ":853"
			c.TLS = TLS{CertFile: "a.crt", KeyFile: "a.key"}
			c.DNS.DoTHostname = "DNS.school.example"
		}, "dns.dot_hostname"},
		{"public URL", func(c *Config) { c.PublicURL = "https://warden.school.example:8443" }, ""},
		{"public URL without scheme", func(c *Config) { c.PublicURL = "warden.school.example" }, "public_url"},
		{"public URL with a query", func(c *Config) { c.PublicURL = "https://warden.school.example/?x=1" }, "public_url"},
		{"public URL ftp", func(c *Config) { c.PublicURL = "ftp://warden.school.example" }, "public_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.set(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one about %s", err, tt.want)
			}
		})
	}
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := wardentest.NewCert(t, "a.example").WriteFiles(t, dir)
	_, keyB := wardentest.NewCert(t, "b.example").WriteFiles(t, dir)
	tests := []struct {
		name string
		tls  TLS
		want []string // "" = loads
	}{
		{"matching pair", TLS{CertFile: certA, KeyFile: keyA}, nil},
		{"key of another certificate", TLS{CertFile: certA, KeyFile: keyB}, []string{"tls:", "does not match"}},
		{"missing files", TLS{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: filepath.Join(dir, "nope.key")},
			[]string{"tls.cert_file", "tls.key_file", "no such file"}},
		{"key given as certificate", TLS{CertFile: keyA, KeyFile: keyA}, []string{"tls:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := tt.tls.Load()
			if tt.want == nil {
				if err != nil || len(cert.Certificate) != 1 {
					t.Fatalf("Load = %d certificates, %v", len(cert.Certificate), err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadTLSKeys(t *testing.T) {
	cfg, err := Load(write(t, "public_url: https://warden.school.example\nlisten:\n  dot: 0.0.0.0:853\ntls:\n  cert_file: /etc/warden/tls.crt\n  key_file: /etc/warden/tls.key\ndns:\n  dot_hostname: dns.school.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.DoT != "0.0.0.0:853" || cfg.TLS.CertFile != "/etc/warden/tls.crt" || cfg.TLS.KeyFile != "/etc/warden/tls.key" ||
		cfg.DNS.DoTHostname != "dns.school.example" || cfg.PublicURL != "https://warden.school.example" {
		t.Errorf("cfg = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}
