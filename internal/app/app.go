// Package app wires Warden's subsystems together from the configuration:
// it opens and migrates the store, seeds a new installation, builds the
// policy snapshot and identity table from the store, keeps them current
// as the store changes, and runs the listeners. It is the only package
// that knows about every other one.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/warden-schools/warden/internal/accesslog"
	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/config"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/listsync"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/policy/policystore"
	"github.com/warden-schools/warden/internal/store"
)

// App is a running Warden: the store, the domain services over it, and
// the current policy snapshot and identity table.
type App struct {
	cfg config.Config
	log *slog.Logger
	now func() time.Time

	db        *store.DB
	tax       *lists.Taxonomy
	Directory *directory.Directory
	// Accounts holds people's sign-in credentials.
	Accounts *auth.Accounts
	// audit is the audit log, opened by Serve with the master key.
	audit    *audit.Log
	Policies *policystore.Store
	Lists    *listsync.Store
	// Access is the access log; events feed it.
	Access *accesslog.Log
	events *events.Pipeline
	// Metrics is the app's Prometheus registry (never the global one).
	Metrics *prometheus.Registry
	// listUpdates counts scheduled list updates by outcome.
	listUpdates *prometheus.CounterVec

	snap  atomic.Pointer[policy.Snapshot]
	ident atomic.Pointer[identity.Table]

	reloadMu sync.Mutex
	// The compiled lists are rebuilt only when a list changes, not on
	// every policy change.
	listsFP      string
	listsMatcher *lists.Matcher
	loadedRev    int64
}

// Options are what Open needs besides the configuration.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Open opens the store in cfg's data folder, creating it if needed, and
// applies migrations. It does not build the policy; call Reload.
func Open(ctx context.Context, cfg config.Config, opts Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", cfg.DataDir, err)
	}
	db, err := store.Open(ctx, store.Options{Engine: store.Engine(cfg.Database.Engine), Path: cfg.DatabasePath(), Logger: log})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	tax := lists.DefaultTaxonomy()
	a := &App{
		cfg:       cfg,
		log:       log.With("component", "app"),
		now:       now,
		db:        db,
		tax:       tax,
		Directory: directory.New(db, now),
		Policies:  policystore.New(db, tax, now),
		Lists:     listsync.New(db, tax, now),
		Access:    accesslog.New(db),
	}
	a.events = events.New(a.Access, events.Options{Logger: log})
	if a.Accounts, err = a.newAccounts(nil); err != nil {
		db.Close()
		return nil, err
	}
	a.Metrics = prometheus.NewRegistry()
	a.listUpdates = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_lists_updates_total",
		Help: "Scheduled list updates by outcome (ok, failed: the lists in force were kept)."}, []string{"outcome"})
	a.Metrics.MustRegister(a.listUpdates)
	a.Metrics.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "warden_events_written_total", Help: "Events stored in the access log."},
			func() float64 { w, _, _ := a.events.Stats(); return float64(w) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "warden_events_dropped_total", Help: "Events lost because the access-log writer fell too far behind."},
			func() float64 { _, d, _ := a.events.Stats(); return float64(d) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_events_queued", Help: "Events waiting to be written."},
			func() float64 { return float64(a.events.Queued()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_policy_version", Help: "The policy version in force."},
			func() float64 {
				if s := a.Snapshot(); s != nil {
					return float64(s.Version())
				}
				return 0
			}),
	)
	return a, nil
}

// newAccounts makes the accounts service; sealer (the master key ring)
// makes two-factor enrolment possible, which only the console needs.
func (a *App) newAccounts(sealer auth.Sealer) (*auth.Accounts, error) {
	return auth.New(a.db, a.Directory, auth.Options{Now: a.now, Rand: rand.Reader, Logger: a.log, Sealer: sealer,
		SchoolName: a.schoolName})
}

// schoolName returns the school's name from the store, or "".
func (a *App) schoolName(ctx context.Context) string {
	s, err := a.Policies.Settings(ctx)
	if err != nil {
		return ""
	}
	return s.SchoolName
}

