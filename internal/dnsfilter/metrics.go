package dnsfilter

import (
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Query outcomes, the "decision" label of warden_dns_queries_total.
const (
	outcomeAllow   = "allow"
	outcomeBlock   = "block"
	outcomeError   = "error"
	outcomeRefused = "refused"
)

var outcomes = []string{outcomeAllow, outcomeBlock, outcomeError, outcomeRefused}

// metricTypes are the question types with their own label value; the
// rest count as "other", so a client cannot grow the label set.
var metricTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeCNAME, dns.TypeMX, dns.TypeTXT,
	dns.TypeNS, dns.TypePTR, dns.TypeSRV, dns.TypeSOA, dns.TypeCAA, dns.TypeDS, dns.TypeDNSKEY, dns.TypeANY}

// metrics are the DNS filter's Prometheus metrics, all named warden_dns_.
// Counters for the common label values are resolved once, so counting a
// query is an array index and an atomic add.
type metrics struct {
	typeIndex map[uint16]int
	queries   [][]prometheus.Counter // [type index][outcome]
	blocked   *prometheus.CounterVec
	upstream  *prometheus.HistogramVec
	upErrors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, c *cache) (*metrics, error) {
	m := &metrics{typeIndex: map[uint16]int{}}
	queries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_dns_queries_total", Help: "DNS questions answered, by question type and decision (allow, block, error, refused).",
	}, []string{"qtype", "decision"})
	m.blocked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_dns_blocked_total", Help: "DNS questions blocked, by the category that blocked them.",
	}, []string{"category"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "warden_dns_upstream_duration_seconds", Help: "Time upstream resolvers took to answer.",
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 15), // 0.25 ms to 4 s
	}, []string{"upstream"})
	m.upErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_dns_upstream_errors_total", Help: "Upstream attempts that failed (timeout, error, SERVFAIL or REFUSED).",
	}, []string{"upstream"})
	hits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "warden_dns_cache_hits_total", Help: "Questions answered from the cache.",
	}, func() float64 { h, _, _ := c.Stats(); return float64(h) })
	misses := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "warden_dns_cache_misses_total", Help: "Questions the cache could not answer.",
	}, func() float64 { _, mi, _ := c.Stats(); return float64(mi) })
	ratio := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "warden_dns_cache_hit_ratio", Help: "Share of cacheable questions answered from the cache since start.",
	}, func() float64 {
		h, mi, _ := c.Stats()
		if h+mi == 0 {
			return 0
		}
		return float64(h) / float64(h+mi)
	})
	prefetches := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "warden_dns_cache_prefetches_total", Help: "Popular cache entries refreshed before they expired.",
	}, func() float64 { _, _, p := c.Stats(); return float64(p) })
	for _, col := range []prometheus.Collector{queries, m.blocked, m.upstream, m.upErrors, hits, misses, ratio, prefetches} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(metricTypes)+1)
	for i, t := range metricTypes {
		m.typeIndex[t] = i
		names = append(names, dns.TypeToString[t])
	}
	names = append(names, "other")
	for _, n := range names {
		row := make([]prometheus.Counter, len(outcomes))
		for j, o := range outcomes {
			row[j] = queries.WithLabelValues(n, o)
		}
		m.queries = append(m.queries, row)
	}
	return m, nil
}

func (m *metrics) query(qtype uint16, outcome int) {
	if m == nil {
		return
	}
	i, ok := m.typeIndex[qtype]
	if !ok {
		i = len(m.queries) - 1
	}
	m.queries[i][outcome].Inc()
}

func (m *metrics) blockedBy(category string) {
	if m == nil {
		return
	}
	if category == "" {
		category = "none"
	}
	m.blocked.WithLabelValues(category).Inc()
}

func (m *metrics) upstreamAnswered(addr string, d time.Duration) {
	if m != nil {
		m.upstream.WithLabelValues(addr).Observe(d.Seconds())
	}
}

func (m *metrics) upstreamFailed(addr string) {
	if m != nil {
		m.upErrors.WithLabelValues(addr).Inc()
	}
}

// outcome indexes for metrics.query, in the order of outcomes.
const (
	idxAllow = iota
	idxBlock
	idxError
	idxRefused
)
