package inspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// Rules of the decisions the inspector makes itself.
const (
	// RuleUpstreamCertificate blocks a request whose site's certificate
	// did not verify.
	RuleUpstreamCertificate = "upstream-certificate"
	// RuleNoPolicy blocks everything while no policy is loaded.
	RuleNoPolicy = "no-policy"
	// RuleBadRequest refuses a request the inspector cannot decide.
	RuleBadRequest = "bad-request"
)

// session is one intercepted connection: what every request on it
// shares.
type session struct {
	in          *Inspector
	target      string // the CONNECT target, host:port
	connectHost string // its host, normalised
	port        string
	sni         string
	who         identity.Subject
	clientIP    netip.Addr
	wg          sync.WaitGroup // requests in flight (for upgrades)
}

// exchange is one request's state, shared with the reverse proxy's
// callbacks through the request context.
type exchange struct {
	s        *session
	start    time.Time
	host     string // normalised request host
	hostport string // host, with the port unless 443
	url      string
	decision policy.Decision
	term     string
	// status and headerAt are the site's response status and when it
	// came.
	status   int
	headerAt time.Time
	blocked  *Blocked // set when the exchange was answered with the block page
	// youTube is the approved video or channel the request concerns,
	// when it went without Restricted Mode for it.
	youTube policy.YouTubeRef
}

type exchangeKey struct{}

// ServeHTTP decides one request inside the tunnel and answers it: the
// block page, or the site's response.
func (s *session) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	in := s.in
	cw := &countingWriter{ResponseWriter: w, now: in.now}
	ex := &exchange{s: s, start: in.now()}
	defer func() { in.emit(ex, r, cw) }()

	if r.Method == http.MethodConnect {
		// HTTP/2 CONNECT (and extended CONNECT) would open a tunnel
		// inside the tunnel, out of sight.
		ex.host = s.connectHost
		ex.decision = policy.Decision{Action: policy.Block, Rule: RuleBadRequest, Group: s.who.Group, Reason: "CONNECT inside an inspected connection."}
		http.Error(cw, "CONNECT inside an inspected connection is not supported", http.StatusMethodNotAllowed)
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" {
		host = s.connectHost
	}
	hn, _, err := leafName(host)
	if err != nil {
		ex.host = host
		ex.decision = policy.Decision{Action: policy.Block, Rule: RuleBadRequest, Group: s.who.Group, Reason: "The Host header is not a host name."}
		http.Error(cw, "bad Host header", http.StatusBadRequest)
		return
	}
	ex.host, ex.hostport = hn, hn
	if strings.IndexByte(hn, ':') >= 0 {
		ex.hostport = "[" + hn + "]"
	}
	if s.port != "443" {
		ex.hostport = net.JoinHostPort(hn, s.port)
	}
	ex.url = "https://" + ex.hostport + r.URL.RequestURI()
	u := *r.URL
	u.Scheme, u.Host = "https", ex.hostport
	if _, term, ok := SearchTerm(&u); ok {
		ex.term = term
	}

	snap := in.opts.Policy()
	if snap == nil {
		ex.decision = policy.Decision{Action: policy.Block, Rule: RuleNoPolicy, Group: s.who.Group,
			Reason: "Warden has no policy loaded yet, so nothing is allowed through."}
	} else {
		ex.decision = snap.Decide(policy.Request{URL: ex.url, Group: s.who.Group, ClientIP: s.clientIP, Time: ex.start})
	}
	if ex.decision.Blocked() {
		in.metrics.requests[1].Inc()
		in.serveBlocked(cw, ex)
		return
	}
	in.metrics.requests[0].Inc()

	r.URL.Scheme, r.URL.Host = "https", ex.hostport
	if ref, ok := youTubeApproval(snap, ex.decision, r); ok {
		// A video or channel approved for teaching: no YouTube-Restrict
		// header from Warden (a client's own stays).
		ex.youTube = ref
	} else {
		EnforceSafeSearch(r, ex.decision.SafeSearch)
	}
	ctx := context.WithValue(r.Context(), exchangeKey{}, ex)
	ctx = context.WithValue(ctx, targetKey{}, s.target)
	in.rp.ServeHTTP(cw, r.WithContext(ctx))
}

// rewrite builds the request to the site: the URL the session set, the
// Host from it, and none of the client's forwarding headers (ReverseProxy
// has already removed hop-by-hop headers and, with Rewrite, X-Forwarded-*
// and Forwarded, so pupils' addresses never leave the school).
func (in *Inspector) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "https"
	pr.Out.URL.Host = pr.In.URL.Host
	pr.Out.Host = ""
	pr.Out.Header.Del("Proxy-Authorization")
	pr.Out.Header.Del("Proxy-Connection")
}

