package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/wardentest"
)

func TestHTTPDecisions(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	tests := []struct {
		name     string
		url      string
		status   int
		contains string
		category string
		rule     string
	}{
		{name: "allowed", url: e.url("allowed.test", "/page?q=1"), status: 200, contains: "hello from GET /page?q=1"},
		{name: "blocked host", url: e.url("bet.test", "/"), status: 403, contains: "This page is blocked", category: "gambling", rule: "category"},
		{name: "blocked host, upper case", url: e.url("BET.test", "/x"), status: 403, contains: "bet.test", category: "gambling", rule: "category"},
		{name: "URL entry under an allowed domain", url: e.url("allowed.test", "/bad/picture.jpg"), status: 403, contains: "This page is blocked", category: "pornography", rule: "category"},
		{name: "mandatory URL entry under an allowed domain", url: e.url("allowed.test", "/abuse/x"), status: 403, contains: "This page is blocked", category: "child-abuse", rule: "mandatory"},
		{name: "social media blocked for pupils", url: e.url("social.test", "/"), status: 403, category: "social-media", rule: "category"},
		{name: "unknown name", url: e.url("nx.test", "/"), status: 502, contains: "could not find"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body %q does not contain %q", body, tc.contains)
			}
			if tc.status == 403 {
				if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q", cc)
				}
				if strings.Contains(string(body), "/abuse/") {
					t.Errorf("block page shows a mandatory list's entry: %s", body)
				}
			}
			if tc.category != "" {
				ev := e.events.waitFor(t, tc.url, func(ev events.Event) bool { return ev.URL == tc.url })
				if ev.Action != "block" || ev.Category != tc.category || ev.Rule != tc.rule || ev.Status != "403" {
					t.Errorf("event %+v, want block/%s/%s/403", ev, tc.category, tc.rule)
				}
			}
		})
	}
}