// QueryEvents returns the function the filters hand events to, or nil
// when the configuration turns the query log off.
func (a *App) QueryEvents() func(events.Event) bool {
	if a.cfg.DNS.NoQueryLog {
		return nil
	}
	return a.events.Emit
}

// RunEvents writes events to the access log until ctx ends, then writes
// what is still queued.
func (a *App) RunEvents(ctx context.Context) error { return a.events.Run(ctx) }

// EventStats returns events written and dropped so far.
func (a *App) EventStats() (written, dropped uint64) {
	w, d, _ := a.events.Stats()
	return w, d
}

// Close closes the store.
func (a *App) Close() error {
	a.Access.Close()
	return a.db.Close()
}

// DB returns the store, for packages the app hands it to.
func (a *App) DB() *store.DB { return a.db }

// Taxonomy returns the category taxonomy.
func (a *App) Taxonomy() *lists.Taxonomy { return a.tax }

// Snapshot returns the policy in force. It is nil before the first
// successful Reload.
func (a *App) Snapshot() *policy.Snapshot { return a.snap.Load() }

// Identity returns the identity table in force.
func (a *App) Identity() *identity.Table { return a.ident.Load() }

// Reload builds a new policy snapshot and identity table from the store
// and swaps them in. On any error the previous ones stay in force.
func (a *App) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	start := time.Now()
	pol, err := a.Policies.Load(ctx)
	if err != nil {
		return fmt.Errorf("reload policy: %w", err)
	}
	fp, err := a.Lists.Fingerprint(ctx)
	if err != nil {
		return fmt.Errorf("reload lists: %w", err)
	}
	matcher := a.listsMatcher
	if matcher == nil || fp != a.listsFP {
		ls, loadedFP, err := a.Lists.Load(ctx)
		if err != nil {
			return fmt.Errorf("reload lists: %w", err)
		}
		if matcher, err = lists.Compile(ls); err != nil {
			return fmt.Errorf("reload lists: %w", err)
		}
		fp = loadedFP
	}
	zones, err := a.Directory.Zones(ctx)
	if err != nil {
		return fmt.Errorf("reload zones: %w", err)
	}
	cfg := policy.Config{
		Version:      pol.Version,
		Location:     pol.Location,
		Taxonomy:     a.tax,
		Lists:        matcher,
		Groups:       pol.Groups,
		Exceptions:   pol.Exceptions,
		UnknownGroup: pol.Settings.UnknownGroup,
	}
	idZones := make([]identity.Zone, 0, len(zones))
	for _, z := range zones {
		cfg.Zones = append(cfg.Zones, policy.Zone{ID: z.ID, Name: z.Name, Networks: z.Networks})
		idZones = append(idZones, identity.Zone{ID: z.ID, GroupID: z.GroupID, Networks: z.Networks})
	}
	snap, err := policy.Compile(cfg)
	if err != nil {
		return fmt.Errorf("reload policy version %d: %w", pol.Version, err)
	}
	ident, err := a.buildIdentity(ctx, idZones, snap.UnknownGroup())
	if err != nil {
		return err
	}
	rebuilt := matcher != a.listsMatcher
	a.snap.Store(snap)
	a.ident.Store(ident)
	a.listsFP, a.listsMatcher, a.loadedRev = fp, matcher, pol.Version
	if rebuilt {
		// Reading and compiling the lists leaves a large heap of
		// temporaries; hand it back to the system now rather than keep
		// the filter's resident memory at its peak.
		debug.FreeOSMemory()
	}
	a.log.Info("policy_loaded", "version", pol.Version, "groups", len(pol.Groups), "lists", len(matcher.Lists()),
		"domains", matcher.Domains(), "took_ms", time.Since(start).Milliseconds())
	return nil
}

