package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/keyring"
	"github.com/warden-schools/warden/internal/lists/listsync"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/proxy/inspect"
	"github.com/warden-schools/warden/internal/reviews"
	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/web"
)

// blockPageKeyPurpose names the block page's HMAC key in the key ring.
// Changing it would invalidate every form already shown.
const blockPageKeyPurpose = "blockpage-token"

// webBase is the base URL people and devices reach the web listener at:
// public_url, else the listener's own address (listenAddr, the bound
// one, so a port of 0 is resolved).
func (a *App) webBase(listenAddr string) string {
	if a.cfg.PublicURL != "" {
		return strings.TrimRight(a.cfg.PublicURL, "/")
	}
	scheme := "http"
	if a.cfg.TLS.Enabled() {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return scheme + "://" + listenAddr
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		} else {
			host = "localhost"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// buildWeb makes the block page (shared with the proxy) and the web
// routes that serve it for names the DNS filter blocked and take its
// forms. base is the web listener's base URL.
func (a *App) buildWeb(ring *keyring.Ring, base string) (*blockpage.Page, *web.Web, error) {
	loc := a.Snapshot().Location()
	settings, err := a.Policies.Settings(context.Background())
	if err != nil {
		return nil, nil, fmt.Errorf("block page: %w", err)
	}
	page, err := blockpage.New(blockpage.Options{
		Key:        ring.Key(blockPageKeyPurpose, 32),
		ActionURL:  base,
		SchoolName: settings.SchoolName,
		Taxonomy:   a.tax,
		Location:   loc,
		Now:        a.now,
		Rand:       rand.Reader,
		// A YouTube approval is a URL-level exception: it takes effect
		// only where the proxy inspects HTTPS.
		TeacherApproval: a.cfg.Proxy.Inspect && a.cfg.Listen.Proxy != "",
	})
	if err != nil {
		return nil, nil, fmt.Errorf("block page: %w", err)
	}
	own := []string{base, a.cfg.Listen.HTTP}
	if name, err := os.Hostname(); err == nil && name != "" {
		own = append(own, name)
	}
	w, err := web.New(web.Options{
		Page:     page,
		Reviews:  reviews.New(a.db, a.now),
		Policy:   a.Snapshot,
		Identity: a.Identity,
		OwnHosts: own,
		YouTube:  a,
		Logger:   a.log,
		Now:      a.now,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("web: %w", err)
	}
	return page, w, nil
}

// blockedNameCerts wraps the web listener's certificate choice: a browser
// sent to Warden by the DNS filter's answer for a blocked name asks, over
// HTTPS, for that name, which Warden's own certificate does not cover.
// When the school CA exists (warden ca init) and its root is on the
// school's devices, Warden answers with a certificate from it for that
// name, so the block page shows instead of a certificate warning. It does
// so only for a name the asking client's policy blocks, so the listener
// is no certificate mint for anyone who asks.
func (a *App) blockedNameCerts(ring *keyring.Ring, own func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if _, err := os.Stat(filepath.Join(CADir(a.cfg), inspect.RootCertFile)); err != nil {
		return own
	}
	ca, err := LoadSchoolCA(a.cfg, ring)
	if err != nil {
		a.log.Warn("school_ca_unusable", "err", err, "effect", "HTTPS requests for blocked names get Warden's own certificate")
		return own
	}
	mint := ca.GetCertificate("")
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		cert, err := own(hello)
		name := hello.ServerName
		if err != nil || name == "" || cert == nil || cert.Leaf == nil || cert.Leaf.VerifyHostname(name) == nil {
			return cert, err
		}
		var client netip.Addr
		if hello.Conn != nil {
			if ap, perr := netip.ParseAddrPort(hello.Conn.RemoteAddr().String()); perr == nil {
				client = ap.Addr().Unmap()
			}
		}
		snap, table := a.Snapshot(), a.Identity()
		if snap == nil || table == nil {
			return cert, nil
		}
		who := table.ByAddr(client)
		if !snap.Decide(policy.Request{Host: name, Group: who.Group, ClientIP: client, Time: a.now()}).Blocked() {
			return cert, nil
		}
		return mint(hello)
	}
}

// consoleKeyPurpose derives the console's CSRF key from the master key.
const consoleKeyPurpose = "console-csrf"

// buildConsole makes the console. secure says people reach it over
// HTTPS: the listener has a certificate, or public_url is https (a TLS
// front end).
func (a *App) buildConsole(ring *keyring.Ring, base string, secure bool) (*web.Console, error) {
	c, err := web.NewConsole(web.ConsoleOptions{
		Accounts:   a.Accounts,
		Audit:      a.audit,
		Location:   a.Snapshot().Location(),
		Access:     a.Access,
		Directory:  a.Directory,
		Categories: a.categoryIDs(),
		Checker:    siteChecker{a},
		Changes:    a.Policies,
		Reviews:    reviews.New(a.db, a.now),
		Tokens:     deviceTokens{a: a, base: base},
		Lists:      a.Lists,
		Importer:   a.Directory,
		UT1URL:     a.ut1URL(),
		Key:        ring.Key(consoleKeyPurpose, 32),
		Secure:     secure || strings.HasPrefix(base, "https://"),
		SchoolName: a.schoolName,
		Logger:     a.log,
		Now:        a.now,
	})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return c, nil
}

// SetupLink returns the first administrator's one-time set-up link under
// base (the web listener's URL), or "" when a console account exists.
func (a *App) SetupLink(ctx context.Context, base string) (string, error) {
	if _, console, err := a.Accounts.Count(ctx); err != nil || console > 0 {
		return "", err
	}
	token, err := a.Accounts.NewSetupToken(ctx)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(base, "/") + "/setup/" + token, nil
}

// WebBase is the base URL people reach the web listener at, as
// configured (public_url, else the listen address).
func (a *App) WebBase() string { return a.webBase(a.cfg.Listen.HTTP) }

// auditKeyPurpose derives the audit chain's key from the master key.
const auditKeyPurpose = "audit-chain"

// newAudit opens the audit log, keyed from ring.
func (a *App) newAudit(ring *keyring.Ring) (*audit.Log, error) {
	return audit.New(a.db, ring.Key(auditKeyPurpose, 32), a.now)
}

// AuditLog opens the audit log with the existing master key (it never
// makes one: a new key could not check the chain).
func (a *App) AuditLog() (*audit.Log, error) {
	path := MasterKeyPath(a.cfg)
	if !keyring.Exists(path) {
		return nil, fmt.Errorf("no master key at %s: the audit log's chain cannot be checked without it (restore it from the backup)", path)
	}
	ring, err := keyring.Load(path, rand.Reader)
	if err != nil {
		return nil, err
	}
	return a.newAudit(ring)
}

// categoryIDs lists the taxonomy's category ids, for the console's
// filters.
func (a *App) categoryIDs() []string {
	var ids []string
	for _, c := range a.tax.Categories {
		ids = append(ids, c.ID)
	}
	return ids
}

// siteChecker answers the console's "Why is this blocked?" with Check.
type siteChecker struct{ a *App }

// CheckSite decides q as the filters would.
func (s siteChecker) CheckSite(ctx context.Context, q web.SiteCheck) (web.SiteAnswer, error) {
	if s.a.Snapshot() == nil {
		return web.SiteAnswer{}, errors.New("no policy loaded")
	}
	res, err := s.a.Check(ctx, CheckRequest{Target: q.Target, Group: q.Group, User: q.Login, IP: q.IP, Time: q.Time})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return web.SiteAnswer{}, fmt.Errorf("nobody active has the username or email %q: %w", q.Login, err)
		}
		// Everything else Check refuses is the question: a group that does
		// not exist, an address that is not one.
		return web.SiteAnswer{}, fmt.Errorf("%w: %v", web.ErrBadCheck, err)
	}
	return web.SiteAnswer{Explanation: res.Explanation, Subject: res.Subject, Host: res.Host, URL: res.URL}, nil
}