func TestBlockKeepsConnectionOpen(t *testing.T) {
	e := newEnv(t, nil)
	rc := e.dialRaw(t)
	for i, host := range []string{"bet.test", "allowed.test", "bet.test"} {
		rc.send("GET " + e.url(host, "/") + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
		resp, body := rc.response("GET")
		want := 403
		if host == "allowed.test" {
			want = 200
		}
		if resp.StatusCode != want || resp.Close {
			t.Fatalf("request %d: status %d close %v, want %d kept open: %s", i, resp.StatusCode, resp.Close, want, body)
		}
	}
}

func TestPipelinedAndBlockedBodies(t *testing.T) {
	e := newEnv(t, nil)
	rc := e.dialRaw(t)
	// Three requests in one write: a blocked POST whose small body is
	// read and dropped, an allowed GET, a blocked GET.
	rc.send("POST " + e.url("bet.test", "/") + " HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" +
		"GET " + e.url("allowed.test", "/two") + " HTTP/1.1\r\n\r\n" +
		"GET " + e.url("bet.test", "/three") + " HTTP/1.1\r\n\r\n")
	for i, want := range []int{403, 200, 403} {
		resp, body := rc.response("GET")
		if resp.StatusCode != want || resp.Close {
			t.Fatalf("response %d: %d close=%v, want %d: %s", i, resp.StatusCode, resp.Close, want, body)
		}
	}
	// A blocked chunked upload cannot be skipped safely: answer, close.
	rc.send("POST " + e.url("bet.test", "/") + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if resp, _ := rc.response("POST"); resp.StatusCode != 403 || !resp.Close {
		t.Errorf("blocked chunked POST: %d close=%v", resp.StatusCode, resp.Close)
	}
	if !rc.closed() {
		t.Error("connection open after a blocked chunked upload")
	}
}

func TestBlockPageOption(t *testing.T) {
	var got Blocked
	e := newEnv(t, func(o *Options) {
		o.BlockPage = func(dst []byte, b Blocked) []byte {
			got = b
			return append(dst, "<p>custom "+b.Decision.Category+"</p>"...)
		}
		o.Now = func() time.Time { return time.Date(2025, 3, 5, 10, 0, 0, 0, time.UTC) }
	})
	rc := e.dialRaw(t)
	u := e.url("bet.test", "/odds")
	rc.send("GET " + u + " HTTP/1.1\r\n\r\n")
	resp, body := rc.response("GET")
	if resp.StatusCode != 403 || body != "<p>custom gambling</p>" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if got.Host != "bet.test" || got.URL != u || got.Subject.Group != "pupils" || got.ClientIP != netip.MustParseAddr("127.0.0.1") ||
		!got.Time.Equal(time.Date(2025, 3, 5, 10, 0, 0, 0, time.UTC)) || got.Decision.Reason == "" {
		t.Errorf("Blocked %+v", got)
	}
}

func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (.ci/run installs it)")
	}
	tlsOrigin := httptest.NewTLSServer(originHandler())
	defer tlsOrigin.Close()
	_, tlsPort, _ := net.SplitHostPort(tlsOrigin.Listener.Addr().String())
	e := newEnv(t, func(o *Options) { o.ConnectPorts = []int{443, atoi(tlsPort)} })
	run := func(args ...string) (string, int) {
		t.Helper()
		args = append([]string{"-s", "-S", "--max-time", "10", "--noproxy", "", "-x", "http://" + e.addr, "-o", "-", "-w", "\n%{http_code}"}, args...)
		out, err := exec.Command(curl, args...).CombinedOutput()
		if err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("curl: %v", err)
			}
		}
		s := strings.TrimSpace(string(out))
		i := strings.LastIndexByte(s, '\n')
		code := 0
		fmt.Sscan(s[i+1:], &code)
		return s[:max(i, 0)], code
	}
	if body, code := run(e.url("allowed.test", "/hello")); code != 200 || body != "hello from GET /hello" {
		t.Errorf("allowed: %d %q", code, body)
	}
	if body, code := run(e.url("bet.test", "/")); code != 403 || !strings.Contains(body, "This page is blocked") {
		t.Errorf("blocked: %d %q", code, body)
	}
	if body, code := run("-k", "https://allowed.test:"+tlsPort+"/secure"); code != 200 || body != "hello from GET /secure" {
		t.Errorf("CONNECT allowed: %d %q", code, body)
	}
	// A blocked CONNECT: curl reports the proxy's 403 (its own exit
	// code 56) without a body of the site's.
	if out, _ := run("-k", "https://bet.test:"+tlsPort+"/"); !strings.Contains(out, "CONNECT tunnel failed, response 403") {
		t.Errorf("CONNECT blocked: %q, want a 403", out)
	}
	// Two URLs on one connection (curl reuses it): both answered.
	if body, code := run(e.url("allowed.test", "/a"), e.url("allowed.test", "/b")); code != 200 || !strings.Contains(body, "/a") || !strings.Contains(body, "/b") {
		t.Errorf("two URLs: %d %q", code, body)
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

func TestConnect(t *testing.T) {
	tlsOrigin := httptest.NewTLSServer(originHandler())
	defer tlsOrigin.Close()
	_, tlsPort, _ := net.SplitHostPort(tlsOrigin.Listener.Addr().String())
	e := newEnv(t, func(o *Options) { o.ConnectPorts = []int{443, atoi(tlsPort)} })

	t.Run("allowed through Go's client", func(t *testing.T) {
		pu, _ := url.Parse("http://" + e.addr)
		tr := tlsOrigin.Client().Transport.(*http.Transport).Clone()
		tr.Proxy = http.ProxyURL(pu)
		tr.TLSClientConfig.ServerName = "example.com" // in httptest's certificate
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := c.Get("https://allowed.test:" + tlsPort + "/tls")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello from GET /tls" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		tr.CloseIdleConnections() // ends the tunnel, which emits the event
		ev := e.events.waitFor(t, "CONNECT event", func(ev events.Event) bool { return ev.Method == "CONNECT" && ev.Host == "allowed.test" })
		if ev.Action != "allow" || ev.Status != "200" || ev.URL != "" || ev.Bytes == 0 || ev.Upstream != "127.0.0.1:"+tlsPort || ev.Group != "pupils" {
			t.Errorf("event %+v", ev)
		}
	})

	t.Run("pipelined ClientHello", func(t *testing.T) {
		// The TLS handshake sent straight after the CONNECT head, before
		// the 200: bytes the proxy has buffered must reach the server.
		raw, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		pc := &prefixConn{Conn: raw, prefix: []byte("CONNECT allowed.test:" + tlsPort + " HTTP/1.1\r\n\r\n")}
		tc := tls.Client(pc, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake through the tunnel: %v", err)
		}
	})

	tests := []struct {
		name, target string
		status       int
		body         string
	}{
		{"blocked host", "bet.test:" + tlsPort, 403, "Blocked by Warden: bet.test"},
		{"port not allowed", "allowed.test:8443", 403, "only to the configured ports"},
		{"no port", "allowed.test", 400, "CONNECT needs host:port"},
		{"unknown name", "nx.test:443", 502, "could not find"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := e.dialRaw(t)
			rc.send("CONNECT " + tc.target + " HTTP/1.1\r\nHost: " + tc.target + "\r\n\r\n")
			resp, body := rc.response("CONNECT")
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if !rc.closed() {
				t.Error("connection left open after a refused CONNECT")
			}
		})
	}
}

