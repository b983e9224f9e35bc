package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/policy/policystore"
	"github.com/warden-schools/warden/internal/reviews"
)

func TestConsoleChangeControl(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 1000 })
	ctx := context.Background()
	games := map[string]policy.Action{"games": policy.Block}
	ks2, staff := strictKS2, strictKS2
	ks2.Categories, staff.ID, staff.Categories = games, "staff", games
	ps := f.groupsFor(t, "key-stage-2", ks2, staff)
	f.account(t, "itech", auth.RoleIT)
	f.account(t, "head", auth.RoleHeadteacher)
	f.account(t, "leader", auth.RoleLeadership)
	f.account(t, "teacher", auth.RoleStaff)
	itb, hb, lb, sb := f.browser(t), f.browser(t), f.browser(t), f.browser(t)
	itb.signIn("itech", testPassword)
	hb.signIn("head", testPassword)
	lb.signIn("leader", testPassword)
	sb.signIn("teacher", testPassword)
	proposal := func(kind, group, site string) url.Values {
		return url.Values{"kind": {kind}, "group": {group}, "site": {site}, "reason": {"Year 5 coding club"},
			"risk": {"A coding site with moderated projects; low risk."}, "risk_level": {"low"}}
	}

	// IT proposes a loosening for pupils: it waits.
	p := itb.submit("/filtering", "/filtering/propose", proposal("allow-site", "key-stage-2", "scratch.mit.edu"))
	if p.status != http.StatusSeeOther || p.location != "/filtering?done=proposed" {
		t.Fatalf("propose: %d %s\n%s", p.status, p.location, p.body)
	}
	page := itb.do("GET", "/filtering?done=proposed", nil)
	if !strings.Contains(page.body, "Waiting for approval") || !strings.Contains(page.body, "Your own proposal") ||
		strings.Contains(page.body, "/approve") || !strings.Contains(page.body, "takes effect when a member of leadership") {
		t.Fatalf("IT's page:\n%s", page.body)
	}
	id := regexp.MustCompile(`/filtering/changes/(\d+)/approve`).FindStringSubmatch(hb.do("GET", "/filtering", nil).body)
	if id == nil {
		t.Fatal("the headteacher is not offered the approval")
	}
	// IT may not approve at all; staff may not even look.
	if p := itb.do("POST", "/filtering/changes/"+id[1]+"/approve", url.Values{"csrf": {itb.csrf(page)}}); p.status != http.StatusForbidden {
		t.Errorf("IT approving: %d", p.status)
	}
	if p := sb.do("GET", "/filtering", nil); p.status != http.StatusForbidden {
		t.Errorf("staff's filtering page: %d", p.status)
	}
	// Declining needs a reason; the headteacher approves.
	hp := hb.do("GET", "/filtering", nil)
	if p := hb.do("POST", "/filtering/changes/"+id[1]+"/reject", url.Values{"csrf": {hb.csrf(hp)}, "note": {" "}}); p.status != http.StatusBadRequest {
		t.Errorf("decline without a reason: %d", p.status)
	}
	if p := hb.do("POST", "/filtering/changes/"+id[1]+"/approve", url.Values{"csrf": {hb.csrf(hp)}, "note": {"Term 3 only"}}); p.location != "/filtering?done=approved" {
		t.Fatalf("approve: %d %s\n%s", p.status, p.location, p.body)
	}
	pol, _ := ps.Load(ctx)
	var found bool
	for _, g := range pol.Groups {
		for _, e := range g.Exceptions {
			found = found || (g.ID == "key-stage-2" && e.Pattern == "scratch.mit.edu" && e.Action == policy.Allow)
		}
	}
	if !found {
		t.Fatalf("the approved exception is not in force: %+v", pol.Groups)
	}

	// A tightening change applies at once.
	if p := itb.submit("/filtering", "/filtering/propose", proposal("block-site", "key-stage-2", "coolmathgames.com")); p.location != "/filtering?done=applied" {
		t.Fatalf("tighten: %d %s\n%s", p.status, p.location, p.body)
	}
	// Leadership may not approve their own loosening.
	lb.submit("/filtering", "/filtering/propose", url.Values{"kind": {"set-category"}, "group": {"key-stage-2"}, "category": {"games"},
		"category_action": {"allow"}, "reason": {"Games club"}, "risk": {"Some games have chat"}, "risk_level": {"medium"}})
	lp := lb.do("GET", "/filtering", nil)
	if strings.Contains(lp.body, "/approve") || !strings.Contains(lp.body, "key-stage-2: games allow (was block)") {
		t.Fatalf("leader's own proposal offered for approval:\n%s", lp.body)
	}
	changes, _ := ps.Changes(ctx, policystore.StatusProposed, 0)
	if len(changes) != 1 {
		t.Fatalf("waiting: %+v", changes)
	}
	if p := lb.do("POST", "/filtering/changes/"+itoa(changes[0].ID)+"/approve", url.Values{"csrf": {lb.csrf(lp)}}); p.status != http.StatusBadRequest ||
		!strings.Contains(p.body, "someone other than its author") {
		t.Fatalf("self-approval: %d\n%s", p.status, p.body)
	}
	// Revert the approved allow: it tightens, so it applies at once.
	first, _ := ps.GetChange(ctx, atoi(t, id[1]))
	if p := itb.submit("/filtering", "/filtering/changes/"+id[1]+"/revert", url.Values{"reason": {"Club ended"}, "risk": {"None"}, "risk_level": {"low"}}); p.location != "/filtering?done=applied" {
		t.Fatalf("revert: %d %s\n%s", p.status, p.location, p.body)
	}
	log := itb.do("GET", "/filtering", nil).body
	for _, want := range []string{"reverts #" + itoa(first.ID), "- allow exception scratch.mit.edu (key-stage-2)", "Term 3 only", "head", "applied"} {
		if !strings.Contains(log, want) {
			t.Errorf("change log lacks %q", want)
		}
	}
	// Invalid proposals say why.
	if p := itb.submit("/filtering", "/filtering/propose", proposal("allow-site", "key-stage-2", "not a site")); p.status != http.StatusBadRequest ||
		!strings.Contains(p.body, "The change was not made") {
		t.Errorf("bad site: %d", p.status)
	}
	entries, _, _ := f.audit.List(ctx, audit.Filter{Limit: 500})
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Action+"/"+e.Outcome] = true
	}
	for _, want := range []string{"change-proposed/ok", "change-approved/ok", "change-declined/failed", "change-approved/failed", "change-proposed/failed", "permission-refused/refused"} {
		if !seen[want] {
			t.Errorf("audit lacks %s: %v", want, seen)
		}
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func atoi(t *testing.T, s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A review request from the block page: IT proposes the exception it asks
// for (which, for pupils, waits for leadership) or declines it with a
// reply; either way the request is decided, with the reply stored.
func TestConsoleReviewRequests(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 1000 })
	ctx := context.Background()
	ps := f.groupsFor(t, "key-stage-2", strictKS2)
	rs := reviews.New(f.db, f.clock)
	var ids []int64
	for i, host := range []string{"scratch.mit.edu", "coolmathgames.com"} {
		q, err := rs.CreateRequest(ctx, reviews.RequestInput{Ref: "7KQ2MW4XH" + strconv.Itoa(i), BlockedAt: f.clock(), Host: host,
			Category: "games", Reason: "Blocked: games is blocked for key-stage-2.", GroupID: "key-stage-2", Message: "For coding club"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, q.ID)
	}
	f.account(t, "itech", auth.RoleIT)
	b := f.browser(t)
	b.signIn("itech", testPassword)
	page := b.do("GET", "/filtering", nil)
	for _, want := range []string{"Review requests from the block page", "scratch.mit.edu", "coolmathgames.com", "For coding club", "7KQ2M-W4XH0"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("queue lacks %q", want)
		}
	}
	tok := b.csrf(page)
	if p := b.do("POST", "/filtering/requests/"+itoa(ids[1])+"/decline", url.Values{"csrf": {tok}, "reply": {""}}); p.status != http.StatusBadRequest {
		t.Errorf("decline without a reply: %d", p.status)
	}
	if p := b.do("POST", "/filtering/requests/"+itoa(ids[1])+"/decline", url.Values{"csrf": {tok}, "reply": {"Not suitable for school"}}); p.location != "/filtering?done=declined" {
		t.Fatalf("decline: %d %s\n%s", p.status, p.location, p.body)
	}
	p := b.do("POST", "/filtering/requests/"+itoa(ids[0])+"/approve", url.Values{"csrf": {tok}, "reason": {"Coding club"},
		"risk": {"Moderated projects"}, "risk_level": {"low"}, "reply": {"Yes, for the club."}})
	if p.location != "/filtering?done=proposed" {
		t.Fatalf("approve: %d %s\n%s", p.status, p.location, p.body)
	}
	q0, _ := rs.GetRequest(ctx, ids[0])
	q1, _ := rs.GetRequest(ctx, ids[1])
	if q0.Status != reviews.StatusApproved || !strings.Contains(q0.Reply, "takes effect when leadership approves") || q1.Status != reviews.StatusDeclined ||
		q1.Reply != "Not suitable for school" {
		t.Fatalf("requests after deciding: %+v\n%+v", q0, q1)
	}
	waiting, _ := ps.Changes(ctx, policystore.StatusProposed, 0)
	if len(waiting) != 1 || waiting[0].ReviewRequestID != ids[0] || waiting[0].Spec.Pattern != "scratch.mit.edu" {
		t.Fatalf("the proposed change: %+v", waiting)
	}
	if strings.Contains(b.do("GET", "/filtering", nil).body, "coolmathgames.com</span> for") {
		t.Error("a decided request is still in the queue")
	}
}

