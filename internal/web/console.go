package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/accesslog"
	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/reviews"
)

//go:embed templates/console/*.html
var consoleTemplates embed.FS

//go:embed static/console.css
var consoleCSS []byte

// ConsoleOptions configure a Console.
type ConsoleOptions struct {
	// Accounts signs people in.
	Accounts *auth.Accounts
	// Audit records every sign-in and console action; an action whose
	// record cannot be written is refused.
	Audit *audit.Log
	// Location is the school's time zone for times shown (Europe/London
	// if nil).
	Location *time.Location
	// Access is the access log the Monitoring page reads; Directory
	// names the people and devices in it.
	Access    *accesslog.Log
	Directory Directory
	// Categories are the category ids offered in the viewer's filter.
	Categories []string
	// Checker answers "Why is this blocked?".
	Checker SiteChecker
	// Changes is filtering's change control; Reviews holds the block
	// page's review requests.
	Changes ChangeControl
	Reviews *reviews.Store
	// Tokens issues and revokes device tokens.
	Tokens DeviceTokens
	// Importer imports people from CSV files.
	Importer Importer
	// Lists are the stored category lists; UT1URL is the address the
	// update form offers (empty: none).
	Lists  ListStore
	UT1URL string
	// Key signs the forms' CSRF tokens (at least 32 bytes; the app derives
	// it from the master key).
	Key []byte
	// Secure says people reach the console over HTTPS (the listener has a
	// certificate, or a TLS front end forwards to it): cookies are then
	// Secure. Without it, sign-in is refused to every client but loopback
	// (a demo on one machine, tests), so no password crosses the network
	// in clear.
	Secure bool
	// SchoolName returns the school's name for headings (nil: none).
	SchoolName func(context.Context) string
	// Logger receives the console's messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SignInLimit is how many sign-in attempts (passwords and codes) one
	// client address may make per SignInWindow (20 per 15 minutes).
	SignInLimit  int
	SignInWindow time.Duration
}

// Console serves the console: sign-in with two-factor authentication,
// the first administrator's set-up, password changes, and the pages of
// each job, shown to the roles whose permissions allow them.
type Console struct {
	accounts   *auth.Accounts
	audit      *audit.Log
	access     *accesslog.Log
	dir        Directory
	categories []string
	checker    SiteChecker
	changes    ChangeControl
	reviews    *reviews.Store
	tokens     DeviceTokens
	lists      ListStore
	importer   Importer
	uploads    uploads
	ut1URL     string
	updates    listUpdates
	loc        *time.Location
	key        []byte
	secure     bool
	school     func(context.Context) string
	log        *slog.Logger
	now        func() time.Time
	signIns    *limiter
	tmpl       map[string]*template.Template
}

// Cookie names. With Secure, the session cookie takes the __Host- prefix,
// which browsers accept only from a secure origin, for path / and with no
// domain: no other site or subdomain can set or read it.
const (
	sessionCookie     = "warden_session"
	hostSessionCookie = "__Host-warden_session"
	preCookie         = "warden_presession"
	hostPreCookie     = "__Host-warden_presession"
)