// prefixConn writes prefix in the same write as the first bytes.
type prefixConn struct {
	net.Conn
	prefix []byte
	readOK bool
}

func (c *prefixConn) Write(p []byte) (int, error) {
	if c.prefix != nil {
		b := append(c.prefix, p...)
		c.prefix = nil
		if _, err := c.Conn.Write(b); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if !c.readOK {
		// Skip the proxy's "200 Connection established" head.
		var head []byte
		one := make([]byte, 1)
		for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
			if _, err := io.ReadFull(c.Conn, one); err != nil {
				return 0, err
			}
			head = append(head, one[0])
		}
		if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
			return 0, fmt.Errorf("CONNECT answered %q", head)
		}
		c.readOK = true
	}
	return c.Conn.Read(p)
}

func TestRefusedSource(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Allowed = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	rc := e.dialRaw(t)
	rc.c.Write([]byte("GET " + e.url("allowed.test", "/") + " HTTP/1.1\r\n\r\n"))
	if !rc.closed() {
		t.Fatal("a client outside the allowed networks was served")
	}
	if n := len(e.events.all()); n != 0 {
		t.Errorf("%d events for a refused connection", n)
	}
}

func TestDestinationGuard(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.AllowLoopback = false
		o.ConnectPorts = []int{443, 22}
		o.Resolver = &loopResolver{fixed: map[string][]netip.Addr{
			"public.test": {netip.MustParseAddr("192.0.2.10")},
			"mixed.test":  {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("169.254.169.254")},
		}}
	})
	for _, target := range []string{
		"http://127.0.0.1:" + e.port + "/",
		"http://localhost.test:" + e.port + "/", // resolves to 127.0.0.1
		"http://mixed.test/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::1]:" + e.port + "/",
		"http://[::ffff:127.0.0.1]:" + e.port + "/",
		"http://0.0.0.0:" + e.port + "/",
		"http://[64:ff9b::7f00:1]:" + e.port + "/",
		"CONNECT 127.0.0.1:22",
	} {
		t.Run(target, func(t *testing.T) {
			rc := e.dialRaw(t)
			method := "GET"
			if strings.HasPrefix(target, "CONNECT ") {
				method = "CONNECT"
				rc.send(target + " HTTP/1.1\r\n\r\n")
			} else {
				rc.send("GET " + target + " HTTP/1.1\r\n\r\n")
			}
			resp, body := rc.response(method)
			if resp.StatusCode != 403 || !strings.Contains(body, "does not connect to this address") {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		})
	}
	ev := e.events.waitFor(t, "refused destination", func(ev events.Event) bool { return ev.Rule == "destination" })
	if ev.Action != "block" || ev.Status != "403" {
		t.Errorf("event %+v", ev)
	}
	// Link-local stays refused even with AllowLoopback.
	e2 := newEnv(t, nil)
	rc := e2.dialRaw(t)
	rc.send("GET http://169.254.169.254/ HTTP/1.1\r\n\r\n")
	if resp, _ := rc.response("GET"); resp.StatusCode != 403 {
		t.Errorf("link-local with AllowLoopback: %d", resp.StatusCode)
	}
	// Dial keeps the same rules.
	if _, err := e.proxy.Dial(context.Background(), "tcp", "127.0.0.1:"+e.port); !errors.Is(err, ErrForbiddenDestination) {
		t.Errorf("Dial loopback: %v", err)
	}
	if c, err := e2.proxy.Dial(context.Background(), "tcp", "allowed.test:"+e2.port); err != nil {
		t.Errorf("Dial allowed: %v", err)
	} else {
		c.Close()
	}
}

