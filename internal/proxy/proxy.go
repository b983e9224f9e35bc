// Package proxy is Warden's explicit web proxy: HTTP/1.1 forward proxying
// with keep-alive and upstream connection pooling, CONNECT tunnels, proxy
// authentication, the block page for plain HTTP, and the PAC/WPAD file
// that points browsers at it.
//
// Every request is decided by the policy engine for the client's group:
// plain HTTP by its full URL (so URL-list entries, such as the IWF's,
// apply under allowed domains), CONNECT by its host. A blocked HTTP
// request gets the block page with the connection kept open; a blocked
// CONNECT gets a short 403 text. TLS inspection is optional and lives
// behind the Inspector interface (package proxy/inspect implements it).
//
// The HTTP/1.1 handling is written here, on raw connections, for speed
// and for strictness: the request parser refuses anything ambiguous
// (obs-fold, bare CR or LF, Content-Length with Transfer-Encoding,
// conflicting lengths, codings other than chunked, bad chunk sizes), and
// every body is re-framed by the proxy itself, so what the web server
// receives is exactly what the proxy decided on — the defence against
// request smuggling. The proxy never reaches loopback, link-local or its
// own host's addresses unless told to (for tests), and it serves only
// the configured client networks: it is never an open proxy. It never
// touches the database: it reads the policy snapshot and identity table
// the app keeps current, at every request.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// Defaults of the limits and timeouts in Options.
const (
	DefaultMaxHeaderBytes        = 64 << 10
	DefaultReadHeaderTimeout     = 10 * time.Second
	DefaultIdleTimeout           = 2 * time.Minute
	DefaultDialTimeout           = 10 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultBodyTimeout           = 60 * time.Second
	DefaultTunnelIdleTimeout     = 10 * time.Minute
	DefaultMaxIdlePerHost        = 64
	DefaultMaxIdle               = 1024
	DefaultUpstreamIdleTimeout   = 90 * time.Second
	DefaultDNSCacheTTL           = 30 * time.Second
	DefaultAuthCacheTTL          = time.Minute
	DefaultShutdownGrace         = 5 * time.Second
)

// Resolver looks up host names; *net.Resolver is one. Tests map names to
// loopback with their own.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Authenticator checks proxy credentials (Basic: user and password, where
// the password may be a device token). It reports the subject the
// credentials stand for. It may be slow (argon2id): the proxy caches its
// answers briefly, keyed by a hash of the credentials.
type Authenticator interface {
	Authenticate(user, password string) (identity.Subject, bool)
}

// Inspector intercepts TLS for allowed CONNECTs (optional).
type Inspector interface {
	// Inspect reports whether a CONNECT to host (no port), allowed or
	// blocked (d), is to be intercepted; a blocked one not intercepted
	// gets a 403 text.
	Inspect(host string, d policy.Decision, who identity.Subject) bool
	// ServeTLS takes over client, a connection on which the proxy has already
	// replied "200 Connection established" to CONNECT target (host:port); it
	// terminates TLS with a minted certificate, serves the requests inside, and
	// returns when the connection is done, having closed it.
	//
	// The proxy calls it on the client connection's own goroutine, with a
	// context that ends when the proxy is shutting down after its grace
	// period; client yields any bytes the client sent after the CONNECT
	// head, has no deadlines set, and is closed again by the proxy after
	// ServeTLS returns (a second Close is harmless). The inspector emits
	// the events of the requests inside; the proxy emits only the
	// CONNECT's own. For upstream connections it should use Proxy.Dial,
	// which keeps the destination rules.
	ServeTLS(ctx context.Context, client net.Conn, target string, who identity.Subject, clientIP netip.Addr)
}

// Blocked is what the block page shows about a blocked request.
type Blocked struct {
	Time time.Time
	// Host is the host asked for; URL the full URL (plain HTTP).
	Host, URL string
	Decision  policy.Decision
	Subject   identity.Subject
	ClientIP  netip.Addr
	// URLFiltered says the request was seen whole (plain HTTP, or HTTPS
	// inspected), so URL-level exceptions apply to it.
	URLFiltered bool
}