func TestConsoleGroupSettingChange(t *testing.T) {
	f := newConsoleFixture(t, nil)
	f.groupsFor(t, "key-stage-2", strictKS2)
	f.account(t, "itech", auth.RoleIT)
	b := f.browser(t)
	b.signIn("itech", testPassword)
	p := b.submit("/filtering", "/filtering/propose", url.Values{"kind": {"set-safe-search"}, "group": {"key-stage-2"}, "setting": {"ss:off"},
		"reason": {"Image search for art"}, "risk": {"Explicit images in search results"}, "risk_level": {"high"}})
	if p.location != "/filtering?done=proposed" {
		t.Fatalf("lower safe search: %d %s\n%s", p.status, p.location, p.body)
	}
	if !strings.Contains(b.do("GET", "/filtering", nil).body, "key-stage-2: safe search off (was strict)") {
		t.Error("the proposal is not listed")
	}
}

// An unsuitable site reported from the block page: blocking it is a
// tightening change, applied at once; dismissing needs a note.
func TestConsoleSiteReports(t *testing.T) {
	f := newConsoleFixture(t, nil)
	ctx := context.Background()
	ps := f.groupsFor(t, "", strictKS2)
	rs := reviews.New(f.db, f.clock)
	var ids []int64
	for _, u := range []string{"https://nasty.example/page", "https://fine.example/"} {
		rp, err := rs.CreateReport(ctx, reviews.ReportInput{URL: u, Message: "Saw something horrible", GroupID: "key-stage-2"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rp.ID)
	}
	f.account(t, "dsl", auth.RoleDSL)
	b := f.browser(t)
	b.signIn("dsl", testPassword)
	page := b.do("GET", "/filtering", nil)
	if !strings.Contains(page.body, "Unsuitable sites reported") || !strings.Contains(page.body, "https://nasty.example/page") {
		t.Fatalf("reports missing:\n%s", page.body)
	}
	tok := b.csrf(page)
	if p := b.do("POST", "/filtering/reports/"+itoa(ids[0])+"/block", url.Values{"csrf": {tok}, "group": {""}}); p.location != "/filtering?done=handled" {
		t.Fatalf("block: %d %s\n%s", p.status, p.location, p.body)
	}
	pol, _ := ps.Load(ctx)
	if len(pol.Exceptions) != 1 || pol.Exceptions[0].Pattern != "nasty.example" || pol.Exceptions[0].Action != policy.Block {
		t.Fatalf("school-wide exceptions %+v", pol.Exceptions)
	}
	if p := b.do("POST", "/filtering/reports/"+itoa(ids[1])+"/dismiss", url.Values{"csrf": {tok}, "note": {""}}); p.status != http.StatusBadRequest {
		t.Errorf("dismiss without a note: %d", p.status)
	}
	b.do("POST", "/filtering/reports/"+itoa(ids[1])+"/dismiss", url.Values{"csrf": {tok}, "note": {"An ordinary news site"}})
	r0, _ := rs.GetReport(ctx, ids[0])
	r1, _ := rs.GetReport(ctx, ids[1])
	if r0.Status != reviews.StatusActioned || r1.Status != reviews.StatusDismissed || r1.Note != "An ordinary news site" {
		t.Fatalf("reports after handling: %+v %+v", r0, r1)
	}
}

func TestConsoleRuleChange(t *testing.T) {
	f := newConsoleFixture(t, nil)
	f.groupsFor(t, "", moderateStaff)
	f.account(t, "itech", auth.RoleIT)
	b := f.browser(t)
	b.signIn("itech", testPassword)
	// A staff-only group: an allow rule applies at once.
	p := b.submit("/filtering", "/filtering/propose", url.Values{"kind": {"add-rule"}, "group": {"staff"}, "rule_name": {"Lunch social media"},
		"rule_action": {"allow"}, "rule_categories": {"social-media"}, "rule_days": {"mon-fri"}, "rule_start": {"12:00"}, "rule_end": {"13:15"},
		"reason": {"Staff lunch break"}, "risk": {"Staff only"}, "risk_level": {"low"}})
	if p.location != "/filtering?done=applied" {
		t.Fatalf("add rule: %d %s\n%s", p.status, p.location, p.body)
	}
	page := b.do("GET", "/filtering", nil).body
	if !strings.Contains(page, "Lunch social media") || !strings.Contains(page, "mon-fri 12:00-13:15") {
		t.Fatalf("rules table:\n%s", page)
	}
	id := regexp.MustCompile(`<option value="(\d+)">staff: Lunch social media`).FindStringSubmatch(page)
	if id == nil {
		t.Fatal("no rule to remove")
	}
	if p := b.submit("/filtering", "/filtering/propose", url.Values{"kind": {"remove-rule"}, "rule": {id[1]}, "reason": {"No longer"},
		"risk": {"None"}, "risk_level": {"low"}}); p.location != "/filtering?done=applied" {
		t.Fatalf("remove rule: %d %s\n%s", p.status, p.location, p.body)
	}
	if p := b.submit("/filtering", "/filtering/propose", url.Values{"kind": {"add-rule"}, "group": {"staff"}, "rule_name": {"Bad"},
		"rule_action": {"allow"}, "rule_days": {"someday"}, "reason": {"x"}, "risk": {"x"}, "risk_level": {"low"}}); p.status != http.StatusBadRequest {
		t.Errorf("bad schedule: %d", p.status)
	}
}

func TestConsoleZoneAndDefaultChanges(t *testing.T) {
	f := newConsoleFixture(t, nil)
	ctx := context.Background()
	f.groupsFor(t, "", moderateStaff)
	f.account(t, "itech", auth.RoleIT)
	b := f.browser(t)
	b.signIn("itech", testPassword)
	base := url.Values{"reason": {"Set-up"}, "risk": {"Reviewed"}, "risk_level": {"low"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, s := range base {
			v[k] = s
		}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	if p := b.submit("/filtering", "/filtering/propose", with("kind", "put-zone", "zone_id", "staff-room", "zone_name", "Staff room",
		"zone_networks", "10.20.0.0/24, 10.21.0.0/24", "group", "")); p.location != "/filtering?done=applied" {
		t.Fatalf("name a zone: %d %s\n%s", p.status, p.location, p.body)
	}
	if p := b.submit("/filtering", "/filtering/propose", with("kind", "put-zone", "zone_id", "staff-room", "zone_name", "Staff room",
		"zone_networks", "10.20.0.0/24", "group", "staff")); p.location != "/filtering?done=proposed" {
		t.Fatalf("zone with a group: %d %s\n%s", p.status, p.location, p.body)
	}
	if p := b.submit("/filtering", "/filtering/propose", with("kind", "set-default-action", "group", "staff", "setting", "default:block")); p.location != "/filtering?done=applied" {
		t.Fatalf("default block: %d %s\n%s", p.status, p.location, p.body)
	}
	if p := b.submit("/filtering", "/filtering/propose", with("kind", "set-default-action", "group", "staff", "setting", "ss:off")); p.status != http.StatusBadRequest {
		t.Errorf("mismatched setting: %d", p.status)
	}
	zones, _ := f.dir.Zones(ctx)
	if len(zones) != 1 || len(zones[0].Networks) != 2 || zones[0].GroupID != "" {
		t.Fatalf("zones %+v", zones)
	}
	if p := b.submit("/filtering", "/filtering/propose", with("kind", "delete-zone", "zone", "staff-room")); p.location != "/filtering?done=applied" {
		t.Fatalf("delete zone: %d %s\n%s", p.status, p.location, p.body)
	}
}

// groupsFor makes the groups through a policy store, which it returns,
// and, if pupils is a group's id, gives that group to pupils.
func (f *consoleFixture) groupsFor(t *testing.T, pupils string, groups ...policystore.GroupSpec) *policystore.Store {
	t.Helper()
	ps := policystore.New(f.db, lists.DefaultTaxonomy(), f.clock)
	for _, g := range groups {
		if err := ps.PutGroup(context.Background(), "setup", g); err != nil {
			t.Fatal(err)
		}
	}
	if pupils != "" {
		if _, err := f.db.Exec(`INSERT INTO group_rules (position, group_id, person_kind) VALUES (1, ?, 'pupil')`, pupils); err != nil {
			t.Fatal(err)
		}
	}
	return ps
}

// strictKS2 is the key-stage-2 group most tests need: filtering, strict
// safe search, allow by default.
var strictKS2 = policystore.GroupSpec{ID: "key-stage-2", Mode: policy.ModeFilter, SafeSearch: policy.SafeSearchStrict, DefaultAction: policy.Allow}

// moderateStaff is a staff group with moderate safe search.
var moderateStaff = policystore.GroupSpec{ID: "staff", Mode: policy.ModeFilter, SafeSearch: policy.SafeSearchModerate, DefaultAction: policy.Allow}
