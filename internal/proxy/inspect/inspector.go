package inspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
)

// Default limits and timeouts.
const (
	// DefaultHandshakeTimeout bounds the client's TLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a client connection idle this long.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultDialTimeout bounds connecting to a site.
	DefaultDialTimeout = 10 * time.Second
	// DefaultResponseHeaderTimeout bounds waiting for a site's response
	// headers once the request is sent.
	DefaultResponseHeaderTimeout = 60 * time.Second
	// DefaultMaxHeaderBytes bounds a request's headers.
	DefaultMaxHeaderBytes = 64 << 10
)

// Options configure an Inspector.
type Options struct {
	// CA mints the certificates shown to clients. Required.
	CA *CA
	// Policy returns the snapshot in force, read for every request.
	// Required.
	Policy func() *policy.Snapshot
	// Dial connects to sites: the proxy's guarded dialer, which refuses
	// destinations Warden must not reach. Nil means a net.Dialer with
	// DefaultDialTimeout (tests only).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verify sites' certificates; nil means the system roots.
	RootCAs *x509.CertPool
	// BypassCategories are categories never inspected; nil means
	// DefaultBypassCategories. A host is bypassed if any list holding it
	// carries one.
	BypassCategories []string
	// BypassHosts are domains (with subdomains) never inspected, on top
	// of DefaultBypassHosts; the server adds Warden's own names.
	BypassHosts []string
	// Events, if set, receives one event per request; it must not block.
	Events func(events.Event) bool
	// BlockPage renders the block page; nil means a plain built-in page.
	BlockPage func(Blocked) []byte
	// Metrics, if set, is where the inspector registers its metrics
	// (warden_proxy_inspect_*).
	Metrics prometheus.Registerer
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Limits and timeouts; zero means the Default of each.
	HandshakeTimeout      time.Duration
	ReadHeaderTimeout     time.Duration
	IdleTimeout           time.Duration
	ResponseHeaderTimeout time.Duration
	MaxHeaderBytes        int
}

// Inspector intercepts TLS in allowed CONNECT tunnels. It has the method
// set of the proxy's Inspector interface. It is safe for concurrent use.
type Inspector struct {
	opts        Options
	log         *slog.Logger
	now         func() time.Time
	bypassHosts hostSet
	bypassCats  map[string]bool
	catBypass   bypassState
	transport   *http.Transport
	rp          *httputil.ReverseProxy
	h2          *http2.Server
	metrics     *metrics
}

