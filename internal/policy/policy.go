// Package policy is Warden's pure policy engine. Compile turns groups,
// rules, exceptions, zones and the compiled category lists into an
// immutable Snapshot; Snapshot.Decide answers a request with no I/O and
// says why, naming the rule, category, list and policy version.
//
// Decisions are made in a fixed order:
//
//  1. mandatory lists (IWF, CTIRU) block, always, and cannot be excepted;
//  2. the group's allow and block exceptions, then the school-wide ones;
//  3. the group's time and place rules, first match wins;
//  4. categories: the education allow list first where the group says so
//     (never ahead of pornography), then the most severe category action;
//     in approved-sites-only mode, the approved lists;
//  5. the group's default.
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/lists"
)

// UnknownGroupID is the id of the built-in policy for clients Warden
// cannot identify, used unless the school names another group.
const UnknownGroupID = "unknown"

// EducationCategory is the category of the education allow list.
const EducationCategory = "education"

// Group is a policy group: who gets which filtering.
type Group struct {
	ID   string
	Name string
	Mode Mode
	// DefaultAction applies to sites in no category (ModeFilter only;
	// ModeApproved blocks what is not approved).
	DefaultAction Action
	// Categories holds the action per category; a category not present
	// takes the taxonomy's starting action for pupils (fail safe).
	Categories map[string]Action
	SafeSearch SafeSearch
	// EducationFirst puts the education allow list ahead of broad
	// categories (games, chat...), never ahead of pornography or the
	// mandatory lists; in ModeApproved it makes the education lists
	// approved sites.
	EducationFirst bool
	Exceptions     []Exception
	Rules          []Rule
}

// Exception allows or blocks a domain (with its subdomains) or a URL
// prefix for a group, ahead of its rules and categories.
type Exception struct {
	ID      int64
	Action  Action // Allow or Block
	Pattern string // "example.com" or "example.com/path"
	Note    string
}

// Rule is a time and place rule: for sites in its categories or domains
// (or every site, if it names neither), while its schedule is active and
// the client is in one of its zones (or anywhere, if it names none), the
// rule's action applies.
type Rule struct {
	ID         int64
	Name       string
	Action     Action
	Categories []string
	Domains    []string
	Schedule   Schedule
	Zones      []string
}

// Zone is a named set of networks, such as the staff room.
type Zone struct {
	ID       string
	Name     string
	Networks []netip.Prefix
}

// Contains reports whether the zone holds addr.
func (z *Zone) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range z.Networks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Config is everything Compile needs.
type Config struct {
	// Version is the policy version decisions report.
	Version int64
	// Location is the school's time zone for schedules (Europe/London if
	// nil).
	Location *time.Location
	Taxonomy *lists.Taxonomy
	// Lists is the compiled set of category lists in force.
	Lists  *lists.Matcher
	Groups []Group
	// Exceptions apply to every group, after each group's own.
	Exceptions []Exception
	Zones      []Zone
	// UnknownGroup names the group for unidentified clients; empty means
	// the built-in strictest policy (UnknownGroupID).
	UnknownGroup string
}

// Snapshot is a compiled, immutable policy. It is safe for concurrent
// use; a change builds a new Snapshot and swaps it in.
type Snapshot struct {
	version  int64
	loc      *time.Location
	tax      *lists.Taxonomy
	matcher  *lists.Matcher
	groups   map[string]*group
	order    []*group
	unknown  *group
	zones    map[string]*Zone
	zoneList []*Zone
	global   exceptionSet
	// School-wide YouTube approvals (youtube.go).
	globalYouTube    youTubeSet
	globalYouTubeAny bool
	// Per matcher list: category indexes, and flags.
	listCats  [][]int
	listEdu   []bool
	listMand  []bool
	listLabel []string
	catIDs    []string
	catEduOK  []bool // education may override this category
	catTitles []string
}

// group is a compiled Group.
type group struct {
	Group
	catAction []Action // by taxonomy index
	exc       exceptionSet
	rules     []compiledRule
	// YouTube videos and channels the group's exceptions name
	// (youtube.go).
	youTube    youTubeSet
	youTubeAny bool
	// Precomputed reasons, so Decide does not format strings.
	catReason    [][3]string // by list index, then by action
	eduReason    []string    // by list index: on the education list
	eduOver      []string    // by overridden list index: allowed ahead of it
	approvedWhy  []string    // by list index: approved site (ModeApproved)
	defaultWhy   string
	invalidWhy   string
	notApproved  string
	mandatoryWhy []string // by list index
}

type compiledRule struct {
	Rule
	cats    []bool // by taxonomy index
	domains map[string]bool
	zones   []*Zone
	reason  string
	label   string
}

// exceptionSet holds exceptions by exact name and URL prefix.
type exceptionSet struct {
	byName map[string]*compiledException
	byURL  []*compiledException
}

