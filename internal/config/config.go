// Package config holds Warden's bootstrap configuration: where the data
// lives, which database, which addresses to listen on, upstream resolvers
// and logging. It is read from an optional YAML file and then flags;
// unknown keys are rejected, defaults live in Default, and Validate
// reports every problem with its field path before anything starts.
// Policy, lists and people are not configuration: they live in the store.
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the bootstrap configuration.
type Config struct {
	// DataDir holds the database and everything else Warden writes.
	DataDir string `yaml:"data_dir"`
	// Database says which store to use.
	Database Database `yaml:"database"`
	// Listen holds the listener addresses; empty disables a listener.
	Listen Listen `yaml:"listen"`
	// PublicURL is the base URL people and devices reach the web
	// listener at, such as https://warden.school.example; device set-up
	// (the DNS-over-HTTPS URL) is printed with it. Empty means the web
	// listener's own address.
	PublicURL string `yaml:"public_url"`
	// TLS holds the certificate for HTTPS on the web listener (and so
	// DNS-over-HTTPS) and for DNS-over-TLS.
	TLS TLS `yaml:"tls"`
	// Upstreams are the DNS resolvers allowed queries are forwarded to.
	Upstreams []string `yaml:"upstreams"`
	// ProxyAllowLoopback lets the proxy reach loopback destinations; for
	// tests and benchmarks only.
	ProxyAllowLoopback bool `yaml:"proxy_allow_loopback"`
	// DNS configures the DNS filter.
	DNS DNS `yaml:"dns"`
	// Proxy configures the web proxy (on when listen.proxy is set).
	Proxy Proxy `yaml:"proxy"`
	// Lists configures updates of the category lists.
	Lists Lists `yaml:"lists"`
	// Log sets logging.
	Log Log `yaml:"log"`
	// Demo seeds the demonstration school into an empty data folder.
	Demo bool `yaml:"demo"`
}

// Lists configures list updates.
type Lists struct {
	// UpdateURL is where the UT1 set is downloaded from, on a schedule
	// (UpdateEvery) and by the console's update button.
	UpdateURL string `yaml:"update_url"`
	// UpdateEvery is how often warden serve updates from UpdateURL; 0
	// means only when asked. At least an hour.
	UpdateEvery time.Duration `yaml:"update_every"`
}

// Database selects the store.
type Database struct {
	// Engine is "sqlite" (default) or "postgres".
	Engine string `yaml:"engine"`
	// Path is the SQLite file; default DATA_DIR/warden.db.
	Path string `yaml:"path"`
}

// Listen holds listener addresses (HOST:PORT).
type Listen struct {
	HTTP  string `yaml:"http"`
	DNS   string `yaml:"dns"`
	Proxy string `yaml:"proxy"`
	// DoT is DNS-over-TLS (RFC 7858, normally port 853); it needs the
	// certificate in TLS.
	DoT string `yaml:"dot"`
}

// TLS names a certificate and its private key, PEM files (the
// certificate file may hold the chain after it). Both or neither are
// set; a running server picks up new files without a restart.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether a certificate is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Load reads and checks the certificate and key: both files readable,
// the key matching the certificate. Errors name the field. It is
// separate from Validate because the key is often readable only by the
// server's own user, not by whoever runs the other commands.
func (t TLS) Load() (tls.Certificate, error) {
	var errs []error
	certPEM, err := os.ReadFile(t.CertFile)
	if err != nil {
		errs = append(errs, fmt.Errorf("tls.cert_file: %w", err))
	}
	keyPEM, err := os.ReadFile(t.KeyFile)
	if err != nil {
		errs = append(errs, fmt.Errorf("tls.key_file: %w", err))
	}
	if len(errs) > 0 {
		return tls.Certificate{}, errors.Join(errs...)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %s and %s: %w", t.CertFile, t.KeyFile, err)
	}
	return cert, nil
}

// DNS configures the DNS filter.
type DNS struct {
	// BlockMode is how blocked names are answered: "blockpage" (the
	// default: the block page's address), "nxdomain" or "null".
	BlockMode string `yaml:"block_mode"`
	// BlockIPv4 and BlockIPv6 are the addresses clients reach the block
	// page at; the default is the web listener's address when it listens
	// on one address.
	BlockIPv4 string `yaml:"block_ipv4"`
	BlockIPv6 string `yaml:"block_ipv6"`
	// AllowNetworks are the client networks served (CIDR); the default is
	// loopback and the private ranges. Others are refused.
	AllowNetworks []string `yaml:"allow_networks"`
	// RateLimit is queries per second per client (0: the default, 500;
	// -1: no limit).
	RateLimit int `yaml:"rate_limit"`
	// Conditional forwards a domain and its subdomains to its own
	// servers, e.g. the school's Active Directory domain.
	Conditional map[string][]string `yaml:"conditional"`
	// CacheEntries bounds the answer cache (0: 100,000; at most
	// MaxCacheEntries).
	CacheEntries int `yaml:"cache_entries"`
	// DoTHostname is the name devices use for DNS-over-TLS, such as
	// dns.school.example. A device with a token uses TOKEN.DOT_HOSTNAME
	// (Android's "Private DNS" takes only a name), which needs a wildcard
	// certificate and DNS record for *.DOT_HOSTNAME.
	DoTHostname string `yaml:"dot_hostname"`
	// NoQueryLog turns off recording every query in the access log (it is
	// on by default; monitoring needs it).
	NoQueryLog bool `yaml:"no_query_log"`
}

