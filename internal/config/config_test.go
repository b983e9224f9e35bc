package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "warden.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	cfg, err := Load(write(t, "data_dir: /srv/warden\nlisten:\n  http: 0.0.0.0:8080\n  dns: :53\nupstreams: [192.0.2.53:53]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/srv/warden" || cfg.Listen.DNS != ":53" || cfg.Listen.HTTP != "0.0.0.0:8080" || len(cfg.Upstreams) != 1 {
		t.Fatalf("cfg = %+v", cfg)
	}
	if cfg.Log.Level != "info" {
		t.Errorf("default log level lost: %q", cfg.Log.Level)
	}
	if cfg.DatabasePath() != "/srv/warden/warden.db" {
		t.Errorf("database path = %q", cfg.DatabasePath())
	}
}

func TestLoadEmptyFile(t *testing.T) {
	cfg, err := Load(write(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != Default().DataDir {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	_, err := Load(write(t, "data_dir: x\nlisten:\n  htp: :8080\n"))
	if err == nil || !strings.Contains(err.Error(), "htp") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Default()
	cfg.DataDir = ""
	cfg.Listen.DNS = "53"
	cfg.Upstreams = []string{"192.0.2.1:53", "nope"}
	cfg.Log.Level = "loud"
	cfg.Database.Engine = "mysql"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"data_dir", "listen.dns", "upstreams[1]", "log.level", "database.engine"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "upstreams[0]") {
		t.Errorf("good upstream reported: %v", err)
	}
}

func TestValidateDNS(t *testing.T) {
	cfg := Default()
	cfg.DNS = DNS{BlockMode: "drop", BlockIPv4: "::1", BlockIPv6: "10.0.0.1", AllowNetworks: []string{"10.0.0.0/8", "lan"},
		RateLimit: -5, CacheEntries: MaxCacheEntries + 1, Conditional: map[string][]string{"school.internal": {"10.0.0.5"}}}
	err := cfg.Validate()
	for _, want := range []string{"dns.block_mode", "dns.block_ipv4", "dns.block_ipv6", "dns.allow_networks[1]", "dns.rate_limit", "dns.cache_entries", "dns.conditional.school.internal[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
	cfg.DNS = DNS{BlockMode: "nxdomain", BlockIPv4: "10.0.0.1", BlockIPv6: "fd00::1", AllowNetworks: []string{"10.0.0.0/8"}, CacheEntries: 500_000,
		Conditional: map[string][]string{"school.internal": {"10.0.0.5:53"}}}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

func TestValidateProxy(t *testing.T) {
	cfg := Default()
	cfg.Proxy = Proxy{AllowNetworks: []string{"10.0.0.0/8", "school"}, LocalNetworks: []string{"fd00::/8"}, ConnectPorts: []int{443, 70000},
		Address: "3128", MaxBodyBytes: -1, BypassHosts: []string{"*.bank.example", "not a host"}}
	err := cfg.Validate()
	for _, want := range []string{"proxy.allow_networks[1]", "proxy.local_networks[0]", "proxy.connect_ports[1]", "proxy.address",
		"proxy.max_body_bytes", "proxy.bypass_hosts[1]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "bypass_hosts[0]") {
		t.Errorf("*.bank.example refused: %v", err)
	}
	cfg.Proxy = Proxy{AllowNetworks: []string{"10.0.0.0/8"}, LocalNetworks: []string{"10.0.0.0/8"}, ConnectPorts: []int{443, 8443},
		Address: "warden.school.example:3128", BypassHosts: []string{"bank.example"}, Inspect: true}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

func TestUpstreamForms(t *testing.T) {
	for _, u := range []string{"192.0.2.53:53", "udp://192.0.2.53:53", "tcp://[2001:db8::53]:53", "tls://1.1.1.1#cloudflare-dns.com",
		"tls://dns.quad9.net:853", "https://dns.quad9.net/dns-query"} {
		if err := checkUpstream(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"192.0.2.53", "quic://dns.example:853", "https://", "tcp://nope"} {
		if err := checkUpstream(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func TestLists(t *testing.T) {
	cfg, err := Load(write(t, "lists:\n  update_url: https://dsi.ut-capitole.fr/blacklists/download/blacklists.tar.gz\n  update_every: 24h\n"))
	if err != nil || cfg.Lists.UpdateEvery != 24*time.Hour || !strings.HasSuffix(cfg.Lists.UpdateURL, "blacklists.tar.gz") {
		t.Fatalf("lists: %+v %v", cfg.Lists, err)
	}
	for _, tc := range []struct {
		l    Lists
		want string
	}{
		{Lists{UpdateURL: "ftp://x/y"}, "lists.update_url"},
		{Lists{UpdateURL: "https://x/y", UpdateEvery: time.Minute}, "at least 1h"},
		{Lists{UpdateEvery: 24 * time.Hour}, "set lists.update_url too"},
	} {
		c := Default()
		c.Lists = tc.l
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
}
