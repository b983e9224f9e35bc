package dnsfilter

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkAnswer measures the whole chain for one question, in process:
// a blocked name, and an allowed name answered from the cache.
func BenchmarkAnswer(b *testing.B) {
	s := offlineServer(b)
	client := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct{ name, q string }{{"blocked", "www.bet365.com."}, {"cached", "example.org."}} {
		b.Run(tc.name, func(b *testing.B) {
			q := new(dns.Msg)
			q.SetQuestion(tc.q, dns.TypeA)
			q.SetEdns0(1232, false)
			s.answer(client, "udp", q)
			b.ReportAllocs()
			for b.Loop() {
				s.answer(client, "udp", q)
			}
		})
	}
}
