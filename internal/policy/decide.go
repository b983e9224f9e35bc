package policy

import (
	"net/netip"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/lists"
)

// Request is one thing to decide: a host (DNS, CONNECT) or a URL (proxy),
// for a group, from a client address, at a time.
type Request struct {
	// Host is a host name or IP literal; it need not be normalised.
	Host string
	// URL, when known, is the full URL; it takes precedence over Host.
	URL string
	// Group is the client's group id; empty or unknown means the
	// unknown-client policy.
	Group string
	// ClientIP is the client's address, for zone rules.
	ClientIP netip.Addr
	// Time is when the request was made. The zero time matches no
	// schedule, so callers must set it.
	Time time.Time
}

// Decision is the answer to a Request, with its full reason.
type Decision struct {
	// Action is Allow or Block (Alert is reported as Allow with Alert).
	Action Action
	// Alert asks for the safeguarding team to be told.
	Alert bool
	// Mandatory is set when a mandatory list (IWF, CTIRU) decided.
	Mandatory bool
	// Category is the Warden category that decided, if any.
	Category string
	// List is the id of the list that decided, if any ("ut1/gambling").
	List string
	// Source names the list's origin with its own category name ("UT1
	// gambling"), kept so that the reason shows where an entry came from.
	Source string
	// Rule names the step that decided: "mandatory", "exception:...",
	// "rule:ID:name", "education", "category", "approved", "not-approved",
	// "default", "invalid".
	Rule string
	// Matched is the list or exception entry that matched (a domain or
	// URL prefix). It is always empty for mandatory lists, whose entries
	// are never shown.
	Matched string
	// Reason is one sentence a person can read.
	Reason string
	// Group is the group whose policy decided.
	Group string
	// PolicyVersion is the snapshot's version.
	PolicyVersion int64
	// SafeSearch is the group's safe search level, for the DNS filter and
	// proxy to enforce.
	SafeSearch SafeSearch
}

// Blocked reports whether the decision blocks.
func (d Decision) Blocked() bool { return d.Action == Block }

// group returns the compiled group for an id, or the unknown policy.
func (s *Snapshot) group(id string) *group {
	if g, ok := s.groups[id]; ok {
		return g
	}
	return s.unknown
}

// Decide answers req. It does no I/O and, for a host already in
// normalised form, allocates nothing.
func (s *Snapshot) Decide(req Request) Decision {
	g := s.group(req.Group)
	d := Decision{Group: g.ID, PolicyVersion: s.version, SafeSearch: g.SafeSearch}
	var ms lists.Matches
	var host string
	var key lists.URLKey
	if req.URL != "" {
		k, err := lists.NormalizeURL(req.URL)
		if err != nil {
			return s.invalid(g, d)
		}
		key, host = k, k.Host()
		s.matcher.MatchURL(key, &ms)
	} else {
		h, err := lists.NormalizeHost(req.Host)
		if err != nil {
			return s.invalid(g, d)
		}
		host = h
		s.matcher.MatchHost(host, &ms)
	}
	matches := ms.All()

	// 1. Mandatory lists always win.
	for _, m := range matches {
		if s.listMand[m.List] {
			info := s.matcher.Info(m.List)
			d.Action, d.Mandatory, d.Rule = Block, true, "mandatory"
			if len(info.Categories) > 0 {
				d.Category = info.Categories[0]
			}
			d.List, d.Source, d.Reason = info.ID, s.listLabel[m.List], g.mandatoryWhy[m.List]
			return d
		}
	}

	// 2. Exceptions: the group's, then school-wide.
	if e := g.exc.match(host, key); e != nil {
		return exceptionDecision(d, e)
	}
	if e := s.global.match(host, key); e != nil {
		return exceptionDecision(d, e)
	}

	// 3. Time and place rules.
	if len(g.rules) > 0 {
		local := req.Time.In(s.loc)
		for i := range g.rules {
			r := &g.rules[i]
			if !r.applies(s, host, matches, req.ClientIP, local, req.Time.IsZero()) {
				continue
			}
			d.Action, d.Alert = r.Action, false
			if r.Action == Alert {
				d.Action, d.Alert = Allow, true
			}
			d.Rule, d.Reason = r.label, r.reason
			if cat, li, ok := s.ruleCategory(r, matches); ok {
				d.Category, d.List, d.Source = cat, s.matcher.Info(li.List).ID, s.listLabel[li.List]
				d.Matched = li.Entry
			}
			return d
		}
	}

	// 4. Categories (or the approved lists).
	if g.Mode == ModeApproved {
		return s.decideApproved(g, d, matches)
	}
	return s.decideCategories(g, d, matches)
}

