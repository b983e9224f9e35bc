package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
)

// loopResolver maps every name to 127.0.0.1, except names in fixed.
type loopResolver struct {
	fixed map[string][]netip.Addr
	calls atomic.Int64
}

func (r *loopResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.calls.Add(1)
	if a, ok := r.fixed[host]; ok {
		if len(a) == 0 {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return a, nil
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// testToken is the device token of the staff laptop in testIdentity.
const testToken = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"

func mkList(t testing.TB, id string, cats []string, mandatory bool, entries ...string) *lists.List {
	t.Helper()
	c := &lists.Collector{Redact: mandatory}
	if err := c.Parse(strings.NewReader(strings.Join(entries, "\n")), id, lists.FormatPlain); err != nil {
		t.Fatal(err)
	}
	if c.Report.Malformed > 0 {
		t.Fatalf("list %s: %s", id, c.Report.Summary())
	}
	c.Finish()
	return &lists.List{Info: lists.Info{ID: id, Source: "test", SourceCategory: id, Categories: cats, Mandatory: mandatory},
		Domains: c.Domains, URLs: c.URLs, Hashes: c.Hashes}
}

// testPolicy blocks gambling (bet.test) for everyone, social media
// (social.test) for pupils only, a pornography URL prefix and an
// IWF-style mandatory URL prefix under the allowed domain allowed.test
// (with the origin's port, as URL entries carry ports), and, with
// blockAll, allowed.test itself.
func testPolicy(t testing.TB, port string, version int64, blockAllowed bool) *policy.Snapshot {
	t.Helper()
	extra := []string{"bet.test"}
	if blockAllowed {
		extra = append(extra, "allowed.test")
	}
	m, err := lists.Compile([]*lists.List{
		mkList(t, "test/gambling", []string{"gambling"}, false, extra...),
		mkList(t, "test/social", []string{"social-media"}, false, "social.test"),
		mkList(t, "test/adult", []string{"pornography"}, false, "allowed.test:"+port+"/bad/"),
		mkList(t, "iwf", []string{"child-abuse"}, true, "allowed.test:"+port+"/abuse/"),
	})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Compile(policy.Config{
		Version: version, Taxonomy: lists.DefaultTaxonomy(), Lists: m,
		Groups: []policy.Group{
			{ID: "pupils", DefaultAction: policy.Allow, SafeSearch: policy.SafeSearchStrict},
			{ID: "staff", DefaultAction: policy.Allow, Categories: map[string]policy.Action{"social-media": policy.Allow}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// testIdentity puts loopback in the pupils zone and gives one staff
// laptop a device token.
func testIdentity() *identity.Table {
	return identity.New(identity.Data{
		Devices: []identity.Device{{ID: 42, Name: "staff-laptop", TokenHash: identity.HashToken(testToken), GroupID: "staff"}},
		Zones: []identity.Zone{{ID: "school", GroupID: "pupils", Networks: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}},
		UnknownGroup: "unknown",
	})
}

// tokenAuth accepts a device token as the password, as the app's
// authenticator will.
type tokenAuth struct {
	table *identity.Table
	calls atomic.Int64
}

func (a *tokenAuth) Authenticate(user, password string) (identity.Subject, bool) {
	a.calls.Add(1)
	if !identity.ValidToken(password) {
		return identity.Subject{}, false
	}
	return a.table.ByToken(password, netip.Addr{})
}

// eventLog collects events.
type eventLog struct {
	mu sync.Mutex
	ev []events.Event
}

func (l *eventLog) emit(e events.Event) bool {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
	return true
}

func (l *eventLog) all() []events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]events.Event(nil), l.ev...)
}

// waitFor polls until an event matches.
func (l *eventLog) waitFor(t testing.TB, what string, match func(events.Event) bool) events.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range l.all() {
			if match(e) {
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no event for %s; have %+v", what, l.all())
	return events.Event{}
}

// env is a proxy on loopback with an origin server behind it.
type env struct {
	proxy  *Proxy
	addr   string // the proxy's HOST:PORT
	origin *httptest.Server
	port   string // the origin's port
	snap   atomic.Pointer[policy.Snapshot]
	events *eventLog
	// originConns counts connections the origin accepted.
	originConns atomic.Int64
}

// newEnv starts an origin (originHandler) and a proxy in front of it;
// tweak may change the options. The proxy may reach loopback unless
// tweak says otherwise.
func newEnv(t testing.TB, tweak func(*Options)) *env {
	t.Helper()
	e := &env{events: &eventLog{}}
	e.origin = httptest.NewUnstartedServer(originHandler())
	e.origin.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			e.originConns.Add(1)
		}
	}
	e.origin.Start()
	t.Cleanup(e.origin.Close)
	_, e.port, _ = net.SplitHostPort(e.origin.Listener.Addr().String())
	e.snap.Store(testPolicy(t, e.port, 1, false))
	table := testIdentity()
	opts := Options{
		Policy:        e.snap.Load,
		Identity:      func() *identity.Table { return table },
		AllowLoopback: true,
		Resolver:      &loopResolver{fixed: map[string][]netip.Addr{"nx.test": nil}},
		Events:        e.events.emit,
		ShutdownGrace: time.Second,
	}
	if tweak != nil {
		tweak(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.proxy, e.addr = p, a.String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

// url returns an absolute URL on the origin under a host name.
func (e *env) url(host, path string) string {
	return "http://" + host + ":" + e.port + path
}

// client returns a Go HTTP client that uses the proxy.
func (e *env) client() *http.Client {
	pu, _ := url.Parse("http://" + e.addr)
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableCompression: true}, Timeout: 10 * time.Second}
}

// rawConn is a TCP connection to the proxy for hand-written requests.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func (e *env) dialRaw(t testing.TB) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// response reads one response with its body.
func (r *rawConn) response(method string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, string(body)
}

// closed reports whether the proxy closed the connection (EOF soon).
func (r *rawConn) closed() bool {
	r.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := r.br.ReadByte()
	return err == io.EOF || err != nil && !isTimeout(err)
}

// originHandler is the web server behind the proxy.
func originHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello from %s %s", r.Method, r.URL.RequestURI())
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		// Echo the request head as received, plus hop-by-hop fields of
		// the response's own that the proxy must strip.
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic realm=origin")
		w.Header().Set("X-End", "kept")
		fmt.Fprintf(w, "Host: %s\n", r.Host)
		for name, vs := range r.Header {
			for _, v := range vs {
				fmt.Fprintf(w, "%s: %s\n", name, v)
			}
		}
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Length", fmt.Sprint(r.ContentLength))
		w.Header().Set("X-Request-TE", strings.Join(r.TransferEncoding, ","))
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(bigSize))
		writePattern(w, bigSize)
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/notmodified", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	})
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "after hints")
	})
	mux.HandleFunc("/closedelimited", func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
		brw.Flush()
	})
	mux.HandleFunc("/raw/{name}", func(w http.ResponseWriter, r *http.Request) {
		raw, ok := rawResponses[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString(raw)
		brw.Flush()
		time.Sleep(50 * time.Millisecond)
	})
	return mux
}