// modifyResponse drops Alt-Svc, so browsers do not try the site over
// HTTP/3 (QUIC), around the proxy, and notes the status for the event
// (an upgrade's 101 is written on the hijacked connection, past the
// counting writer).
func (in *Inspector) modifyResponse(resp *http.Response) error {
	resp.Header.Del("Alt-Svc")
	if resp.Request != nil {
		if ex, ok := resp.Request.Context().Value(exchangeKey{}).(*exchange); ok {
			ex.status, ex.headerAt = resp.StatusCode, in.now()
		}
	}
	return nil
}

// upstreamError answers a request the site could not answer. A
// certificate that does not verify gets the block page with the reason,
// never the site; other failures a short 502.
func (in *Inspector) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ex, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		http.Error(w, "Warden could not reach the site.", http.StatusBadGateway)
		return
	}
	if why, ok := verificationError(err); ok {
		in.metrics.verifyFail.Inc()
		in.log.Info("inspect_upstream_unverified", "host", ex.host, "target", ex.s.target, "err", err)
		d := ex.decision
		ex.decision = policy.Decision{
			Action: policy.Block, Rule: RuleUpstreamCertificate, Group: d.Group, PolicyVersion: d.PolicyVersion, SafeSearch: d.SafeSearch,
			Reason: "The site's certificate could not be verified, so Warden did not open it: someone may be impersonating the site, " +
				"or it is misconfigured (" + why + ").",
		}
		in.serveBlocked(w, ex)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads the answer.
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	in.metrics.upstreamFail.Inc()
	in.log.Debug("inspect_upstream_failed", "host", ex.host, "target", ex.s.target, "err", err)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, fmt.Sprintf("Warden could not get %s from the site: %v", ex.host, err), http.StatusBadGateway)
}

// verificationError reports whether err is a failure to verify the
// site's certificate, with a short description for the block page.
func verificationError(err error) (string, bool) {
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return cve.Err.Error(), true
	}
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return ua.Error(), true
	case errors.As(err, &he):
		return he.Error(), true
	case errors.As(err, &ci):
		return ci.Error(), true
	}
	return "", false
}

// serveBlocked answers with the block page.
func (in *Inspector) serveBlocked(w http.ResponseWriter, ex *exchange) {
	b := Blocked{Time: ex.start, Host: ex.host, URL: ex.url, Decision: ex.decision, Subject: ex.s.who, ClientIP: ex.s.clientIP, URLFiltered: ex.url != ""}
	ex.blocked = &b
	var page []byte
	if in.opts.BlockPage != nil {
		page = in.opts.BlockPage(b)
	} else {
		page = renderFallback(b)
	}
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(page)
}

// emit sends the request's event.
func (in *Inspector) emit(ex *exchange, r *http.Request, cw *countingWriter) {
	if in.opts.Events == nil {
		return
	}
	s := ex.s
	d := ex.decision
	group := s.who.Group
	if group == "" {
		group = d.Group
	}
	status, at := cw.status, cw.headerAt
	if status == 0 {
		status, at = ex.status, ex.headerAt
	}
	if status == 0 {
		status = http.StatusOK
	}
	if at.IsZero() {
		at = in.now()
	}
	latency := at.Sub(ex.start)
	rule := d.Rule
	if !ex.youTube.IsZero() && !d.Blocked() {
		rule = RuleYouTubeApproved + ":" + ex.youTube.Kind.String() + ":" + ex.youTube.ID
	}
	in.opts.Events(events.Event{
		Time:          ex.start,
		Source:        "proxy",
		ClientIP:      s.clientIP,
		DeviceID:      s.who.DeviceID,
		PersonID:      s.who.PersonID,
		Group:         group,
		Host:          ex.host,
		URL:           ex.url,
		Method:        r.Method,
		Action:        d.Action.String(),
		Alert:         d.Alert,
		Category:      d.Category,
		List:          d.List,
		Rule:          rule,
		PolicyVersion: d.PolicyVersion,
		Latency:       latency,
		Upstream:      s.target,
		Status:        strconv.Itoa(status),
		Bytes:         cw.n,
		SearchTerm:    ex.term,
	})
}

// countingWriter counts the body bytes sent and notes the status and
// when the headers went.
type countingWriter struct {
	http.ResponseWriter
	now      func() time.Time
	status   int
	headerAt time.Time
	n        int64
}

func (w *countingWriter) WriteHeader(code int) {
	// 1xx are interim, except 101 Switching Protocols, which is final.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		w.headerAt = w.now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.headerAt = w.now()
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends buffered data to the client.
func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
