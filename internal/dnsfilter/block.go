package dnsfilter

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/policy"
)

// Block modes: how a blocked name is answered.
const (
	// BlockPage answers A and AAAA with the block page's addresses, so a
	// browser shows why; other types get an empty answer.
	BlockPage = "blockpage"
	// BlockNXDomain answers that the name does not exist.
	BlockNXDomain = "nxdomain"
	// BlockNull answers 0.0.0.0 and ::.
	BlockNull = "null"
)

// BlockResponse says how blocked names are answered.
type BlockResponse struct {
	Mode string
	// IPv4 and IPv6 are the block page's addresses (BlockPage mode); an
	// unset IPv6 gives AAAA questions an empty answer.
	IPv4, IPv6 netip.Addr
	// TTL of blocked answers, short so that policy changes show quickly.
	TTL uint32
}

func (b *BlockResponse) check() error {
	switch b.Mode {
	case "":
		b.Mode = BlockPage
	case BlockPage, BlockNXDomain, BlockNull:
	default:
		return fmt.Errorf("dns block mode %q: want blockpage, nxdomain or null", b.Mode)
	}
	if b.Mode == BlockPage && !b.IPv4.Is4() {
		return fmt.Errorf("dns block mode blockpage needs the block page's IPv4 address")
	}
	if b.IPv6.IsValid() && !b.IPv6.Is6() {
		return fmt.Errorf("dns block page IPv6 address %s is not IPv6", b.IPv6)
	}
	if b.TTL == 0 {
		b.TTL = 60
	}
	return nil
}

// answer builds the blocked answer for q, with an Extended DNS Error
// (RFC 8914, "Blocked") carrying the reason for tools that show it. The
// reason never holds an entry of a mandatory list (policy reasons don't).
func (b *BlockResponse) answer(q *dns.Msg, why string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative, m.RecursionAvailable = false, true
	qs := q.Question[0]
	hdr := dns.RR_Header{Name: qs.Name, Class: dns.ClassINET, Ttl: b.TTL}
	switch b.Mode {
	case BlockNXDomain:
		m.Rcode = dns.RcodeNameError
	case BlockNull:
		switch qs.Qtype {
		case dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: netip.IPv4Unspecified().AsSlice()})
		case dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: netip.IPv6Unspecified().AsSlice()})
		}
	default:
		switch {
		case qs.Qtype == dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: b.IPv4.AsSlice()})
		case qs.Qtype == dns.TypeAAAA && b.IPv6.IsValid():
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: b.IPv6.AsSlice()})
		}
	}
	// Everything else (HTTPS, SVCB, MX, TXT...) gets an empty answer: no
	// encrypted-client-hello hints or alternative endpoints for a
	// blocked name.
	if len(why) > 0 {
		if len(why) > 200 {
			why = why[:200]
		}
		opt := q.IsEdns0()
		if opt != nil {
			ede := &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeBlocked, ExtraText: why}
			m.SetEdns0(opt.UDPSize(), opt.Do())
			m.IsEdns0().Option = append(m.IsEdns0().Option, ede)
		}
	}
	return m
}

// circumventionNames are answered NXDOMAIN for everyone:
// use-application-dns.net tells browsers not to turn on their own
// DNS-over-HTTPS (which would skip the school's filter), and the iCloud
// Private Relay names make Apple devices fall back to the network's DNS.
var circumventionNames = map[string]string{
	"use-application-dns.net": "Browsers are asked not to use their own DNS-over-HTTPS on this network.",
	"mask.icloud.com":         "iCloud Private Relay is not available on this network.",
	"mask-h2.icloud.com":      "iCloud Private Relay is not available on this network.",
	"mask-api.icloud.com":     "iCloud Private Relay is not available on this network.",
}

// circumvention answers the names above.
type circumvention struct{ chained }

func (s *circumvention) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	if why, ok := circumventionNames[req.Name()]; ok {
		m := new(dns.Msg)
		m.SetRcode(req.Msg, dns.RcodeNameError)
		m.RecursionAvailable = true
		req.Decision = policy.Decision{Action: policy.Block, Category: "circumvention", Rule: "circumvention", Reason: why, Group: req.Subject.Group}
		return m, nil
	}
	return s.next.Resolve(ctx, req)
}

// filter asks the policy about the question's name and answers blocked
// names itself.
type filter struct {
	chained
	policy func() *policy.Snapshot
	block  BlockResponse
	now    func() time.Time
}

func (s *filter) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	name := req.Name()
	if name == "" {
		// The root: nothing to filter.
		return s.next.Resolve(ctx, req)
	}
	req.Decision = s.policy().Decide(policy.Request{Host: name, Group: req.Subject.Group, ClientIP: req.Client, Time: s.now()})
	if req.Decision.Action == policy.Block {
		return s.block.answer(req.Msg, blockText(req.Decision)), nil
	}
	return s.next.Resolve(ctx, req)
}

// blockText is the short reason in a blocked answer's Extended DNS Error.
func blockText(d policy.Decision) string {
	if d.Category != "" {
		return "Blocked by Warden: " + d.Category
	}
	return "Blocked by Warden: " + strings.TrimPrefix(d.Rule, "exception:")
}