type compiledException struct {
	Exception
	name   string       // normalised domain, or "" for URL exceptions
	key    lists.URLKey // normalised URL prefix
	reason string
	label  string
}

// ErrInvalid wraps every problem Compile finds.
var ErrInvalid = errors.New("invalid policy")

// Compile checks cfg and builds a Snapshot. It reports every problem it
// finds, each naming the group and field, and builds nothing if there is
// any.
func Compile(cfg Config) (*Snapshot, error) {
	if cfg.Taxonomy == nil {
		return nil, fmt.Errorf("%w: no taxonomy", ErrInvalid)
	}
	if cfg.Lists == nil {
		m, err := lists.Compile(nil)
		if err != nil {
			return nil, err
		}
		cfg.Lists = m
	}
	loc := cfg.Location
	if loc == nil {
		var err error
		if loc, err = time.LoadLocation("Europe/London"); err != nil {
			return nil, fmt.Errorf("load Europe/London time zone: %w", err)
		}
	}
	s := &Snapshot{
		version: cfg.Version,
		loc:     loc,
		tax:     cfg.Taxonomy,
		matcher: cfg.Lists,
		groups:  map[string]*group{},
		zones:   map[string]*Zone{},
	}
	var errs []error
	for _, c := range cfg.Taxonomy.Categories {
		s.catIDs = append(s.catIDs, c.ID)
		s.catEduOK = append(s.catEduOK, c.EducationOverrides)
		s.catTitles = append(s.catTitles, c.Title)
	}
	for _, info := range cfg.Lists.Lists() {
		var idx []int
		edu := false
		for _, c := range info.Categories {
			i, ok := s.catIndex(c)
			if !ok {
				errs = append(errs, fmt.Errorf("list %s: unknown category %q", info.ID, c))
				continue
			}
			idx = append(idx, i)
			edu = edu || c == EducationCategory
		}
		s.listCats = append(s.listCats, idx)
		s.listEdu = append(s.listEdu, edu && !info.Mandatory)
		s.listMand = append(s.listMand, info.Mandatory)
		s.listLabel = append(s.listLabel, info.Label())
	}
	for i := range cfg.Zones {
		z := cfg.Zones[i]
		if z.ID == "" {
			errs = append(errs, fmt.Errorf("zones[%d]: missing id", i))
			continue
		}
		if _, dup := s.zones[z.ID]; dup {
			errs = append(errs, fmt.Errorf("zone %s: defined twice", z.ID))
		}
		s.zones[z.ID] = &z
		s.zoneList = append(s.zoneList, &z)
	}
	var err error
	if s.global, err = s.compileExceptions("school-wide", cfg.Exceptions); err != nil {
		errs = append(errs, err)
	}
	s.globalYouTube = compileYouTube(cfg.Exceptions)
	s.globalYouTubeAny = s.globalYouTube.any()
	groups := cfg.Groups
	hasUnknown := slices.ContainsFunc(groups, func(g Group) bool { return g.ID == UnknownGroupID })
	if !hasUnknown {
		groups = append(slices.Clip(groups), StrictestGroup(cfg.Taxonomy))
	}
	for _, g := range groups {
		cg, err := s.compileGroup(g)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := s.groups[g.ID]; dup {
			errs = append(errs, fmt.Errorf("group %s: defined twice", g.ID))
			continue
		}
		s.groups[g.ID] = cg
		s.order = append(s.order, cg)
	}
	unknownID := cfg.UnknownGroup
	if unknownID == "" {
		unknownID = UnknownGroupID
	}
	s.unknown = s.groups[unknownID]
	if s.unknown == nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("unknown-client group %q does not exist", unknownID))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return s, nil
}

// StrictestGroup is the built-in policy for clients Warden cannot
// identify: every category blocked except education, strict safe search.
func StrictestGroup(tax *lists.Taxonomy) Group {
	g := Group{
		ID:            UnknownGroupID,
		Name:          "Unknown clients",
		Mode:          ModeFilter,
		DefaultAction: Allow,
		Categories:    map[string]Action{},
		SafeSearch:    SafeSearchStrict,
	}
	for _, c := range tax.Categories {
		g.Categories[c.ID] = Block
	}
	g.Categories[EducationCategory] = Allow
	return g
}

func (s *Snapshot) catIndex(id string) (int, bool) {
	i := s.tax.Order(id)
	if i >= len(s.catIDs) {
		return 0, false
	}
	return i, true
}