// New checks opts and returns an Inspector.
func New(opts Options) (*Inspector, error) {
	if opts.CA == nil {
		return nil, errors.New("inspect: no CA (run warden ca init)")
	}
	if opts.Policy == nil {
		return nil, errors.New("inspect: no policy")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{Timeout: DefaultDialTimeout}).DialContext
	}
	if opts.BypassCategories == nil {
		opts.BypassCategories = DefaultBypassCategories()
	}
	setDefault(&opts.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&opts.IdleTimeout, DefaultIdleTimeout)
	setDefault(&opts.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	in := &Inspector{opts: opts, log: opts.Logger.With("component", "proxy-inspect"), now: opts.Now, bypassCats: map[string]bool{}}
	var err error
	if in.bypassHosts, err = newHostSet(append(DefaultBypassHosts(), opts.BypassHosts...)); err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	for _, c := range opts.BypassCategories {
		in.bypassCats[c] = true
	}
	if in.metrics, err = newMetrics(opts.Metrics, opts.CA); err != nil {
		return nil, fmt.Errorf("inspect metrics: %w", err)
	}
	in.transport = &http.Transport{
		// No Proxy: the inspector is the proxy.
		DialContext:           in.dialUpstream,
		TLSClientConfig:       &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   opts.HandshakeTimeout,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   16,
		// Bodies pass as the site sent them.
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	in.rp = &httputil.ReverseProxy{
		Rewrite:        in.rewrite,
		Transport:      in.transport,
		FlushInterval:  100 * time.Millisecond,
		ErrorLog:       slog.NewLogLogger(in.log.Handler(), slog.LevelDebug),
		ErrorHandler:   in.upstreamError,
		ModifyResponse: in.modifyResponse,
		BufferPool:     &bufferPool{},
	}
	in.h2 = &http2.Server{IdleTimeout: opts.IdleTimeout, MaxConcurrentStreams: 250}
	return in, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Close closes idle upstream connections.
func (in *Inspector) Close() { in.transport.CloseIdleConnections() }

// Inspect reports whether a CONNECT to host (no port) is to be
// intercepted, whatever its decision: a blocked host is intercepted too,
// so that the browser shows the block page rather than a connection
// error, and URL-level exceptions under it (an approved YouTube video)
// apply. Not intercepted: a host that is, or is under, a bypass host, or
// that a list with a bypass category holds.
func (in *Inspector) Inspect(host string, d policy.Decision, who identity.Subject) bool {
	h, err := lists.NormalizeHost(host)
	if err != nil {
		return false // the proxy refuses hosts that are not names
	}
	if in.bypassHosts.contains(h) {
		in.metrics.bypassed.WithLabelValues("host").Inc()
		return false
	}
	if in.bypassCats[d.Category] {
		in.metrics.bypassed.WithLabelValues("category").Inc()
		return false
	}
	snap := in.opts.Policy()
	if snap == nil {
		return true // no policy: every request inside is refused
	}
	cb := in.bypassCategories(snap)
	var ms lists.Matches
	snap.Lists().MatchHost(h, &ms)
	for _, m := range ms.All() {
		if int(m.List) < len(cb.bypass) && cb.bypass[m.List] {
			in.metrics.bypassed.WithLabelValues("category").Inc()
			return false
		}
	}
	return true
}

// ServeTLS takes over client, a connection on which the proxy has already
// replied "200 Connection established" to CONNECT target (host:port); it
// terminates TLS with a minted certificate, serves the requests inside,
// and returns when the connection is done, having closed it.
//
// The certificate is for the client's SNI name, or the CONNECT host when
// it sends none. A client that names a host other than the CONNECT host
// (in SNI or Host) is still inspected, each request decided by its own
// host: a bypass host reached that way is inspected rather than let
// through unseen.
func (in *Inspector) ServeTLS(ctx context.Context, client net.Conn, target string, who identity.Subject, clientIP netip.Addr) {
	defer client.Close()
	host, port, err := net.SplitHostPort(target)
	if err != nil || port == "" {
		in.log.Warn("inspect_bad_target", "target", target, "client", clientIP)
		return
	}
	connectHost, _, err := leafName(host)
	if err != nil {
		in.log.Warn("inspect_bad_target", "target", target, "client", clientIP)
		return
	}
	in.metrics.intercepted.Inc()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tc := tls.Server(client, &tls.Config{
		GetCertificate: in.opts.CA.GetCertificate(connectHost),
		NextProtos:     []string{"h2", "http/1.1"},
		MinVersion:     tls.VersionTLS12,
	})
	// Closing the connection when ctx ends (server shutdown) ends every
	// phase below.
	stop := context.AfterFunc(ctx, func() { tc.Close() })
	defer stop()

	hsCtx, hsCancel := context.WithTimeout(ctx, in.opts.HandshakeTimeout)
	err = tc.HandshakeContext(hsCtx)
	hsCancel()
	if err != nil {
		in.metrics.handshakeFail.Inc()
		in.log.Debug("inspect_handshake_failed", "target", target, "client", clientIP, "err", err)
		return
	}
	st := tc.ConnectionState()
	s := &session{in: in, target: target, connectHost: connectHost, port: port, sni: st.ServerName, who: who, clientIP: clientIP}
	if st.NegotiatedProtocol == "h2" {
		in.h2.ServeConn(tc, &http2.ServeConnOpts{Context: ctx, Handler: s, BaseConfig: in.baseServer(ctx, s)})
		return
	}
	srv := in.baseServer(ctx, s)
	ln := newConnListener(tc)
	srv.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateClosed || state == http.StateHijacked {
			ln.Close()
		}
	}
	_ = srv.Serve(ln)
	s.wg.Wait() // a hijacked (upgraded) connection still being relayed
}

// baseServer returns the HTTP/1.1 server (and HTTP/2's base settings)
// for one connection.
func (in *Inspector) baseServer(ctx context.Context, s *session) *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: in.opts.ReadHeaderTimeout,
		IdleTimeout:       in.opts.IdleTimeout,
		MaxHeaderBytes:    in.opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(in.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// HTTP/2 is served above, never by this server.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
}

// targetKey carries the CONNECT target to dialUpstream.
type targetKey struct{}

// dialUpstream connects to the CONNECT target of the request that asked
// for the connection, through the proxy's guarded dialer. The transport
// pools connections by the request's host, whose certificate they were
// verified for.
func (in *Inspector) dialUpstream(ctx context.Context, network, addr string) (net.Conn, error) {
	if t, ok := ctx.Value(targetKey{}).(string); ok && t != "" {
		addr = t
	}
	dctx, cancel := context.WithTimeout(ctx, DefaultDialTimeout)
	defer cancel()
	return in.opts.Dial(dctx, network, addr)
}

// connListener is a net.Listener that yields one connection, then blocks
// until closed, so an http.Server serves exactly that connection.
type connListener struct {
	conn net.Conn
	mu   sync.Mutex
	used bool
	done chan struct{}
	once sync.Once
}

func newConnListener(c net.Conn) *connListener {
	return &connListener{conn: c, done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if !l.used {
		l.used = true
		l.mu.Unlock()
		return l.conn, nil
	}
	l.mu.Unlock()
	<-l.done
	return nil, net.ErrClosed
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.conn.LocalAddr() }

// bufferPool lends the reverse proxy its copy buffers (32 KiB each),
// rather than it allocating one per request.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }
