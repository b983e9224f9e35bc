package dnsfilter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkAnswer measures one question in process, through the full
// chain and through the UDP fast path: a blocked name, and an allowed name
// answered from the cache.
func BenchmarkAnswer(b *testing.B) {
	s := offlineServer(b)
	client := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct{ name, q string }{{"blocked", "www.bet365.com."}, {"cached", "example.org."}} {
		q := new(dns.Msg)
		q.SetQuestion(tc.q, dns.TypeA)
		q.SetEdns0(1232, false)
		s.answer(client, "udp", q) // fills the cache
		b.Run("chain/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.answer(client, "udp", q)
			}
		})
		b.Run("fast/"+tc.name, func(b *testing.B) {
			p, _ := q.Pack()
			st := &fastState{}
			out := make([]byte, 0, udpBufSize)
			if _, ok := s.fastReply(p, client, st, out); !ok {
				b.Fatal("the fast path declined")
			}
			b.ReportAllocs()
			for b.Loop() {
				s.fastReply(p, client, st, out)
			}
		})
	}
}

// BenchmarkUDP drives the real UDP server (chain ending in the in-process
// stub upstream, so allowed names come from the cache) from 8 client
// sockets, each keeping 32 questions in flight: the server's cost per
// question including the socket, parsing and writing. Questions the
// kernel drops when a socket's buffer is full are sent again after 20 ms
// and counted as lost.
func BenchmarkUDP(b *testing.B) {
	s := offlineServer(b)
	srv, err := s.f.Listen(ServerOptions{Addr: "127.0.0.1:0", RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	names := []string{"www.bet365.com.", "example.org.", "www.example.net.", "facebook.com."}
	var packets [][]byte
	for i, n := range names {
		q := new(dns.Msg)
		q.SetQuestion(n, dns.TypeA)
		q.Id = uint16(i)
		p, _ := q.Pack()
		packets = append(packets, p)
	}
	const clients, inflight = 8, 32
	var lost atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/clients + 1
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			conn, err := net.Dial("udp", srv.UDPAddr.String())
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			buf := make([]byte, 1500)
			sent, got, out := 0, 0, 0
			send := func() {
				conn.Write(packets[(c+sent)%len(packets)])
				sent++
				out++
			}
			for ; out < inflight && sent < per; send() {
			}
			for got < per {
				conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				if _, err := conn.Read(buf); err != nil {
					// The outstanding questions were dropped: ask again.
					lost.Add(int64(out))
					sent -= out
					out = 0
					for ; out < inflight && sent < per; send() {
					}
					continue
				}
				got++
				out--
				if sent < per {
					send()
				}
			}
		}(c)
	}
	wg.Wait()
	b.ReportMetric(float64(lost.Load())/float64(b.N), "lost/op")
}

// BenchmarkCacheMemory reports the heap an answer takes in the cache
// (entry, wire form and its place in the map), for 50,000 typical A
// answers: one record, names of 20 to 30 characters.
func BenchmarkCacheMemory(b *testing.B) {
	const n = 50_000
	answers := make([]*dns.Msg, n)
	for i := range answers {
		q := new(dns.Msg)
		q.SetQuestion(fmt.Sprintf("www.site-%d.example.co.uk.", i), dns.TypeA)
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: []byte{192, 0, 2, 1}})
		answers[i] = m
	}
	var perEntry float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newCache(2*n, time.Now)
		now := time.Now()
		for _, m := range answers {
			c.store(keyOf(m), m, now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perEntry, "B/answer")
}