// NewConsole checks opts and parses the templates.
func NewConsole(opts ConsoleOptions) (*Console, error) {
	if opts.Accounts == nil || opts.Audit == nil || opts.Access == nil || opts.Directory == nil || opts.Checker == nil || opts.Changes == nil || opts.Reviews == nil || opts.Tokens == nil || opts.Lists == nil || opts.Importer == nil {
		return nil, errors.New("console: accounts, audit log, access log, directory, site checker, change control, reviews, device tokens, lists and an importer are all needed")
	}
	if len(opts.Key) < 32 {
		return nil, errors.New("console: the CSRF key must be at least 32 bytes")
	}
	c := &Console{accounts: opts.Accounts, audit: opts.Audit, access: opts.Access, dir: opts.Directory, categories: opts.Categories, checker: opts.Checker, changes: opts.Changes, reviews: opts.Reviews, tokens: opts.Tokens, lists: opts.Lists, importer: opts.Importer, ut1URL: opts.UT1URL, loc: opts.Location, key: opts.Key, secure: opts.Secure, school: opts.SchoolName,
		log: opts.Logger, now: opts.Now, tmpl: map[string]*template.Template{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "console")
	if c.now == nil {
		c.now = time.Now
	}
	if c.loc == nil {
		var err error
		if c.loc, err = time.LoadLocation("Europe/London"); err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
	}
	limit, window := opts.SignInLimit, opts.SignInWindow
	if limit <= 0 {
		limit = 20
	}
	if window <= 0 {
		window = 15 * time.Minute
	}
	c.signIns = newLimiter(limit, window, maxLimiterClients)
	for _, page := range []string{"login", "totp", "enrol", "password", "setup", "home", "section", "message", "audit", "monitoring", "check", "filtering", "people", "token", "settings", "import"} {
		t, err := template.New("layout").ParseFS(consoleTemplates, "templates/console/layout.html", "templates/console/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", page, err)
		}
		c.tmpl[page] = t
	}
	return c, nil
}

// Register adds the console's routes to mux. Pages needing a session
// send people without one to /login.
//
//	GET  /                    home: the jobs the signed-in role may do
//	GET  /login, POST /login  sign in with login and password
//	GET  /login/2fa, POST     the second step: a TOTP code
//	GET  /account/2fa, POST   enrol an authenticator app (first sign-in)
//	GET  /account/password, POST  change one's password (yearly, or when set by someone else)
//	POST /logout              sign out
//	GET  /setup/{token}, POST the first administrator's one-time set-up link
//	GET  /static/console.css  the style sheet
//	GET  /audit, POST /audit/verify  the audit log and its chain check
//	GET  /monitoring, /monitoring/export.csv  the access-log viewer and its CSV export
//	GET  /check               "Why is this blocked?"
//	GET  /filtering, POST /filtering/propose, /filtering/changes/{id}/approve|reject|revert  change control
//	POST /filtering/requests/{id}/approve|decline  the block page's review requests
//	POST /filtering/reports/{id}/block|dismiss  unsuitable-site reports
//	POST /filtering/lists/update  download the UT1 set (in the background; a bad download changes nothing)
//	GET  /people, POST /people/devices/{id}/token[/revoke]  people, devices and device tokens
//	GET  /people/import, POST /people/import[/confirm]  CSV import: preview (a dry run), then import
//	GET  /settings, POST /settings/accounts[/{id}/{action}]  accounts: give, role, unlock, disable, enable, reset-2fa, reset-password
//	GET  /filtering, /people, /monitoring, /safeguarding, /reports, /settings: the jobs
func (c *Console) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /static/console.css", c.css)
	mux.HandleFunc("GET /login", c.getLogin)
	mux.HandleFunc("POST /login", c.postLogin)
	mux.HandleFunc("GET /login/2fa", c.withSession(stepSecond, c.getSecond))
	mux.HandleFunc("POST /login/2fa", c.withSession(stepSecond, c.postSecond))
	mux.HandleFunc("GET /account/2fa", c.withSession(stepEnrol, c.getEnrol))
	mux.HandleFunc("POST /account/2fa", c.withSession(stepEnrol, c.postEnrol))
	mux.HandleFunc("GET /account/password", c.withSession(stepPassword, c.getPassword))
	mux.HandleFunc("POST /account/password", c.withSession(stepPassword, c.postPassword))
	mux.HandleFunc("POST /logout", c.postLogout)
	mux.HandleFunc("GET /setup/{token}", c.getSetup)
	mux.HandleFunc("POST /setup/{token}", c.postSetup)
	mux.HandleFunc("GET /{$}", c.withSession(stepFull, c.home))
	mux.HandleFunc("GET /audit", c.withSession(stepFull, c.getAudit))
	mux.HandleFunc("GET /monitoring", c.withSession(stepFull, c.getMonitoring))
	mux.HandleFunc("GET /check", c.withSession(stepFull, c.getCheck))
	mux.HandleFunc("GET /filtering", c.withSession(stepFull, c.getFiltering))
	mux.HandleFunc("POST /filtering/propose", c.withSession(stepFull, c.postPropose))
	mux.HandleFunc("POST /filtering/lists/update", c.withSession(stepFull, c.postListUpdate))
	mux.HandleFunc("POST /filtering/reports/{id}/block", c.withSession(stepFull, c.postReport(true)))
	mux.HandleFunc("POST /filtering/reports/{id}/dismiss", c.withSession(stepFull, c.postReport(false)))
	mux.HandleFunc("POST /filtering/changes/{id}/approve", c.withSession(stepFull, c.postDecide(true)))
	mux.HandleFunc("POST /filtering/changes/{id}/reject", c.withSession(stepFull, c.postDecide(false)))
	mux.HandleFunc("POST /filtering/changes/{id}/revert", c.withSession(stepFull, c.postRevert))
	mux.HandleFunc("GET /settings", c.withSession(stepFull, c.getSettings))
	mux.HandleFunc("POST /settings/accounts", c.withSession(stepFull, c.postAccount))
	mux.HandleFunc("POST /settings/accounts/{id}/{action}", c.withSession(stepFull, c.postAccountAction))
	mux.HandleFunc("GET /people", c.withSession(stepFull, c.getPeople))
	mux.HandleFunc("GET /people/import", c.withSession(stepFull, c.getImport))
	mux.HandleFunc("POST /people/import", c.withSession(stepFull, c.postImport))
	mux.HandleFunc("POST /people/import/confirm", c.withSession(stepFull, c.postImportConfirm))
	mux.HandleFunc("POST /people/devices/{id}/token", c.withSession(stepFull, c.postDeviceToken(false)))
	mux.HandleFunc("POST /people/devices/{id}/token/revoke", c.withSession(stepFull, c.postDeviceToken(true)))
	mux.HandleFunc("POST /filtering/requests/{id}/approve", c.withSession(stepFull, c.postRequest(true)))
	mux.HandleFunc("POST /filtering/requests/{id}/decline", c.withSession(stepFull, c.postRequest(false)))
	mux.HandleFunc("GET /monitoring/export.csv", c.withSession(stepFull, c.getExport))
	mux.HandleFunc("POST /audit/verify", c.withSession(stepFull, c.postAuditVerify))
	for _, s := range sections() {
		if !s.Built {
			mux.HandleFunc("GET "+s.Path, c.withSession(stepFull, c.section(s)))
		}
	}
}

