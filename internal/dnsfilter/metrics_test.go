package dnsfilter

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/warden-schools/warden/internal/wardentest"
)

// value returns a gathered counter or gauge's value for the given labels.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return wardentest.MetricValue(t, reg, name, labels)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := offlineServer(t)
	m, err := newMetrics(reg, s.f.cache)
	if err != nil {
		t.Fatal(err)
	}
	s.f.metrics = m
	client := netip.MustParseAddr("127.0.0.1")
	ask := func(name string, qtype uint16, from netip.Addr) {
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		s.answer(from, "udp", q)
	}
	ask("www.bet365.com.", dns.TypeA, client)
	ask("www.bet365.com.", dns.TypeHTTPS, client)
	ask("example.org.", dns.TypeA, client)
	ask("example.org.", dns.TypeA, client)
	ask("example.org.", dns.TypeNAPTR, client)
	ask("example.org.", dns.TypeA, netip.MustParseAddr("203.0.113.9")) // not an allowed source

	for _, c := range []struct {
		qtype, decision string
		want            float64
	}{{"A", "block", 1}, {"HTTPS", "block", 1}, {"A", "allow", 2}, {"other", "allow", 1}, {"A", "refused", 1}} {
		if got := value(t, reg, "warden_dns_queries_total", map[string]string{"qtype": c.qtype, "decision": c.decision}); got != c.want {
			t.Errorf("queries{%s,%s} = %v, want %v", c.qtype, c.decision, got, c.want)
		}
	}
	if got := value(t, reg, "warden_dns_blocked_total", map[string]string{"category": "gambling"}); got != 2 {
		t.Errorf("blocked{gambling} = %v", got)
	}
	// Two example.org A questions and one NAPTR reached the cache.
	if hits, misses := value(t, reg, "warden_dns_cache_hits_total", nil), value(t, reg, "warden_dns_cache_misses_total", nil); hits != 1 || misses != 2 {
		t.Errorf("cache hits=%v misses=%v", hits, misses)
	}
	if r := value(t, reg, "warden_dns_cache_hit_ratio", nil); r < 0.33 || r > 0.34 {
		t.Errorf("hit ratio = %v", r)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "warden_dns_") {
			t.Errorf("metric %s is not named warden_dns_*", mf.GetName())
		}
	}
}
