package dnsfilter

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// stubUpstream ends the chain in-process: every name has one address.
type stubUpstream struct{ chained }

func (stubUpstream) Resolve(_ context.Context, req *Request) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetReply(req.Msg)
	if q := req.Msg.Question[0]; q.Qtype == dns.TypeA {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}})
	}
	req.Upstream = "stub"
	return m, nil
}

// offlineServer is a Server whose chain ends in stubUpstream, for tests
// that must not touch the network.
func offlineServer(t testing.TB) *Server {
	snap := testPolicy(t)
	ident := testIdentity()
	f := &Filter{
		opts: Options{
			Policy:   func() *policy.Snapshot { return snap },
			Identity: func() *identity.Table { return ident },
			Block:    BlockResponse{Mode: BlockPage, IPv4: netip.MustParseAddr("127.0.0.80"), TTL: 60},
		},
		log: slog.New(slog.DiscardHandler),
		now: time.Now,
	}
	f.cache = newCache(1000, f.now)
	f.first = f.chain(&stubUpstream{})
	return &Server{f: f, opts: ServerOptions{Allowed: identity.LocalNetworks()}}
}

// FuzzServeDNS feeds arbitrary packets through the handler: whatever a
// client sends, Warden answers with a well-formed message or stays
// silent, and never panics.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"example.org.", dns.TypeA, false},
		{"bet365.com.", dns.TypeHTTPS, true},
		{"www.google.co.uk.", dns.TypeA, true},
		{"use-application-dns.net.", dns.TypeA, false},
		{".", dns.TypeNS, true},
		{"xn--bcher-kva.example.", dns.TypeAAAA, true},
	} {
		f.Add(packedQuery(q.name, q.qtype, q.edns))
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	s := offlineServer(f)
	client := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil {
			return // miekg/dns drops what it cannot parse before the handler
		}
		resp := s.answer(client, "udp", r)
		if resp == nil {
			if !r.Response {
				t.Fatalf("no answer to a query: %v", r)
			}
			return
		}
		if resp.Id != r.Id || !resp.Response {
			t.Fatalf("answer header %+v for query %+v", resp.MsgHdr, r.MsgHdr)
		}
		resp.Truncate(dns.MinMsgSize)
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("answer does not pack: %v\n%v", err, resp)
		}
	})
}

// packedQuery is a query in wire form, with EDNS (4096 bytes, DO) if asked.
func packedQuery(name string, qtype uint16, edns bool) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, true)
	}
	p, _ := m.Pack()
	return p
}
