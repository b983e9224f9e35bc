// Package blockpage renders Warden's block page and signs the details it
// shows. The proxy serves it for blocked HTTP requests; the web listener
// serves it for names the DNS filter blocked (they resolve to Warden).
//
// The page says what was blocked, why (the category's display name or the
// rule's reason; for a mandatory list such as the IWF's only that the law
// requires the block, never the list's entry), a reference id a pupil can
// read to a teacher, the time in the school's time zone, and the device or
// person as identified. It offers two forms, posted to Warden's web
// listener: a request to review the block (not for mandatory blocks, which
// cannot be excepted) and a report of an unsuitable site. Each form
// carries a token that binds the page's details with HMAC-SHA256, so that
// nobody can forge or alter what they ask about; VerifyToken reads it
// back.
//
// The package is pure: it renders into a writer and does no other I/O.
// The page is self-contained (inline CSS, no scripts, no external
// resources), because it is often shown on the blocked site's origin.
package blockpage

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
)

//go:embed templates/style.css
var styleCSS string

//go:embed templates/layout.html
var layoutHTML string

//go:embed templates/page.html
var pageHTML string

//go:embed templates/notice.html
var noticeHTML string

// Form field names, shared with the web listener's handlers.
const (
	FieldToken   = "token"
	FieldMessage = "message"
	FieldURL     = "url"
	// The teachers' YouTube approval form's fields.
	FieldLogin    = "login"
	FieldPassword = "password"
	FieldReason   = "reason"
)

// Paths of the form handlers on the web listener, below ActionURL.
const (
	ReviewPath  = "/blocked/review"
	ReportPath  = "/blocked/report"
	YouTubePath = "/blocked/youtube"
)

// MaxReasonLen is the longest reason (in characters) a teacher's YouTube
// approval keeps.
const MaxReasonLen = 500

// MaxMessageLen is the longest message (in characters) the forms accept.
const MaxMessageLen = 1000

// Info is one blocked request, as the proxy or the web listener saw and
// decided it.
type Info struct {
	// Time is when the request was made; zero means now.
	Time time.Time
	// Host is the blocked host; URL the full URL when known (HTTP through
	// the proxy or inspected HTTPS), else empty.
	Host, URL string
	// Decision is the policy's decision; it should block.
	Decision policy.Decision
	// Subject is who the request came from, as identified.
	Subject identity.Subject
	// ClientIP is the address the request came from.
	ClientIP netip.Addr
	// URLFiltered says the request was seen whole (plain HTTP through the
	// proxy, or inspected HTTPS), so that URL-level exceptions, such as a
	// YouTube approval, apply to it; a name the DNS filter blocked is
	// not.
	URLFiltered bool
}

// Options configure a Page.
type Options struct {
	// Key is the HMAC-SHA256 key of the forms' tokens, at least
	// MinKeyLen bytes; the app derives it from the master key ring. Every
	// Warden node that serves pages or takes their forms needs the same
	// key.
	Key []byte
	// ActionURL is the absolute base URL of Warden's web listener, such
	// as "https://warden.school.example". The forms post there, because
	// the page is often shown on the blocked site's own origin.
	ActionURL string
	// SchoolName is shown in the page's heading; empty shows none.
	SchoolName string
	// Taxonomy gives categories their display names; nil uses the
	// built-in taxonomy.
	Taxonomy *lists.Taxonomy
	// Location is the school's time zone for the times shown; nil means
	// Europe/London.
	Location *time.Location
	// TokenMaxAge is how long the forms stay usable;
	// DefaultTokenMaxAge if zero.
	TokenMaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of the reference ids' random part; pass
	// crypto/rand.Reader. Reads are serialised.
	Rand io.Reader
	// TeacherApproval offers, on the block page of a YouTube video or
	// channel, a form for a member of staff to approve it for the group
	// with their Warden login and password. The form carries a password,
	// so it is offered only when ActionURL is HTTPS or on loopback.
	TeacherApproval bool
}

