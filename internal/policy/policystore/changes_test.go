package policystore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
)

var (
	it   = Actor{Name: "pshah", PersonID: 4}
	head = Actor{Name: "gsmith", PersonID: 1}
)

// changeStore has key-stage-2 (pupils, by a membership rule) and staff
// (no pupils).
func changeStore(t *testing.T) (*Store, *store.DB) {
	t.Helper()
	s, db := newTestStore(t)
	putGroup(t, s, ks2())
	staff := ks2()
	staff.ID, staff.Name = "staff", "Staff"
	putGroup(t, s, staff)
	if _, err := db.Exec(`INSERT INTO group_rules (position, group_id, person_kind) VALUES (1, 'key-stage-2', 'pupil'), (2, 'staff', 'staff')`); err != nil {
		t.Fatal(err)
	}
	return s, db
}

func propose(spec ChangeSpec, by Actor) Proposal {
	return Proposal{Spec: spec, Reason: "Year 5 project on volcanoes", Risk: "A science site; no user content.", RiskLevel: RiskLow, By: by}
}

func TestProposeTightenAppliesAtOnce(t *testing.T) {
	ctx := context.Background()
	s, db := changeStore(t)
	rev := revision(t, db)
	c, err := s.Propose(ctx, propose(ChangeSpec{Kind: AddException, Group: "key-stage-2", Action: "block", Pattern: "Example.COM"}, it))
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != StatusApplied || c.Loosens || !c.ForPupils || c.RevisionID != rev+1 || c.Spec.Pattern != "example.com" ||
		c.Diff != "+ block exception example.com (key-stage-2)" || c.DecidedBy != it {
		t.Fatalf("tightening change %+v", c)
	}
	if ex := group(t, load(t, s), "key-stage-2").Exceptions; len(ex) != 1 || ex[0].Pattern != "example.com" {
		t.Fatalf("exception not applied: %+v", ex)
	}
}

func TestLooseningWaitsForAnotherLeader(t *testing.T) {
	ctx := context.Background()
	s, db := changeStore(t)
	rev := revision(t, db)
	c, err := s.Propose(ctx, propose(ChangeSpec{Kind: SetCategory, Group: "key-stage-2", Category: "games", Action: "allow"}, it))
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != StatusProposed || !c.NeedsApproval() || c.Spec.Previous != "block" || revision(t, db) != rev ||
		c.Diff != "- key-stage-2: games block\n+ key-stage-2: games allow" {
		t.Fatalf("loosening change %+v (revision %d -> %d)", c, rev, revision(t, db))
	}
	if got := group(t, load(t, s), "key-stage-2").Categories["games"]; got != policy.Block {
		t.Fatalf("applied before approval: %s", got)
	}
	if _, err := s.Approve(ctx, c.ID, it, ""); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := s.Approve(ctx, c.ID, Actor{Name: "PShah"}, ""); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("self-approval by name: %v", err)
	}
	done, err := s.Approve(ctx, c.ID, head, "For the summer term only")
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != StatusApplied || done.DecidedBy != head || done.RevisionID == 0 || done.DecisionNote != "For the summer term only" {
		t.Fatalf("approved %+v", done)
	}
	if got := group(t, load(t, s), "key-stage-2").Categories["games"]; got != policy.Allow {
		t.Fatalf("not applied after approval: %s", got)
	}
	if _, err := s.Approve(ctx, c.ID, head, ""); !errors.Is(err, ErrNotProposed) {
		t.Fatalf("approved twice: %v", err)
	}

	// One-step revert: tightens, so it applies at once.
	r, err := s.Revert(ctx, c.ID, head, "The project is over", "None: back to the usual policy.", RiskLow)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusApplied || r.Reverts != c.ID || r.Spec.Action != "block" {
		t.Fatalf("revert %+v", r)
	}
	if got := group(t, load(t, s), "key-stage-2").Categories["games"]; got != policy.Block {
		t.Fatalf("not reverted: %s", got)
	}
}

