package dnsfilter

import (
	"context"
	_ "embed"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/searchengines"
)

// safeTargets maps a search engine's name to its safe-search name, per
// level. Google offers one DNS switch (SafeSearch on); YouTube has strict
// and moderate Restricted Mode; Bing and DuckDuckGo have one each.
type safeTargets map[string][2]string // [moderate, strict]

// newSafeTargets builds the table: every Google country domain (with and
// without www), YouTube's names as Google documents them, Bing and
// DuckDuckGo.
func newSafeTargets() safeTargets {
	t := safeTargets{}
	for h := range searchengines.GoogleHosts() {
		t[h] = [2]string{"forcesafesearch.google.com", "forcesafesearch.google.com"}
	}
	for _, d := range []string{"www.youtube.com", "m.youtube.com", "youtubei.googleapis.com", "youtube.googleapis.com", "www.youtube-nocookie.com"} {
		t[d] = [2]string{"restrictmoderate.youtube.com", "restrict.youtube.com"}
	}
	t["www.bing.com"] = [2]string{"strict.bing.com", "strict.bing.com"}
	t["bing.com"] = t["www.bing.com"]
	t["duckduckgo.com"] = [2]string{"safe.duckduckgo.com", "safe.duckduckgo.com"}
	t["www.duckduckgo.com"] = t["duckduckgo.com"]
	return t
}

// target returns the safe name for a search engine name at a level.
func (t safeTargets) target(name string, level policy.SafeSearch) (string, bool) {
	if level == policy.SafeSearchOff {
		return "", false
	}
	v, ok := t[name]
	if !ok {
		return "", false
	}
	if level == policy.SafeSearchStrict {
		return v[1], true
	}
	return v[0], true
}

// safeSearch answers a search engine's name with a CNAME to its safe
// variant, followed by the variant's own records.
type safeSearch struct {
	chained
	targets safeTargets
}

func (s *safeSearch) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	target, ok := s.targets.target(req.Name(), req.Decision.SafeSearch)
	if !ok {
		return s.next.Resolve(ctx, req)
	}
	q := req.Msg.Question[0]
	sub := new(dns.Msg)
	sub.SetQuestion(dns.Fqdn(target), q.Qtype)
	sub.RecursionDesired = true
	inner := &Request{Msg: sub, Client: req.Client, Protocol: req.Protocol, Start: req.Start, Subject: req.Subject, Decision: req.Decision}
	ans, err := s.next.Resolve(ctx, inner)
	if err != nil {
		return nil, err
	}
	req.Upstream = inner.Upstream
	m := new(dns.Msg)
	m.SetReply(req.Msg)
	m.RecursionAvailable = true
	m.Rcode = ans.Rcode
	cname := &dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: dns.Fqdn(target)}
	m.Answer = append([]dns.RR{cname}, ans.Answer...)
	m.Ns = ans.Ns
	return m, nil
}
