package dnsfilter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
)

// fakeUpstream is a resolver on loopback that answers every name with a
// made-up address, plus a few names tests rely on. It counts questions.
type fakeUpstream struct {
	addr    string
	queries atomic.Int64
	srv     *dns.Server
	rcode   int // if set, every answer has this code
}

func startUpstream(t testing.TB, rcode int) *fakeUpstream {
	t.Helper()
	pc, ln, err := listenBoth("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{addr: pc.LocalAddr().String(), rcode: rcode}
	h := dns.HandlerFunc(u.serve)
	u.srv = &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go u.srv.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { u.srv.Shutdown(); tcp.Shutdown() })
	return u
}

var fakeAddrs = map[string]string{
	"forcesafesearch.google.com.":   "216.239.38.120",
	"restrict.youtube.com.":         "216.239.38.120",
	"restrictmoderate.youtube.com.": "216.239.38.119",
	"strict.bing.com.":              "204.79.197.220",
	"safe.duckduckgo.com.":          "52.142.124.215",
}

func (u *fakeUpstream) serve(w dns.ResponseWriter, r *dns.Msg) {
	u.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if u.rcode != 0 {
		m.Rcode = u.rcode
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	switch {
	case strings.HasPrefix(q.Name, "nx."):
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 600},
			Ns: "ns.example.", Mbox: "h.example.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 120}}
	case q.Name == "cloaked.example." || q.Name == "mandatory-cloak.example.":
		target := "metrics.tracker-net.example."
		if q.Name == "mandatory-cloak.example." {
			target = "hidden.illegal.example."
		}
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: target})
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP("192.0.2.99")})
	case q.Qtype == dns.TypeTXT && q.Name == "big.example.":
		for i := 0; i < 40; i++ {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{fmt.Sprintf("record %02d %s", i, strings.Repeat("x", 40))}})
		}
	case q.Qtype == dns.TypeA:
		ip := "192.0.2.1"
		if a, ok := fakeAddrs[q.Name]; ok {
			ip = a
		}
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(ip)})
	case q.Qtype == dns.TypeAAAA:
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.ParseIP("2001:db8::1")})
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size) // as a real server does
	}
	w.WriteMsg(m)
}