func TestStaffOnlyLooseningApplies(t *testing.T) {
	s, _ := changeStore(t)
	c, err := s.Propose(context.Background(), propose(ChangeSpec{Kind: AddException, Group: "staff", Action: "allow", Pattern: "facebook.com"}, it))
	if err != nil || c.Status != StatusApplied || !c.Loosens || c.ForPupils {
		t.Fatalf("staff-only loosening: %+v %v", c, err)
	}
	// Every group reaches pupils.
	c, err = s.Propose(context.Background(), propose(ChangeSpec{Kind: AddException, Action: "allow", Pattern: "facebook.com"}, it))
	if err != nil || c.Status != StatusProposed || !c.ForPupils {
		t.Fatalf("school-wide loosening: %+v %v", c, err)
	}
}

func TestRemoveExceptionAndReject(t *testing.T) {
	ctx := context.Background()
	s, _ := changeStore(t)
	id, err := s.AddException(ctx, "setup", "key-stage-2", policy.Exception{Action: policy.Block, Pattern: "tiktok.com"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Propose(ctx, propose(ChangeSpec{Kind: RemoveException, ExceptionID: id}, it))
	if err != nil || c.Status != StatusProposed || !c.Loosens || c.Summary != "Remove the block exception tiktok.com for key-stage-2" {
		t.Fatalf("remove a block: %+v %v", c, err)
	}
	if _, err := s.Reject(ctx, c.ID, head, " "); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("reject without a reason: %v", err)
	}
	r, err := s.Reject(ctx, c.ID, head, "TikTok stays blocked for pupils")
	if err != nil || r.Status != StatusRejected {
		t.Fatalf("reject: %+v %v", r, err)
	}
	if ex := group(t, load(t, s), "key-stage-2").Exceptions; len(ex) != 1 {
		t.Fatal("a rejected change was applied")
	}
	list, err := s.Changes(ctx, "", 0)
	if err != nil || len(list) != 1 || list[0].Status != StatusRejected {
		t.Fatalf("log %+v %v", list, err)
	}
}

// An approved change that can no longer be applied is marked failed,
// never half done.
func TestApproveFailsCleanly(t *testing.T) {
	ctx := context.Background()
	s, _ := changeStore(t)
	id, _ := s.AddException(ctx, "setup", "key-stage-2", policy.Exception{Action: policy.Block, Pattern: "tiktok.com"})
	c, _ := s.Propose(ctx, propose(ChangeSpec{Kind: RemoveException, ExceptionID: id}, it))
	if err := s.RemoveException(ctx, "someone", id); err != nil {
		t.Fatal(err)
	}
	got, err := s.Approve(ctx, c.ID, head, "ok")
	if err == nil || got.Status != StatusFailed || !strings.Contains(got.DecisionNote, "could not be applied") {
		t.Fatalf("approve a stale change: %+v %v", got, err)
	}
	if stored, _ := s.GetChange(ctx, c.ID); stored.Status != StatusFailed {
		t.Fatalf("stored %+v", stored)
	}
}

func TestProposeRefuses(t *testing.T) {
	s, _ := changeStore(t)
	for _, tc := range []struct {
		name string
		p    Proposal
		want string
	}{
		{"no reason", Proposal{Spec: ChangeSpec{Kind: AddException, Action: "block", Pattern: "x.com"}, Risk: "r", RiskLevel: RiskLow, By: it}, "why"},
		{"no risk", Proposal{Spec: ChangeSpec{Kind: AddException, Action: "block", Pattern: "x.com"}, Reason: "r", RiskLevel: RiskLow, By: it}, "risk assessment"},
		{"bad level", Proposal{Spec: ChangeSpec{Kind: AddException, Action: "block", Pattern: "x.com"}, Reason: "r", Risk: "r", RiskLevel: "meh", By: it}, "low, medium or high"},
		{"bad pattern", propose(ChangeSpec{Kind: AddException, Action: "allow", Pattern: "not a host"}, it), "exception"},
		{"no such group", propose(ChangeSpec{Kind: AddException, Group: "nope", Action: "allow", Pattern: "x.com"}, it), "nope"},
		{"mandatory category", propose(ChangeSpec{Kind: SetCategory, Group: "key-stage-2", Category: "child-abuse", Action: "allow"}, it), "always blocked"},
		{"no change", propose(ChangeSpec{Kind: SetCategory, Group: "key-stage-2", Category: "games", Action: "block"}, it), "already block"},
		{"no exception", propose(ChangeSpec{Kind: RemoveException, ExceptionID: 99}, it), "does not exist"},
		{"unknown kind", propose(ChangeSpec{Kind: "delete-everything"}, it), "unknown kind"},
	} {
		if _, err := s.Propose(context.Background(), tc.p); !errors.Is(err, ErrInvalidChange) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Safe search and mode changes: lowering either for pupils waits;
// raising applies; revert restores the previous value.
func TestGroupSettingChanges(t *testing.T) {
	ctx := context.Background()
	s, _ := changeStore(t)
	c, err := s.Propose(ctx, propose(ChangeSpec{Kind: SetSafeSearch, Group: "key-stage-2", Action: "moderate"}, it))
	if err != nil || c.Status != StatusProposed || !c.Loosens || c.Spec.Previous != "strict" ||
		c.Diff != "- key-stage-2: safe search strict\n+ key-stage-2: safe search moderate" {
		t.Fatalf("lower safe search: %+v %v", c, err)
	}
	if _, err := s.Approve(ctx, c.ID, head, ""); err != nil {
		t.Fatal(err)
	}
	if got := group(t, load(t, s), "key-stage-2").SafeSearch; got != policy.SafeSearchModerate {
		t.Fatalf("safe search now %s", got)
	}
	r, err := s.Revert(ctx, c.ID, head, "back", "none", RiskLow)
	if err != nil || r.Status != StatusApplied || group(t, load(t, s), "key-stage-2").SafeSearch != policy.SafeSearchStrict {
		t.Fatalf("revert: %+v %v", r, err)
	}
	m, err := s.Propose(ctx, propose(ChangeSpec{Kind: SetMode, Group: "key-stage-2", Action: "approved"}, it))
	if err != nil || m.Status != StatusApplied || m.Loosens || group(t, load(t, s), "key-stage-2").Mode != policy.ModeApproved {
		t.Fatalf("approved-only mode: %+v %v", m, err)
	}
	if _, err := s.Propose(ctx, propose(ChangeSpec{Kind: SetMode, Group: "key-stage-2", Action: "approved"}, it)); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("no change: %v", err)
	}
	if _, err := s.Propose(ctx, propose(ChangeSpec{Kind: SetSafeSearch, Group: "key-stage-2", Action: "maximum"}, it)); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("bad level: %v", err)
	}
}

// Time and place rules: an allow rule for pupils waits; a block rule
// applies; removing a block rule loosens; revert restores the rule.
func TestRuleChanges(t *testing.T) {
	ctx := context.Background()
	s, _ := changeStore(t)
	allow := RuleSpec{Name: "Games club", Action: "allow", Categories: "games", Days: "fri", Start: "15:30", End: "16:30"}
	c, err := s.Propose(ctx, propose(ChangeSpec{Kind: AddRule, Group: "key-stage-2", Rule: &allow}, it))
	if err != nil || c.Status != StatusProposed || !c.Loosens || !strings.Contains(c.Diff, `+ key-stage-2: rule "Games club": allow categories games, days fri, 15:30-16:30`) {
		t.Fatalf("allow rule: %+v %v", c, err)
	}
	if _, err := s.Approve(ctx, c.ID, head, ""); err != nil {
		t.Fatal(err)
	}
	rules := group(t, load(t, s), "key-stage-2").Rules
	if len(rules) != 1 || rules[0].Name != "Games club" {
		t.Fatalf("rules %+v", rules)
	}
	block := RuleSpec{Name: "Exams", Action: "block", Categories: "social-media"}
	if b, err := s.Propose(ctx, propose(ChangeSpec{Kind: AddRule, Group: "key-stage-2", Rule: &block}, it)); err != nil || b.Status != StatusApplied {
		t.Fatalf("block rule: %+v %v", b, err)
	}
	blockID := group(t, load(t, s), "key-stage-2").Rules[1].ID
	rm, err := s.Propose(ctx, propose(ChangeSpec{Kind: RemoveRule, RuleID: blockID}, it))
	if err != nil || rm.Status != StatusProposed || !rm.Loosens || rm.Spec.Group != "key-stage-2" {
		t.Fatalf("remove a block rule: %+v %v", rm, err)
	}
	// Revert the approved allow rule: it is removed at once.
	if r, err := s.Revert(ctx, c.ID, head, "club over", "none", RiskLow); err != nil || r.Status != StatusApplied {
		t.Fatalf("revert: %+v %v", r, err)
	}
	if rules := group(t, load(t, s), "key-stage-2").Rules; len(rules) != 1 || rules[0].Name != "Exams" {
		t.Fatalf("after revert %+v", rules)
	}
	bad := RuleSpec{Name: "x", Action: "allow", Categories: "child-abuse"}
	if _, err := s.Propose(ctx, propose(ChangeSpec{Kind: AddRule, Group: "key-stage-2", Rule: &bad}, it)); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("rule on a mandatory category: %v", err)
	}
}

