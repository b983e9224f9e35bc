package dnsfilter

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// fastPair is a Server whose fast path and full chain can be asked the
// same packet, on a fixed clock, recording events.
type fastPair struct {
	s      *Server
	mu     sync.Mutex
	events []events.Event
}

func newFastPair(t *testing.T, block BlockResponse, sopts ServerOptions) *fastPair {
	t.Helper()
	up := startUpstream(t, 0)
	snap, ident := testPolicy(t), testIdentity()
	if block.Mode == "" {
		block = BlockResponse{Mode: BlockPage, IPv4: netip.MustParseAddr("127.0.0.80"), IPv6: netip.MustParseAddr("::1")}
	}
	clock := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	fp := &fastPair{}
	f, err := New(Options{
		Policy: func() *policy.Snapshot { return snap }, Identity: func() *identity.Table { return ident },
		Upstreams: []string{up.addr}, Block: block, UpstreamTimeout: time.Second,
		Now: func() time.Time { return clock },
		Events: func(e events.Event) bool {
			fp.mu.Lock()
			defer fp.mu.Unlock()
			fp.events = append(fp.events, e)
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sopts.Addr = "127.0.0.1:0"
	if sopts.RateLimit == 0 {
		sopts.RateLimit = -1
	}
	if fp.s, err = f.Listen(sopts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.s.udp.pc.Close(); fp.s.tcp.Listener.Close() })
	return fp
}

// lastEvent returns the newest event, with its latency cleared.
func (fp *fastPair) lastEvent(t *testing.T) events.Event {
	t.Helper()
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if len(fp.events) == 0 {
		t.Fatal("no event recorded")
	}
	e := fp.events[len(fp.events)-1]
	e.Latency = 0
	return e
}

type wireCase struct {
	name      string
	qtype     uint16
	edns, do  bool
	cd        bool
	udpSize   uint16
	client    string
	fastIsOff bool // the fast path must leave it to the chain
	miss      bool // ...until the chain has cached the answer
}

func (q wireCase) pack(t *testing.T) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(q.name), q.qtype)
	m.Id = 0x1234
	m.CheckingDisabled = q.cd
	if q.edns {
		size := q.udpSize
		if size == 0 {
			size = 1232
		}
		m.SetEdns0(size, q.do)
	}
	p, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (q wireCase) addr() netip.Addr {
	if q.client == "" {
		return netip.MustParseAddr("127.0.0.1")
	}
	return netip.MustParseAddr(q.client)
}

// sameAnswer asks the full chain and the fast path and checks that they
// answer alike: the same message and the same event.
func (fp *fastPair) sameAnswer(t *testing.T, q wireCase) {
	t.Helper()
	p := q.pack(t)
	if q.fastIsOff || q.miss {
		if fast, ok := fp.s.fastReply(p, q.addr(), &fastState{}, nil); ok || len(fast) != 0 {
			t.Fatalf("%+v: the fast path answered (%d bytes) before the chain", q, len(fast))
		}
	}
	// The full chain twice: the first fills the cache the fast path
	// reads, the second answers from it.
	var slow []byte
	for i := 0; i < 2; i++ {
		var ok bool
		if slow, ok = fp.s.slowReply(p, q.addr(), nil); !ok {
			t.Fatalf("%+v: the chain gave no answer", q)
		}
	}
	slowEvent := fp.lastEvent(t)
	fast, ok := fp.s.fastReply(p, q.addr(), &fastState{}, nil)
	if q.fastIsOff {
		if ok {
			t.Fatalf("%+v: the fast path answered what it must leave to the chain", q)
		}
		if len(fast) != 0 {
			t.Fatalf("%+v: the fast path wrote %d bytes and then declined", q, len(fast))
		}
		return
	}
	if !ok {
		t.Fatalf("%+v: the fast path declined", q)
	}
	if e := fp.lastEvent(t); !reflect.DeepEqual(e, slowEvent) {
		t.Errorf("%+v: events differ:\nfast %+v\nslow %+v", q, e, slowEvent)
	}
	var ms, mf dns.Msg
	if err := ms.Unpack(slow); err != nil {
		t.Fatal(err)
	}
	if err := mf.Unpack(fast); err != nil {
		t.Fatalf("%+v: the fast answer does not parse: %v", q, err)
	}
	if ms.String() != mf.String() {
		t.Errorf("%+v: answers differ:\nfast:\n%s\nslow:\n%s", q, mf.String(), ms.String())
	}
	if len(fast) > len(slow) {
		t.Errorf("%+v: fast answer %d bytes, longer than the chain's %d", q, len(fast), len(slow))
	}
}

func TestFastPathAnswersAsTheChainDoes(t *testing.T) {
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS, dns.TypeMX, dns.TypeTXT}
	modes := map[string]BlockResponse{
		"blockpage":      {},
		"blockpage-ipv4": {Mode: BlockPage, IPv4: netip.MustParseAddr("127.0.0.80")},
		"nxdomain":       {Mode: BlockNXDomain},
		"null":           {Mode: BlockNull},
	}
	for mode, block := range modes {
		t.Run(mode, func(t *testing.T) {
			fp := newFastPair(t, block, ServerOptions{})
			for _, name := range []string{"bet365.com", "WWW.Bet365.COM", "example.org", "Mixed.Example.ORG", "nx.example.org", "ttrockstars.com"} {
				for _, qt := range types {
					for _, e := range []struct{ edns, do, cd bool }{{}, {edns: true}, {edns: true, do: true}, {cd: true}} {
						fp.sameAnswer(t, wireCase{name: name, qtype: qt, edns: e.edns, do: e.do, cd: e.cd})
					}
				}
			}
			// The staff zone allows social media; pupils are blocked.
			fp.sameAnswer(t, wireCase{name: "facebook.com", qtype: dns.TypeA, client: "127.0.0.2", edns: true})
			fp.sameAnswer(t, wireCase{name: "facebook.com", qtype: dns.TypeA, edns: true})
		})
	}
}

