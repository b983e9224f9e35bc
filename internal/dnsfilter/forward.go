package dnsfilter

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreamUDPSize is the EDNS buffer size offered to upstreams (the DNS
// flag day 2020 value, which avoids IP fragmentation).
const upstreamUDPSize = 1232

// Health: after failThreshold failures in a row an upstream is rested for
// a back-off that doubles up to maxBackoff; it is still tried, last, if
// every other upstream fails too.
const (
	failThreshold = 3
	maxBackoff    = 30 * time.Second
)

// ErrNoUpstream is returned when no upstream could answer.
var ErrNoUpstream = errors.New("no upstream resolver answered")

// Pooled UDP sockets: up to poolSize idle sockets per upstream are kept
// for reuse instead of opening one per question; each is retired after
// socketUses questions, so the source port keeps changing (off-path
// spoofing must guess port and id).
const (
	poolSize   = 256
	socketUses = 100
)

type pooledConn struct {
	*dns.Conn
	uses int
}

// Upstream kinds.
const (
	kindUDP = iota // UDP, TCP when an answer is truncated
	kindTCP        // TCP only
	kindDoT        // DNS-over-TLS (RFC 7858)
	kindDoH        // DNS-over-HTTPS (RFC 8484)
)

type upstream struct {
	addr      string
	kind      int
	udp, tcp  *dns.Client
	pool      chan *pooledConn // idle UDP sockets, or idle TLS connections for DoT
	doh       *http.Client
	dohURL    string
	fails     atomic.Int32
	downUntil atomic.Int64 // Unix nanoseconds
	answered  atomic.Uint64
	failed    atomic.Uint64
}

// parseUpstream reads an upstream: "HOST:PORT" (UDP, with TCP for
// truncated answers), "tcp://HOST:PORT", "tls://HOST[:PORT][#NAME]"
// (DNS-over-TLS, port 853 by default, NAME the certificate's name when
// HOST is an address) or "https://HOST[:PORT]/PATH" (DNS-over-HTTPS).
// Certificates are checked against roots (the system's when nil).
func parseUpstream(s string, timeout time.Duration, roots *x509.CertPool) (*upstream, error) {
	u := &upstream{}
	addr := s
	switch {
	case strings.HasPrefix(s, "https://"):
		parsed, err := url.Parse(s)
		if err != nil || parsed.Host == "" {
			return nil, fmt.Errorf("upstream %q: not a DNS-over-HTTPS URL", s)
		}
		u.kind, u.addr, u.dohURL = kindDoH, s, s
		u.doh = &http.Client{Timeout: timeout, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}}
		return u, nil
	case strings.HasPrefix(s, "tls://"):
		rest := strings.TrimPrefix(s, "tls://")
		rest, name, _ := strings.Cut(rest, "#")
		if _, _, err := net.SplitHostPort(rest); err != nil {
			rest = net.JoinHostPort(strings.Trim(rest, "[]"), "853")
		}
		host, _, _ := net.SplitHostPort(rest)
		if name == "" {
			if net.ParseIP(host) != nil {
				return nil, fmt.Errorf("upstream %q: give the certificate's name after '#', e.g. tls://1.1.1.1#cloudflare-dns.com", s)
			}
			name = host
		}
		u.kind, addr = kindDoT, rest
		u.tcp = &dns.Client{Net: "tcp-tls", Timeout: timeout, TLSConfig: &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12}}
	case strings.HasPrefix(s, "udp://"):
		addr = strings.TrimPrefix(s, "udp://")
	case strings.HasPrefix(s, "tcp://"):
		addr, u.kind = strings.TrimPrefix(s, "tcp://"), kindTCP
	case strings.Contains(s, "://"):
		return nil, fmt.Errorf("upstream %q: want HOST:PORT, tcp://, tls:// or https://", s)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("upstream %q: want HOST:PORT", s)
	}
	u.addr = net.JoinHostPort(host, port)
	u.pool = make(chan *pooledConn, poolSize)
	u.udp = &dns.Client{Net: "udp", Timeout: timeout, UDPSize: upstreamUDPSize}
	if u.tcp == nil {
		u.tcp = &dns.Client{Net: "tcp", Timeout: timeout}
	}
	return u, nil
}