// rawResponses are broken or unusual responses, by name.
var rawResponses = map[string]string{
	"nul-in-header":  "HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok",
	"cl-and-te":      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"two-lengths":    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
	"switching":      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"garbage":        "hello\r\n\r\n",
	"huge-head":      "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n",
	"short-body":     "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
	"bad-chunk":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
	"http10-close":   "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold server",
	"status-no-text": "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
}

// bigSize is the size of the large bodies.
const bigSize = 10 << 20

// writePattern writes n bytes of a known pattern.
func writePattern(w io.Writer, n int) {
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for n > 0 {
		k := min(n, len(buf))
		w.Write(buf[:k])
		n -= k
	}
}

// patternReader reads n bytes of the same pattern.
type patternReader struct{ n, off int }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n == 0 {
		return 0, io.EOF
	}
	k := min(len(b), p.n)
	for i := 0; i < k; i++ {
		b[i] = byte(((p.off + i) % (64 << 10)) * 7)
	}
	p.off += k
	p.n -= k
	return k, nil
}

// tcpOrigin is a TCP server on loopback that runs serve on each
// connection it accepts, in a goroutine of its own, and closes the
// connection after; it stops with the test. It returns the address.
func tcpOrigin(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// shutdownProxy starts a proxy with a 200 ms shutdown grace that may
// CONNECT to connectPorts, and returns its address and a stop function
// that ends Serve and fails the test unless Serve returns, cleanly,
// within 10 seconds.
func shutdownProxy(t *testing.T, port string, connectPorts ...int) (string, func()) {
	t.Helper()
	table := testIdentity()
	snap := testPolicy(t, port, 1, false)
	p, err := New(Options{Policy: func() *policy.Snapshot { return snap }, Identity: func() *identity.Table { return table },
		AllowLoopback: true, Resolver: &loopResolver{}, ShutdownGrace: 200 * time.Millisecond, ConnectPorts: connectPorts})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Serve(ctx) }()
	return a.String(), func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
	}
}