// Options configure a Proxy. Zero values mean the documented defaults.
type Options struct {
	// Policy and Identity return the snapshot and table in force; they
	// are read at every request, so changes apply at once without
	// dropping connections. A nil snapshot answers 503 (fail closed).
	Policy   func() *policy.Snapshot
	Identity func() *identity.Table

	// Allowed are the client networks served; connections from anywhere
	// else are closed at once (and logged at most once a minute per
	// address). Nil means identity.LocalNetworks().
	Allowed []netip.Prefix
	// ConnectPorts are the ports CONNECT may reach (nil: 443 only).
	ConnectPorts []int
	// AllowLoopback lets requests reach loopback addresses and the
	// Warden host's own addresses, which are refused by default so that
	// nobody reaches services on the filter server through the proxy.
	// For tests and benchmarks only. Link-local (cloud metadata),
	// unspecified and multicast addresses stay refused.
	AllowLoopback bool
	// Resolver looks up destination names (nil: net.DefaultResolver).
	// The proxy checks every address a name resolves to and dials
	// exactly the address it checked.
	Resolver Resolver
	// DNSCacheTTL is how long resolved addresses are reused
	// (DefaultDNSCacheTTL; negative: no cache).
	DNSCacheTTL time.Duration

	// Auth, if set, checks Basic proxy credentials (Proxy-Authorization).
	// Clients without credentials are identified by their address, as
	// the DNS filter does, unless RequireAuth is set: then they get 407.
	// Wrong credentials always get 407.
	Auth        Authenticator
	RequireAuth bool
	// AuthCacheTTL is how long a successful authentication is reused
	// (DefaultAuthCacheTTL); failures are reused for a tenth of it. A
	// new identity table invalidates the cache.
	AuthCacheTTL time.Duration

	// BlockPage appends the HTML block page for a blocked plain HTTP
	// request to dst (a buffer the proxy reuses) and returns it; nil
	// serves a small built-in page.
	BlockPage func(dst []byte, b Blocked) []byte
	// Inspector, if set, may intercept allowed CONNECTs (TLS
	// inspection); nil never inspects.
	Inspector Inspector
	// Events, if set, receives one event per request (Source "proxy");
	// it must not block (events.Pipeline.Emit does not).
	Events func(events.Event) bool
	// Metrics, if set, is where the proxy registers its Prometheus
	// metrics (warden_proxy_*).
	Metrics prometheus.Registerer
	Logger  *slog.Logger
	// Now is the clock for event times and decisions; nil means
	// time.Now. Deadlines always use the real clock.
	Now func() time.Time

	// MaxHeaderBytes bounds a request head (DefaultMaxHeaderBytes; more
	// gets 431). Upstream response heads have the same bound (502).
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body (0: no limit; more gets 413).
	MaxBodyBytes int64
	// ReadHeaderTimeout bounds reading a request head once its first
	// byte has arrived (DefaultReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long a client connection may wait for its next
	// request (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// DialTimeout bounds connecting to a web server (DefaultDialTimeout).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds waiting for a web server's response
	// head after the request was sent (DefaultResponseHeaderTimeout).
	ResponseHeaderTimeout time.Duration
	// BodyTimeout is the longest a body may stall: between two reads of
	// a request or response body, and for one write to either side
	// (DefaultBodyTimeout).
	BodyTimeout time.Duration
	// TunnelIdleTimeout closes a CONNECT tunnel after this long with no
	// bytes either way (DefaultTunnelIdleTimeout).
	TunnelIdleTimeout time.Duration
	// MaxIdlePerHost and MaxIdle bound the pooled idle connections to
	// web servers, per dialled address and in total
	// (DefaultMaxIdlePerHost, DefaultMaxIdle).
	MaxIdlePerHost, MaxIdle int
	// UpstreamIdleTimeout closes a pooled connection unused this long
	// (DefaultUpstreamIdleTimeout).
	UpstreamIdleTimeout time.Duration
	// ShutdownGrace is how long in-flight requests may finish when Serve
	// stops (DefaultShutdownGrace).
	ShutdownGrace time.Duration
}

// Proxy is the forward proxy. Create it with New, bind with Listen, run
// with Serve.
type Proxy struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	pool    *pool
	dns     *dnsCache
	guard   *guard
	auth    *authCache
	refused *rateLog
	ports   map[int]bool
	relays  relayer

	bufs    sync.Pool // *[]byte of copyBufSize, for bodies
	pages   sync.Pool // *[]byte, for block pages
	readers sync.Pool // *bufio.Reader
	writers sync.Pool // *bufio.Writer

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[*clientConn]struct{}
	wg        sync.WaitGroup
	shutting  atomic.Bool
	// hardCtx ends when the shutdown grace is over; inspectors get it.
	hardCtx    context.Context
	hardCancel context.CancelFunc
}