type route struct {
	suffix string // "school.internal"
	ups    []*upstream
}

// forwarder is the last stage: it asks upstream resolvers.
type forwarder struct {
	chained
	ups     []*upstream
	routes  []route // longest suffix first
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics // nil: none
}

func newForwarder(upstreams []string, conditional map[string][]string, timeout time.Duration, roots *x509.CertPool, log *slog.Logger, now func() time.Time) (*forwarder, error) {
	f := &forwarder{timeout: timeout, log: log, now: now}
	for _, s := range upstreams {
		u, err := parseUpstream(s, timeout, roots)
		if err != nil {
			return nil, err
		}
		f.ups = append(f.ups, u)
	}
	for domain, servers := range conditional {
		d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
		if d == "" || len(servers) == 0 {
			return nil, fmt.Errorf("conditional forwarding for %q: need a domain and at least one server", domain)
		}
		r := route{suffix: d}
		for _, s := range servers {
			u, err := parseUpstream(s, timeout, roots)
			if err != nil {
				return nil, fmt.Errorf("conditional forwarding for %s: %w", d, err)
			}
			r.ups = append(r.ups, u)
		}
		f.routes = append(f.routes, r)
	}
	sort.Slice(f.routes, func(i, j int) bool { return len(f.routes[i].suffix) > len(f.routes[j].suffix) })
	return f, nil
}

// pool returns the upstreams for a name: a conditional route's servers,
// or the general upstreams.
func (f *forwarder) pool(name string) []*upstream {
	for _, r := range f.routes {
		if name == r.suffix || strings.HasSuffix(name, "."+r.suffix) {
			return r.ups
		}
	}
	return f.ups
}

// order puts healthy upstreams first, in their configured order, then
// rested ones.
func (f *forwarder) order(pool []*upstream) []*upstream {
	now := f.now().UnixNano()
	out := make([]*upstream, 0, len(pool))
	for _, u := range pool {
		if u.downUntil.Load() <= now {
			out = append(out, u)
		}
	}
	for _, u := range pool {
		if u.downUntil.Load() > now {
			out = append(out, u)
		}
	}
	return out
}

func (f *forwarder) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	q := req.Msg.Copy()
	q.Id = dns.Id()
	q.RecursionDesired = true
	if opt := q.IsEdns0(); opt != nil {
		opt.SetUDPSize(upstreamUDPSize)
		opt.Option = nil // client options (cookies, padding) stay between client and Warden
	} else {
		q.SetEdns0(upstreamUDPSize, false)
	}
	var last *dns.Msg
	var lastErr error
	for _, u := range f.order(f.pool(req.Name())) {
		if ctx.Err() != nil {
			break
		}
		began := time.Now()
		resp, err := f.exchange(ctx, u, q)
		if err == nil {
			f.metrics.upstreamAnswered(u.addr, time.Since(began))
		}
		if err != nil {
			lastErr = err
			f.failed(u, err)
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			// This upstream could not help; another may.
			last = resp
			f.failed(u, fmt.Errorf("answered %s", dns.RcodeToString[resp.Rcode]))
			continue
		}
		f.succeeded(u)
		req.Upstream = u.addr
		return resp, nil
	}
	if last != nil {
		return last, nil
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, fmt.Errorf("%w: %v", ErrNoUpstream, lastErr)
}