// Page renders block pages and notices and verifies their tokens. It is
// safe for concurrent use.
type Page struct {
	key    []byte
	action string
	origin string
	school string
	tax    *lists.Taxonomy
	loc    *time.Location
	maxAge time.Duration
	now    func() time.Time
	randMu sync.Mutex
	rand   io.Reader
	page   *template.Template
	notice *template.Template
	// pageHead and foot are the block page's fixed start and end,
	// rendered once: the style sheet is most of the page.
	pageHead []byte
	foot     []byte
	csp      string
	// teacher says the YouTube approval form is offered.
	teacher bool

	// Rendering the template is most of a page's cost, and a school's
	// blocked requests repeat (the same site, the same device, often
	// many times a second), so the content is rendered once per set of
	// details with stand-ins for what changes every time (reference,
	// time, token) and kept in skeletons. slot marks the stand-ins; it is
	// derived from the key, so no host or URL can imitate one.
	slot        string
	skeletonsMu sync.Mutex
	skeletons   map[string]*skeleton

	// recent holds the pages rendered within the current second, by
	// every detail of the request but its time: the same request again
	// within the second (an app retrying, a page's many blocked parts)
	// gets the same page, reference and token, with nothing rendered or
	// signed again.
	recentMu sync.Mutex
	recent   map[string]recentPage
}

// maxRecent bounds the pages kept for reuse within a second.
const maxRecent = 256

// recentPage is a page rendered during one second (Unix time).
type recentPage struct {
	sec  int64
	html []byte
}

// maxSkeletons bounds the cache of rendered skeletons; past it the cache
// starts again.
const maxSkeletons = 4096

// Stand-ins in a skeleton, after Page.slot.
const (
	slotRef = iota
	slotWhen
	slotWhenISO
	slotToken
	numSlots
)

// skeleton is the rendered content of a page with its stand-ins cut out:
// text[0], value, text[1], value, ... text[len(slots)].
type skeleton struct {
	text  [][]byte
	slots []int
}