func TestFastPathLeavesTheRestToTheChain(t *testing.T) {
	fp := newFastPair(t, BlockResponse{}, ServerOptions{})
	for _, q := range []wireCase{
		{name: "www.google.co.uk", qtype: dns.TypeA},                    // safe search
		{name: "use-application-dns.net", qtype: dns.TypeA},             // circumvention
		{name: "cloaked.example", qtype: dns.TypeA, edns: true},         // CNAME into a blocked name
		{name: "mandatory-cloak.example", qtype: dns.TypeA, edns: true}, // CNAME into a mandatory list
		{name: "big.example", qtype: dns.TypeTXT},                       // too big for 512 bytes
		{name: "example.org", qtype: dns.TypeA, client: "192.0.2.7"},    // not an allowed source
	} {
		q.fastIsOff = true
		fp.sameAnswer(t, q)
	}
	// A cache miss goes to the chain, and once cached is fast.
	fp.sameAnswer(t, wireCase{name: "never-asked.example", qtype: dns.TypeA, miss: true})
}

func TestFastPathDeclinesUnusualPackets(t *testing.T) {
	fp := newFastPair(t, BlockResponse{}, ServerOptions{})
	base := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("bet365.com.", dns.TypeA)
		return m
	}
	cases := map[string]func(m *dns.Msg){
		"response":       func(m *dns.Msg) { m.Response = true },
		"notify":         func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify },
		"two questions":  func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) },
		"no question":    func(m *dns.Msg) { m.Question = nil },
		"edns version 1": func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) },
		"class CH":       func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS },
		"escaped dot":    func(m *dns.Msg) { m.Question[0].Name = `bet\.365.com.` },
		"space":          func(m *dns.Msg) { m.Question[0].Name = `bet\032365.com.` },
		"root":           func(m *dns.Msg) { m.Question[0].Name = "." },
		"answer record": func(m *dns.Msg) {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA, Class: 1}}}
		},
	}
	for name, change := range cases {
		m := base()
		change(m)
		p, err := m.Pack()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := fp.s.fastReply(p, netip.MustParseAddr("127.0.0.1"), &fastState{}, nil); ok {
			t.Errorf("%s: the fast path answered", name)
		}
	}
	p, _ := base().Pack()
	for _, bad := range [][]byte{nil, p[:11], p[:len(p)-1], append(append([]byte{}, p...), 0)} {
		if _, ok := fp.s.fastReply(bad, netip.MustParseAddr("127.0.0.1"), &fastState{}, nil); ok {
			t.Errorf("%x: the fast path answered a cut or padded packet", bad)
		}
	}
}

