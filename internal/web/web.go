// Package web is Warden's web listener: the block page for names the DNS
// filter blocked (they resolve to Warden), the block page's review and
// report forms, and, in later pieces, the console, AUP page and JSON API.
//
// Handlers parse, call one domain method and render; the SQL lives in
// the domain packages (reviews) and the page in blockpage.
package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/reviews"
)

// Options configure a Web.
type Options struct {
	// Page renders block pages and notices and verifies form tokens.
	Page *blockpage.Page
	// Reviews stores review requests and site reports.
	Reviews *reviews.Store
	// Policy and Identity return the snapshot and table in force (nil
	// while loading: foreign hosts then get a block page).
	Policy   func() *policy.Snapshot
	Identity func() *identity.Table
	// OwnHosts are Warden's own host names and addresses (from the public
	// URL and the listener), as "name", "name:port", "[v6]:port" or a
	// URL. The host of Page.ActionURL is always included. A request for
	// any other name came to Warden because the DNS filter answered a
	// blocked name with Warden's address.
	OwnHosts []string
	// YouTube approves blocked YouTube videos on a member of staff's word
	// (the block page offers the form when blockpage.Options has
	// TeacherApproval); nil refuses such approvals.
	YouTube YouTubeApprover
	// Logger receives the package's messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RateLimit is how many form submissions one client address may make
	// per RateWindow: DefaultRateLimit and DefaultRateWindow if zero.
	RateLimit  int
	RateWindow time.Duration
}

// Default rate of form submissions per client address.
const (
	DefaultRateLimit  = 10
	DefaultRateWindow = 10 * time.Minute
)

// Web serves the web listener's pages. It is safe for concurrent use.
type Web struct {
	page     *blockpage.Page
	reviews  *reviews.Store
	policy   func() *policy.Snapshot
	identity func() *identity.Table
	own      map[string]bool
	log      *slog.Logger
	now      func() time.Time
	limiter  *limiter
	youTube  YouTubeApprover
}

// New checks opts and returns a Web.
func New(opts Options) (*Web, error) {
	var errs []error
	if opts.Page == nil {
		errs = append(errs, errors.New("no block page"))
	}
	if opts.Reviews == nil {
		errs = append(errs, errors.New("no review store"))
	}
	if opts.Policy == nil || opts.Identity == nil {
		errs = append(errs, errors.New("no policy or identity source"))
	}
	if opts.RateLimit < 0 || opts.RateWindow < 0 {
		errs = append(errs, errors.New("rate limit and window must not be negative"))
	}
	w := &Web{page: opts.Page, reviews: opts.Reviews, policy: opts.Policy, identity: opts.Identity,
		own: map[string]bool{}, log: opts.Logger, now: opts.Now, youTube: opts.YouTube}
	hosts := opts.OwnHosts
	if opts.Page != nil {
		hosts = append(hosts[:len(hosts):len(hosts)], opts.Page.ActionURL())
	}
	for _, h := range hosts {
		n, err := ownHost(h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		w.own[n] = true
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("web: %w", errors.Join(errs...))
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("component", "web")
	if w.now == nil {
		w.now = time.Now
	}
	limit, window := opts.RateLimit, opts.RateWindow
	if limit == 0 {
		limit = DefaultRateLimit
	}
	if window == 0 {
		window = DefaultRateWindow
	}
	w.limiter = newLimiter(limit, window, maxLimiterClients)
	return w, nil
}

// ownHost normalises one of Warden's own names: a host, host:port, or a
// URL.
func ownHost(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("own host %q: not a host or URL", s)
		}
		s = u.Host
	}
	h := hostOnly(s)
	if h == "" {
		return "", fmt.Errorf("own host %q: empty", s)
	}
	return h, nil
}

// hostOnly returns the lower-case host of a Host header value, without
// port, brackets or trailing dot.
func hostOnly(hostport string) string {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// isOwn reports whether a request's host is Warden itself: one of its
// names, any address literal (no DNS answer led there), localhost, or no
// host at all.
func (w *Web) isOwn(host string) bool {
	if host == "" || host == "localhost" || w.own[host] {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// clientIP returns the address a request came from. The web listener
// faces clients directly, so forwarded headers are not trusted.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// notice writes a notice page with a status.
func (w *Web) notice(rw http.ResponseWriter, status int, n blockpage.Notice) {
	var b strings.Builder
	if err := w.page.RenderNotice(&b, n); err != nil {
		w.log.Error("render_notice_failed", "err", err)
		http.Error(rw, n.Title, status)
		return
	}
	w.page.SetHeaders(rw.Header())
	rw.WriteHeader(status)
	_, _ = rw.Write([]byte(b.String()))
}