// New checks opts and parses the templates.
func New(opts Options) (*Page, error) {
	if len(opts.Key) < MinKeyLen {
		return nil, fmt.Errorf("block page: key is %d bytes, need at least %d", len(opts.Key), MinKeyLen)
	}
	if opts.Rand == nil {
		return nil, errors.New("block page: no random source (pass crypto/rand.Reader)")
	}
	action, origin, err := parseActionURL(opts.ActionURL)
	if err != nil {
		return nil, err
	}
	p := &Page{
		key:    bytes.Clone(opts.Key),
		action: action,
		origin: origin,
		school: strings.TrimSpace(opts.SchoolName),
		tax:    opts.Taxonomy,
		loc:    opts.Location,
		maxAge: opts.TokenMaxAge,
		now:    opts.Now,
		rand:   opts.Rand,
		// Never ask for a password that would cross the network in clear.
		teacher: opts.TeacherApproval && PasswordSafe(action),
	}
	if p.tax == nil {
		p.tax = lists.DefaultTaxonomy()
	}
	if p.loc == nil {
		if p.loc, err = time.LoadLocation("Europe/London"); err != nil {
			return nil, fmt.Errorf("block page: load Europe/London time zone: %w", err)
		}
	}
	if p.maxAge <= 0 {
		p.maxAge = DefaultTokenMaxAge
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.page, err = parse("page", pageHTML); err != nil {
		return nil, err
	}
	if p.notice, err = parse("notice", noticeHTML); err != nil {
		return nil, err
	}
	if p.pageHead, err = p.exec(p.page, "head", p.layout("This site is blocked")); err != nil {
		return nil, err
	}
	if p.foot, err = p.exec(p.page, "foot", nil); err != nil {
		return nil, err
	}
	// The stand-ins' mark comes from the key: unguessable without it.
	p.slot = "wardenslot" + hex.EncodeToString(tokenMAC(p.key, "skeleton stand-in")[:8]) + "x"
	p.skeletons = map[string]*skeleton{}
	p.recent = map[string]recentPage{}
	sum := sha256.Sum256([]byte(styleCSS))
	// The page's only inline content is its style sheet, allowed by hash;
	// forms may post only to Warden.
	p.csp = fmt.Sprintf("default-src 'none'; style-src 'sha256-%s'; img-src data:; form-action %s; base-uri 'none'; frame-ancestors 'none'",
		base64.StdEncoding.EncodeToString(sum[:]), origin)
	return p, nil
}

func parse(name, body string) (*template.Template, error) {
	t, err := template.New("layout").Parse(layoutHTML)
	if err == nil {
		_, err = t.New(name).Parse(body)
	}
	if err != nil {
		return nil, fmt.Errorf("block page: parse template %s: %w", name, err)
	}
	return t, nil
}

// exec renders one template into a new slice.
func (p *Page) exec(t *template.Template, name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// parseActionURL checks the base URL of the forms and returns it without
// a trailing slash, and its origin.
func parseActionURL(s string) (action, origin string, err error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", "", fmt.Errorf("block page: action URL %q: %w", s, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("block page: action URL %q must be an absolute http or https URL with no user, query or fragment, such as https://warden.school.example", s)
	}
	origin = u.Scheme + "://" + u.Host
	return origin + strings.TrimSuffix(u.EscapedPath(), "/"), origin, nil
}

// PasswordSafe reports whether a form posting to actionURL may carry a
// password: over HTTPS, or over plain HTTP to a loopback address (tests,
// a demo on one machine).
func PasswordSafe(actionURL string) bool {
	u, err := url.Parse(actionURL)
	if err != nil {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	h := u.Hostname()
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.IsLoopback()
	}
	return h == "localhost"
}

// ActionURL returns the base URL the forms post to, without a trailing
// slash.
func (p *Page) ActionURL() string { return p.action }

// Location returns the time zone the page shows times in.
func (p *Page) Location() *time.Location { return p.loc }

// ContentSecurityPolicy returns the Content-Security-Policy for the page
// and notices: nothing loads, the inline style is allowed by its hash,
// and forms post only to Warden.
func (p *Page) ContentSecurityPolicy() string { return p.csp }

// SetHeaders sets the headers to send with a block page or notice: HTML
// content type, no caching (the page is about one request), the content
// security policy, no referrer, no framing.
func (p *Page) SetHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// Verify checks a token from one of the page's forms with the page's key,
// clock and maximum age; see VerifyToken.
func (p *Page) Verify(token string) (Claims, error) {
	return VerifyToken(p.key, token, p.now(), p.maxAge)
}

// Render writes the block page for info. It renders into a buffer and
// writes only on success.
func (p *Page) Render(w io.Writer, info Info) error {
	buf, err := p.appendPage(nil, info)
	if err != nil {
		return err
	}
	_, err = w.Write(buf)
	return err
}

// appendPage appends the block page for info to buf.
func (p *Page) appendPage(buf []byte, info Info) ([]byte, error) {
	at := info.Time
	if at.IsZero() {
		at = p.now()
	}
	sec, key := at.Unix(), recentKey(info)
	p.recentMu.Lock()
	r, ok := p.recent[key]
	p.recentMu.Unlock()
	if ok && r.sec == sec {
		return append(buf, r.html...), nil
	}
	page, err := p.render(info)
	if err != nil {
		return nil, err
	}
	p.recentMu.Lock()
	if len(p.recent) >= maxRecent {
		clear(p.recent)
	}
	p.recent[key] = recentPage{sec: sec, html: page}
	p.recentMu.Unlock()
	return append(buf, page...), nil
}

// recentKey is every detail of info that the page or its token shows,
// but the time.
func recentKey(info Info) string {
	d, who := info.Decision, info.Subject
	return strings.Join([]string{info.Host, info.URL, d.Category, d.List, d.Rule, d.Reason, strconv.FormatBool(d.Mandatory), d.Group,
		strconv.FormatInt(d.PolicyVersion, 10), info.ClientIP.String(), strconv.FormatInt(who.DeviceID, 10), who.Device,
		strconv.FormatInt(who.PersonID, 10), who.Person, who.Group, strconv.FormatBool(info.URLFiltered)}, "\x00")
}

// render renders a new page for info, with its own reference and token.
func (p *Page) render(info Info) ([]byte, error) {
	data, err := p.pageData(info)
	if err != nil {
		return nil, err
	}
	sk, err := p.skeleton(data)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, len(p.pageHead)+len(p.foot)+4096)
	buf = append(buf, p.pageHead...)
	vals := [numSlots]string{slotRef: data.Ref, slotWhen: data.When, slotWhenISO: data.WhenISO, slotToken: data.Token}
	for i, t := range sk.text {
		buf = append(buf, t...)
		if i < len(sk.slots) {
			buf = append(buf, html.EscapeString(vals[sk.slots[i]])...)
		}
	}
	return append(buf, p.foot...), nil
}