// silentUpstream is a UDP socket that never answers (a dead resolver).
func silentUpstream(t testing.TB) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func testPolicy(t testing.TB) *policy.Snapshot {
	t.Helper()
	mk := func(id, src string, cats []string, mandatory bool, entries ...string) *lists.List {
		c := &lists.Collector{}
		c.Parse(strings.NewReader(strings.Join(entries, "\n")), id, lists.FormatPlain)
		c.Finish()
		return &lists.List{Info: lists.Info{ID: id, Source: "ut1", SourceCategory: src, Categories: cats, Mandatory: mandatory}, Domains: c.Domains}
	}
	m, err := lists.Compile([]*lists.List{
		mk("ut1/gambling", "gambling", []string{"gambling"}, false, "bet365.com"),
		mk("ut1/publicite", "publicite", []string{"advertising"}, false, "tracker-net.example"),
		mk("ut1/social_networks", "social_networks", []string{"social-media"}, false, "facebook.com"),
		mk("local/education", "education", []string{"education"}, false, "ttrockstars.com"),
		mk("iwf", "", []string{"child-abuse"}, true, "illegal.example"),
	})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Compile(policy.Config{
		Version: 7, Taxonomy: lists.DefaultTaxonomy(), Lists: m,
		Groups: []policy.Group{
			{ID: "key-stage-2", DefaultAction: policy.Allow, SafeSearch: policy.SafeSearchStrict, EducationFirst: true},
			{ID: "staff", DefaultAction: policy.Allow, SafeSearch: policy.SafeSearchModerate, Categories: map[string]policy.Action{"social-media": policy.Allow}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// testIdentity maps 127.0.0.1 to key-stage-2 and 127.0.0.2 to staff.
func testIdentity() *identity.Table {
	return identity.New(identity.Data{
		Zones: []identity.Zone{
			{ID: "staff-laptops", GroupID: "staff", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}},
			{ID: "pupils", GroupID: "key-stage-2", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		},
		UnknownGroup: "unknown",
	})
}

type testServer struct {
	addr string
	f    *Filter
}

func startServer(t testing.TB, upstreams []string, block BlockResponse, sopts ServerOptions) *testServer {
	t.Helper()
	snap := testPolicy(t)
	ident := testIdentity()
	if block.Mode == "" {
		block = BlockResponse{Mode: BlockPage, IPv4: netip.MustParseAddr("127.0.0.80"), IPv6: netip.MustParseAddr("::1")}
	}
	f, err := New(Options{
		Policy: func() *policy.Snapshot { return snap }, Identity: func() *identity.Table { return ident },
		Upstreams: upstreams, Block: block, UpstreamTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	sopts.Addr = "127.0.0.1:0"
	s, err := f.Listen(sopts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testServer{addr: s.UDPAddr.String(), f: f}
}

// ask sends one question from a local address (127.0.0.1 unless from is
// set) over UDP or TCP.
func ask(t testing.TB, server, from, netw, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	c := &dns.Client{Net: netw, Timeout: 3 * time.Second}
	if from != "" {
		if netw == "tcp" {
			c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 3 * time.Second}
		} else {
			c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}, Timeout: 3 * time.Second}
		}
	}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("ask %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

func firstA(r *dns.Msg) string {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

func TestBlockingAndForwarding(t *testing.T) {
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{})
	tests := []struct {
		name   string
		from   string
		q      string
		qtype  uint16
		rcode  int
		a      string
		aaaa   string
		nodata bool
	}{
		{name: "blocked name gets the block page", q: "www.bet365.com", qtype: dns.TypeA, a: "127.0.0.80"},
		{name: "blocked AAAA gets the block page v6", q: "bet365.com", qtype: dns.TypeAAAA, aaaa: "::1"},
		{name: "blocked HTTPS record is empty", q: "bet365.com", qtype: dns.TypeHTTPS, nodata: true},
		{name: "blocked SVCB record is empty", q: "_dns.bet365.com", qtype: dns.TypeSVCB, nodata: true},
		{name: "allowed name is forwarded", q: "example.org", qtype: dns.TypeA, a: "192.0.2.1"},
		{name: "education list allowed", q: "ttrockstars.com", qtype: dns.TypeA, a: "192.0.2.1"},
		{name: "mandatory list blocked", q: "illegal.example", qtype: dns.TypeA, a: "127.0.0.80"},
		{name: "social media blocked for pupils", q: "facebook.com", qtype: dns.TypeA, a: "127.0.0.80"},
		{name: "social media allowed for staff", from: "127.0.0.2", q: "facebook.com", qtype: dns.TypeA, a: "192.0.2.1"},
		{name: "browser DoH canary", q: "use-application-dns.net", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "iCloud Private Relay", q: "mask.icloud.com", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "upstream NXDOMAIN passed on", q: "nx.example.org", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "CNAME into a blocked name", q: "cloaked.example", qtype: dns.TypeA, a: "127.0.0.80"},
		{name: "CNAME into a mandatory name", from: "127.0.0.2", q: "mandatory-cloak.example", qtype: dns.TypeA, a: "127.0.0.80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, netw := range []string{"udp", "tcp"} {
				r := ask(t, s.addr, tt.from, netw, tt.q, tt.qtype, true)
				if r.Rcode != tt.rcode {
					t.Fatalf("%s: rcode %s, want %s", netw, dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
				}
				if tt.a != "" && firstA(r) != tt.a {
					t.Errorf("%s: A = %q, want %s\n%s", netw, firstA(r), tt.a, r)
				}
				if tt.aaaa != "" && (len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != tt.aaaa) {
					t.Errorf("%s: AAAA answer %v", netw, r.Answer)
				}
				if tt.nodata && len(r.Answer) != 0 {
					t.Errorf("%s: answer %v, want none", netw, r.Answer)
				}
				if r.Id == 0 || !r.Response || !r.RecursionAvailable {
					t.Errorf("%s: header %+v", netw, r.MsgHdr)
				}
			}
		})
	}
}

func TestBlockedAnswerCarriesReason(t *testing.T) {
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{})
	r := ask(t, s.addr, "", "udp", "bet365.com", dns.TypeA, true)
	opt := r.IsEdns0()
	if opt == nil {
		t.Fatal("no OPT in the answer to an EDNS query")
	}
	var ede *dns.EDNS0_EDE
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			ede = e
		}
	}
	if ede == nil || ede.InfoCode != dns.ExtendedErrorCodeBlocked || !strings.Contains(ede.ExtraText, "gambling") {
		t.Errorf("extended error = %+v", ede)
	}
	if r := ask(t, s.addr, "", "udp", "bet365.com", dns.TypeA, false); r.IsEdns0() != nil {
		t.Error("OPT in the answer to a query without EDNS")
	}
	if up.queries.Load() != 0 {
		t.Errorf("blocked names reached the upstream %d times", up.queries.Load())
	}
}

func TestBlockModes(t *testing.T) {
	up := startUpstream(t, 0)
	nx := startServer(t, []string{up.addr}, BlockResponse{Mode: BlockNXDomain}, ServerOptions{})
	if r := ask(t, nx.addr, "", "udp", "bet365.com", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("nxdomain mode: %s", dns.RcodeToString[r.Rcode])
	}
	null := startServer(t, []string{up.addr}, BlockResponse{Mode: BlockNull}, ServerOptions{})
	if r := ask(t, null.addr, "", "udp", "bet365.com", dns.TypeA, false); firstA(r) != "0.0.0.0" {
		t.Errorf("null mode A: %v", r.Answer)
	}
	if r := ask(t, null.addr, "", "udp", "bet365.com", dns.TypeAAAA, false); len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "::" {
		t.Errorf("null mode AAAA: %v", r.Answer)
	}
	if _, err := New(Options{Policy: func() *policy.Snapshot { return nil }, Identity: func() *identity.Table { return nil },
		Upstreams: []string{up.addr}, Block: BlockResponse{Mode: BlockPage}}); err == nil {
		t.Error("block page mode without an address accepted")
	}
}

func TestSafeSearch(t *testing.T) {
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{})
	tests := []struct {
		from, q, target, a string
	}{
		{"", "www.google.co.uk", "forcesafesearch.google.com.", "216.239.38.120"},
		{"", "google.com", "forcesafesearch.google.com.", "216.239.38.120"},
		{"", "www.google.com.au", "forcesafesearch.google.com.", "216.239.38.120"},
		{"", "www.youtube.com", "restrict.youtube.com.", "216.239.38.120"},
		{"127.0.0.2", "www.youtube.com", "restrictmoderate.youtube.com.", "216.239.38.119"},
		{"", "m.youtube.com", "restrict.youtube.com.", "216.239.38.120"},
		{"", "www.bing.com", "strict.bing.com.", "204.79.197.220"},
		{"", "duckduckgo.com", "safe.duckduckgo.com.", "52.142.124.215"},
	}
	for _, tt := range tests {
		r := ask(t, s.addr, tt.from, "udp", tt.q, dns.TypeA, false)
		if len(r.Answer) < 2 {
			t.Errorf("%s from %s: %v", tt.q, tt.from, r.Answer)
			continue
		}
		c, ok := r.Answer[0].(*dns.CNAME)
		if !ok || c.Target != tt.target || c.Hdr.Name != dns.Fqdn(tt.q) || firstA(r) != tt.a {
			t.Errorf("%s from %s: %v", tt.q, tt.from, r.Answer)
		}
	}
	// Not a search engine: untouched.
	if r := ask(t, s.addr, "", "udp", "maps.google.com", dns.TypeA, false); len(r.Answer) != 1 || firstA(r) != "192.0.2.1" {
		t.Errorf("maps.google.com rewritten: %v", r.Answer)
	}
}

func TestRefusesOtherSources(t *testing.T) {
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, netw := range []string{"udp", "tcp"} {
		r := ask(t, s.addr, "", netw, "example.org", dns.TypeA, false)
		if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Errorf("%s from a source not listed: %s %v", netw, dns.RcodeToString[r.Rcode], r.Answer)
		}
	}
	if up.queries.Load() != 0 {
		t.Error("a refused query reached the upstream")
	}
}

func TestTruncationAndTCPFallback(t *testing.T) {
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{})
	udp := ask(t, s.addr, "", "udp", "big.example", dns.TypeTXT, false)
	if udp.Rcode != dns.RcodeSuccess || !udp.Truncated || len(udp.Answer) >= 40 {
		t.Fatalf("UDP answer without EDNS: truncated=%v, %d records", udp.Truncated, len(udp.Answer))
	}
	tcp := ask(t, s.addr, "", "tcp", "big.example", dns.TypeTXT, false)
	if tcp.Truncated || len(tcp.Answer) != 40 {
		t.Fatalf("TCP answer: truncated=%v, %d records", tcp.Truncated, len(tcp.Answer))
	}
	// The full answer came from the upstream over TCP after its own UDP
	// answer was truncated.
	if up.queries.Load() < 2 {
		t.Errorf("upstream asked %d times", up.queries.Load())
	}
}