func TestFastPathRateLimit(t *testing.T) {
	fp := newFastPair(t, BlockResponse{}, ServerOptions{RateLimit: 1})
	q := wireCase{name: "bet365.com", qtype: dns.TypeA, edns: true}
	p := q.pack(t)
	var rcodes []int
	for i := 0; i < 4; i++ {
		out, ok := fp.s.fastReply(p, q.addr(), &fastState{}, nil)
		if !ok {
			t.Fatal("the fast path declined")
		}
		var m dns.Msg
		if err := m.Unpack(out); err != nil {
			t.Fatal(err)
		}
		if m.Id != 0x1234 || len(m.Question) != 1 || m.Question[0].Name != "bet365.com." {
			t.Fatalf("answer does not echo the query: %v", &m)
		}
		rcodes = append(rcodes, m.Rcode)
	}
	// A burst of twice the rate, then refused (the clock stands still).
	if want := []int{dns.RcodeSuccess, dns.RcodeSuccess, dns.RcodeRefused, dns.RcodeRefused}; !reflect.DeepEqual(rcodes, want) {
		t.Errorf("rcodes %v, want %v", rcodes, want)
	}
}

func TestTTLOffsets(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	m.Compress = true
	m.Answer = []dns.RR{
		&dns.CNAME{Hdr: dns.RR_Header{Name: "www.example.org.", Rrtype: dns.TypeCNAME, Class: 1, Ttl: 111}, Target: "edge.example.org."},
		&dns.A{Hdr: dns.RR_Header{Name: "edge.example.org.", Rrtype: dns.TypeA, Class: 1, Ttl: 222}, A: []byte{192, 0, 2, 1}},
	}
	m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.org.", Rrtype: dns.TypeNS, Class: 1, Ttl: 333}, Ns: "ns.example.org."}}
	p, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	offs, ok := appendTTLOffsets([]byte{9}, p)
	if !ok || len(offs) != 7 || offs[0] != 9 {
		t.Fatalf("offsets % x, %v", offs, ok)
	}
	for i, want := range []uint32{111, 222, 333} {
		got := binary.BigEndian.Uint32(p[binary.BigEndian.Uint16(offs[1+2*i:]):])
		if got != want {
			t.Errorf("record %d: TTL %d, want %d", i, got, want)
		}
	}
	m.SetEdns0(1232, false)
	p, _ = m.Pack()
	if offs, ok := appendTTLOffsets(nil, p); ok || len(offs) != 0 {
		t.Error("a message with an OPT record was accepted")
	}
	if offs, ok := appendTTLOffsets(nil, p[:len(p)-3]); ok || len(offs) != 0 {
		t.Error("a cut message was accepted")
	}
}

// FuzzParseWireQuery holds the fast path's packet reader to miekg/dns's:
// whatever it accepts must parse there to the same question.
func FuzzParseWireQuery(f *testing.F) {
	for _, q := range []struct {
		name string
		edns bool
	}{{"bet365.com.", false}, {"WWW.Example.ORG.", true}, {"a.b.c.d.e.f.", true}} {
		f.Add(packedQuery(q.name, dns.TypeA, q.edns))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var q wireQuery
		name, ok := parseWireQuery(p, &q, nil)
		_, _ = appendTTLOffsets(nil, p)
		if !ok {
			return
		}
		var m dns.Msg
		if err := m.Unpack(p); err != nil {
			t.Fatalf("accepted %x, which miekg/dns rejects: %v", p, err)
		}
		want := strings.TrimSuffix(strings.ToLower(m.Question[0].Name), ".")
		if string(name) != want || q.qtype != m.Question[0].Qtype || q.id != m.Id || m.Response || len(m.Question) != 1 {
			t.Fatalf("%x: read %q type %d id %d, miekg/dns reads %v", p, name, q.qtype, q.id, &m)
		}
		opt := m.IsEdns0()
		if q.edns != (opt != nil) || opt != nil && (q.do != opt.Do() || q.udpSize != opt.UDPSize() || opt.Version() != 0) {
			t.Fatalf("%x: EDNS read as %v/%v/%d, miekg/dns reads %v", p, q.edns, q.do, q.udpSize, opt)
		}
		if !bytes.Equal(q.question[:len(q.qname)], q.qname) {
			t.Fatal("question and name disagree")
		}
	})
}
