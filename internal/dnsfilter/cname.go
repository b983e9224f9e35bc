package dnsfilter

import (
	"context"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/warden-schools/warden/internal/policy"
)

// cnameGuard checks the names an allowed answer points at through CNAME
// records: an allowed name that aliases a blocked one (CNAME cloaking,
// common with trackers) is blocked as that name would be. A name the
// school allowed on purpose (an allow exception, a rule, the education or
// approved list) is only held to the mandatory lists.
type cnameGuard struct {
	chained
	policy func() *policy.Snapshot
	block  BlockResponse
	now    func() time.Time
}

func (s *cnameGuard) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	ans, err := s.next.Resolve(ctx, req)
	if err != nil || ans == nil {
		return ans, err
	}
	deliberate := strings.HasPrefix(req.Decision.Rule, "exception:allow") || strings.HasPrefix(req.Decision.Rule, "rule:") ||
		req.Decision.Rule == "education" || req.Decision.Rule == "approved"
	var snap *policy.Snapshot
	for _, rr := range ans.Answer {
		c, ok := rr.(*dns.CNAME)
		if !ok {
			continue
		}
		target := strings.TrimSuffix(strings.ToLower(c.Target), ".")
		if snap == nil {
			snap = s.policy()
		}
		d := snap.Decide(policy.Request{Host: target, Group: req.Subject.Group, ClientIP: req.Client, Time: s.now()})
		if d.Action != policy.Block || deliberate && !d.Mandatory {
			continue
		}
		d.Rule = "cname:" + d.Rule
		d.Reason = "Blocked: " + req.Name() + " is an alias (CNAME) of a blocked name. " + d.Reason
		if d.Mandatory {
			// Say nothing about which name it was.
			d.Reason = "Blocked: " + req.Name() + " is an alias (CNAME) of a name on a mandatory list."
		}
		req.Decision = d
		return s.block.answer(req.Msg, blockText(d)), nil
	}
	return ans, nil
}