func TestUpstreamFailover(t *testing.T) {
	dead := silentUpstream(t)
	failing := startUpstream(t, dns.RcodeServerFailure)
	good := startUpstream(t, 0)
	s := startServer(t, []string{dead, failing.addr, good.addr}, BlockResponse{}, ServerOptions{})
	for i := 0; i < 5; i++ {
		r := ask(t, s.addr, "", "udp", fmt.Sprintf("host%d.example.org", i), dns.TypeA, false)
		if r.Rcode != dns.RcodeSuccess || firstA(r) != "192.0.2.1" {
			t.Fatalf("query %d: %s %v", i, dns.RcodeToString[r.Rcode], r.Answer)
		}
	}
	// After three failures in a row the dead and failing upstreams are
	// rested: later queries go straight to the good one.
	before := failing.queries.Load()
	for i := 5; i < 10; i++ {
		ask(t, s.addr, "", "udp", fmt.Sprintf("host%d.example.org", i), dns.TypeA, false)
	}
	if failing.queries.Load() != before {
		t.Errorf("a rested upstream was asked %d more times", failing.queries.Load()-before)
	}
	all := startServer(t, []string{dead}, BlockResponse{}, ServerOptions{})
	if r := ask(t, all.addr, "", "udp", "example.org", dns.TypeA, false); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("no upstream: %s", dns.RcodeToString[r.Rcode])
	}
}

