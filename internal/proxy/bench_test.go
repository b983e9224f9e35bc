package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// rawOrigin is a minimal keep-alive web server on loopback that answers
// every request with the same 2 KB page, so that benchmarks measure the
// proxy rather than net/http.
func rawOrigin(b *testing.B) string {
	b.Helper()
	page := strings.Repeat("x", 2048)
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2048\r\n\r\n" + page)
	return tcpOrigin(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			// Read one head (requests here have no body).
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) == 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}

// benchProxy starts a proxy with metrics and events on, as in service;
// CONNECT may reach the origin's port.
func benchProxy(b *testing.B, port string) string {
	b.Helper()
	return benchProxyWith(b, port, nil)
}

// benchProxyWith is benchProxy with tweak applied to its options.
func benchProxyWith(b *testing.B, port string, tweak func(*Options)) string {
	b.Helper()
	snap := testPolicy(b, port, 1, false)
	table := testIdentity()
	portNum, _ := strconv.Atoi(port)
	opts := Options{
		Policy: func() *policy.Snapshot { return snap }, Identity: func() *identity.Table { return table },
		AllowLoopback: true, Resolver: &loopResolver{}, ConnectPorts: []int{portNum},
		Events:  func(events.Event) bool { return true },
		Metrics: prometheus.NewRegistry(),
	}
	if tweak != nil {
		tweak(&opts)
	}
	p, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	a, err := p.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Serve(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return a.String()
}

// benchClient sends req over one keep-alive connection and reads
// responses of a known total size.
type benchClient struct {
	c    net.Conn
	req  []byte
	buf  []byte
	want int
}

func newBenchClient(b *testing.B, proxy string, req []byte) *benchClient {
	return newBenchClientOn(b, proxy, "", req)
}

// newBenchClientOn is newBenchClient through a CONNECT tunnel to
// tunnel, when it is not "".
func newBenchClientOn(b *testing.B, proxy, tunnel string, req []byte) *benchClient {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		b.Fatal(err)
	}
	if tunnel != "" {
		if _, err := c.Write([]byte("CONNECT " + tunnel + " HTTP/1.1\r\nHost: " + tunnel + "\r\n\r\n")); err != nil {
			b.Fatal(err)
		}
		head := make([]byte, 0, 128)
		one := make([]byte, 1)
		for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
			if _, err := c.Read(one); err != nil {
				b.Fatal(err)
			}
			head = append(head, one[0])
		}
		if !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) {
			b.Fatalf("CONNECT: %q", head)
		}
	}
	bc := &benchClient{c: c, req: req, buf: make([]byte, 64<<10)}
	// Learn the response size from the first exchange.
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(c)
	n := 0
	length := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		n += len(line)
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	if length < 0 {
		b.Fatal("no Content-Length")
	}
	if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
		b.Fatal(err)
	}
	bc.want = n + length
	return bc
}

func (bc *benchClient) do(b *testing.B) {
	if _, err := bc.c.Write(bc.req); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(bc.c, bc.buf[:bc.want]); err != nil {
		b.Fatal(err)
	}
}

func benchRequests(b *testing.B, host string) {
	origin := rawOrigin(b)
	_, port, _ := net.SplitHostPort(origin)
	proxy := benchProxy(b, port)
	req := []byte("GET http://" + host + ":" + port + "/index.html HTTP/1.1\r\nHost: " + host + ":" + port +
		"\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.Run("serial", func(b *testing.B) {
		bc := newBenchClient(b, proxy, req)
		defer bc.c.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			bc.do(b)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(25) // 50 connections on 2 CPUs
		b.RunParallel(func(pb *testing.PB) {
			bc := newBenchClient(b, proxy, req)
			defer bc.c.Close()
			for pb.Next() {
				bc.do(b)
			}
		})
	})
}

// BenchmarkProxyGet2KB is an allowed 2 KB page through the proxy over
// keep-alive, with a pooled upstream connection.
func BenchmarkProxyGet2KB(b *testing.B) { benchRequests(b, "allowed.test") }

// BenchmarkProxyBlocked is a blocked GET answered with the block page.
func BenchmarkProxyBlocked(b *testing.B) { benchRequests(b, "bet.test") }

// BenchmarkTunnel is a 2 KB exchange through a CONNECT tunnel (plain
// bytes, so that the relay rather than TLS is measured).
func BenchmarkTunnel(b *testing.B) {
	origin := rawOrigin(b)
	_, port, _ := net.SplitHostPort(origin)
	proxy := benchProxy(b, port)
	req := []byte("GET /index.html HTTP/1.1\r\nHost: allowed.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	tunnel := "allowed.test:" + port
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(25) // 50 connections on 2 CPUs
		b.RunParallel(func(pb *testing.PB) {
			bc := newBenchClientOn(b, proxy, tunnel, req)
			defer bc.c.Close()
			for pb.Next() {
				bc.do(b)
			}
		})
	})
}

// BenchmarkReadRequest is the request parser alone.
func BenchmarkReadRequest(b *testing.B) {
	raw := []byte("GET http://www.example.com/path/to/page.html?q=1 HTTP/1.1\r\n" +
		"Host: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-GB,en;q=0.5\r\n" +
		"Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nCookie: a=b; c=d\r\nUpgrade-Insecure-Requests: 1\r\n\r\n")
	rd := bytes.NewReader(raw)
	br := bufio.NewReaderSize(rd, bufioSize)
	var r request
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for i := 0; i < b.N; i++ {
		rd.Reset(raw)
		br.Reset(rd)
		if err := r.read(br, DefaultMaxHeaderBytes); err != nil {
			b.Fatal(err)
		}
	}
}

var _ = time.Second
