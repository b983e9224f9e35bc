package web

import (
	"net/http"
	"net/netip"
	"net/url"

	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/reviews"
)

// BlockForeignHosts serves the block page for requests whose Host is not
// one of Warden's own: they came here because the DNS filter answered a
// blocked name with Warden's address. The client is identified by its
// address, as the DNS filter does, and the host decided with the policy
// in force; a host that is (now) allowed gets a page that says so, with a
// link to try again, because the device may still hold the old DNS
// answer. Requests for Warden's own hosts go to next.
func (w *Web) BlockForeignHosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		host := hostOnly(r.Host)
		if w.isOwn(host) {
			next.ServeHTTP(rw, r)
			return
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		w.serveDecision(rw, r, host, scheme+"://"+r.Host+r.URL.RequestURI(), false)
	})
}

// blocked serves GET /blocked?host=NAME[&url=URL].
func (w *Web) blocked(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	host, rawURL := q.Get("host"), q.Get("url")
	if host == "" && rawURL != "" {
		host = reviews.HostOf(rawURL)
	}
	host = hostOnly(host)
	if host == "" || len(host) > reviews.MaxHostLen || len(rawURL) > reviews.MaxURLLen {
		w.notice(rw, http.StatusBadRequest, blockpage.Notice{
			Title:      "No site given",
			Paragraphs: []string{"This page shows why a site is blocked. The link you followed does not name a site."},
		})
		return
	}
	if rawURL != "" {
		if u, err := url.Parse(rawURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || hostOnly(u.Host) != host {
			rawURL = "" // only a URL of the same host is shown
		}
	}
	w.serveDecision(rw, r, host, rawURL, rawURL != "")
}

// serveDecision decides host (or rawURL, if byURL) for the client and
// serves the block page, or a page that says the site is allowed now.
// Without a policy or identity table (while starting) it blocks: Warden
// fails safe, never open.
func (w *Web) serveDecision(rw http.ResponseWriter, r *http.Request, host, rawURL string, byURL bool) {
	now := w.now()
	client := clientIP(r)
	snap, tab := w.policy(), w.identity()
	var sub identity.Subject
	var d policy.Decision
	if snap == nil || tab == nil {
		sub = identity.Subject{Via: identity.Unknown}
		d = policy.Decision{Action: policy.Block, Rule: "unavailable",
			Reason: "Blocked: the filter is starting and has not loaded its policy yet. Try again in a minute."}
	} else {
		sub = tab.ByAddr(client)
		req := policy.Request{Host: host, Group: sub.Group, ClientIP: client, Time: now}
		if byURL {
			req.URL = rawURL
		}
		d = snap.Decide(req)
	}
	if !d.Blocked() {
		w.notice(rw, http.StatusOK, allowedNotice(host, rawURL))
		return
	}
	page := w.page.HTML(blockpage.Info{Time: now, Host: host, URL: rawURL, Decision: d, Subject: sub, ClientIP: client})
	w.page.SetHeaders(rw.Header())
	rw.WriteHeader(http.StatusForbidden)
	_, _ = rw.Write(page)
}

// allowedNotice says a site is allowed now, with a link to retry.
func allowedNotice(host, rawURL string) blockpage.Notice {
	link := rawURL
	if link == "" {
		link = "http://" + host + "/"
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
			link = "http://[" + host + "]/"
		}
	}
	return blockpage.Notice{
		Title: "This site is allowed now",
		Paragraphs: []string{
			host + " is not blocked for you any more.",
			"Your device may remember the old answer for a few minutes. If this page comes back, wait a little and try again.",
		},
		Link: link, LinkText: "Try " + host + " again",
	}
}