// New builds a Proxy.
func New(opts Options) (*Proxy, error) {
	if opts.Policy == nil || opts.Identity == nil {
		return nil, errors.New("proxy: no policy or identity")
	}
	if opts.RequireAuth && opts.Auth == nil {
		return nil, errors.New("proxy: authentication required but no authenticator")
	}
	if opts.Allowed == nil {
		opts.Allowed = identity.LocalNetworks()
	}
	if opts.ConnectPorts == nil {
		opts.ConnectPorts = []int{443}
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("proxy: max body bytes %d is negative (0: no limit)", opts.MaxBodyBytes)
	}
	setDefault(&opts.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&opts.IdleTimeout, DefaultIdleTimeout)
	setDefault(&opts.DialTimeout, DefaultDialTimeout)
	setDefault(&opts.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDefault(&opts.BodyTimeout, DefaultBodyTimeout)
	setDefault(&opts.TunnelIdleTimeout, DefaultTunnelIdleTimeout)
	setDefault(&opts.MaxIdlePerHost, DefaultMaxIdlePerHost)
	setDefault(&opts.MaxIdle, DefaultMaxIdle)
	setDefault(&opts.UpstreamIdleTimeout, DefaultUpstreamIdleTimeout)
	setDefault(&opts.DNSCacheTTL, DefaultDNSCacheTTL)
	setDefault(&opts.AuthCacheTTL, DefaultAuthCacheTTL)
	setDefault(&opts.ShutdownGrace, DefaultShutdownGrace)
	p := &Proxy{
		opts:    opts,
		log:     opts.Logger.With("component", "proxy"),
		now:     opts.Now,
		ports:   map[int]bool{},
		conns:   map[*clientConn]struct{}{},
		refused: newRateLog(time.Minute),
	}
	for _, port := range opts.ConnectPorts {
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("proxy: CONNECT port %d is not a port", port)
		}
		p.ports[port] = true
	}
	p.hardCtx, p.hardCancel = context.WithCancel(context.Background())
	p.relays.idle = opts.TunnelIdleTimeout
	p.guard = newGuard(opts.AllowLoopback, p.log)
	p.dns = newDNSCache(opts.Resolver, opts.DNSCacheTTL, p.guard)
	p.pool = newPool(opts.MaxIdlePerHost, opts.MaxIdle, opts.UpstreamIdleTimeout)
	p.pool.closeFn = p.closeUp
	p.auth = newAuthCache(opts.AuthCacheTTL)
	p.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	p.pages.New = func() any { b := make([]byte, 0, 16<<10); return &b }
	if opts.Metrics != nil {
		var err error
		if p.metrics, err = newMetrics(opts.Metrics, p.pool); err != nil {
			return nil, fmt.Errorf("proxy metrics: %w", err)
		}
	}
	return p, nil
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Listen binds a TCP listener on addr ("HOST:PORT"); Serve then accepts
// on it. It may be called more than once (IPv4 and IPv6).
func (p *Proxy) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy listen %s: %w", addr, err)
	}
	p.mu.Lock()
	p.listeners = append(p.listeners, ln)
	p.mu.Unlock()
	return ln.Addr(), nil
}

// Serve accepts and serves clients until ctx ends. Then it closes the
// listeners and idle connections, lets requests in flight finish for up
// to ShutdownGrace, closes what remains, and returns.
func (p *Proxy) Serve(ctx context.Context) error {
	p.mu.Lock()
	lns := append([]net.Listener(nil), p.listeners...)
	p.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("proxy: Serve before Listen")
	}
	errc := make(chan error, len(lns))
	var accepting sync.WaitGroup
	for _, ln := range lns {
		accepting.Add(1)
		go func() {
			defer accepting.Done()
			errc <- p.accept(ln)
		}()
	}
	sweep := time.NewTicker(p.opts.UpstreamIdleTimeout / 3)
	defer sweep.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			break loop
		case <-sweep.C:
			p.pool.sweep(time.Now())
		}
	}
	p.stopAccepting()
	accepting.Wait() // no wg.Add after this, so wg.Wait below is sound
	p.shutdown()
	p.relays.stop()
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return nil
}

// accept serves one listener until it is closed.
func (p *Proxy) accept(ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.shutting.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors or similar: back off, as
				// net/http does, rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				p.log.Warn("proxy_accept_failed", "err", err, "retry_in", delay.String())
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		delay = 0
		tc, ok := c.(*net.TCPConn)
		if !ok {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serveConn(tc)
	}
}

// isTemporary reports errors that accept survives (EMFILE, ECONNABORTED).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// stopAccepting marks the proxy as shutting down and closes its
// listeners.
func (p *Proxy) stopAccepting() {
	p.shutting.Store(true)
	p.mu.Lock()
	for _, ln := range p.listeners {
		ln.Close()
	}
	p.mu.Unlock()
}

// shutdown closes idle clients and pooled connections, waits for the
// rest up to the grace period, then closes them.
func (p *Proxy) shutdown() {
	p.mu.Lock()
	for c := range p.conns {
		if c.idle.Load() {
			c.conn.Close()
		}
	}
	p.mu.Unlock()
	p.pool.closeAll()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.opts.ShutdownGrace):
		p.hardCancel()
		p.mu.Lock()
		for c := range p.conns {
			c.conn.Close()
		}
		p.mu.Unlock()
		<-done
	}
	p.hardCancel()
	p.pool.closeAll()
}

// sourceAllowed reports whether a client address is in Allowed.
func (p *Proxy) sourceAllowed(a netip.Addr) bool {
	for _, pr := range p.opts.Allowed {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// rateLog remembers when each address was last logged, to log refusals
// at most once per interval per address.
type rateLog struct {
	mu       sync.Mutex
	every    time.Duration
	last     map[netip.Addr]time.Time
	lastTrim time.Time
}

func newRateLog(every time.Duration) *rateLog {
	return &rateLog{every: every, last: map[netip.Addr]time.Time{}}
}

// allow reports whether a may be logged now.
func (r *rateLog) allow(a netip.Addr, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.lastTrim) > r.every || len(r.last) > 10000 {
		for k, t := range r.last {
			if now.Sub(t) >= r.every {
				delete(r.last, k)
			}
		}
		r.lastTrim = now
		if len(r.last) > 10000 {
			clear(r.last) // a flood from many addresses: stay bounded
		}
	}
	if t, ok := r.last[a]; ok && now.Sub(t) < r.every {
		return false
	}
	r.last[a] = now
	return true
}
