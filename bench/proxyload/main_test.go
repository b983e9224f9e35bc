package main

import (
	"bufio"
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// origin starts an HTTPS server on 127.0.0.1 that answers a 2 KB page and
// returns it with a PEM file of its certificate.
func origin(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	page := bytes.Repeat([]byte("x"), 2048)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/2k.html" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write(page)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "origin.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

// connectProxy is a minimal CONNECT proxy on 127.0.0.1 for the tests: it
// opens tunnels to allow and answers 403 to anything else.
type connectProxy struct {
	addr     string
	allow    string
	connects atomic.Int64
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, allow string) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{addr: ln.Addr().String(), allow: allow}
	var conns sync.Map
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		p.wg.Wait()
	})
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, nil)
			p.wg.Go(func() { p.serve(c, &conns) })
		}
	})
	return p
}

func (p *connectProxy) serve(c net.Conn, conns *sync.Map) {
	defer c.Close()
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	p.connects.Add(1)
	if req.Method != http.MethodConnect || req.Host != p.allow {
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nblocked\n")
		return
	}
	up, err := net.Dial("tcp", p.allow)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	conns.Store(up, nil)
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{})
	go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); close(done) }()
	io.Copy(c, up)
	<-done
}

var resultLine = regexp.MustCompile(`(?m)^RESULT (.*)$`)

// fields parses the RESULT line of out.
func fields(t *testing.T, out string) map[string]int64 {
	t.Helper()
	m := resultLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no RESULT line in:\n%s", out)
	}
	f := map[string]int64{}
	for _, kv := range strings.Fields(m[1]) {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("RESULT field %q: %v", kv, err)
		}
		f[k] = n
	}
	return f
}