func TestCache(t *testing.T) {
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{})
	for i := 0; i < 3; i++ {
		ask(t, s.addr, "", "udp", "cached.example.org", dns.TypeA, false)
		ask(t, s.addr, "", "udp", "nx.cached.example.org", dns.TypeA, false)
	}
	if n := up.queries.Load(); n != 2 {
		t.Errorf("upstream asked %d times for 2 names asked 3 times each", n)
	}
	hits, misses, _ := s.f.cache.Stats()
	if hits != 4 || misses != 2 {
		t.Errorf("hits=%d misses=%d", hits, misses)
	}
	// The cache is shared, the policy is not: a cached allowed answer is
	// still blocked for a group that blocks it.
	ask(t, s.addr, "127.0.0.2", "udp", "facebook.com", dns.TypeA, false)
	if r := ask(t, s.addr, "", "udp", "facebook.com", dns.TypeA, false); firstA(r) != "127.0.0.80" {
		t.Errorf("pupil got a cached staff answer: %v", r.Answer)
	}
}

func TestRateLimit(t *testing.T) {
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{RateLimit: 5})
	refused := 0
	for i := 0; i < 30; i++ {
		if r := ask(t, s.addr, "", "udp", "example.org", dns.TypeA, false); r.Rcode == dns.RcodeRefused {
			refused++
		}
	}
	if refused == 0 {
		t.Error("30 quick queries at 5 per second: none refused")
	}
	// Another client is not affected.
	if r := ask(t, s.addr, "127.0.0.3", "udp", "example.org", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("another client refused: %s", dns.RcodeToString[r.Rcode])
	}
}

func TestMalformedQueries(t *testing.T) {
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{})
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	two := new(dns.Msg)
	two.SetQuestion("a.example.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "b.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	r, _, err := c.Exchange(two, s.addr)
	if err != nil || r.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: %v %v", r, err)
	}
	notify := new(dns.Msg)
	notify.SetNotify("example.")
	r, _, err = c.Exchange(notify, s.addr)
	if err != nil || r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %v %v", r, err)
	}
	// Garbage over UDP gets no answer, and the server keeps serving.
	conn, err := net.Dial("udp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte{0x12, 0x34, 0xff})
	conn.Close()
	if r := ask(t, s.addr, "", "udp", "example.org", dns.TypeA, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("after garbage: %s", dns.RcodeToString[r.Rcode])
	}
}

