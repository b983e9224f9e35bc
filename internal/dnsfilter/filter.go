// Package dnsfilter is Warden's DNS filter: the school's resolver. It
// answers DNS over UDP and TCP, decides every question with the policy
// engine for the client's group, answers blocked names with the block
// page's address (or NXDOMAIN, or a null address), rewrites search
// engines to their safe-search names, stops the usual ways round the
// filter, and forwards the rest to upstream resolvers through a cache.
//
// Every question goes through one ordered chain of stages (see
// Filter.chain). The filter never touches the database: it reads the
// policy snapshot and identity table the app keeps current.
package dnsfilter

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// Request is one DNS question on its way through the chain. Stages fill
// in what they learn.
type Request struct {
	// Msg is the client's query; it has exactly one question.
	Msg *dns.Msg
	// Client is the client's address; Protocol is "udp" or "tcp".
	Client   netip.Addr
	Protocol string
	// Start is when the query arrived.
	Start time.Time
	// Subject is who is asking, set by the identify stage.
	Subject identity.Subject
	// Decision is the policy's answer for the question's name.
	Decision policy.Decision
	// Upstream names the upstream that answered, "cache" for a cached
	// answer, or "" when Warden answered itself.
	Upstream string
}

// Name returns the question's name, lower-case, without the final dot.
func (r *Request) Name() string {
	return strings.TrimSuffix(strings.ToLower(r.Msg.Question[0].Name), ".")
}

// Qtype returns the question's type.
func (r *Request) Qtype() uint16 { return r.Msg.Question[0].Qtype }

// Resolver answers a Request. It is the contract every stage of the chain
// keeps:
//
//   - It returns the complete answer for the request's question (the
//     server sets the message id, flags, EDNS and truncation) or an error;
//     it never writes to the client itself.
//   - It either answers from what it knows or passes the request on to
//     the next stage, possibly changed, and may change the answer that
//     comes back.
//   - It must not modify req.Msg after passing it on; answers it receives
//     from later stages may be shared (the cache hands out copies).
//   - An error means no answer could be had (the server answers
//     SERVFAIL); a policy block is an answer, not an error.
type Resolver interface {
	Resolve(ctx context.Context, req *Request) (*dns.Msg, error)
}

// stage is a Resolver in the chain that passes requests on to next.
type stage interface {
	Resolver
	setNext(Resolver)
}

// chained is embedded by stages to hold the rest of the chain.
type chained struct{ next Resolver }

func (n *chained) setNext(r Resolver) { n.next = r }

// link connects stages in order and returns the first.
func link(stages ...stage) Resolver {
	for i := 0; i+1 < len(stages); i++ {
		stages[i].setNext(stages[i+1])
	}
	return stages[0]
}

// Options configure a Filter.
type Options struct {
	// Policy and Identity return the snapshot and table in force.
	Policy   func() *policy.Snapshot
	Identity func() *identity.Table
	// Upstreams are the resolvers allowed questions go to, tried in order
	// of health ("HOST:PORT", UDP with TCP when an answer is truncated).
	Upstreams []string
	// Conditional sends questions for a domain (and its subdomains) to
	// its own servers, such as the school's Active Directory.
	Conditional map[string][]string
	// Block says how blocked names are answered.
	Block BlockResponse
	// UpstreamTimeout bounds one attempt at one upstream.
	UpstreamTimeout time.Duration
	// UpstreamRoots are the certificate authorities trusted for tls://
	// and https:// upstreams; nil means the system's.
	UpstreamRoots *x509.CertPool
	// CacheEntries bounds the cache (0: DefaultCacheEntries).
	CacheEntries int
	// Events, if set, receives an event for every answered query; it must
	// not block (events.Pipeline.Emit does not).
	Events func(events.Event) bool
	// Metrics, if set, is where the filter registers its Prometheus
	// metrics (warden_dns_*).
	Metrics prometheus.Registerer
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Filter resolves questions through the chain.
type Filter struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	cache   *cache
	safe    safeTargets
	fwd     *forwarder
	metrics *metrics
	first   Resolver
}

// New builds a Filter.
func New(opts Options) (*Filter, error) {
	if opts.Policy == nil || opts.Identity == nil {
		return nil, errors.New("dns filter: no policy or identity")
	}
	if len(opts.Upstreams) == 0 {
		return nil, errors.New("dns filter: no upstream resolvers (set upstreams in the configuration or --upstream)")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.UpstreamTimeout == 0 {
		opts.UpstreamTimeout = 2 * time.Second
	}
	if err := opts.Block.check(); err != nil {
		return nil, err
	}
	f := &Filter{opts: opts, log: opts.Logger.With("component", "dnsfilter"), now: opts.Now}
	var err error
	if f.fwd, err = newForwarder(opts.Upstreams, opts.Conditional, opts.UpstreamTimeout, opts.UpstreamRoots, f.log, f.now); err != nil {
		return nil, err
	}
	f.cache = newCache(opts.CacheEntries, f.now)
	f.safe = newSafeTargets()
	if opts.Metrics != nil {
		if f.metrics, err = newMetrics(opts.Metrics, f.cache); err != nil {
			return nil, fmt.Errorf("dns filter metrics: %w", err)
		}
		f.fwd.metrics = f.metrics
	}
	f.first = f.chain(f.fwd)
	return f, nil
}

// chain is the whole resolver, in order, ending in last (the upstream
// forwarder). Each line says why it sits where it does.
func (f *Filter) chain(last stage) Resolver {
	return link(
		// Who is asking decides which policy applies, so it comes first.
		&identify{tables: f.opts.Identity},
		// Names that switch off browsers' own DNS-over-HTTPS or Apple's
		// Private Relay are answered here for everyone, before policy:
		// they are how filtering is bypassed, not sites.
		&circumvention{},
		// The policy decides on the question's name; a blocked name is
		// answered here and never reaches an upstream.
		&filter{policy: f.opts.Policy, block: f.opts.Block, now: f.now},
		// Safe search rewrites an allowed search engine name to its safe
		// variant for the group's level, after the block check (a blocked
		// engine stays blocked).
		&safeSearch{targets: f.safe},
		// Allowed answers are checked again for CNAMEs into blocked names
		// (cloaking); it sits before the cache so that cached answers are
		// checked for each client's own policy.
		&cnameGuard{policy: f.opts.Policy, block: f.opts.Block, now: f.now},
		// The cache holds upstream answers only, shared by every group.
		f.cache,
		// Upstreams, with conditional forwarding and failover.
		last,
	)
}

// Resolve answers one request through the chain.
func (f *Filter) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	return f.first.Resolve(ctx, req)
}

// identify sets the request's subject from the client address.
type identify struct {
	chained
	tables func() *identity.Table
}

func (s *identify) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	if req.Subject.Group == "" {
		req.Subject = s.tables().ByAddr(req.Client)
	}
	return s.next.Resolve(ctx, req)
}
