package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/warden-schools/warden/internal/identity"
)

// serverUDPSize is the EDNS buffer size Warden offers clients.
const serverUDPSize = 1232

// queryTimeout bounds the whole chain for one question.
const queryTimeout = 5 * time.Second

// ServerOptions configure the listeners.
type ServerOptions struct {
	// Addr is HOST:PORT for both UDP and TCP.
	Addr string
	// Allowed are the source networks served; others are refused. Nil
	// means identity.LocalNetworks().
	Allowed []netip.Prefix
	// RateLimit is the queries per second one client address may make
	// (bursts of twice that); 0 means DefaultRateLimit, negative means
	// no limit.
	RateLimit int
}

// DefaultRateLimit is the per-client query rate unless configured: far
// above what a device needs, low enough that one misbehaving device
// cannot starve the rest.
const DefaultRateLimit = 500

// Server answers DNS over UDP and TCP with a Filter.
type Server struct {
	f       *Filter
	opts    ServerOptions
	limiter *limiter
	udp     *udpServer
	tcp     *dns.Server
	// UDPAddr and TCPAddr are the bound addresses, once listening.
	UDPAddr, TCPAddr net.Addr
}

// Listen binds the UDP and TCP sockets; Serve then answers on them.
func (f *Filter) Listen(opts ServerOptions) (*Server, error) {
	if opts.Allowed == nil {
		opts.Allowed = identity.LocalNetworks()
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	s := &Server{f: f, opts: opts}
	if opts.RateLimit > 0 {
		s.limiter = newLimiter(opts.RateLimit, f.now)
	}
	pc, ln, err := listenBoth(opts.Addr)
	if err != nil {
		return nil, err
	}
	s.UDPAddr, s.TCPAddr = pc.LocalAddr(), ln.Addr()
	s.udp = newUDPServer(pc.(*net.UDPConn), s)
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serveDNS), ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: func() time.Duration { return 30 * time.Second }}
	return s, nil
}

// listenBoth binds UDP and TCP on the same port. When the port is chosen
// by the system (":0"), the UDP port it picks may be taken for TCP, so a
// few ports are tried.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns listen udp %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || attempt == 20 {
			return nil, nil, fmt.Errorf("dns listen tcp %s: %w", pc.LocalAddr(), err)
		}
	}
}

// Serve answers until ctx is cancelled.
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		errc <- s.udp.serve(ctx)
	}()
	go func() {
		defer wg.Done()
		errc <- s.tcp.ActivateAndServe()
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	shutdown, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_ = s.tcp.ShutdownContext(shutdown)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("dns server: %w", err)
	}
	return nil
}

func (s *Server) allowed(a netip.Addr) bool {
	for _, p := range s.opts.Allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// serveDNS answers one message over TCP (UDP has its own loop, udp.go).
func (s *Server) serveDNS(w dns.ResponseWriter, r *dns.Msg) {
	if resp := s.answer(identity.ClientAddr(w.RemoteAddr()), "tcp", r); resp != nil {
		_ = w.WriteMsg(resp)
	}
}

// answer builds the response to one client message, or nil to stay
// silent.
func (s *Server) answer(client netip.Addr, proto string, r *dns.Msg) *dns.Msg {
	if r.Response {
		return nil // never answer answers (reflection)
	}
	if !s.allowed(client) || s.limiter != nil && !s.limiter.allow(client) {
		if len(r.Question) == 1 {
			s.f.metrics.query(r.Question[0].Qtype, idxRefused)
		}
		return refuse(r, dns.RcodeRefused)
	}
	if ok, bad := Check(r); !ok {
		return bad
	}
	return s.f.Handle(context.Background(), &Request{Msg: r, Client: client, Protocol: proto, Start: s.f.now()})
}

// Handle answers one well-formed query (one question, opcode QUERY) that
// a transport has accepted from an allowed client, whatever the
// transport: UDP and TCP here, DNS-over-HTTPS and DNS-over-TLS too. It
// runs the chain with a time limit, answers SERVFAIL when no answer could
// be had, and sets the header and EDNS for the client; truncation is the
// transport's business.
func (f *Filter) Handle(ctx context.Context, req *Request) *dns.Msg {
	r := req.Msg
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	m, err := f.Resolve(ctx, req)
	if err != nil || m == nil {
		if err != nil && !errors.Is(err, context.Canceled) {
			f.log.Debug("query_failed", "name", req.Name(), "err", err)
		}
		m = refuse(r, dns.RcodeServerFailure)
	}
	m.Id = r.Id
	m.Response, m.RecursionAvailable = true, true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	m.Question = r.Question
	setEDNS(m, r)
	f.count(req.Qtype(), m.Rcode, &req.Decision)
	if f.opts.Events != nil {
		f.record(req.Start, req.Protocol, req.Client, &req.Subject, &req.Decision, req.Name(), req.Qtype(), m.Rcode, req.Upstream)
	}
	return m
}

// Check says whether a client message can be answered by Handle; if not,
// it returns the error answer (NOTIMP, FORMERR, BADVERS) to send instead,
// or nil to stay silent.
func Check(r *dns.Msg) (ok bool, errAnswer *dns.Msg) {
	if r.Response {
		return false, nil // never answer answers (reflection)
	}
	if r.Opcode != dns.OpcodeQuery {
		return false, refuse(r, dns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 {
		return false, refuse(r, dns.RcodeFormatError)
	}
	if opt := r.IsEdns0(); opt != nil && opt.Version() != 0 {
		m := refuse(r, dns.RcodeBadVers)
		m.SetEdns0(serverUDPSize, false)
		return false, m
	}
	return true, nil
}

// refuse answers with an error code and no records.
func refuse(r *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = true
	if len(r.Question) > 1 {
		m.Question = nil
	}
	return m
}

// setEDNS gives the response an OPT record exactly when the query had
// one, with Warden's buffer size and the DO bit echoed, keeping an
// Extended DNS Error Warden added.
func setEDNS(m, r *dns.Msg) {
	var keep []dns.EDNS0
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			for _, o := range opt.Option {
				if _, ok := o.(*dns.EDNS0_EDE); ok {
					keep = append(keep, o)
				}
			}
			continue
		}
		extra = append(extra, rr)
	}
	m.Extra = extra
	if ropt := r.IsEdns0(); ropt != nil {
		m.SetEdns0(serverUDPSize, ropt.Do())
		m.IsEdns0().Option = keep
	}
}

// limiter is a token bucket per client address.
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	now     func() time.Time
	buckets map[netip.Addr]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(perSecond int, now func() time.Time) *limiter {
	return &limiter{rate: float64(perSecond), burst: 2 * float64(perSecond), now: now, buckets: map[netip.Addr]*bucket{}}
}

func (l *limiter) allow(a netip.Addr) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		// Forget clients that have been quiet long enough to be full.
		for k, b := range l.buckets {
			if now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[a]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[a] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