// Proxy configures the web proxy.
type Proxy struct {
	// AllowNetworks are the client networks served (CIDR); the default is
	// loopback and the private ranges. Others are refused: Warden is never
	// an open proxy.
	AllowNetworks []string `yaml:"allow_networks"`
	// ConnectPorts are the ports CONNECT may reach (default: 443 only).
	ConnectPorts []int `yaml:"connect_ports"`
	// RequireAuth answers clients that do not authenticate (Basic, with a
	// device token as the password) with 407; otherwise they are known by
	// their address, or get the unknown-client policy.
	RequireAuth bool `yaml:"require_auth"`
	// Address is the HOST:PORT devices use for the proxy, written into
	// proxy.pac and wpad.dat. The default is the public URL's host (or
	// the web listener's address) with the proxy listener's port.
	Address string `yaml:"address"`
	// LocalNetworks are the networks the PAC file sends direct, not
	// through the proxy (default: the private ranges).
	LocalNetworks []string `yaml:"local_networks"`
	// MaxBodyBytes limits a request's body (0: no limit).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Inspect turns on TLS inspection: HTTPS through the proxy is opened
	// with certificates from the school CA (run warden ca init first and
	// install its root on the school's devices).
	Inspect bool `yaml:"inspect"`
	// BypassHosts are domains (with their subdomains) never inspected, on
	// top of the built-in list of hosts that pin their certificates.
	BypassHosts []string `yaml:"bypass_hosts"`
	// BypassCategories are categories never inspected (default: banking).
	BypassCategories []string `yaml:"bypass_categories"`
}

// Log sets the log level ("debug", "info", "warn", "error") and format
// ("text" or "json").
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		DataDir:  "./warden-data",
		Database: Database{Engine: "sqlite"},
		Listen:   Listen{HTTP: "127.0.0.1:8080"},
		Log:      Log{Level: "info", Format: "text"},
	}
}

// Load reads a YAML file over the defaults. Unknown keys are errors.
func Load(path string) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// DatabasePath returns the SQLite file path.
func (c Config) DatabasePath() string {
	if c.Database.Path != "" {
		return c.Database.Path
	}
	return filepath.Join(c.DataDir, "warden.db")
}

// MaxCacheEntries bounds dns.cache_entries: ten million answers take
// over a gigabyte, more than a school's resolver has any use for.
const MaxCacheEntries = 10_000_000