// Groups lists the policy groups in force.
func (s siteChecker) Groups() []policy.Group {
	if snap := s.a.Snapshot(); snap != nil {
		return snap.Groups()
	}
	return nil
}

// deviceTokens issues and revokes device tokens for the console, with the
// settings the device needs under the web listener's base URL.
type deviceTokens struct {
	a    *App
	base string
}

// IssueToken gives the device a new token.
func (d deviceTokens) IssueToken(ctx context.Context, actor, device string) (web.IssuedDeviceToken, error) {
	t, err := d.a.IssueDeviceToken(ctx, actor, device, d.base)
	if err != nil {
		return web.IssuedDeviceToken{}, err
	}
	out := web.IssuedDeviceToken{Device: t.Device, Token: t.Token, DoHURL: t.DoHURL, DoTName: t.DoTName, Replaced: t.Replaced}
	if d.a.cfg.Listen.Proxy != "" {
		out.PAC = strings.TrimRight(d.base, "/") + "/proxy.pac"
	}
	return out, nil
}

// RevokeToken removes the device's token.
func (d deviceTokens) RevokeToken(ctx context.Context, actor, device string) (bool, error) {
	_, had, err := d.a.RevokeDeviceToken(ctx, actor, device)
	return had, err
}

// UT1URL is where the UT1 lists are published, offered by the console's
// update form.
const UT1URL = "https://dsi.ut-capitole.fr/blacklists/download/blacklists.tar.gz"