func (s *Snapshot) invalid(g *group, d Decision) Decision {
	d.Action, d.Rule, d.Reason = Block, "invalid", g.invalidWhy
	return d
}

func exceptionDecision(d Decision, e *compiledException) Decision {
	d.Action, d.Rule, d.Reason = e.Action, e.label, e.reason
	if e.name != "" {
		d.Matched = e.name
	} else {
		d.Matched = string(e.key)
	}
	return d
}

// match returns the most specific exception for a host or URL: URL
// prefixes (longest first), then the longest matching domain; for the
// same name a block wins.
func (set *exceptionSet) match(host string, key lists.URLKey) *compiledException {
	if key != "" {
		for _, e := range set.byURL {
			if urlHasPrefix(key, e.key) {
				return e
			}
		}
	}
	if len(set.byName) == 0 || host == "" {
		return nil
	}
	if lists.IsIP(host) {
		return set.byName[host]
	}
	for suffix := host; ; {
		if e, ok := set.byName[suffix]; ok {
			return e
		}
		i := strings.IndexByte(suffix, '.')
		if i < 0 {
			return nil
		}
		suffix = suffix[i+1:]
	}
}

// urlHasPrefix reports whether URL key k starts with prefix p, with p's
// host also matching subdomains of k's host.
func urlHasPrefix(k, p lists.URLKey) bool {
	if k.Port() != p.Port() || !strings.HasPrefix(k.PathQuery(), p.PathQuery()) {
		return false
	}
	kh, ph := k.Host(), p.Host()
	return kh == ph || strings.HasSuffix(kh, "."+ph) && !lists.IsIP(kh)
}

