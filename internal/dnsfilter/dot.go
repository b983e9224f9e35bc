package dnsfilter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/identity"
)

// DoTOptions configure the DNS-over-TLS listener.
type DoTOptions struct {
	// Addr is HOST:PORT (port 853 by convention).
	Addr string
	// TLS is the server's TLS configuration, with its certificate
	// (Certificates or GetCertificate).
	TLS *tls.Config
	// Allowed and RateLimit are as in ServerOptions, for clients
	// identified by address. Clients identified by a device token in the
	// server name may ask from anywhere, limited per device.
	Allowed   []netip.Prefix
	RateLimit int
}

// DoTServer answers DNS-over-TLS (RFC 7858) with a Filter.
//
// A client is identified by its address, with the same source networks
// and rate limit as the TCP listener, unless the first label of the
// server name it asked for in the TLS handshake (SNI) is a device token:
// then the token identifies the device wherever it is. That is how a
// device whose settings take only a host name (Android's "Private DNS")
// carries its token: TOKEN.dns.school.example, with a wildcard
// certificate and DNS record for *.dns.school.example. A revoked token
// counts for nothing: the client is then judged by its address.
type DoTServer struct {
	f       *Filter
	opts    DoTOptions
	limiter *limiter
	srv     *dns.Server
	// Addr is the bound address, once listening.
	Addr net.Addr
}

// ListenDoT binds the DNS-over-TLS socket; Serve then answers on it.
func (f *Filter) ListenDoT(opts DoTOptions) (*DoTServer, error) {
	if opts.TLS == nil || len(opts.TLS.Certificates) == 0 && opts.TLS.GetCertificate == nil {
		return nil, errors.New("dns-over-tls: no certificate")
	}
	if opts.Allowed == nil {
		opts.Allowed = identity.LocalNetworks()
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	s := &DoTServer{f: f, opts: opts}
	if opts.RateLimit > 0 {
		s.limiter = newLimiter(opts.RateLimit, f.now)
	}
	cfg := opts.TLS.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("dns-over-tls listen %s: %w", opts.Addr, err)
	}
	s.Addr = ln.Addr()
	s.srv = &dns.Server{
		Listener: tls.NewListener(ln, cfg), Net: "tcp-tls", Handler: dns.HandlerFunc(s.serveDNS),
		// As for plain TCP; the handshake happens within the first read.
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		IdleTimeout: func() time.Duration { return 30 * time.Second },
	}
	return s, nil
}

// Serve answers until ctx is cancelled.
func (s *DoTServer) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	started := make(chan struct{})
	s.srv.NotifyStartedFunc = func() { close(started) }
	go func() { errc <- s.srv.ActivateAndServe() }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("dns-over-tls server: %w", err)
	}
	// A server that has not started yet cannot be shut down.
	select {
	case <-started:
	case err := <-errc:
		return fmt.Errorf("dns-over-tls server: %w", err)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.ShutdownContext(shutdown)
	<-errc
	return nil
}

// serveDNS handles one message from a client.
func (s *DoTServer) serveDNS(w dns.ResponseWriter, r *dns.Msg) {
	var serverName string
	if cs, ok := w.(dns.ConnectionStater); ok {
		if st := cs.ConnectionState(); st != nil {
			serverName = st.ServerName
		}
	}
	if resp := s.answer(identity.ClientAddr(w.RemoteAddr()), serverName, r); resp != nil {
		_ = w.WriteMsg(resp)
	}
}

// answer builds the response to one client message, or nil to stay
// silent.
func (s *DoTServer) answer(client netip.Addr, serverName string, r *dns.Msg) *dns.Msg {
	if r.Response {
		return nil // never answer answers (reflection)
	}
	sub, byToken := s.identify(serverName, client)
	key := client
	if byToken {
		key = deviceKey(sub.DeviceID)
	}
	if !byToken && !allowedBy(s.opts.Allowed, client) || s.limiter != nil && !s.limiter.allow(key) {
		if len(r.Question) == 1 {
			s.f.metrics.query(r.Question[0].Qtype, idxRefused)
		}
		return refuse(r, dns.RcodeRefused)
	}
	if ok, bad := Check(r); !ok {
		return bad
	}
	// A zero Subject is filled in by the chain's identify stage from the
	// address.
	return s.f.Handle(context.Background(), &Request{Msg: r, Client: client, Protocol: "dot", Start: s.f.now(), Subject: sub})
}

// identify finds a device token in the server name's first label (DNS
// names ignore case) and looks it up.
func (s *DoTServer) identify(serverName string, client netip.Addr) (identity.Subject, bool) {
	label, _, _ := strings.Cut(serverName, ".")
	label = strings.ToLower(label)
	if !identity.ValidToken(label) {
		return identity.Subject{}, false
	}
	tab := s.f.opts.Identity()
	if tab == nil {
		return identity.Subject{}, false
	}
	return tab.ByToken(label, client)
}

// allowedBy reports whether one of the networks holds a.
func allowedBy(networks []netip.Prefix, a netip.Addr) bool {
	for _, p := range networks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Close releases the socket of a server that will not Serve.
func (s *DoTServer) Close() error { return s.srv.Listener.Close() }