// skeleton returns the content rendered for data's details, with
// stand-ins for its reference, time and token.
func (p *Page) skeleton(data pageView) (*skeleton, error) {
	stand := data
	// The key is every detail but the stand-ins' (the form addresses and
	// limits are the Page's own).
	mandatory := "0"
	if data.Mandatory {
		mandatory = "1"
	}
	key := strings.Join([]string{data.Host, data.URL, data.Category, data.Reason, mandatory, data.LawList, data.Who, data.Group, data.YouTube}, "\x00")
	p.skeletonsMu.Lock()
	sk := p.skeletons[key]
	p.skeletonsMu.Unlock()
	if sk != nil {
		return sk, nil
	}
	for i, dst := range []*string{&stand.Ref, &stand.When, &stand.WhenISO, &stand.Token} {
		*dst = p.slot + strconv.Itoa(i)
	}
	var buf bytes.Buffer
	if err := p.page.ExecuteTemplate(&buf, "content", stand); err != nil {
		return nil, fmt.Errorf("render block page: %w", err)
	}
	sk = &skeleton{}
	rest := buf.Bytes()
	for {
		i := bytes.Index(rest, []byte(p.slot))
		if i < 0 || i+len(p.slot) >= len(rest) {
			break
		}
		n := int(rest[i+len(p.slot)] - '0')
		if n < 0 || n >= numSlots {
			return nil, fmt.Errorf("render block page: stand-in %d", n)
		}
		sk.text = append(sk.text, rest[:i])
		sk.slots = append(sk.slots, n)
		rest = rest[i+len(p.slot)+1:]
	}
	sk.text = append(sk.text, rest)
	p.skeletonsMu.Lock()
	if len(p.skeletons) >= maxSkeletons {
		clear(p.skeletons)
	}
	p.skeletons[key] = sk
	p.skeletonsMu.Unlock()
	return sk, nil
}

// fallbackHTML is served if the page cannot be rendered (the random
// source failed): the request stays blocked, only the forms are missing.
const fallbackHTML = `<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Blocked</title></head>
<body><main><h1>This site is blocked</h1><p>The school's filter blocked this page. If you need it for your work, ask your teacher.</p></main></body></html>
`

// HTML returns the block page for info. If the page cannot be rendered it
// returns a short static page that still says the site is blocked, so a
// caller always has something safe to serve.
func (p *Page) HTML(info Info) []byte { return p.AppendHTML(nil, info) }

// AppendHTML appends the block page for info to dst, as HTML does, so a
// server can render into a buffer it reuses.
func (p *Page) AppendHTML(dst []byte, info Info) []byte {
	buf, err := p.appendPage(dst, info)
	if err != nil {
		return append(dst, fallbackHTML...)
	}
	return buf
}

// pageView is what the page template shows.
type pageView struct {
	Host      string
	URL       string
	Category  string
	Reason    string
	Mandatory bool
	// LawList names the mandatory list in words.
	LawList    string
	Ref        string
	When       string
	WhenISO    string
	Who        string
	Group      string
	Token      string
	ReviewURL  string
	ReportURL  string
	MessageMax int
	URLMax     int
	// YouTube is "video" or "channel" when teachers may approve the
	// blocked page from here, else "".
	YouTube    string
	YouTubeURL string
	ReasonMax  int
}

// layoutView is what the layout shows around every page.
type layoutView struct {
	Title  string
	School string
	CSS    template.CSS
}

func (p *Page) pageData(info Info) (pageView, error) {
	now := p.now()
	at := info.Time
	if at.IsZero() {
		at = now
	}
	d := info.Decision
	host := info.Host
	if host == "" && info.URL != "" {
		if u, err := url.Parse(info.URL); err == nil {
			host = u.Hostname()
		}
	}
	host = truncate(strings.ToValidUTF8(host, "?"), maxHostLen)
	if host == "" {
		return pageView{}, errors.New("render block page: no host")
	}
	ref, err := p.newRef(at)
	if err != nil {
		return pageView{}, fmt.Errorf("render block page: %w", err)
	}
	group := d.Group
	if group == "" {
		group = info.Subject.Group
	}
	c := Claims{
		Ref: ref, Issued: now.UTC().Truncate(time.Second), Time: at.UTC(),
		Host: host, Category: truncate(d.Category, maxIDLen), List: truncate(d.List, maxIDLen), Rule: truncate(d.Rule, maxIDLen),
		Mandatory: d.Mandatory, Group: truncate(group, maxIDLen), PolicyVersion: d.PolicyVersion,
		ClientIP: info.ClientIP, DeviceID: info.Subject.DeviceID, PersonID: info.Subject.PersonID,
	}
	v := pageView{
		Host:       host,
		Mandatory:  d.Mandatory,
		Ref:        FormatRef(ref),
		When:       at.In(p.loc).Format("Monday 2 January 2006 at 15:04 MST"),
		WhenISO:    at.UTC().Format(time.RFC3339),
		Who:        who(info.Subject),
		Group:      group,
		ReviewURL:  p.action + ReviewPath,
		ReportURL:  p.action + ReportPath,
		MessageMax: MaxMessageLen,
		URLMax:     maxURLLen,
	}
	if d.Mandatory {
		// Never the URL, the entry or the list's detailed reason: only
		// that the law requires the block. The host is what the pupil
		// asked for.
		v.LawList = lawList(d)
		c.Reason = "On the " + v.LawList + "."
	} else {
		if info.URL != "" {
			c.URL = truncate(strings.ToValidUTF8(info.URL, "?"), maxURLLen)
			v.URL = shorten(c.URL, 100)
		}
		if cat, ok := p.tax.Category(d.Category); ok && d.Category != "" {
			v.Category = cat.Title
		}
		v.Reason = d.Reason
		c.Reason = truncate(d.Reason, maxReasonLen)
		if ref, err := policy.ParseYouTubeRef(c.URL); p.teacher && info.URLFiltered && c.URL != "" && err == nil && group != "" {
			v.YouTube, v.YouTubeURL, v.ReasonMax = ref.Kind.String(), p.action+YouTubePath, MaxReasonLen
		}
	}
	if v.Token, err = signToken(p.key, c); err != nil {
		return pageView{}, err
	}
	return v, nil
}

func (p *Page) layout(title string) layoutView {
	return layoutView{Title: title, School: p.school, CSS: template.CSS(styleCSS)}
}

func (p *Page) newRef(t time.Time) (string, error) {
	p.randMu.Lock()
	defer p.randMu.Unlock()
	return newRef(t, p.rand)
}

// lawList names a mandatory list for the page, without any detail of
// its entries.
func lawList(d policy.Decision) string {
	switch {
	case d.Category == "child-abuse" || d.List == "iwf" || strings.HasPrefix(d.List, "iwf/"):
		return "Internet Watch Foundation (IWF) list of child sexual abuse content, which the law requires schools to block"
	case d.Category == "terrorism" || d.List == "ctiru" || strings.HasPrefix(d.List, "ctiru/"):
		return "Counter Terrorism Internet Referral Unit (CTIRU) list of unlawful terrorist content, which the law requires schools to block"
	}
	return "list of illegal content that the law requires schools to block"
}

// who names the device or person as identified.
func who(s identity.Subject) string {
	switch {
	case s.Person != "" && s.Device != "":
		return s.Person + " (on " + s.Device + ")"
	case s.Person != "":
		return s.Person
	case s.Device != "":
		return s.Device
	}
	return "unknown device"
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// shorten keeps a long URL readable: its start and its end, joined by an
// ellipsis, at most n characters.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	head, tail := n*2/3, n-n*2/3-1
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// Notice is a short page in the block page's style: the thanks page, an
// error, "this site is allowed now".
type Notice struct {
	// Title is the heading (and the page title).
	Title string
	// Paragraphs are shown in order.
	Paragraphs []string
	// Ref, if set, is shown as the reference (any form; shown as
	// FormatRef of its canonical form when it is one).
	Ref string
	// Link and LinkText, if set, add one link (such as "try again").
	Link, LinkText string
}

// noticeView is what the notice template shows.
type noticeView struct {
	layoutView
	Paragraphs     []string
	Ref            string
	Link, LinkText string
}

// RenderNotice writes n in the block page's style; it renders into a
// buffer and writes only on success.
func (p *Page) RenderNotice(w io.Writer, n Notice) error {
	v := noticeView{layoutView: p.layout(n.Title), Paragraphs: n.Paragraphs, Ref: n.Ref, Link: n.Link, LinkText: n.LinkText}
	if r, err := ParseRef(n.Ref); err == nil {
		v.Ref = FormatRef(r)
	}
	var buf bytes.Buffer
	for _, name := range []string{"head", "content", "foot"} {
		if err := p.notice.ExecuteTemplate(&buf, name, v); err != nil {
			return fmt.Errorf("render notice: %w", err)
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}