// Validate checks the configuration and returns every problem found,
// each with its field path.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	}
	switch c.Database.Engine {
	case "sqlite", "":
	case "postgres":
		errs = append(errs, errors.New("database.engine: postgres is not available in this build yet; use sqlite"))
	default:
		errs = append(errs, fmt.Errorf("database.engine: %q is not sqlite or postgres", c.Database.Engine))
	}
	for name, addr := range map[string]string{"listen.http": c.Listen.HTTP, "listen.dns": c.Listen.DNS, "listen.proxy": c.Listen.Proxy, "listen.dot": c.Listen.DoT} {
		if addr == "" {
			continue
		}
		if err := checkHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	errs = append(errs, c.validateTLS()...)
	for i, u := range c.Upstreams {
		if err := checkUpstream(u); err != nil {
			errs = append(errs, fmt.Errorf("upstreams[%d]: %w", i, err))
		}
	}
	switch c.DNS.BlockMode {
	case "", "blockpage", "nxdomain", "null":
	default:
		errs = append(errs, fmt.Errorf("dns.block_mode: %q is not blockpage, nxdomain or null", c.DNS.BlockMode))
	}
	for name, v := range map[string]string{"dns.block_ipv4": c.DNS.BlockIPv4, "dns.block_ipv6": c.DNS.BlockIPv6} {
		if v == "" {
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil || (name == "dns.block_ipv4") != a.Is4() {
			errs = append(errs, fmt.Errorf("%s: %q is not an IPv%s address", name, v, strings.TrimPrefix(name, "dns.block_ipv")))
		}
	}
	for i, n := range c.DNS.AllowNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			errs = append(errs, fmt.Errorf("dns.allow_networks[%d]: %q is not a network such as 10.0.0.0/8", i, n))
		}
	}
	if c.DNS.RateLimit < -1 {
		errs = append(errs, fmt.Errorf("dns.rate_limit: %d (use -1 for no limit)", c.DNS.RateLimit))
	}
	if c.DNS.CacheEntries < 0 || c.DNS.CacheEntries > MaxCacheEntries {
		errs = append(errs, fmt.Errorf("dns.cache_entries: %d is not between 0 (the default, 100,000) and %d", c.DNS.CacheEntries, MaxCacheEntries))
	}
	for domain, servers := range c.DNS.Conditional {
		if len(servers) == 0 {
			errs = append(errs, fmt.Errorf("dns.conditional.%s: no servers", domain))
		}
		for i, srv := range servers {
			if err := checkUpstream(srv); err != nil {
				errs = append(errs, fmt.Errorf("dns.conditional.%s[%d]: %w", domain, i, err))
			}
		}
	}
	errs = append(errs, c.Proxy.validate()...)
	if u := c.Lists.UpdateURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			errs = append(errs, fmt.Errorf("lists.update_url: %q is not an http or https address", u))
		}
	}
	switch e := c.Lists.UpdateEvery; {
	case e < 0 || (e > 0 && e < time.Hour):
		errs = append(errs, fmt.Errorf("lists.update_every: %s (at least 1h, or 0 for no schedule)", e))
	case e > 0 && c.Lists.UpdateURL == "":
		errs = append(errs, errors.New("lists.update_every: set lists.update_url too"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}

// validate checks the proxy settings.
func (p Proxy) validate() []error {
	var errs []error
	for i, n := range p.AllowNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			errs = append(errs, fmt.Errorf("proxy.allow_networks[%d]: %q is not a network such as 10.0.0.0/8", i, n))
		}
	}
	for i, n := range p.LocalNetworks {
		if pr, err := netip.ParsePrefix(n); err != nil || !pr.Addr().Is4() {
			errs = append(errs, fmt.Errorf("proxy.local_networks[%d]: %q is not an IPv4 network such as 10.0.0.0/8", i, n))
		}
	}
	for i, port := range p.ConnectPorts {
		if port <= 0 || port > 65535 {
			errs = append(errs, fmt.Errorf("proxy.connect_ports[%d]: %d is not a port", i, port))
		}
	}
	if p.Address != "" {
		if host, _, err := net.SplitHostPort(p.Address); err != nil || host == "" || checkHostPort(p.Address) != nil {
			errs = append(errs, fmt.Errorf("proxy.address: %q is not HOST:PORT such as warden.school.example:3128", p.Address))
		}
	}
	if p.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("proxy.max_body_bytes: %d is negative (0: no limit)", p.MaxBodyBytes))
	}
	for i, h := range p.BypassHosts {
		if h = strings.TrimPrefix(strings.ToLower(h), "*."); !validHostname(h) {
			errs = append(errs, fmt.Errorf("proxy.bypass_hosts[%d]: %q is not a domain such as bank.example", i, p.BypassHosts[i]))
		}
	}
	return errs
}

// validateTLS checks the certificate settings and what depends on them;
// the files themselves are read by TLS.Load.
func (c Config) validateTLS() []error {
	var errs []error
	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		errs = append(errs, errors.New("tls.key_file: set it with tls.cert_file (the certificate's private key)"))
	case c.TLS.CertFile == "" && c.TLS.KeyFile != "":
		errs = append(errs, errors.New("tls.cert_file: set it with tls.key_file"))
	}
	if c.Listen.DoT != "" && !c.TLS.Enabled() {
		errs = append(errs, errors.New("listen.dot: DNS-over-TLS needs a certificate (tls.cert_file and tls.key_file)"))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			errs = append(errs, fmt.Errorf("public_url: %q is not a URL such as https://warden.school.example", c.PublicURL))
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			errs = append(errs, fmt.Errorf("public_url: %q: give the scheme, host and port only", c.PublicURL))
		}
	}
	if h := c.DNS.DoTHostname; h != "" {
		if !validHostname(h) {
			errs = append(errs, fmt.Errorf("dns.dot_hostname: %q is not a host name such as dns.school.example", h))
		}
		if c.Listen.DoT == "" {
			errs = append(errs, errors.New("dns.dot_hostname: set listen.dot too (DNS-over-TLS is off)"))
		}
	}
	return errs
}

// validHostname accepts a lower-case DNS name with room for a device
// token's label in front.
func validHostname(h string) bool {
	if len(h) > 253-64 || strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
	}
	return true
}

// checkUpstream checks a resolver address: HOST:PORT (or udp:// or
// tcp://HOST:PORT), tls://HOST[:PORT][#NAME] for DNS-over-TLS, or an
// https:// URL for DNS-over-HTTPS.
func checkUpstream(u string) error {
	switch {
	case strings.HasPrefix(u, "https://"):
		parsed, err := url.Parse(u)
		if err != nil || parsed.Host == "" {
			return fmt.Errorf("%q is not a DNS-over-HTTPS URL", u)
		}
		return nil
	case strings.HasPrefix(u, "tls://"):
		hostport, _, _ := strings.Cut(strings.TrimPrefix(u, "tls://"), "#")
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), "853")
		}
		return checkHostPort(hostport)
	case strings.HasPrefix(u, "udp://"), strings.HasPrefix(u, "tcp://"):
		return checkHostPort(u[len("udp://"):])
	case strings.Contains(u, "://"):
		return fmt.Errorf("%q: want HOST:PORT, tcp://, tls:// or https://", u)
	}
	return checkHostPort(u)
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT: %w", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: bad port %q", addr, port)
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: bad host %q", addr, host)
	}
	return nil
}