// exchange asks one upstream, over UDP and then TCP if the answer was
// truncated.
func (f *forwarder) exchange(ctx context.Context, u *upstream, q *dns.Msg) (*dns.Msg, error) {
	actx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	switch u.kind {
	case kindDoH:
		return u.exchangeDoH(actx, q)
	case kindDoT:
		return u.exchangeDoT(actx, q)
	}
	if u.kind == kindUDP {
		resp, err := u.exchangeUDP(actx, q)
		if err != nil {
			return nil, err
		}
		if !resp.Truncated {
			return resp, nil
		}
	}
	resp, _, err := u.tcp.ExchangeContext(actx, q, u.addr)
	if err != nil {
		return nil, err
	}
	if err := sameQuestion(q, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// exchangeUDP asks over a pooled UDP socket. A socket that saw an error
// (a timeout may leave a late answer behind) is closed, not reused.
func (u *upstream) exchangeUDP(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	var pc *pooledConn
	select {
	case pc = <-u.pool:
	default:
		conn, err := net.Dial("udp", u.addr)
		if err != nil {
			return nil, err
		}
		pc = &pooledConn{Conn: &dns.Conn{Conn: conn, UDPSize: upstreamUDPSize}}
	}
	resp, _, err := u.udp.ExchangeWithConnContext(ctx, q, pc.Conn)
	if err == nil {
		err = sameQuestion(q, resp)
	}
	pc.uses++
	if err != nil || pc.uses >= socketUses {
		pc.Close()
	} else {
		select {
		case u.pool <- pc:
		default:
			pc.Close()
		}
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// exchangeDoT asks over a reused TLS connection (opening one when none
// is idle). A connection the server closed while idle fails on first
// use; the question is then asked once more on a fresh connection.
func (u *upstream) exchangeDoT(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	for attempt := 0; ; attempt++ {
		var pc *pooledConn
		reused := false
		select {
		case pc = <-u.pool:
			reused = true
		default:
			co, err := u.tcp.DialContext(ctx, u.addr)
			if err != nil {
				return nil, err
			}
			pc = &pooledConn{Conn: co}
		}
		resp, _, err := u.tcp.ExchangeWithConnContext(ctx, q, pc.Conn)
		if err == nil {
			err = sameQuestion(q, resp)
		}
		if err != nil {
			pc.Close()
			if reused && attempt == 0 && ctx.Err() == nil {
				continue
			}
			return nil, err
		}
		select {
		case u.pool <- pc:
		default:
			pc.Close()
		}
		return resp, nil
	}
}

// exchangeDoH posts the question (with id 0, as RFC 8484 asks, so that
// HTTP caches can share answers) and reads the answer.
func (u *upstream) exchangeDoH(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	id := q.Id
	q.Id = 0
	body, err := q.Pack()
	q.Id = id
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.dohURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/dns-message")
	req.Header.Set("Accept", "application/dns-message")
	resp, err := u.doh.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("DNS-over-HTTPS upstream answered HTTP %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/dns-message" {
		return nil, fmt.Errorf("DNS-over-HTTPS upstream answered %q, not application/dns-message", ct)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize+1))
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	if err := m.Unpack(data); err != nil {
		return nil, fmt.Errorf("DNS-over-HTTPS answer: %w", err)
	}
	if err := sameQuestion(q, m); err != nil {
		return nil, err
	}
	m.Id = id
	return m, nil
}

// sameQuestion checks that an answer is for the question asked (its id
// is checked when it is read).
func sameQuestion(q, r *dns.Msg) error {
	if len(r.Question) != 1 || r.Question[0].Qtype != q.Question[0].Qtype || r.Question[0].Qclass != q.Question[0].Qclass ||
		!strings.EqualFold(r.Question[0].Name, q.Question[0].Name) {
		return errors.New("answer is not for the question asked")
	}
	return nil
}

func (f *forwarder) failed(u *upstream, err error) {
	u.failed.Add(1)
	f.metrics.upstreamFailed(u.addr)
	n := u.fails.Add(1)
	if n >= failThreshold {
		backoff := time.Second << min(n-failThreshold, 5)
		if backoff > maxBackoff {
			backoff = maxBackoff
		}
		if u.downUntil.Swap(f.now().Add(backoff).UnixNano()) == 0 || n == failThreshold {
			f.log.Warn("upstream_down", "upstream", u.addr, "failures", n, "retry_in", backoff.String(), "err", err)
		}
	}
}

func (f *forwarder) succeeded(u *upstream) {
	u.answered.Add(1)
	if u.fails.Swap(0) >= failThreshold {
		f.log.Info("upstream_up", "upstream", u.addr)
	}
	u.downUntil.Store(0)
}