// ut1URL is the address the console offers for UT1 updates: the
// configured one, else UT1's own.
func (a *App) ut1URL() string {
	if a.cfg.Lists.UpdateURL != "" {
		return a.cfg.Lists.UpdateURL
	}
	return UT1URL
}

// scheduledActor names scheduled list updates in the change record and
// the audit log.
const scheduledActor = "warden (scheduled update)"

// runListUpdates updates the UT1 set from lists.update_url every
// interval until ctx ends. A bad download keeps the lists in force; each
// attempt is logged and audited.
func (a *App) runListUpdates(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.UpdateListsNow(ctx)
	}
}

// UpdateListsNow downloads the UT1 set from lists.update_url once, as
// the schedule does, and reports the outcome.
func (a *App) UpdateListsNow(ctx context.Context) (listsync.FetchResult, error) {
	res, err := a.Lists.FetchUT1(ctx, listsync.FetchOptions{URL: a.cfg.Lists.UpdateURL, Actor: scheduledActor})
	entry := audit.Entry{Actor: scheduledActor, Action: audit.ActionListsUpdated, Target: a.cfg.Lists.UpdateURL}
	if err != nil {
		a.log.Error("lists_update_failed", "url", a.cfg.Lists.UpdateURL, "err", err, "effect", "the lists in force are kept")
		entry.Outcome, entry.Detail = audit.Failed, err.Error()
		a.listUpdates.WithLabelValues("failed").Inc()
	} else {
		changed := 0
		for _, l := range res.Lists {
			if l.Changed {
				changed++
			}
		}
		a.log.Info("lists_updated", "url", a.cfg.Lists.UpdateURL, "lists", len(res.Lists), "changed", changed, "bytes", res.Bytes)
		entry.Detail = fmt.Sprintf("%d lists, %d changed, SHA-256 %s", len(res.Lists), changed, res.SHA256)
		a.listUpdates.WithLabelValues("ok").Inc()
	}
	if aerr := a.recordAudit(ctx, entry); aerr != nil {
		a.log.Error("audit_failed", "action", entry.Action, "err", aerr)
	}
	return res, err
}
