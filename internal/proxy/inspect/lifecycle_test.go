package inspect

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestServeTLSLifecycle: ServeTLS returns, having closed the connection,
// when the client goes away and when its context ends, for both
// protocols.
func TestServeTLSLifecycle(t *testing.T) {
	e := newEnv(t)
	for _, proto := range []string{"http/1.1", "h2"} {
		for _, end := range []string{"client closes", "context ends"} {
			t.Run(proto+"/"+end, func(t *testing.T) {
				c, s := tcpPair(t)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan struct{})
				go func() {
					e.in.ServeTLS(ctx, s, "site.example:443", e.who, netip.MustParseAddr("127.0.0.1"))
					close(done)
				}()
				tc := tls.Client(c, &tls.Config{ServerName: "site.example", RootCAs: rootPool(e.ca), NextProtos: []string{proto}})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				if got := tc.ConnectionState().NegotiatedProtocol; got != proto {
					t.Fatalf("negotiated %q", got)
				}
				if proto == "http/1.1" {
					io.WriteString(tc, "GET /one HTTP/1.1\r\nHost: site.example\r\n\r\n")
					resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
					if err != nil || resp.StatusCode != 200 {
						t.Fatalf("request: %v %v", resp, err)
					}
					resp.Body.Close()
					e.event(t)
				}
				if end == "client closes" {
					tc.Close()
				} else {
					cancel()
				}
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("ServeTLS did not return")
				}
				// The server side is closed.
				s.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := s.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
					t.Errorf("server side still open: %v", err)
				}
			})
		}
	}
}

// TestServeTLSNoPolicy: with no policy loaded every request is refused.
func TestServeTLSNoPolicy(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, true)
	e.snap.Store(nil)
	resp, body := get(t, c, "https://site.example/")
	if resp.StatusCode != 403 || !strings.Contains(body, "no policy") {
		t.Errorf("no policy: %d %s", resp.StatusCode, body)
	}
	if ev := e.event(t); ev.Action != "block" || ev.Rule != RuleNoPolicy {
		t.Errorf("event %+v", ev)
	}
}

// TestServeTLSUpgrade: a protocol upgrade (WebSocket) inside an
// HTTP/1.1 intercepted connection is relayed both ways after the
// request was decided, and ServeTLS waits for the relay to end.
func TestServeTLSUpgrade(t *testing.T) {
	e := newEnv(t)
	c, s := tcpPair(t)
	done := make(chan struct{})
	go func() {
		e.in.ServeTLS(context.Background(), s, "site.example:443", e.who, netip.MustParseAddr("127.0.0.1"))
		close(done)
	}()
	tc := tls.Client(c, &tls.Config{ServerName: "site.example", RootCAs: rootPool(e.ca), NextProtos: []string{"http/1.1"}})
	io.WriteString(tc, "GET /ws HTTP/1.1\r\nHost: site.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(tc, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: ping\n" {
		t.Fatalf("relayed %q, %v", line, err)
	}
	select {
	case <-done:
		t.Fatal("ServeTLS returned while the upgraded connection was open")
	case <-time.After(50 * time.Millisecond):
	}
	tc.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeTLS did not return after the upgraded connection closed")
	}
	// The request's event comes when the upgraded connection ends.
	if ev := e.event(t); ev.Status != "101" || ev.URL != "https://site.example/ws" || ev.Action != "allow" {
		t.Errorf("event %+v", ev)
	}
}