func TestRun(t *testing.T) {
	srv, ca := origin(t)
	host := strings.TrimPrefix(srv.URL, "https://")
	good := startProxy(t, host)
	refusing := startProxy(t, "127.0.0.1:1")
	tests := []struct {
		name    string
		args    []string
		wantErr string // empty: success
		check   func(t *testing.T, f map[string]int64)
	}{
		{"through the proxy", []string{"-proxy", good.addr, "-c", "3", "-d", "300ms", "-cacert", ca, srv.URL + "/2k.html"}, "",
			func(t *testing.T, f map[string]int64) {
				if f["requests"] == 0 || f["connect"]+f["read"]+f["write"]+f["status"]+f["timeout"] != 0 {
					t.Errorf("want requests and no errors, got %v", f)
				}
				if f["bytes"] < f["requests"]*2048 {
					t.Errorf("bytes %d < requests %d x 2048", f["bytes"], f["requests"])
				}
				if n := good.connects.Load(); n != 3 {
					t.Errorf("proxy saw %d CONNECTs, want 3 (one per keep-alive connection)", n)
				}
			}},
		{"direct", []string{"-direct", "-c", "2", "-d", "200ms", "-cacert", ca, srv.URL + "/2k.html"}, "",
			func(t *testing.T, f map[string]int64) {
				if f["requests"] == 0 || f["p50_us"] <= 0 || f["p99_us"] < f["p50_us"] {
					t.Errorf("want requests and p99 >= p50 > 0, got %v", f)
				}
			}},
		{"not found counts as status error", []string{"-direct", "-c", "1", "-d", "100ms", "-cacert", ca, srv.URL + "/nope"}, "no request succeeded",
			func(t *testing.T, f map[string]int64) {
				if f["status"] == 0 || f["status"] != f["requests"] {
					t.Errorf("want every response counted in status, got %v", f)
				}
			}},
		{"CONNECT refused", []string{"-proxy", refusing.addr, "-c", "2", "-d", "100ms", "-cacert", ca, srv.URL + "/2k.html"}, "proxy answered 403",
			func(t *testing.T, f map[string]int64) {
				if f["connect"] == 0 || f["requests"] != 0 {
					t.Errorf("want connect errors only, got %v", f)
				}
			}},
		{"untrusted certificate", []string{"-direct", "-c", "1", "-d", "100ms", srv.URL + "/2k.html"}, "certificate",
			func(t *testing.T, f map[string]int64) {
				if f["connect"] == 0 {
					t.Errorf("want connect errors, got %v", f)
				}
			}},
		{"insecure", []string{"-direct", "-insecure", "-c", "1", "-d", "100ms", srv.URL + "/2k.html"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(tt.args, &out)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run: %v\n%s", err, out.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run: error %v, want one containing %q\n%s", err, tt.wantErr, out.String())
			}
			if tt.check != nil {
				tt.check(t, fields(t, out.String()))
			}
		})
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"-direct"}, "one target URL"},
		{"neither proxy nor direct", []string{"https://127.0.0.1/"}, "either -proxy"},
		{"both proxy and direct", []string{"-direct", "-proxy", "127.0.0.1:3128", "https://127.0.0.1/"}, "either -proxy"},
		{"proxy without port", []string{"-proxy", "127.0.0.1", "https://127.0.0.1/"}, "-proxy"},
		{"ftp target", []string{"-direct", "ftp://127.0.0.1/"}, "want https://"},
		{"no host", []string{"-direct", "https:///x"}, "want https://"},
		{"zero connections", []string{"-direct", "-c", "0", "https://127.0.0.1/"}, "positive"},
		{"missing CA file", []string{"-direct", "-cacert", "/nonexistent.pem", "https://127.0.0.1/"}, "-cacert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseFlags(%q): error %v, want one containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseFlagsRequest(t *testing.T) {
	c, err := parseFlags([]string{"-direct", "https://127.0.0.1/a?b=c"})
	if err != nil {
		t.Fatal(err)
	}
	if c.origin != "127.0.0.1:443" || c.host != "127.0.0.1" || c.path != "/a?b=c" || c.tls == nil {
		t.Errorf("got origin %q host %q path %q tls %v", c.origin, c.host, c.path, c.tls != nil)
	}
	want := "GET /a?b=c HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	if !strings.HasPrefix(string(c.requestLine), want) || !strings.HasSuffix(string(c.requestLine), "\r\n\r\n") {
		t.Errorf("request %q, want it to start with %q", c.requestLine, want)
	}
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantStatus int
		wantClose  bool
		wantErr    string
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, false, ""},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", 200, false, ""},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, false, ""},
		{"continue then ok", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", 403, false, ""},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 200, true, ""},
		{"HTTP/1.0 to the end", "HTTP/1.0 200 OK\r\n\r\nbody to the end", 200, true, ""},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", 200, false, ""},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", 200, false, ""},
		{"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 200, false, ""},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 0, false, "two different"},
		{"length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, false, "both"},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", 0, false, "not a length"},
		{"gzip encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, false, "only chunked"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, false, "unexpected EOF"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, false, "not hexadecimal"},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", 0, false, "not HTTP/1.x"},
		{"bad code", "HTTP/1.1 2x0 OK\r\n\r\n", 0, false, "bad status code"},
		{"header without colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", 0, false, "NAME: VALUE"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, false, "101"},
		{"empty", "", 0, false, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := readResponse(bufio.NewReader(strings.NewReader(tt.in)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tt.wantStatus || r.close != tt.wantClose || r.size != int64(len(tt.in)) {
				t.Errorf("status %d close %v size %d, want %d %v %d", r.status, r.close, r.size, tt.wantStatus, tt.wantClose, len(tt.in))
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var sorted []time.Duration
	for i := 1; i <= 100; i++ {
		sorted = append(sorted, time.Duration(i))
	}
	for _, tt := range []struct {
		p    float64
		want int64
	}{{50, 50}, {99, 99}, {100, 100}, {0.5, 1}} {
		if got := percentile(sorted, tt.p); int64(got) != tt.want {
			t.Errorf("percentile(%v) = %d, want %d", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 403 Forbidden\r\n\r\nblocked",
		"HTTP/1.1 304 Not Modified\r\nConnection: keep-alive, close\r\n\r\n",
		fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 1<<62),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := readResponse(bufio.NewReaderSize(bytes.NewReader(in), 4096))
		if err != nil {
			return
		}
		if r.size > int64(len(in)) || r.size <= 0 {
			t.Fatalf("size %d for %d bytes of input", r.size, len(in))
		}
		if r.status < 200 || r.status > 999 {
			t.Fatalf("status %d returned as final", r.status)
		}
	})
}