func (s *Snapshot) compileGroup(g Group) (*group, error) {
	var errs []error
	if g.ID == "" {
		return nil, errors.New("group with no id")
	}
	if g.Name == "" {
		g.Name = g.ID
	}
	cg := &group{Group: g, catAction: make([]Action, len(s.catIDs))}
	for i, c := range s.tax.Categories {
		a, err := ParseAction(c.Pupils)
		if err != nil {
			a = Block
		}
		cg.catAction[i] = a
	}
	for c, a := range g.Categories {
		i, ok := s.catIndex(c)
		if !ok {
			errs = append(errs, fmt.Errorf("categories: unknown category %q", c))
			continue
		}
		if s.tax.Categories[i].Kind == lists.KindMandatory && a != Block {
			errs = append(errs, fmt.Errorf("categories: %s is a mandatory category and is always blocked", c))
			continue
		}
		cg.catAction[i] = a
	}
	var err error
	if cg.exc, err = s.compileExceptions("group "+g.ID, g.Exceptions); err != nil {
		errs = append(errs, err)
	}
	cg.youTube = compileYouTube(g.Exceptions)
	cg.youTubeAny = cg.youTube.any()
	for i, r := range g.Rules {
		cr, err := s.compileRule(g, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): %w", i, r.Name, err))
			continue
		}
		cg.rules = append(cg.rules, cr)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("group %s: %w", g.ID, errors.Join(errs...))
	}
	s.precomputeReasons(cg)
	return cg, nil
}

func (s *Snapshot) compileExceptions(scope string, excs []Exception) (exceptionSet, error) {
	set := exceptionSet{byName: map[string]*compiledException{}}
	var errs []error
	for i, e := range excs {
		if e.Action != Allow && e.Action != Block {
			errs = append(errs, fmt.Errorf("exceptions[%d] %q: action must be allow or block", i, e.Pattern))
			continue
		}
		ce := &compiledException{Exception: e}
		if strings.ContainsAny(e.Pattern, "/?") {
			k, err := lists.NormalizeURL(e.Pattern)
			if err != nil {
				errs = append(errs, fmt.Errorf("exceptions[%d] %q: %w", i, e.Pattern, err))
				continue
			}
			if k.PathQuery() == "/" && k.Port() == "" {
				ce.name = k.Host()
			} else {
				ce.key = k
			}
		} else {
			h, err := lists.NormalizeHost(e.Pattern)
			if err != nil {
				errs = append(errs, fmt.Errorf("exceptions[%d] %q: %w", i, e.Pattern, err))
				continue
			}
			ce.name = h
		}
		shown := ce.name
		if ce.name == "" {
			shown = string(ce.key)
		}
		ce.label = fmt.Sprintf("exception:%s:%s", e.Action, shown)
		ce.reason = fmt.Sprintf("%s by a %s %s exception for %s.", verb(e.Action), scope, e.Action, shown)
		if e.Note != "" {
			ce.reason = fmt.Sprintf("%s by a %s %s exception for %s (%s).", verb(e.Action), scope, e.Action, shown, e.Note)
		}
		if ce.name != "" {
			if prev, dup := set.byName[ce.name]; dup {
				// Block wins over allow for the same name.
				if prev.Action == Block {
					continue
				}
			}
			set.byName[ce.name] = ce
		} else {
			set.byURL = append(set.byURL, ce)
		}
	}
	// Longer URL prefixes first, so the most specific wins.
	slices.SortStableFunc(set.byURL, func(a, b *compiledException) int { return len(b.key) - len(a.key) })
	if len(errs) > 0 {
		return set, fmt.Errorf("%s: %w", scope, errors.Join(errs...))
	}
	return set, nil
}

func (s *Snapshot) compileRule(g Group, r Rule) (compiledRule, error) {
	cr := compiledRule{Rule: r}
	if r.Name == "" {
		cr.Name = fmt.Sprintf("rule %d", r.ID)
	}
	var errs []error
	if len(r.Categories) > 0 {
		cr.cats = make([]bool, len(s.catIDs))
		for _, c := range r.Categories {
			i, ok := s.catIndex(c)
			if !ok {
				errs = append(errs, fmt.Errorf("unknown category %q", c))
				continue
			}
			if s.tax.Categories[i].Kind == lists.KindMandatory {
				errs = append(errs, fmt.Errorf("category %s is mandatory and cannot be in a rule", c))
				continue
			}
			cr.cats[i] = true
		}
	}
	if len(r.Domains) > 0 {
		cr.domains = map[string]bool{}
		for _, d := range r.Domains {
			h, err := lists.NormalizeHost(d)
			if err != nil {
				errs = append(errs, fmt.Errorf("domain %q: %w", d, err))
				continue
			}
			cr.domains[h] = true
		}
	}
	for _, zid := range r.Zones {
		z, ok := s.zones[zid]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown zone %q", zid))
			continue
		}
		cr.zones = append(cr.zones, z)
	}
	if sch := r.Schedule; !sch.Always() {
		if sch.Start < 0 || sch.Start > 1440 || sch.End < 0 || sch.End > 1440 || sch.Start == sch.End {
			errs = append(errs, fmt.Errorf("bad schedule %s", sch))
		}
	}
	if len(errs) > 0 {
		return cr, errors.Join(errs...)
	}
	what := append(slices.Clone(r.Categories), r.Domains...)
	target := "every site"
	if len(what) > 0 {
		target = strings.Join(what, ", ")
	}
	var when []string
	if !r.Schedule.Always() {
		when = append(when, r.Schedule.String())
	}
	if len(r.Zones) > 0 {
		when = append(when, "from "+strings.Join(r.Zones, ", "))
	}
	cond := ""
	if len(when) > 0 {
		cond = " (" + strings.Join(when, ", ") + ")"
	}
	cr.reason = fmt.Sprintf("%s by %s's rule %q: %s %s%s.", verb(r.Action), g.ID, cr.Name, r.Action, target, cond)
	cr.label = fmt.Sprintf("rule:%d:%s", r.ID, cr.Name)
	return cr, nil
}

