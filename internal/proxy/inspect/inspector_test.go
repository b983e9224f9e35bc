package inspect

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/wardentest"
)

// testPolicy: banking, a URL entry under an allowed host, a mandatory URL
// entry, and key-stage-2 with strict safe search.
func testPolicy(t testing.TB) *policy.Snapshot {
	t.Helper()
	mk := func(id, src string, cats []string, mandatory bool, entries ...string) *lists.List {
		c := &lists.Collector{}
		c.Parse(strings.NewReader(strings.Join(entries, "\n")), id, lists.FormatPlain)
		c.Finish()
		return &lists.List{Info: lists.Info{ID: id, Source: "ut1", SourceCategory: src, Categories: cats, Mandatory: mandatory},
			Domains: c.Domains, URLs: c.URLs}
	}
	m, err := lists.Compile([]*lists.List{
		mk("ut1/bank", "bank", []string{"banking"}, false, "mybank.example"),
		mk("ut1/adult", "adult", []string{"pornography"}, false, "site.example/adult/", "adult.example"),
		mk("iwf", "", []string{"child-abuse"}, true, "site.example/iwf-page"),
	})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Compile(policy.Config{
		Version: 3, Taxonomy: lists.DefaultTaxonomy(), Lists: m,
		Groups: []policy.Group{{ID: "key-stage-2", DefaultAction: policy.Allow, SafeSearch: policy.SafeSearchStrict}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// echo is what the test origin answers: what it received.
type echo struct {
	Host, Path, Query, YouTube, XFF, Custom, Proto string
}

type env struct {
	ca        *CA
	in        *Inspector
	reg       *prometheus.Registry
	proxy     string // the test CONNECT proxy's address
	origin    *httptest.Server
	bad       *httptest.Server
	originCrt *wardentest.Cert
	hits      atomic.Int64
	events    chan events.Event
	who       identity.Subject
	snap      atomic.Pointer[policy.Snapshot]
}

// newEnv starts a trusted HTTPS origin (certificate for the test hosts),
// an untrusted one (for untrusted.example), an Inspector that dials every
// host to them, and a minimal CONNECT proxy on loopback that hands
// CONNECTs to the Inspector as the real proxy does.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{events: make(chan events.Event, 100), who: identity.Subject{Group: "key-stage-2", DeviceID: 7, PersonID: 9, Device: "ipad-07"}}
	e.originCrt = wardentest.NewCert(t, "site.example", "www.google.com", "www.youtube.com", "mybank.example", "courier.push.apple.com")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		if r.URL.Path == "/ws" && r.Header.Get("Upgrade") == "websocket" {
			upgradeEcho(w)
			return
		}
		w.Header().Set("Alt-Svc", `h3=":443"`)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echo{Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, YouTube: r.Header.Get(YouTubeRestrictHeader),
			XFF: r.Header.Get("X-Forwarded-For"), Custom: r.Header.Get("X-Custom"), Proto: r.Proto})
	})
	e.origin = httptest.NewUnstartedServer(handler)
	e.origin.EnableHTTP2 = true
	e.origin.TLS = &tls.Config{Certificates: []tls.Certificate{e.originCrt.TLS}}
	e.origin.StartTLS()
	t.Cleanup(e.origin.Close)
	untrusted := wardentest.NewCert(t, "untrusted.example")
	e.bad = httptest.NewUnstartedServer(handler)
	e.bad.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
	e.bad.TLS = &tls.Config{Certificates: []tls.Certificate{untrusted.TLS}}
	e.bad.StartTLS()
	t.Cleanup(e.bad.Close)

	e.ca, _ = testCA(t, CAOptions{})
	snap := testPolicy(t)
	e.snap.Store(snap)
	e.reg = prometheus.NewRegistry()
	var err error
	e.in, err = New(Options{
		CA: e.ca, Policy: e.snap.Load,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			to := e.origin.Listener.Addr().String()
			if host == "untrusted.example" {
				to = e.bad.Listener.Addr().String()
			}
			var d net.Dialer
			return d.DialContext(ctx, network, to)
		},
		RootCAs:     e.originCrt.Roots,
		BypassHosts: []string{"warden.school.example"},
		Events:      func(ev events.Event) bool { e.events <- ev; return true },
		Metrics:     e.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.in.Close)
	e.proxy = e.startProxy(t, snap)
	return e
}

// startProxy runs the minimal CONNECT proxy.
func (e *env) startProxy(t testing.TB, snap *policy.Snapshot) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					c.Close()
					return
				}
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				host, _, _ := net.SplitHostPort(req.Host)
				d := snap.Decide(policy.Request{Host: host, Group: e.who.Group, Time: time.Now()})
				if e.in.Inspect(host, d, e.who) {
					e.in.ServeTLS(ctx, &bufferedConn{Conn: c, r: br}, req.Host, e.who, netip.MustParseAddr("127.0.0.1"))
					return
				}
				// Not inspected: a plain tunnel to the origin.
				up, err := net.Dial("tcp", e.origin.Listener.Addr().String())
				if err != nil {
					c.Close()
					return
				}
				go func() { io.Copy(up, br); up.Close() }()
				io.Copy(c, up)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// client returns an HTTP client through the test proxy that trusts the
// school root (and the origin's certificate, for bypassed hosts).
func (e *env) client(t testing.TB, h2 bool) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(e.ca.Root)
	roots.AddCert(e.originCrt.TLS.Leaf)
	proxyURL, _ := url.Parse("http://" + e.proxy)
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func (e *env) event(t testing.TB) events.Event {
	t.Helper()
	select {
	case ev := <-e.events:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return events.Event{}
	}
}

func get(t testing.TB, c *http.Client, rawURL string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func decodeEcho(t testing.TB, body string) echo {
	t.Helper()
	var got echo
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("origin answer %q: %v", body, err)
	}
	return got
}

func TestServeTLS(t *testing.T) {
	for _, proto := range []struct {
		name  string
		h2    bool
		proto string
	}{{"HTTP/1.1", false, "HTTP/1.1"}, {"HTTP/2", true, "HTTP/2.0"}} {
		t.Run(proto.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t, proto.h2)

			// Allowed: reaches the origin through a minted certificate.
			hop := []string{"Connection", "X-Custom", "X-Custom", "hop"}
			if proto.h2 {
				hop = nil // HTTP/2 has no Connection header
			}
			resp, body := get(t, c, "https://site.example/hello?x=1", hop...)
			if resp.StatusCode != 200 || resp.Proto != proto.proto {
				t.Fatalf("status %d proto %s: %s", resp.StatusCode, resp.Proto, body)
			}
			leaf := resp.TLS.PeerCertificates[0]
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "site.example" || leaf.Issuer.CommonName != e.ca.Root.Subject.CommonName {
				t.Errorf("certificate for %v issued by %q", leaf.DNSNames, leaf.Issuer.CommonName)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "site.example", Roots: rootPool(e.ca)}); err != nil {
				t.Errorf("minted certificate does not chain to the root: %v", err)
			}
			got := decodeEcho(t, body)
			if got.Host != "site.example" || got.Path != "/hello" || got.Query != "x=1" || got.XFF != "" {
				t.Errorf("origin got %+v", got)
			}
			if !proto.h2 && got.Custom != "" {
				t.Error("a header named in Connection reached the origin")
			}
			if resp.Header.Get("Alt-Svc") != "" {
				t.Error("Alt-Svc passed to the client")
			}
			ev := e.event(t)
			want := events.Event{Source: "proxy", ClientIP: netip.MustParseAddr("127.0.0.1"), DeviceID: 7, PersonID: 9, Group: "key-stage-2",
				Host: "site.example", URL: "https://site.example/hello?x=1", Method: "GET", Action: "allow", Rule: "default",
				PolicyVersion: 3, Upstream: "site.example:443", Status: "200", Bytes: int64(len(body))}
			ev.Time, ev.Latency = time.Time{}, 0
			if ev != want {
				t.Errorf("event\n got %+v\nwant %+v", ev, want)
			}

			// A URL entry under the allowed host: the block page.
			before := e.hits.Load()
			resp, body = get(t, c, "https://site.example/adult/page.html")
			if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("blocked URL: %d %v", resp.StatusCode, resp.Header)
			}
			if !strings.Contains(body, "blocked") || !strings.Contains(body, "site.example/adult/page.html") {
				t.Errorf("block page: %s", body)
			}
			if e.hits.Load() != before {
				t.Error("blocked request reached the origin")
			}
			ev = e.event(t)
			if ev.Action != "block" || ev.Category != "pornography" || ev.List != "ut1/adult" || ev.Status != "403" || ev.URL != "https://site.example/adult/page.html" {
				t.Errorf("blocked event %+v", ev)
			}

			// The mandatory list's entry is enforced and never shown.
			resp, body = get(t, c, "https://site.example/iwf-page")
			ev = e.event(t)
			if resp.StatusCode != 403 || ev.List != "iwf" || ev.Action != "block" || strings.Contains(body, "ut1/") {
				t.Errorf("mandatory URL: %d %+v", resp.StatusCode, ev)
			}

			// Google: safe=active replaces safe=off; the search is captured.
			resp, body = get(t, c, "https://www.google.com/search?q=how+to+draw&safe=off")
			if got := decodeEcho(t, body); resp.StatusCode != 200 || got.Query != "q=how+to+draw&safe=active" {
				t.Errorf("google: %d %+v", resp.StatusCode, got)
			}
			if ev = e.event(t); ev.SearchTerm != "how to draw" || ev.Host != "www.google.com" {
				t.Errorf("google event %+v", ev)
			}

			// YouTube: Restricted Mode header, search captured.
			resp, body = get(t, c, "https://www.youtube.com/results?search_query=volcanoes", YouTubeRestrictHeader, "Off")
			if got := decodeEcho(t, body); resp.StatusCode != 200 || got.YouTube != "Strict" {
				t.Errorf("youtube: %+v", got)
			}
			if ev = e.event(t); ev.SearchTerm != "volcanoes" {
				t.Errorf("youtube event %+v", ev)
			}

			// An upstream certificate that does not verify: block page
			// with the reason, never the site.
			before = e.hits.Load()
			resp, body = get(t, c, "https://untrusted.example/")
			if resp.StatusCode != 403 || !strings.Contains(body, "certificate could not be verified") || !strings.Contains(body, "unknown authority") {
				t.Errorf("untrusted origin: %d %s", resp.StatusCode, body)
			}
			if e.hits.Load() != before {
				t.Error("the untrusted origin answered")
			}
			if ev = e.event(t); ev.Action != "block" || ev.Rule != RuleUpstreamCertificate || ev.Status != "403" {
				t.Errorf("untrusted event %+v", ev)
			}
			if n := counterValue(t, e.in.metrics.verifyFail); n != 1 {
				t.Errorf("verify failures metric %v", n)
			}
			if n := counterValue(t, e.in.metrics.intercepted); n < 1 {
				t.Errorf("intercepted metric %v", n)
			}
		})
	}
}

func TestServeTLSBypass(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, true)
	// A bank is tunnelled, not inspected: the client sees the site's own
	// certificate.
	for _, host := range []string{"mybank.example", "courier.push.apple.com"} {
		resp, _ := get(t, c, "https://"+host+"/")
		if issuer := resp.TLS.PeerCertificates[0].Issuer.CommonName; issuer == e.ca.Root.Subject.CommonName {
			t.Errorf("%s was inspected", host)
		}
	}
	select {
	case ev := <-e.events:
		t.Errorf("bypassed request gave an event: %+v", ev)
	default:
	}
}

