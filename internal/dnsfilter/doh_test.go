package dnsfilter

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// tokenFixture is a filter whose identity table knows two device tokens:
// a key stage 2 laptop and a staff laptop. Loopback addresses are in a
// pupils' zone, so a staff answer can only come from the token.
type tokenFixture struct {
	f                  *Filter
	ident              atomic.Pointer[identity.Table]
	pupilTok, staffTok string
	up                 *fakeUpstream
}

func newToken(t testing.TB) string {
	t.Helper()
	tok, err := identity.NewToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newTokenFixture(t testing.TB) *tokenFixture {
	t.Helper()
	fx := &tokenFixture{pupilTok: newToken(t), staffTok: newToken(t), up: startUpstream(t, 0)}
	fx.setTokens(fx.pupilTok, fx.staffTok)
	snap := testPolicy(t)
	var err error
	fx.f, err = New(Options{
		Policy:    func() *policy.Snapshot { return snap },
		Identity:  fx.ident.Load,
		Upstreams: []string{fx.up.addr},
		Block:     BlockResponse{Mode: BlockPage, IPv4: netip.MustParseAddr("127.0.0.80")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// setTokens swaps in an identity table where the pupil laptop and the
// staff laptop have these tokens ("" for none), as a reload does after a
// token is issued or revoked.
func (fx *tokenFixture) setTokens(pupil, staff string) {
	hash := func(tok string) string {
		if tok == "" {
			return ""
		}
		return identity.HashToken(tok)
	}
	fx.ident.Store(identity.New(identity.Data{
		Devices: []identity.Device{
			{ID: 1, Name: "ks2-laptop-01", TokenHash: hash(pupil), GroupID: "key-stage-2"},
			{ID: 2, Name: "staff-laptop-07", TokenHash: hash(staff), GroupID: "staff"},
		},
		Zones: []identity.Zone{
			{ID: "pupils", GroupID: "key-stage-2", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		},
		UnknownGroup: "unknown",
	}))
}

// startDoH serves the fixture's DoH handler over plain HTTP on loopback.
func startDoH(t testing.TB, fx *tokenFixture, opts DoHOptions) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(DoHPattern, fx.f.DoH(opts))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func query(t testing.TB, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0 // RFC 8484: 0, so that HTTP caches can share answers
	buf, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// dohDo sends one DoH request and returns the response with its body read.
func dohDo(t testing.TB, c *http.Client, method, url, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if method == http.MethodGet {
		req.Header.Set("Accept", dohContentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// dohAsk asks one question by GET or POST and decodes the answer.
func dohAsk(t testing.TB, c *http.Client, base, token, method, name string, qtype uint16) (*dns.Msg, *http.Response) {
	t.Helper()
	q := query(t, name, qtype)
	var resp *http.Response
	var body []byte
	if method == http.MethodGet {
		resp, body = dohDo(t, c, method, base+"/dns-query/"+token+"?dns="+base64.RawURLEncoding.EncodeToString(q), "", nil)
	} else {
		resp, body = dohDo(t, c, method, base+"/dns-query/"+token, dohContentType, q)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d %s", method, name, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != dohContentType {
		t.Errorf("Content-Type %q", ct)
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		t.Fatalf("answer is not a DNS message: %v", err)
	}
	return m, resp
}

func TestDoH(t *testing.T) {
	fx := newTokenFixture(t)
	base := startDoH(t, fx, DoHOptions{})
	tests := []struct {
		name  string
		token string
		q     string
		a     string
	}{
		{"pupil token: social media blocked", fx.pupilTok, "facebook.com", "127.0.0.80"},
		{"staff token: social media allowed", fx.staffTok, "facebook.com", "192.0.2.1"},
		{"pupil token: gambling blocked", fx.pupilTok, "www.bet365.com", "127.0.0.80"},
		{"pupil token: allowed name forwarded", fx.pupilTok, "example.org", "192.0.2.1"},
		{"staff token: mandatory list blocked", fx.staffTok, "illegal.example", "127.0.0.80"},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.name+" "+method, func(t *testing.T) {
				m, resp := dohAsk(t, http.DefaultClient, base, tt.token, method, tt.q, dns.TypeA)
				if m.Rcode != dns.RcodeSuccess || firstA(m) != tt.a {
					t.Fatalf("answer %s %v, want %s", dns.RcodeToString[m.Rcode], m.Answer, tt.a)
				}
				if m.Id != 0 || !m.Response || len(m.Question) != 1 {
					t.Errorf("header %+v", m.MsgHdr)
				}
				want := "max-age=" + strconv.Itoa(int(m.Answer[0].Header().Ttl))
				if cc := resp.Header.Get("Cache-Control"); cc != want {
					t.Errorf("Cache-Control %q, want %q", cc, want)
				}
			})
		}
	}
}

func TestDoHOverHTTPS(t *testing.T) {
	fx := newTokenFixture(t)
	mux := http.NewServeMux()
	mux.Handle(DoHPattern, fx.f.DoH(DoHOptions{}))
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	m, resp := dohAsk(t, srv.Client(), srv.URL, fx.staffTok, http.MethodPost, "facebook.com", dns.TypeA)
	if firstA(m) != "192.0.2.1" {
		t.Errorf("staff over HTTPS: %v", m.Answer)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
}

func TestDoHRevokedToken(t *testing.T) {
	fx := newTokenFixture(t)
	base := startDoH(t, fx, DoHOptions{})
	if m, _ := dohAsk(t, http.DefaultClient, base, fx.staffTok, http.MethodGet, "facebook.com", dns.TypeA); firstA(m) != "192.0.2.1" {
		t.Fatalf("before revoking: %v", m.Answer)
	}
	// Revoked (and a new token issued to the pupil laptop): the old token
	// gets exactly what a path that does not exist gets.
	old := fx.pupilTok
	fx.setTokens(newToken(t), "")
	notFound, notFoundBody := dohDo(t, http.DefaultClient, http.MethodGet, base+"/no-such-page", "", nil)
	q := base64.RawURLEncoding.EncodeToString(query(t, "facebook.com", dns.TypeA))
	for _, tc := range []struct{ name, method, url, ct string }{
		{"revoked GET", http.MethodGet, base + "/dns-query/" + fx.staffTok + "?dns=" + q, ""},
		{"revoked POST", http.MethodPost, base + "/dns-query/" + fx.staffTok, dohContentType},
		{"replaced", http.MethodGet, base + "/dns-query/" + old + "?dns=" + q, ""},
		{"never issued", http.MethodGet, base + "/dns-query/" + newToken(t) + "?dns=" + q, ""},
		{"not a token", http.MethodGet, base + "/dns-query/hello?dns=" + q, ""},
		{"upper case", http.MethodGet, base + "/dns-query/" + strings.ToUpper(fx.pupilTok) + "?dns=" + q, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.method == http.MethodPost {
				body = query(t, "facebook.com", dns.TypeA)
			}
			resp, got := dohDo(t, http.DefaultClient, tc.method, tc.url, tc.ct, body)
			if resp.StatusCode != http.StatusNotFound || !bytes.Equal(got, notFoundBody) {
				t.Errorf("HTTP %d %q, want 404 %q", resp.StatusCode, got, notFoundBody)
			}
			for _, h := range []string{"Content-Type", "Cache-Control", "X-Content-Type-Options", "Allow"} {
				if resp.Header.Get(h) != notFound.Header.Get(h) {
					t.Errorf("%s %q, a missing page has %q", h, resp.Header.Get(h), notFound.Header.Get(h))
				}
			}
		})
	}
}

func TestDoHBadRequests(t *testing.T) {
	fx := newTokenFixture(t)
	base := startDoH(t, fx, DoHOptions{})
	url := base + "/dns-query/" + fx.pupilTok
	good := query(t, "example.org", dns.TypeA)
	answer := new(dns.Msg)
	answer.SetQuestion("example.org.", dns.TypeA)
	answer.Response = true
	answerBuf, _ := answer.Pack()
	tests := []struct {
		name, method, url, ct string
		body                  []byte
		status                int
		text                  string // in the body
	}{
		{"wrong content type", http.MethodPost, url, "application/json", good, http.StatusUnsupportedMediaType, "application/dns-message"},
		{"no content type", http.MethodPost, url, "", good, http.StatusUnsupportedMediaType, "application/dns-message"},
		{"malformed body", http.MethodPost, url, dohContentType, []byte{0x12, 0x34, 0xff}, http.StatusBadRequest, "Malformed DNS message"},
		{"empty body", http.MethodPost, url, dohContentType, []byte{}, http.StatusBadRequest, "empty"},
		{"oversized body", http.MethodPost, url, dohContentType, append(good, make([]byte, maxDoHMessage)...), http.StatusRequestEntityTooLarge, "65535"},
		{"a response, not a query", http.MethodPost, url, dohContentType, answerBuf, http.StatusBadRequest, "not a query"},
		{"GET without dns", http.MethodGet, url, "", nil, http.StatusBadRequest, "dns parameter"},
		{"GET not base64url", http.MethodGet, url + "?dns=%2B%2F%2B%2F", "", nil, http.StatusBadRequest, "base64url"},
		{"GET malformed message", http.MethodGet, url + "?dns=EjT_", "", nil, http.StatusBadRequest, "Malformed DNS message"},
		{"GET with padding accepted", http.MethodGet, url + "?dns=" + base64.URLEncoding.EncodeToString(good), "", nil, http.StatusOK, ""},
		{"PUT", http.MethodPut, url, dohContentType, good, http.StatusMethodNotAllowed, "GET or POST"},
		{"PUT with a bad token", http.MethodPut, base + "/dns-query/nope", dohContentType, good, http.StatusMethodNotAllowed, "GET or POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := dohDo(t, http.DefaultClient, tt.method, tt.url, tt.ct, tt.body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.text) {
				t.Fatalf("HTTP %d %q, want %d with %q", resp.StatusCode, body, tt.status, tt.text)
			}
			if tt.status == http.StatusOK {
				return
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "max-age=0" {
				t.Errorf("Cache-Control %q on an error", cc)
			}
			if tt.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, POST" {
				t.Errorf("Allow %q", resp.Header.Get("Allow"))
			}
		})
	}
	if n := fx.up.queries.Load(); n != 1 {
		t.Errorf("upstream asked %d times; only the padded GET should reach it", n)
	}
}

// TestDoHErrorAnswers: a well-formed message the filter cannot answer gets
// a DNS error answer (HTTP 200) that caches must not keep.
func TestDoHErrorAnswers(t *testing.T) {
	fx := newTokenFixture(t)
	base := startDoH(t, fx, DoHOptions{})
	two := new(dns.Msg)
	two.SetQuestion("a.example.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "b.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	notify := new(dns.Msg)
	notify.SetNotify("example.")
	for _, tc := range []struct {
		name  string
		m     *dns.Msg
		rcode int
	}{{"two questions", two, dns.RcodeFormatError}, {"NOTIFY", notify, dns.RcodeNotImplemented}} {
		buf, _ := tc.m.Pack()
		resp, body := dohDo(t, http.DefaultClient, http.MethodPost, base+"/dns-query/"+fx.pupilTok, dohContentType, buf)
		m := new(dns.Msg)
		if resp.StatusCode != http.StatusOK || m.Unpack(body) != nil || m.Rcode != tc.rcode {
			t.Errorf("%s: HTTP %d, %v", tc.name, resp.StatusCode, m)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "max-age=0" {
			t.Errorf("%s: Cache-Control %q", tc.name, cc)
		}
	}
}

func TestDoHRateLimit(t *testing.T) {
	fx := newTokenFixture(t)
	base := startDoH(t, fx, DoHOptions{RateLimit: 5})
	refused := 0
	for i := 0; i < 30; i++ {
		if m, _ := dohAsk(t, http.DefaultClient, base, fx.pupilTok, http.MethodPost, "example.org", dns.TypeA); m.Rcode == dns.RcodeRefused {
			refused++
		}
	}
	if refused == 0 {
		t.Error("30 quick queries at 5 per second: none refused")
	}
	// Another device on the same address is not affected: the limit is
	// per token.
	if m, _ := dohAsk(t, http.DefaultClient, base, fx.staffTok, http.MethodPost, "example.org", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("another token refused: %s", dns.RcodeToString[m.Rcode])
	}
}

func TestDoHTransport(t *testing.T) {
	tests := []struct {
		name   string
		tls    bool
		client string
		want   bool
	}{
		{"HTTPS from anywhere", true, "203.0.113.9", true},
		{"HTTPS from loopback", true, "127.0.0.1", true},
		{"HTTP from loopback", false, "127.0.0.1", true},
		{"HTTP from IPv6 loopback", false, "::1", true},
		{"HTTP from the school network", false, "10.20.1.5", false},
		{"HTTP from the internet", false, "203.0.113.9", false},
		{"HTTP from an unknown address", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a netip.Addr
			if tt.client != "" {
				a = netip.MustParseAddr(tt.client)
			}
			if got := dohTransportOK(tt.tls, a); got != tt.want {
				t.Errorf("dohTransportOK(%v, %s) = %v", tt.tls, tt.client, got)
			}
		})
	}
	// Through the handler: a client on another machine over plain HTTP is
	// told why, and its token is not looked at.
	fx := newTokenFixture(t)
	h := fx.f.DoH(DoHOptions{})
	mux := http.NewServeMux()
	mux.Handle(DoHPattern, h)
	for _, tc := range []struct {
		url, remote string
		status      int
	}{
		{"http://warden.school.example/dns-query/" + fx.staffTok, "10.20.1.5:40000", http.StatusForbidden},
		{"http://warden.school.example/dns-query/nope", "10.20.1.5:40000", http.StatusForbidden},
		{"https://warden.school.example/dns-query/nope", "10.20.1.5:40000", http.StatusNotFound},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.url+"?dns="+base64.RawURLEncoding.EncodeToString(query(t, "example.org", dns.TypeA)), nil)
		req.RemoteAddr = tc.remote
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s from %s: HTTP %d %s, want %d", tc.url, tc.remote, rec.Code, rec.Body, tc.status)
		}
		if tc.status == http.StatusForbidden && !strings.Contains(rec.Body.String(), "needs HTTPS") {
			t.Errorf("403 body %q", rec.Body)
		}
	}
}

func TestMaxAge(t *testing.T) {
	a := func(ttl uint32) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.IPv4(192, 0, 2, 1)}
	}
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 900}, Minttl: 120}
	tests := []struct {
		name string
		m    *dns.Msg
		want uint32
	}{
		{"smallest answer TTL", &dns.Msg{Answer: []dns.RR{a(300), a(45), a(600)}}, 45},
		{"NXDOMAIN: the SOA's negative TTL", &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}, Ns: []dns.RR{soa}}, 120},
		{"no data: the SOA's negative TTL", &dns.Msg{Ns: []dns.RR{soa}}, 120},
		{"nothing to go by", &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}}, 0},
		{"SERVFAIL", &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}, Answer: []dns.RR{a(300)}}, 0},
		{"REFUSED", &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeRefused}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maxAge(tt.m); got != tt.want {
				t.Errorf("maxAge = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDeviceKey(t *testing.T) {
	discard := netip.MustParsePrefix("100::/64")
	seen := map[netip.Addr]bool{}
	for _, id := range []int64{0, 1, 2, 255, 256, 1 << 40} {
		k := deviceKey(id)
		if !discard.Contains(k) || seen[k] {
			t.Errorf("deviceKey(%d) = %s", id, k)
		}
		seen[k] = true
	}
}

// FuzzDoH feeds arbitrary requests to the DoH handler: whatever a client
// sends, it answers with an HTTP error it means or a DNS message that
// unpacks, and never panics.
func FuzzDoH(f *testing.F) {
	good := packedQuery
	f.Add(true, dohContentType, "", good("example.org.", dns.TypeA, false))
	f.Add(true, dohContentType+"; charset=binary", "", good("bet365.com.", dns.TypeHTTPS, true))
	f.Add(false, "", "dns="+base64.RawURLEncoding.EncodeToString(good("www.google.co.uk.", dns.TypeA, true)), []byte(nil))
	f.Add(false, "", "dns=AAABAAABAAAAAAAAB2V4YW1wbGUDb3JnAAABAAE=", []byte(nil))
	f.Add(false, "", "dns=%zz", []byte(nil))
	f.Add(true, "application/dns-message", "", []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add(true, "text/plain", "", []byte("hello"))

	s := offlineServer(f)
	tok := newToken(f)
	tab := identity.New(identity.Data{
		Devices:      []identity.Device{{ID: 1, Name: "laptop", TokenHash: identity.HashToken(tok), GroupID: "key-stage-2"}},
		UnknownGroup: "unknown",
	})
	s.f.opts.Identity = func() *identity.Table { return tab }
	mux := http.NewServeMux()
	mux.Handle(DoHPattern, s.f.DoH(DoHOptions{RateLimit: -1}))
	f.Fuzz(func(t *testing.T, post bool, contentType, rawQuery string, body []byte) {
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, "/dns-query/"+tok, bytes.NewReader(body))
		req.URL.RawQuery = rawQuery
		req.RemoteAddr = "127.0.0.1:40000"
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			m := new(dns.Msg)
			if err := m.Unpack(rec.Body.Bytes()); err != nil || !m.Response {
				t.Fatalf("HTTP 200 with a body that is not a DNS answer: %v", err)
			}
			if rec.Header().Get("Content-Type") != dohContentType || !strings.HasPrefix(rec.Header().Get("Cache-Control"), "max-age=") {
				t.Fatalf("headers %v", rec.Header())
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("HTTP %d %s", rec.Code, rec.Body)
		}
	})
}