func (c *Console) css(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/css; charset=utf-8")
	rw.Header().Set("Cache-Control", "public, max-age=3600")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.Write(consoleCSS)
}

// signedIn is who a page is for.
type signedIn struct {
	Name string
	// Role is the role's label.
	Role string
}

// view is what every console template gets.
type view struct {
	Title   string
	School  string
	Signed  *signedIn
	Nav     []navItem
	CSRF    string
	Flash   string
	Problem string
	Data    any
}

// setHeaders sets the console's security headers: nothing loads from
// elsewhere, no framing, no caching of pages about people.
func setHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

// render writes page with v.
func (c *Console) render(rw http.ResponseWriter, r *http.Request, status int, page string, v view) {
	if c.school != nil {
		v.School = c.school(r.Context())
	}
	var b strings.Builder
	if err := c.tmpl[page].ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.Error("render_failed", "page", page, "err", err)
		http.Error(rw, "The page could not be shown.", http.StatusInternalServerError)
		return
	}
	setHeaders(rw.Header())
	rw.WriteHeader(status)
	io.WriteString(rw, b.String())
}

// message renders a page of a few paragraphs and an optional link.
func (c *Console) message(rw http.ResponseWriter, r *http.Request, status int, v view, link, linkText string, paragraphs ...string) {
	v.Data = struct {
		Paragraphs     []string
		Link, LinkText string
	}{paragraphs, link, linkText}
	c.render(rw, r, status, "message", v)
}