func TestProxyAuth(t *testing.T) {
	table := testIdentity()
	auth := &tokenAuth{table: table}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	t.Run("required", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Auth, o.RequireAuth = auth, true })
		rc := e.dialRaw(t)
		rc.send("GET " + e.url("social.test", "/") + " HTTP/1.1\r\n\r\n")
		resp, _ := rc.response("GET")
		if resp.StatusCode != 407 || !strings.HasPrefix(resp.Header.Get("Proxy-Authenticate"), `Basic realm="Warden"`) || resp.Close {
			t.Fatalf("without credentials: %d %q close=%v", resp.StatusCode, resp.Header.Get("Proxy-Authenticate"), resp.Close)
		}
		// Same connection, now with the staff laptop's token: staff may
		// use social media, pupils may not.
		for i := 0; i < 3; i++ {
			rc.send("GET " + e.url("social.test", "/") + " HTTP/1.1\r\nProxy-Authorization: " + basic("laptop", testToken) + "\r\n\r\n")
			resp, body := rc.response("GET")
			if resp.StatusCode != 200 {
				t.Fatalf("with the token: %d %q", resp.StatusCode, body)
			}
		}
		if n := auth.calls.Load(); n != 1 {
			t.Errorf("authenticator called %d times for one credential, want 1 (cached)", n)
		}
		ev := e.events.waitFor(t, "authenticated event", func(ev events.Event) bool { return ev.Host == "social.test" })
		if ev.DeviceID != 42 || ev.Group != "staff" || ev.Action != "allow" {
			t.Errorf("event %+v", ev)
		}
		rc.send("GET " + e.url("social.test", "/") + " HTTP/1.1\r\nProxy-Authorization: " + basic("x", "wrong") + "\r\n\r\n")
		if resp, _ := rc.response("GET"); resp.StatusCode != 407 {
			t.Errorf("wrong password: %d", resp.StatusCode)
		}
	})
	t.Run("optional", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Auth = auth })
		c := e.client()
		resp, err := c.Get(e.url("social.test", "/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("by address (pupils): %d, want 403", resp.StatusCode)
		}
		pu, _ := url.Parse("http://laptop:" + testToken + "@" + e.addr)
		c.Transport.(*http.Transport).Proxy = http.ProxyURL(pu)
		resp, err = c.Get(e.url("social.test", "/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("with the token (staff): %d, want 200", resp.StatusCode)
		}
	})
	if _, err := New(Options{Policy: func() *policy.Snapshot { return nil }, Identity: func() *identity.Table { return nil }, RequireAuth: true}); err == nil {
		t.Error("RequireAuth without Auth accepted")
	}
}

