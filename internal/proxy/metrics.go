package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Method classes, the "method" label of warden_proxy_requests_total; the
// rest count as "other", so clients cannot grow the label set.
const (
	mGet = iota
	mHead
	mPost
	mPut
	mConnect
	mOther
	numMethods
)

var methodNames = [numMethods]string{"get", "head", "post", "put", "connect", "other"}

func methodClass(m string) int {
	switch m {
	case "GET":
		return mGet
	case "HEAD":
		return mHead
	case "POST":
		return mPost
	case "PUT":
		return mPut
	case "CONNECT":
		return mConnect
	}
	return mOther
}

// Request outcomes, the "decision" label: allowed, blocked by policy,
// refused (bad request, forbidden destination or port, not
// authenticated), or failed (the web server could not be reached or
// broke off).
const (
	oAllow = iota
	oBlock
	oRefused
	oError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"allow", "block", "refused", "error"}

// metrics are the proxy's Prometheus metrics, all named warden_proxy_.
// Counters for every label pair are resolved once, so counting a request
// is an array index and an atomic add.
type metrics struct {
	requests [numMethods][numOutcomes]prometheus.Counter
	blocked  *prometheus.CounterVec
	active   prometheus.Gauge
	refused  prometheus.Counter
	dials    prometheus.Counter
	reused   prometheus.Counter
	latency  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, pl *pool) (*metrics, error) {
	m := &metrics{}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_proxy_requests_total", Help: "Proxy requests, by method (get, head, post, put, connect, other) and decision (allow, block, refused, error).",
	}, []string{"method", "decision"})
	m.blocked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_proxy_blocked_total", Help: "Proxy requests blocked by policy, by the category that blocked them.",
	}, []string{"category"})
	m.active = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "warden_proxy_client_connections", Help: "Client connections open now.",
	})
	m.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_proxy_refused_connections_total", Help: "Client connections closed at once because they came from outside the allowed networks.",
	})
	m.dials = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_proxy_upstream_dials_total", Help: "New connections made to web servers.",
	})
	m.reused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_proxy_upstream_reused_total", Help: "Requests sent on a pooled keep-alive connection to a web server.",
	})
	idle := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "warden_proxy_upstream_idle_connections", Help: "Idle keep-alive connections to web servers in the pool.",
	}, func() float64 { return float64(pl.idleCount()) })
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "warden_proxy_response_header_seconds", Help: "Time from a request's head to its response head (block pages included).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17), // 0.1 ms to 6.5 s
	})
	for _, c := range []prometheus.Collector{requests, m.blocked, m.active, m.refused, m.dials, m.reused, idle, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for i, mn := range methodNames {
		for j, on := range outcomeNames {
			m.requests[i][j] = requests.WithLabelValues(mn, on)
		}
	}
	return m, nil
}

func (m *metrics) request(method string, outcome int, latency time.Duration) {
	if m == nil {
		return
	}
	m.requests[methodClass(method)][outcome].Inc()
	m.latency.Observe(latency.Seconds())
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

func (m *metrics) connOpened() {
	if m != nil {
		m.active.Inc()
	}
}

func (m *metrics) connClosed() {
	if m != nil {
		m.active.Dec()
	}
}

func (m *metrics) refusedConn() {
	if m != nil {
		m.refused.Inc()
	}
}

func (m *metrics) dialed() {
	if m != nil {
		m.dials.Inc()
	}
}

func (m *metrics) reusedConn() {
	if m != nil {
		m.reused.Inc()
	}
}