// csrfFor is the CSRF token of a session (or pre-session) secret: an
// HMAC, so it needs no storage and cannot be made without the key.
func (c *Console) csrfFor(secret string) string {
	m := hmac.New(sha256.New, c.key)
	io.WriteString(m, "console csrf\x00"+secret)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkPost refuses a state-changing request whose Origin is another
// site's or whose CSRF token is not the one for secret, writing the
// error page. Every console form carries the token; SameSite=Strict
// cookies and the Origin check are further layers.
func (c *Console) checkPost(rw http.ResponseWriter, r *http.Request, secret string) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			c.forbidden(rw, r, "This form came from another site.")
			return false
		}
	}
	var err error
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		// A file upload (people import): larger, parsed with its files.
		r.Body = http.MaxBytesReader(rw, r.Body, maxImportBytes+1<<20)
		err = r.ParseMultipartForm(8 << 20)
	} else {
		r.Body = http.MaxBytesReader(rw, r.Body, maxFormBytes)
		err = r.ParseForm()
	}
	if err != nil {
		c.message(rw, r, http.StatusBadRequest, view{Title: "This form could not be read"}, "", "", "Go back, reload the page and try again.")
		return false
	}
	got := r.PostForm.Get("csrf")
	if secret == "" || !hmac.Equal([]byte(got), []byte(c.csrfFor(secret))) {
		c.forbidden(rw, r, "This form has expired or did not come from this page. Go back, reload the page and try again.")
		return false
	}
	return true
}

func (c *Console) forbidden(rw http.ResponseWriter, r *http.Request, why string) {
	c.message(rw, r, http.StatusForbidden, view{Title: "Not allowed"}, "/", "Back to the start", why)
}

// cookie names and sets cookies with the console's attributes.
func (c *Console) cookieName(base, host string) string {
	if c.secure {
		return host
	}
	return base
}

func (c *Console) setCookie(rw http.ResponseWriter, base, host, value string, maxAge int) {
	http.SetCookie(rw, &http.Cookie{Name: c.cookieName(base, host), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteStrictMode})
}

func (c *Console) readCookie(r *http.Request, base, host string) string {
	ck, err := r.Cookie(c.cookieName(base, host))
	if err != nil {
		return ""
	}
	return ck.Value
}

// needsHTTPS refuses sign-in and set-up over plain HTTP from anywhere but
// this machine, writing the page that says how to fix it.
func (c *Console) needsHTTPS(rw http.ResponseWriter, r *http.Request) bool {
	if c.secure || clientIP(r).IsLoopback() {
		return false
	}
	c.message(rw, r, http.StatusForbidden, view{Title: "The console needs HTTPS"}, "", "",
		"Signing in over this unencrypted connection would send your password across the network where others could read it.",
		"Ask the IT technician to give Warden's web listener a certificate (tls.cert_file and tls.key_file, see the README) and to open the console at its https:// address.")
	return true
}

// record writes an audit entry for a request (the client address added).
// When it fails, the caller refuses the action: nothing happens
// unrecorded. It writes the error page and returns false then.
func (c *Console) record(rw http.ResponseWriter, r *http.Request, e audit.Entry) bool {
	e.ClientIP = clientIP(r)
	if err := c.audit.Record(r.Context(), e); err != nil {
		c.log.Error("audit_failed", "action", e.Action, "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, view{Title: "Warden is busy"}, "", "",
			"Warden could not record this in its audit log, so it did not do it. Please try again in a minute.")
		return false
	}
	return true
}

// actorOf names an account in the audit log: its login.
func actorOf(a auth.Account) string {
	if a.Person.Username != "" {
		return a.Person.Username
	}
	return a.Person.Email
}

// preSession returns the pre-session secret (the CSRF seed of the
// sign-in and set-up forms), setting a new one when there is none.
func (c *Console) preSession(rw http.ResponseWriter, r *http.Request) string {
	if v := c.readCookie(r, preCookie, hostPreCookie); len(v) >= 40 && len(v) <= 64 {
		return v
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ""
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	c.setCookie(rw, preCookie, hostPreCookie, v, 0)
	return v
}