func TestSmuggling(t *testing.T) {
	e := newEnv(t, nil)
	u := e.url("allowed.test", "/echo")
	tests := []struct {
		name   string
		raw    string
		status int
	}{
		{"CL and TE", "POST " + u + " HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE and CL", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400},
		{"two different CLs", "POST " + u + " HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400},
		{"CL list that differs", "POST " + u + " HTTP/1.1\r\nContent-Length: 4, 5\r\n\r\nabcde", 400},
		{"signed CL", "POST " + u + " HTTP/1.1\r\nContent-Length: +4\r\n\r\nabcd", 400},
		{"TE not ending in chunked", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400},
		{"TE chunked twice", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE gzip", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"TE with a space in the name", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
		{"TE in HTTP/1.0", "POST " + u + " HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"bad chunk size", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size overflow", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size with 0x", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk extension without ;", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk data too long", "POST " + u + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 400},
		{"obs-fold", "GET " + u + " HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n", 400},
		{"bare CR in a value", "GET " + u + " HTTP/1.1\r\nX-A: one\rX-B: two\r\n\r\n", 400},
		{"bare LF line end", "GET " + u + " HTTP/1.1\nX-A: one\r\n\r\n", 400},
		{"NUL in a value", "GET " + u + " HTTP/1.1\r\nX-A: o\x00ne\r\n\r\n", 400},
		{"space before colon", "GET " + u + " HTTP/1.1\r\nX-A : one\r\n\r\n", 400},
		{"bad name", "GET " + u + " HTTP/1.1\r\nX(A): one\r\n\r\n", 400},
		{"two Hosts", "GET " + u + " HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"origin form", "GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 400},
		{"PAC on the proxy port", "GET /proxy.pac HTTP/1.1\r\n\r\n", 400},
		{"https absolute form", "GET https://allowed.test/ HTTP/1.1\r\n\r\n", 400},
		{"userinfo", "GET http://user:pw@allowed.test:" + e.port + "/ HTTP/1.1\r\n\r\n", 400},
		{"fragment", "GET " + u + "#frag HTTP/1.1\r\n\r\n", 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"two spaces", "GET  " + u + " HTTP/1.1\r\n\r\n", 400},
		{"header too large", "GET " + u + " HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", 431},
		{"CONNECT with a body", "CONNECT allowed.test:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"unknown expectation", "GET " + u + " HTTP/1.1\r\nExpect: magic\r\n\r\n", 417},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := e.dialRaw(t)
			rc.send(tc.raw)
			resp, body := rc.response("GET")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if resp.StatusCode >= 400 && tc.status != 417 && !resp.Close {
				t.Error("no Connection: close on a refused request")
			}
			if !rc.closed() {
				t.Error("connection left open")
			}
		})
	}
}

func TestHopByHopHeaders(t *testing.T) {
	e := newEnv(t, nil)
	rc := e.dialRaw(t)
	rc.send("GET " + e.url("Allowed.test", "/headers") + " HTTP/1.1\r\n" +
		"Host: evil.test\r\n" +
		"Connection: keep-alive, X-Hop\r\n" +
		"X-Hop: secret\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n" +
		"TE: trailers\r\n" +
		"Trailer: X-T\r\n" +
		"Upgrade: websocket\r\n" +
		"X-End: kept\r\n\r\n")
	resp, body := rc.response("GET")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for _, bad := range []string{"X-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te:", "Trailer", "Upgrade", "Connection", "evil.test"} {
		if strings.Contains(body, bad) {
			t.Errorf("origin received %q:\n%s", bad, body)
		}
	}
	for _, want := range []string{"Host: Allowed.test:" + e.port, "X-End: kept", "Via: 1.1 warden"} {
		if !strings.Contains(body, want) {
			t.Errorf("origin did not receive %q:\n%s", want, body)
		}
	}
	for _, bad := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate"} {
		if resp.Header.Get(bad) != "" {
			t.Errorf("client received %s: %q", bad, resp.Header.Get(bad))
		}
	}
	if resp.Header.Get("Via") != "1.1 warden" || resp.Header.Get("X-End") != "kept" {
		t.Errorf("response head %v", resp.Header)
	}
}

func TestBodies(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	t.Run("chunked request and response", func(t *testing.T) {
		body := io.MultiReader(strings.NewReader("first part,"), strings.NewReader(" second part"))
		req, _ := http.NewRequest("POST", e.url("allowed.test", "/echo"), body) // unknown length: chunked
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != "first part, second part" || resp.Header.Get("X-Request-TE") != "chunked" {
			t.Errorf("%q TE=%q", got, resp.Header.Get("X-Request-TE"))
		}
		resp, err = c.Get(e.url("allowed.test", "/chunked"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != "part 0\npart 1\npart 2\npart 3\npart 4\n" || len(resp.TransferEncoding) == 0 {
			t.Errorf("chunked response %q %v", got, resp.TransferEncoding)
		}
	})
	t.Run("10 MB each way", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.url("allowed.test", "/echo"), &patternReader{n: bigSize})
		req.ContentLength = bigSize
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, _ := io.Copy(h, resp.Body)
		resp.Body.Close()
		want := sha256.New()
		io.Copy(want, &patternReader{n: bigSize})
		if n != bigSize || !bytes.Equal(h.Sum(nil), want.Sum(nil)) || resp.Header.Get("X-Request-Length") != fmt.Sprint(bigSize) {
			t.Errorf("echoed %d bytes, length header %q", n, resp.Header.Get("X-Request-Length"))
		}
		resp, err = c.Get(e.url("allowed.test", "/big"))
		if err != nil {
			t.Fatal(err)
		}
		h.Reset()
		n, _ = io.Copy(h, resp.Body)
		resp.Body.Close()
		if n != bigSize || !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
			t.Errorf("downloaded %d bytes", n)
		}
		ev := e.events.waitFor(t, "big download", func(ev events.Event) bool { return strings.HasSuffix(ev.URL, "/big") })
		if ev.Bytes != bigSize || ev.Status != "200" || ev.Method != "GET" {
			t.Errorf("event %+v", ev)
		}
	})
	t.Run("HEAD, 204, 304, 103, close-delimited", func(t *testing.T) {
		rc := e.dialRaw(t)
		rc.send("HEAD " + e.url("allowed.test", "/big") + " HTTP/1.1\r\n\r\n")
		resp, body := rc.response("HEAD")
		if resp.StatusCode != 200 || body != "" || resp.ContentLength != bigSize {
			t.Errorf("HEAD: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
		}
		rc.send("GET " + e.url("allowed.test", "/nocontent") + " HTTP/1.1\r\n\r\n")
		if resp, body := rc.response("GET"); resp.StatusCode != 204 || body != "" {
			t.Errorf("204: %d %q", resp.StatusCode, body)
		}
		rc.send("GET " + e.url("allowed.test", "/notmodified") + " HTTP/1.1\r\nIf-None-Match: \"v1\"\r\n\r\n")
		if resp, body := rc.response("GET"); resp.StatusCode != 304 || body != "" || resp.Header.Get("ETag") != `"v1"` {
			t.Errorf("304: %d %q", resp.StatusCode, body)
		}
		rc.send("GET " + e.url("allowed.test", "/early") + " HTTP/1.1\r\n\r\n")
		line, _ := rc.br.ReadString('\n')
		if line != "HTTP/1.1 103 Early Hints\r\n" {
			t.Errorf("interim response %q", line)
		}
		for line != "\r\n" {
			line, _ = rc.br.ReadString('\n')
		}
		if resp, body := rc.response("GET"); resp.StatusCode != 200 || body != "after hints" {
			t.Errorf("after 103: %d %q", resp.StatusCode, body)
		}
		// A response framed by closing: the client still gets a kept-open
		// connection, with the body re-framed as chunks.
		rc.send("GET " + e.url("allowed.test", "/closedelimited") + " HTTP/1.1\r\n\r\n")
		resp, body = rc.response("GET")
		if resp.StatusCode != 200 || body != "until the end" || resp.Close {
			t.Errorf("close-delimited: %d %q close=%v", resp.StatusCode, body, resp.Close)
		}
		rc.send("GET " + e.url("allowed.test", "/still-open") + " HTTP/1.1\r\n\r\n")
		if resp, body := rc.response("GET"); resp.StatusCode != 200 {
			t.Errorf("after close-delimited: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("100-continue", func(t *testing.T) {
		rc := e.dialRaw(t)
		rc.send("POST " + e.url("allowed.test", "/echo") + " HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		line, _ := rc.br.ReadString('\n')
		blank, _ := rc.br.ReadString('\n')
		if line != "HTTP/1.1 100 Continue\r\n" || blank != "\r\n" {
			t.Fatalf("got %q %q before the body", line, blank)
		}
		rc.send("hello")
		if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "hello" {
			t.Errorf("%d %q", resp.StatusCode, body)
		}
		// Blocked: the 403 comes at once, with no 100, and the
		// connection closes (the body may or may not follow).
		rc = e.dialRaw(t)
		rc.send("POST " + e.url("bet.test", "/") + " HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		if resp, _ := rc.response("POST"); resp.StatusCode != 403 || !resp.Close {
			t.Errorf("blocked with 100-continue: %d close=%v", resp.StatusCode, resp.Close)
		}
	})
	t.Run("body limit", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 10 })
		rc := e.dialRaw(t)
		rc.send("POST " + e.url("allowed.test", "/echo") + " HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world")
		if resp, _ := rc.response("POST"); resp.StatusCode != 413 {
			t.Errorf("Content-Length over the limit: %d", resp.StatusCode)
		}
		rc = e.dialRaw(t)
		rc.send("POST " + e.url("allowed.test", "/echo") + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
		if resp, _ := rc.response("POST"); resp.StatusCode != 413 {
			t.Errorf("chunked over the limit: %d", resp.StatusCode)
		}
	})
	t.Run("HTTP/1.0 client", func(t *testing.T) {
		rc := e.dialRaw(t)
		rc.send("GET " + e.url("allowed.test", "/chunked") + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		resp, body := rc.response("GET")
		if resp.StatusCode != 200 || body != "part 0\npart 1\npart 2\npart 3\npart 4\n" || len(resp.TransferEncoding) != 0 {
			t.Errorf("%d %q %v", resp.StatusCode, body, resp.TransferEncoding)
		}
	})
}

func TestUpstreamResponses(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		status int
		body   string
		// cut means the body is cut off: the client connection closes
		// without a complete body.
		cut bool
	}{
		{name: "nul-in-header", status: 502},
		{name: "cl-and-te", status: 502},
		{name: "two-lengths", status: 502},
		{name: "switching", status: 502},
		{name: "garbage", status: 502},
		{name: "huge-head", status: 502},
		{name: "short-body", status: 200, cut: true},
		{name: "bad-chunk", status: 200, cut: true},
		{name: "http10-close", status: 200, body: "old server"},
		{name: "status-no-text", status: 200, body: "ok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := e.dialRaw(t)
			rc.send("GET " + e.url("allowed.test", "/raw/"+tc.name) + " HTTP/1.1\r\n\r\n")
			resp, err := http.ReadResponse(rc.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.cut {
				if err == nil {
					t.Errorf("cut-off body read as complete: %q", body)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.body != "" && string(body) != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			// The connection carries on after a 502 or a re-framed body.
			rc.send("GET " + e.url("allowed.test", "/next") + " HTTP/1.1\r\n\r\n")
			if resp, body := rc.response("GET"); resp.StatusCode != 200 {
				t.Errorf("next request: %d %q", resp.StatusCode, body)
			}
		})
	}
}

func TestUpstreamReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	e2 := newEnv(t, func(o *Options) { o.Metrics = reg })
	c := e2.client()
	for i := 0; i < 20; i++ {
		resp, err := c.Get(e2.url("allowed.test", fmt.Sprintf("/n%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if n := e2.originConns.Load(); n != 1 {
		t.Errorf("origin saw %d connections for 20 sequential requests, want 1", n)
	}
	if v := value(t, reg, "warden_proxy_upstream_reused_total", nil); v != 19 {
		t.Errorf("reused = %v, want 19", v)
	}
	if v := value(t, reg, "warden_proxy_upstream_dials_total", nil); v != 1 {
		t.Errorf("dials = %v, want 1", v)
	}
	// A request is counted once its response is sent, so the client may
	// read the last one a moment before the count moves.
	deadline := time.Now().Add(5 * time.Second)
	for value(t, reg, "warden_proxy_requests_total", map[string]string{"method": "get", "decision": "allow"}) != 20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if v := value(t, reg, "warden_proxy_requests_total", map[string]string{"method": "get", "decision": "allow"}); v != 20 {
		t.Errorf("allowed GETs = %v", v)
	}
	if v := value(t, reg, "warden_proxy_client_connections", nil); v != 1 {
		t.Errorf("client connections = %v", v)
	}
	// The origin closes its idle connections: the next request retries
	// once on a new connection instead of failing.
	e2.origin.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	resp, err := c.Get(e2.url("allowed.test", "/after-close"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after the origin closed: %d", resp.StatusCode)
	}
	// A POST cannot be retried: the pooled connection is checked first.
	e2.origin.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	resp, err = c.Post(e2.url("allowed.test", "/echo"), "text/plain", strings.NewReader("posted"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "posted" {
		t.Errorf("POST after the origin closed: %d %q", resp.StatusCode, body)
	}
}

// value returns a gathered counter or gauge's value for the given labels.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return wardentest.MetricValue(t, reg, name, labels)
}

func TestLivePolicyChange(t *testing.T) {
	e := newEnv(t, nil)
	rc := e.dialRaw(t)
	rc.send("GET " + e.url("allowed.test", "/") + " HTTP/1.1\r\n\r\n")
	if resp, _ := rc.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	e.snap.Store(testPolicy(t, e.port, 2, true))
	rc.send("GET " + e.url("allowed.test", "/") + " HTTP/1.1\r\n\r\n")
	if resp, _ := rc.response("GET"); resp.StatusCode != 403 {
		t.Fatalf("after the change, same connection: %d", resp.StatusCode)
	}
	ev := e.events.waitFor(t, "version 2", func(ev events.Event) bool { return ev.PolicyVersion == 2 })
	if ev.Action != "block" {
		t.Errorf("event %+v", ev)
	}
}

func TestEvents(t *testing.T) {
	now := time.Date(2025, 3, 5, 10, 0, 0, 0, time.UTC)
	e := newEnv(t, func(o *Options) { o.Now = func() time.Time { return now } })
	rc := e.dialRaw(t)
	u := e.url("allowed.test", "/page")
	rc.send("POST " + u + " HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
	rc.response("POST")
	ev := e.events.waitFor(t, u, func(ev events.Event) bool { return ev.URL == u })
	want := events.Event{Time: now, Source: "proxy", ClientIP: netip.MustParseAddr("127.0.0.1"), Group: "pupils",
		Host: "allowed.test", URL: u, Method: "POST", Action: "allow", Rule: "default", PolicyVersion: 1,
		Upstream: "127.0.0.1:" + e.port, Status: "200", Bytes: int64(len("hello from POST /page"))}
	if ev != want {
		t.Errorf("event\n got %+v\nwant %+v", ev, want)
	}
}

func TestShutdown(t *testing.T) {
	origin := httptest.NewServer(originHandler())
	defer origin.Close()
	_, port, _ := net.SplitHostPort(origin.Listener.Addr().String())
	addr, stop := shutdownProxy(t, port)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET http://allowed.test:%s/ HTTP/1.1\r\n\r\n", port)
	buf := make([]byte, 4096)
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	stop()
	if _, err := idle.Read(buf); err == nil {
		t.Error("idle connection still open after shutdown")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting after shutdown")
	}
}

func TestNoPolicyFailsClosed(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Policy = func() *policy.Snapshot { return nil } })
	rc := e.dialRaw(t)
	rc.send("GET " + e.url("allowed.test", "/") + " HTTP/1.1\r\n\r\n")
	if resp, _ := rc.response("GET"); resp.StatusCode != 503 {
		t.Errorf("%d, want 503", resp.StatusCode)
	}
}

// fakeInspector records what it was handed and answers one HTTP request
// inside the "TLS" (plain text here: only the hand-over is tested).
type fakeInspector struct {
	inspect bool
	got     chan string
}

func (f *fakeInspector) Inspect(host string, d policy.Decision, who identity.Subject) bool {
	return f.inspect
}

func (f *fakeInspector) ServeTLS(ctx context.Context, client net.Conn, target string, who identity.Subject, ip netip.Addr) {
	defer client.Close()
	buf := make([]byte, 5)
	io.ReadFull(client, buf)
	f.got <- target + " " + who.Group + " " + ip.String() + " " + string(buf)
	io.WriteString(client, "inspected")
}

// A CONNECT the Inspector takes is handed over with the bytes already
// read; a blocked host it takes is handed over too (so the block page
// shows inside the TLS), and recorded as the block it is.
func TestInspectorHandOver(t *testing.T) {
	for _, tc := range []struct{ host, action string }{{"allowed.test", "allow"}, {"bet.test", "block"}} {
		t.Run(tc.host, func(t *testing.T) {
			insp := &fakeInspector{inspect: true, got: make(chan string, 1)}
			e := newEnv(t, func(o *Options) { o.Inspector = insp })
			rc := e.dialRaw(t)
			// The first bytes inside the tunnel come with the CONNECT head, so
			// the proxy has them buffered when it hands over.
			rc.send("CONNECT " + tc.host + ":443 HTTP/1.1\r\n\r\nhello")
			line, _ := rc.br.ReadString('\n')
			blank, _ := rc.br.ReadString('\n')
			if line != "HTTP/1.1 200 Connection established\r\n" || blank != "\r\n" {
				t.Fatalf("%q %q", line, blank)
			}
			select {
			case got := <-insp.got:
				if got != tc.host+":443 pupils 127.0.0.1 hello" {
					t.Errorf("inspector got %q", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("inspector not called")
			}
			rest, _ := io.ReadAll(rc.br)
			if string(rest) != "inspected" {
				t.Errorf("client got %q", rest)
			}
			ev := e.events.waitFor(t, "CONNECT", func(ev events.Event) bool { return ev.Method == "CONNECT" })
			if ev.Upstream != "inspect" || ev.Status != "200" || ev.Action != tc.action {
				t.Errorf("event %+v", ev)
			}
		})
	}
	// A blocked host the Inspector does not take (a bypass host) gets
	// the 403 text.
	insp := &fakeInspector{inspect: false, got: make(chan string, 1)}
	e := newEnv(t, func(o *Options) { o.Inspector = insp })
	rc := e.dialRaw(t)
	rc.send("CONNECT bet.test:443 HTTP/1.1\r\n\r\n")
	if resp, _ := rc.response("CONNECT"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("blocked, not inspected: %d", resp.StatusCode)
	}
}

func TestTunnelIdleTimeout(t *testing.T) {
	_, port, _ := net.SplitHostPort(tcpOrigin(t, func(c net.Conn) { io.Copy(io.Discard, c) })) // never answers
	e := newEnv(t, func(o *Options) { o.ConnectPorts = []int{atoi(port)}; o.TunnelIdleTimeout = 200 * time.Millisecond })
	rc := e.dialRaw(t)
	rc.send("CONNECT allowed.test:" + port + " HTTP/1.1\r\n\r\n")
	line, _ := rc.br.ReadString('\n')
	rc.br.ReadString('\n')
	if line != "HTTP/1.1 200 Connection established\r\n" {
		t.Fatalf("%q", line)
	}
	start := time.Now()
	if !rc.closed() {
		t.Fatal("idle tunnel not closed")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("closed after %v", d)
	}
}
