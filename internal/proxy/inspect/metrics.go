package inspect

import "github.com/prometheus/client_golang/prometheus"

// metrics are the inspector's Prometheus metrics, all named
// warden_proxy_inspect_.
type metrics struct {
	intercepted   prometheus.Counter
	handshakeFail prometheus.Counter
	bypassed      *prometheus.CounterVec
	requests      [2]prometheus.Counter // allow, block
	verifyFail    prometheus.Counter
	upstreamFail  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, ca *CA) (*metrics, error) {
	m := &metrics{
		intercepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_proxy_inspect_connections_total", Help: "CONNECT tunnels intercepted for TLS inspection.",
		}),
		handshakeFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_proxy_inspect_handshake_failures_total", Help: "Intercepted tunnels whose client TLS handshake failed (often: the school root is not installed on the device).",
		}),
		bypassed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_proxy_inspect_bypassed_total", Help: "Allowed CONNECTs not inspected, by reason (host, category).",
		}, []string{"reason"}),
		verifyFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_proxy_inspect_upstream_verify_failures_total", Help: "Requests refused because the site's certificate did not verify.",
		}),
		upstreamFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_proxy_inspect_upstream_errors_total", Help: "Requests that failed upstream for reasons other than the certificate (502).",
		}),
	}
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_proxy_inspect_requests_total", Help: "Requests decided inside intercepted tunnels, by decision.",
	}, []string{"decision"})
	m.requests[0] = reqs.WithLabelValues("allow")
	m.requests[1] = reqs.WithLabelValues("block")
	minted := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "warden_proxy_inspect_certificates_minted_total", Help: "Certificates minted by the school CA.",
	}, func() float64 { return float64(ca.Minted()) })
	cached := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "warden_proxy_inspect_certificates_cached", Help: "Minted certificates kept for reuse.",
	}, func() float64 { return float64(ca.Cached()) })
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.intercepted, m.handshakeFail, m.bypassed, reqs, m.verifyFail, m.upstreamFail, minted, cached} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