func (a *App) buildIdentity(ctx context.Context, zones []identity.Zone, unknown string) (*identity.Table, error) {
	devices, err := a.Directory.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("reload devices: %w", err)
	}
	data := identity.Data{Zones: zones, UnknownGroup: unknown}
	owners := map[int64]bool{}
	for _, d := range devices {
		data.Devices = append(data.Devices, identity.Device{ID: d.ID, Name: d.Name, IP: d.IP, TokenHash: d.TokenHash, GroupID: d.GroupID, OwnerID: d.OwnerID})
		if d.OwnerID != 0 {
			owners[d.OwnerID] = true
		}
	}
	for id := range owners {
		p, err := a.Directory.Person(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reload device owners: %w", err)
		}
		data.People = append(data.People, identity.Person{ID: p.ID, Name: p.DisplayName(), GroupID: p.GroupID})
	}
	return identity.New(data), nil
}

// ReloadIfChanged reloads when the store's policy version has moved since
// the last reload.
func (a *App) ReloadIfChanged(ctx context.Context) error {
	rev, err := store.CurrentRevision(ctx, a.db)
	if err != nil {
		return err
	}
	a.reloadMu.Lock()
	loaded := a.loadedRev
	a.reloadMu.Unlock()
	if rev == loaded && a.Snapshot() != nil {
		return nil
	}
	return a.Reload(ctx)
}

// CheckRequest is what `warden check` asks.
type CheckRequest struct {
	// Target is a host name or URL.
	Target string
	// Group, User and IP identify the client; Group or User win over IP
	// for the group, and IP also sets the source address for zone rules.
	Group string
	User  string
	IP    netip.Addr
	Time  time.Time
}

// CheckResult is a decision with who it was for.
type CheckResult struct {
	Explanation policy.Explanation
	Subject     identity.Subject
	Host        string
	URL         string
}

// Check decides a request as the filters would, for `warden check` and
// the console's "why is this blocked?" page.
func (a *App) Check(ctx context.Context, req CheckRequest) (CheckResult, error) {
	snap := a.Snapshot()
	if snap == nil {
		return CheckResult{}, errors.New("no policy loaded")
	}
	var res CheckResult
	switch {
	case req.Group != "":
		if !snap.HasGroup(req.Group) {
			return res, fmt.Errorf("no group %q (see `warden groups list`)", req.Group)
		}
		res.Subject = identity.Subject{Group: req.Group, Via: identity.ByGroup}
	case req.User != "":
		p, err := a.Directory.PersonByLogin(ctx, req.User)
		if err != nil {
			return res, fmt.Errorf("user %q: %w", req.User, err)
		}
		g := p.GroupID
		if g == "" {
			g = snap.UnknownGroup()
		}
		res.Subject = identity.Subject{Group: g, PersonID: p.ID, Person: p.DisplayName(), Via: identity.ByUser}
	case req.IP.IsValid():
		res.Subject = a.Identity().ByAddr(req.IP)
	default:
		return res, errors.New("say who is asking: --group, --user or --ip")
	}
	if req.IP.IsValid() && res.Subject.Zone == "" {
		res.Subject.Zone = a.Identity().ZoneOf(req.IP)
	}
	t := req.Time
	if t.IsZero() {
		t = a.now()
	}
	preq := policy.Request{Group: res.Subject.Group, ClientIP: req.IP, Time: t}
	if looksLikeURL(req.Target) {
		k, err := lists.NormalizeURL(req.Target)
		if err != nil {
			return res, fmt.Errorf("%q: %w", req.Target, err)
		}
		preq.URL, res.URL, res.Host = req.Target, string(k), k.Host()
	} else {
		h, err := lists.NormalizeHost(req.Target)
		if err != nil {
			return res, fmt.Errorf("%q: %w", req.Target, err)
		}
		preq.Host, res.Host = h, h
	}
	res.Explanation = snap.Explain(preq)
	return res, nil
}

// looksLikeURL tells a URL ("https://x/y", "x/y") from a host name.
func looksLikeURL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == '?' {
			return true
		}
	}
	return false
}