// applies reports whether a rule's target and conditions hold.
func (r *compiledRule) applies(s *Snapshot, host string, matches []lists.Match, client netip.Addr, local time.Time, noTime bool) bool {
	if !r.Schedule.Always() && (noTime || !r.Schedule.Active(local)) {
		return false
	}
	if len(r.zones) > 0 {
		in := false
		for _, z := range r.zones {
			if client.IsValid() && z.Contains(client) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	if r.cats == nil && r.domains == nil {
		return true
	}
	if r.domains != nil && domainIn(host, r.domains) {
		return true
	}
	if r.cats != nil {
		for _, m := range matches {
			for _, ci := range s.listCats[m.List] {
				if r.cats[ci] {
					return true
				}
			}
		}
	}
	return false
}

func domainIn(host string, set map[string]bool) bool {
	if lists.IsIP(host) {
		return set[host]
	}
	for suffix := host; ; {
		if set[suffix] {
			return true
		}
		i := strings.IndexByte(suffix, '.')
		if i < 0 {
			return false
		}
		suffix = suffix[i+1:]
	}
}

// ruleCategory returns the category and match through which a rule
// applied, if it applied by category.
func (s *Snapshot) ruleCategory(r *compiledRule, matches []lists.Match) (string, lists.Match, bool) {
	if r.cats == nil {
		return "", lists.Match{}, false
	}
	for _, m := range matches {
		for _, ci := range s.listCats[m.List] {
			if r.cats[ci] {
				return s.catIDs[ci], m, true
			}
		}
	}
	return "", lists.Match{}, false
}

// worst finds the most severe category action among matches, skipping
// categories the education list may override when skipEduOK is set. It
// returns the action, the match, and the category index (-1 if none).
func (s *Snapshot) worst(g *group, matches []lists.Match, skipEduOK bool) (Action, lists.Match, int) {
	best, bestCat := Allow, -1
	var bestMatch lists.Match
	for _, m := range matches {
		if s.listEdu[m.List] {
			continue
		}
		for _, ci := range s.listCats[m.List] {
			if skipEduOK && s.catEduOK[ci] {
				continue
			}
			a := g.catAction[ci]
			if bestCat < 0 || a > best || a == best && ci < bestCat {
				best, bestCat, bestMatch = a, ci, m
			}
		}
	}
	return best, bestMatch, bestCat
}

func (s *Snapshot) setCategory(g *group, d Decision, a Action, m lists.Match, ci int) Decision {
	d.Action, d.Alert = a, false
	if a == Alert {
		d.Action, d.Alert = Allow, true
	}
	d.Rule = "category"
	d.Category = s.catIDs[ci]
	d.List = s.matcher.Info(m.List).ID
	d.Source = s.listLabel[m.List]
	d.Matched = m.Entry
	d.Reason = g.catReason[m.List][a]
	return d
}

// eduMatch returns the first education-list match.
func (s *Snapshot) eduMatch(matches []lists.Match) (lists.Match, bool) {
	for _, m := range matches {
		if s.listEdu[m.List] {
			return m, true
		}
	}
	return lists.Match{}, false
}

func (s *Snapshot) decideCategories(g *group, d Decision, matches []lists.Match) Decision {
	if g.EducationFirst {
		if em, ok := s.eduMatch(matches); ok {
			// Only categories the education list may not override still
			// count (pornography).
			if a, m, ci := s.worst(g, matches, true); ci >= 0 && a != Allow {
				return s.setCategory(g, d, a, m, ci)
			}
			d.Action, d.Rule, d.Category = Allow, "education", EducationCategory
			d.List, d.Source, d.Matched = s.matcher.Info(em.List).ID, s.listLabel[em.List], em.Entry
			d.Reason = g.eduReason[em.List]
			if a, m, ci := s.worst(g, matches, false); ci >= 0 && a != Allow {
				d.Reason = g.eduOver[m.List]
			}
			return d
		}
	}
	if a, m, ci := s.worst(g, matches, false); ci >= 0 {
		return s.setCategory(g, d, a, m, ci)
	}
	if em, ok := s.eduMatch(matches); ok {
		// An education-list site for a group that does not put education
		// first: the education category's own action applies.
		ci, _ := s.catIndex(EducationCategory)
		return s.setCategory(g, d, g.catAction[ci], em, ci)
	}
	// 5. The group's default.
	d.Action, d.Alert = g.DefaultAction, false
	if g.DefaultAction == Alert {
		d.Action, d.Alert = Allow, true
	}
	d.Rule, d.Reason = "default", g.defaultWhy
	return d
}

func (s *Snapshot) decideApproved(g *group, d Decision, matches []lists.Match) Decision {
	if g.EducationFirst {
		if em, ok := s.eduMatch(matches); ok {
			if a, m, ci := s.worst(g, matches, true); ci >= 0 && a == Block {
				return s.setCategory(g, d, a, m, ci)
			}
			d.Action, d.Rule, d.Category = Allow, "approved", EducationCategory
			d.List, d.Source, d.Matched = s.matcher.Info(em.List).ID, s.listLabel[em.List], em.Entry
			d.Reason = g.approvedWhy[em.List]
			return d
		}
	}
	d.Action, d.Rule, d.Reason = Block, "not-approved", g.notApproved
	if a, m, ci := s.worst(g, matches, false); ci >= 0 && a == Block {
		// Say which category the site is in, as well.
		d = s.setCategory(g, d, a, m, ci)
		d.Rule, d.Reason = "not-approved", g.notApproved
	}
	return d
}

// Explanation is a Decision with everything that led to it, for
// `warden check` and the "why is this blocked?" page.
type Explanation struct {
	Decision Decision
	// Matches lists every list that holds the site; entries of mandatory
	// lists are not shown.
	Matches []ExplainedMatch
	// LocalTime is the request time in the school's time zone.
	LocalTime time.Time
	// Zone is the zone the client address is in, if any.
	Zone string
}

// ExplainedMatch is one list holding the site.
type ExplainedMatch struct {
	List       string
	Source     string
	Categories []string
	Entry      string
	Mandatory  bool
}

// Explain decides req and also reports every list that holds the site.
func (s *Snapshot) Explain(req Request) Explanation {
	e := Explanation{Decision: s.Decide(req)}
	if !req.Time.IsZero() {
		e.LocalTime = req.Time.In(s.loc)
	}
	if z, ok := s.ZoneOf(req.ClientIP); ok {
		e.Zone = z.ID
	}
	var ms lists.Matches
	if req.URL != "" {
		if k, err := lists.NormalizeURL(req.URL); err == nil {
			s.matcher.MatchURL(k, &ms)
		}
	} else if h, err := lists.NormalizeHost(req.Host); err == nil {
		s.matcher.MatchHost(h, &ms)
	}
	for _, m := range ms.All() {
		info := s.matcher.Info(m.List)
		em := ExplainedMatch{List: info.ID, Source: s.listLabel[m.List], Categories: info.Categories, Mandatory: info.Mandatory}
		if !info.Mandatory {
			em.Entry = m.Entry
		}
		e.Matches = append(e.Matches, em)
	}
	return e
}