func TestInspect(t *testing.T) {
	e := newEnv(t)
	snap := testPolicy(t)
	tests := []struct {
		host string
		want bool
	}{
		{"site.example", true},
		{"WWW.Site.Example", true},
		{"192.0.2.1", true},
		{"mybank.example", false},     // banking category
		{"www.mybank.example", false}, // and its subdomains
		{"courier.push.apple.com", false},
		{"swscan.apple.com", false},
		{"login.microsoftonline.com", false},
		{"warden.school.example", false}, // configured
		{"portal.warden.school.example", false},
		{"notapple.com", true},
		{"adult.example", true}, // blocked: intercepted, so the block page shows
		{"bad host", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			d := snap.Decide(policy.Request{Host: tt.host, Group: "key-stage-2", Time: time.Now()})
			if got := e.in.Inspect(tt.host, d, e.who); got != tt.want {
				t.Errorf("Inspect(%s) = %v (decision %s %s)", tt.host, got, d.Action, d.Category)
			}
		})
	}
	// Categories are configurable.
	in2, err := New(Options{CA: e.ca, Policy: func() *policy.Snapshot { return snap }, BypassCategories: []string{"pornography"}})
	if err != nil {
		t.Fatal(err)
	}
	allowed := policy.Decision{Action: policy.Allow, Rule: "default"}
	if !in2.Inspect("mybank.example", allowed, e.who) || in2.Inspect("adult.example", allowed, e.who) {
		t.Error("configured bypass categories not used")
	}
}

func TestHandshakeUntrusted(t *testing.T) {
	e := newEnv(t)
	proxyURL, _ := url.Parse("http://" + e.proxy)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}, Timeout: 5 * time.Second}
	_, err := c.Get("https://site.example/")
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Errorf("a device without the root: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(t, e.in.metrics.handshakeFail) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := counterValue(t, e.in.metrics.handshakeFail); n != 1 {
		t.Errorf("handshake failures %v", n)
	}
}

func TestServeTLSCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (.ci/run installs it)")
	}
	e := newEnv(t)
	rootFile := filepath.Join(t.TempDir(), "root.crt")
	if err := os.WriteFile(rootFile, e.ca.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, curl, "-sS", "--noproxy", "", "-x", "http://"+e.proxy, "--cacert", rootFile,
		"https://www.google.com/search?q=curl+test").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if got := decodeEcho(t, string(out)); got.Query != "q=curl+test&safe=active" {
		t.Errorf("curl through inspection: %+v", got)
	}
	if ev := e.event(t); ev.SearchTerm != "curl test" {
		t.Errorf("event %+v", ev)
	}
	out, err = exec.CommandContext(ctx, curl, "-sS", "--noproxy", "", "-x", "http://"+e.proxy, "--cacert", rootFile, "-o", "/dev/null",
		"-w", "%{http_code}", "https://site.example/adult/x").CombinedOutput()
	if err != nil || string(out) != "403" {
		t.Errorf("curl blocked URL: %v %s", err, out)
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// BenchmarkInspectedRequest: one small GET inside an intercepted
// HTTP/1.1 keep-alive connection (certificate cached), from decision to
// the origin's answer, through the loopback origin.
func BenchmarkInspectedRequest(b *testing.B) {
	for _, h2 := range []bool{false, true} {
		name := "HTTP/1.1"
		if h2 {
			name = "HTTP/2"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			go func() {
				for range e.events {
				}
			}()
			c := e.client(b, h2)
			get(b, c, "https://site.example/warm")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				resp, err := c.Get("https://www.google.com/search?q=bench")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// upgradeEcho switches protocols and echoes lines back.
func upgradeEcho(w http.ResponseWriter) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		io.WriteString(conn, "echo: "+line)
	}
}