func TestDefaultEducationAndZoneChanges(t *testing.T) {
	ctx := context.Background()
	s, _ := changeStore(t)
	// Education first is on for ks2 (ks2()): turning it off tightens.
	if c, err := s.Propose(ctx, propose(ChangeSpec{Kind: SetEducationFirst, Group: "key-stage-2", Action: "off"}, it)); err != nil || c.Status != StatusApplied {
		t.Fatalf("education first off: %+v %v", c, err)
	}
	if c, err := s.Propose(ctx, propose(ChangeSpec{Kind: SetEducationFirst, Group: "key-stage-2", Action: "on"}, it)); err != nil || c.Status != StatusProposed {
		t.Fatalf("education first on: %+v %v", c, err)
	}
	if c, err := s.Propose(ctx, propose(ChangeSpec{Kind: SetDefault, Group: "key-stage-2", Action: "block"}, it)); err != nil || c.Status != StatusApplied || c.Loosens {
		t.Fatalf("default block: %+v %v", c, err)
	}
	if g := group(t, load(t, s), "key-stage-2"); g.DefaultAction != policy.Block || g.EducationFirst {
		t.Fatalf("group now %+v", g)
	}
	// A zone that only names networks applies; giving it a group waits.
	z := ZoneSpec{ID: "staff-room", Name: "Staff room", Networks: []string{"10.20.0.0/24"}}
	if c, err := s.Propose(ctx, propose(ChangeSpec{Kind: PutZone, Zone: &z}, it)); err != nil || c.Status != StatusApplied {
		t.Fatalf("name a zone: %+v %v", c, err)
	}
	z.Group = "staff"
	c, err := s.Propose(ctx, propose(ChangeSpec{Kind: PutZone, Zone: &z}, it))
	if err != nil || c.Status != StatusProposed || !strings.Contains(c.Diff, "- zone staff-room (Staff room): 10.20.0.0/24; no group") {
		t.Fatalf("zone with a group: %+v %v", c, err)
	}
	if _, err := s.Approve(ctx, c.ID, head, ""); err != nil {
		t.Fatal(err)
	}
	var group string
	s.db.QueryRow(`SELECT group_id FROM zones WHERE id = 'staff-room'`).Scan(&group)
	if group != "staff" {
		t.Fatalf("zone group %q", group)
	}
	// Revert restores the zone as it was; deleting tightens.
	if r, err := s.Revert(ctx, c.ID, head, "undo", "none", RiskLow); err != nil || r.Status != StatusApplied {
		t.Fatalf("revert zone: %+v %v", r, err)
	}
	s.db.QueryRow(`SELECT COALESCE(group_id, '') FROM zones WHERE id = 'staff-room'`).Scan(&group)
	if group != "" {
		t.Fatalf("zone group after revert %q", group)
	}
	if d, err := s.Propose(ctx, propose(ChangeSpec{Kind: DeleteZone, Zone: &ZoneSpec{ID: "staff-room"}}, it)); err != nil || d.Status != StatusApplied {
		t.Fatalf("delete zone: %+v %v", d, err)
	}
	bad := ZoneSpec{ID: "Bad Zone", Networks: []string{"10.0.0.5/8"}}
	if _, err := s.Propose(ctx, propose(ChangeSpec{Kind: PutZone, Zone: &bad}, it)); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("bad zone: %v", err)
	}
}