// TestDig queries the server with dig, the client schools use to check
// their DNS.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed (Debian package dnsutils; .ci/run installs it)")
	}
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{})
	host, port, _ := net.SplitHostPort(s.addr)
	run := func(args ...string) string {
		out, err := exec.Command(dig, append([]string{"@" + host, "-p", port, "+time=3", "+tries=1"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("+short", "www.bet365.com", "A"); strings.TrimSpace(out) != "127.0.0.80" {
		t.Errorf("dig blocked: %q", out)
	}
	if out := run("+short", "example.org", "A"); strings.TrimSpace(out) != "192.0.2.1" {
		t.Errorf("dig allowed: %q", out)
	}
	if out := run("+tcp", "+short", "example.org", "A"); strings.TrimSpace(out) != "192.0.2.1" {
		t.Errorf("dig over TCP: %q", out)
	}
	if out := run("big.example", "TXT", "+noedns"); !strings.Contains(out, "Truncated, retrying in TCP mode") || !strings.Contains(out, "ANSWER: 40") {
		t.Errorf("dig did not fall back to TCP for a large answer:\n%s", out)
	}
	if out := run("bet365.com", "A"); !strings.Contains(out, "Blocked") {
		t.Errorf("dig does not show the extended error:\n%s", out)
	}
}

// TestConcurrentQueries asks many names at once over both transports.
func TestConcurrentQueries(t *testing.T) {
	up := startUpstream(t, 0)
	s := startServer(t, []string{up.addr}, BlockResponse{}, ServerOptions{RateLimit: -1})
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			netw := "udp"
			if i%4 == 0 {
				netw = "tcp"
			}
			m := new(dns.Msg)
			name, want := fmt.Sprintf("n%d.example.org.", i%20), "192.0.2.1"
			if i%3 == 0 {
				name, want = "bet365.com.", "127.0.0.80"
			}
			m.SetQuestion(name, dns.TypeA)
			r, _, err := (&dns.Client{Net: netw, Timeout: 3 * time.Second}).Exchange(m, s.addr)
			if err != nil {
				errs <- err.Error()
				return
			}
			if firstA(r) != want {
				errs <- fmt.Sprintf("%s: %v", name, r.Answer)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestEvents(t *testing.T) {
	var mu sync.Mutex
	var got []events.Event
	s := offlineServer(t)
	s.f.opts.Events = func(e events.Event) bool {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
		return true
	}
	client := netip.MustParseAddr("127.0.0.1")
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.bet365.com.", dns.TypeA}, {"example.org.", dns.TypeAAAA}, {"example.org.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		s.answer(client, "udp", m)
	}
	if len(got) != 3 {
		t.Fatalf("%d events for 3 queries", len(got))
	}
	b := got[0]
	if b.Host != "www.bet365.com" || b.Action != "block" || b.Category != "gambling" || b.List != "ut1/gambling" || b.Rule != "category" ||
		b.Group != "key-stage-2" || b.QType != "A" || b.Source != "udp" || b.ClientIP != client || b.PolicyVersion != 7 || b.Status != "NOERROR" || b.Upstream != "" {
		t.Errorf("blocked event: %+v", b)
	}
	if a := got[2]; a.Action != "allow" || a.Upstream != "stub" || a.Rule != "default" || a.Time.IsZero() {
		t.Errorf("allowed event: %+v", a)
	}
	if got[1].Upstream != "stub" || got[2].Upstream != "cache" && got[2].Upstream != "stub" {
		t.Errorf("upstreams: %q %q", got[1].Upstream, got[2].Upstream)
	}
}

func TestConditionalForwarding(t *testing.T) {
	general := startUpstream(t, 0)
	ad := startUpstream(t, 0)
	snap := testPolicy(t)
	ident := testIdentity()
	f, err := New(Options{
		Policy: func() *policy.Snapshot { return snap }, Identity: func() *identity.Table { return ident },
		Upstreams: []string{general.addr}, Conditional: map[string][]string{"School.Internal.": {ad.addr}},
		Block: BlockResponse{Mode: BlockPage, IPv4: netip.MustParseAddr("127.0.0.80")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{f: f, opts: ServerOptions{Allowed: identity.LocalNetworks()}}
	for _, name := range []string{"dc1.school.internal.", "school.internal.", "example.org.", "notschool.internal."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		s.answer(netip.MustParseAddr("127.0.0.1"), "udp", q)
	}
	if ad.queries.Load() != 2 || general.queries.Load() != 2 {
		t.Errorf("school server asked %d times, general %d times; want 2 and 2", ad.queries.Load(), general.queries.Load())
	}
}