func (s *Snapshot) precomputeReasons(g *group) {
	n := len(s.listCats)
	g.catReason = make([][3]string, n)
	g.eduReason = make([]string, n)
	g.eduOver = make([]string, n)
	g.approvedWhy = make([]string, n)
	g.mandatoryWhy = make([]string, n)
	for li := 0; li < n; li++ {
		label := s.listLabel[li]
		if s.listMand[li] {
			g.mandatoryWhy[li] = fmt.Sprintf("Blocked: on the %s of illegal content; it always applies and cannot be overridden.", label)
			continue
		}
		info := s.matcher.Info(uint16(li))
		cats := make([]string, 0, len(s.listCats[li]))
		for _, ci := range s.listCats[li] {
			cats = append(cats, s.catIDs[ci])
		}
		for a := Allow; a <= Block; a++ {
			g.catReason[li][a] = fmt.Sprintf("%s: %s is %s for %s (list %s, from %s).",
				verb(a), strings.Join(cats, "/"), strings.ToLower(verb(a)), g.ID, info.ID, label)
		}
		g.eduOver[li] = fmt.Sprintf("Allowed: on the education allow list, which %s puts ahead of %s (list %s, from %s).",
			g.ID, strings.Join(cats, "/"), info.ID, label)
		if s.listEdu[li] {
			g.eduReason[li] = fmt.Sprintf("Allowed: on the education allow list (%s).", info.ID)
			g.approvedWhy[li] = fmt.Sprintf("Allowed: an approved site for %s (education allow list %s).", g.ID, info.ID)
		}
	}
	g.defaultWhy = fmt.Sprintf("%s: in no blocked category; the default for %s is %s.", verb(g.DefaultAction), g.ID, g.DefaultAction)
	g.notApproved = fmt.Sprintf("Blocked: %s may visit approved sites only, and this site is not approved.", g.ID)
	g.invalidWhy = "Blocked: not a valid host name or URL."
}

// Version returns the policy version.
func (s *Snapshot) Version() int64 { return s.version }

// Location returns the school's time zone.
func (s *Snapshot) Location() *time.Location { return s.loc }

// Taxonomy returns the category taxonomy.
func (s *Snapshot) Taxonomy() *lists.Taxonomy { return s.tax }

// Lists returns the compiled category lists.
func (s *Snapshot) Lists() *lists.Matcher { return s.matcher }

// Group returns the group with the given id.
func (s *Snapshot) Group(id string) (Group, bool) {
	g, ok := s.groups[id]
	if !ok {
		return Group{}, false
	}
	return g.Group, true
}

// HasGroup reports whether a group exists.
func (s *Snapshot) HasGroup(id string) bool {
	_, ok := s.groups[id]
	return ok
}

// UnknownGroup returns the id of the group unidentified clients get.
func (s *Snapshot) UnknownGroup() string { return s.unknown.ID }

// Groups returns the groups in the order given to Compile.
func (s *Snapshot) Groups() []Group {
	out := make([]Group, len(s.order))
	for i, g := range s.order {
		out[i] = g.Group
	}
	return out
}

// Zones returns the network zones.
func (s *Snapshot) Zones() []*Zone { return s.zoneList }

// ZoneOf returns the first zone holding addr.
func (s *Snapshot) ZoneOf(addr netip.Addr) (*Zone, bool) {
	if !addr.IsValid() {
		return nil, false
	}
	for _, z := range s.zoneList {
		if z.Contains(addr) {
			return z, true
		}
	}
	return nil, false
}

// verb is how a reason starts for an action.
func verb(a Action) string {
	switch a {
	case Block:
		return "Blocked"
	case Alert:
		return "Allowed with an alert"
	}
	return "Allowed"
}
