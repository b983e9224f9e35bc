package policystore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
)

// ChangeKind is what a change does.
type ChangeKind string

// Change kinds.
const (
	AddException    ChangeKind = "add-exception"
	RemoveException ChangeKind = "remove-exception"
	SetCategory     ChangeKind = "set-category"
	// SetSafeSearch sets a group's safe search level (Action holds
	// "off", "moderate" or "strict"); SetMode its mode ("filter" or
	// "approved", approved sites only).
	SetSafeSearch ChangeKind = "set-safe-search"
	SetMode       ChangeKind = "set-mode"
	// AddRule adds a time and place rule (Rule) to a group; RemoveRule
	// removes one (RuleID).
	AddRule    ChangeKind = "add-rule"
	RemoveRule ChangeKind = "remove-rule"
	// SetDefault sets what a filter-mode group does with sites in no
	// category (Action); SetEducationFirst whether the education allow
	// list overrides blocked categories (Action "on" or "off").
	SetDefault        ChangeKind = "set-default-action"
	SetEducationFirst ChangeKind = "set-education-first"
	// PutZone adds or replaces a network zone (Zone); DeleteZone removes
	// one (Zone.ID).
	PutZone    ChangeKind = "put-zone"
	DeleteZone ChangeKind = "delete-zone"
)

// ZoneSpec is a network zone in a change.
type ZoneSpec struct {
	ID       string   `json:"id"`
	Name     string   `json:"name,omitempty"`
	Group    string   `json:"group,omitempty"`
	Networks []string `json:"networks,omitempty"`
}

func (z ZoneSpec) directory() (directory.Zone, error) {
	dz := directory.Zone{ID: z.ID, Name: z.Name, GroupID: z.Group}
	for _, n := range z.Networks {
		p, err := netip.ParsePrefix(strings.TrimSpace(n))
		if err != nil {
			return dz, fmt.Errorf("zone %s: %q is not a network such as 10.20.0.0/24", z.ID, n)
		}
		dz.Networks = append(dz.Networks, p)
	}
	return directory.NormalizeZone(dz)
}

func describeZone(z ZoneSpec) string {
	g := "no group"
	if z.Group != "" {
		g = "group " + z.Group
	}
	return fmt.Sprintf("zone %s (%s): %s; %s", z.ID, z.Name, strings.Join(z.Networks, " "), g)
}

// ChangeSpec is a filtering change.
type ChangeSpec struct {
	Kind ChangeKind `json:"kind"`
	// Group is the group changed; "" means every group (exceptions only).
	Group string `json:"group,omitempty"`
	// Action and Pattern are the exception to add (and Note its note), or
	// Action the category's new action.
	Action  string `json:"action,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	Note    string `json:"note,omitempty"`
	// ExceptionID is the exception to remove.
	ExceptionID int64 `json:"exception_id,omitempty"`
	// Category is the category whose action is set.
	Category string `json:"category,omitempty"`
	// Previous is the category's action before (set when proposed, for
	// the diff and for revert).
	Previous string `json:"previous,omitempty"`
	// Rule is the rule to add (and, for a removal, the rule removed, kept
	// for the diff and revert); RuleID the rule to remove.
	Rule   *RuleSpec `json:"rule,omitempty"`
	RuleID int64     `json:"rule_id,omitempty"`
	// Zone is the zone to put or delete, and PrevZone the zone it
	// replaces or deletes (for the diff and revert).
	Zone     *ZoneSpec `json:"zone,omitempty"`
	PrevZone *ZoneSpec `json:"prev_zone,omitempty"`
}

// describeRule is a rule in one line for summaries and diffs.
func describeRule(r RuleSpec) string {
	var parts []string
	for _, p := range [][2]string{{"categories", r.Categories}, {"domains", r.Domains}, {"days", r.Days}, {"zones", r.Zones}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	if r.Start != "" || r.End != "" {
		parts = append(parts, r.Start+"-"+r.End)
	}
	return fmt.Sprintf("rule %q: %s %s", r.Name, r.Action, strings.Join(parts, ", "))
}

// Risk levels of a change's assessment.
const (
	RiskLow    = "low"
	RiskMedium = "medium"
	RiskHigh   = "high"
)

// Change statuses.
const (
	StatusProposed = "proposed"
	StatusApplied  = "applied"
	StatusRejected = "rejected"
	// StatusFailed is an approved change that could no longer be applied
	// (the exception was removed meanwhile, the group deleted).
	StatusFailed = "failed"
)

// Actor is who proposes or decides a change.
type Actor struct {
	// Name is as the change log shows it (a login, "cli:root").
	Name string
	// PersonID is the person, when the actor is one (0 otherwise).
	PersonID int64
}

// Proposal is a change with the reason and risk assessment its author
// gives.
type Proposal struct {
	Spec ChangeSpec
	// Reason says why; Risk is the risk assessment and RiskLevel its
	// outcome.
	Reason, Risk, RiskLevel string
	By                      Actor
	// ReviewRequestID is the block-page request this answers, if any.
	ReviewRequestID int64
	// Reverts is the change this undoes, if any.
	Reverts int64
}

// Change is a proposal and what became of it.
type Change struct {
	ID      int64
	Spec    ChangeSpec
	Summary string
	// Diff shows the change as lines starting "- " (before) and "+ "
	// (after).
	Diff string
	// Loosens says the change lowers protection; ForPupils that the
	// group holds pupils (or it is every group, or the unknown clients').
	Loosens, ForPupils bool
	Reason, Risk       string
	RiskLevel          string
	Status             string
	ProposedBy         Actor
	ProposedAt         time.Time
	DecidedBy          Actor
	DecidedAt          time.Time
	DecisionNote       string
	// RevisionID is the revision that applied the change.
	RevisionID      int64
	Reverts         int64
	ReviewRequestID int64
}

// NeedsApproval reports whether the change waits for approval: it
// loosens protection for pupils.
func (c Change) NeedsApproval() bool { return c.Loosens && c.ForPupils }

// Limits of a proposal's text.
const (
	MaxChangeReason = 1000
	MaxChangeRisk   = 2000
)

// ErrSelfApproval means the author of a change tried to approve it.
var ErrSelfApproval = errors.New("a change must be approved by someone other than its author")

// ErrNotProposed means the change is no longer waiting for a decision.
var ErrNotProposed = errors.New("the change is not waiting for a decision")

// invalidChange is a proposal that breaks a rule, in words for people.
type invalidChange struct{ msg string }

func (e *invalidChange) Error() string        { return e.msg }
func (e *invalidChange) Is(target error) bool { return target == ErrInvalidChange }

// ErrInvalidChange marks a proposal that cannot be made as given.
var ErrInvalidChange = errors.New("invalid change")

func invalidChangef(format string, args ...any) error {
	return &invalidChange{msg: fmt.Sprintf(format, args...)}
}

// strictness orders actions: a change to a lower value loosens.
func strictness(a policy.Action) int {
	switch a {
	case policy.Block:
		return 2
	case policy.Alert:
		return 1
	}
	return 0
}

// prepare checks a proposal and completes the spec, summary, diff and
// loosening from the current state, inside tx.
func (s *Store) prepare(ctx context.Context, tx *store.Tx, p *Proposal) (Change, error) {
	p.Reason = strings.TrimSpace(p.Reason)
	p.Risk = strings.TrimSpace(p.Risk)
	switch {
	case p.Reason == "":
		return Change{}, invalidChangef("say why the change is needed")
	case p.Risk == "":
		return Change{}, invalidChangef("give the risk assessment: what could go wrong for pupils, and why it is acceptable")
	case utf8.RuneCountInString(p.Reason) > MaxChangeReason || utf8.RuneCountInString(p.Risk) > MaxChangeRisk:
		return Change{}, invalidChangef("the reason may be %d characters and the risk assessment %d", MaxChangeReason, MaxChangeRisk)
	case p.RiskLevel != RiskLow && p.RiskLevel != RiskMedium && p.RiskLevel != RiskHigh:
		return Change{}, invalidChangef("rate the risk low, medium or high")
	case strings.TrimSpace(p.By.Name) == "":
		return Change{}, invalidChangef("a change needs an author")
	}
	sp := &p.Spec
	c := Change{Reason: p.Reason, Risk: p.Risk, RiskLevel: p.RiskLevel, ProposedBy: p.By, ReviewRequestID: p.ReviewRequestID, Reverts: p.Reverts}
	scope := sp.Group
	if scope == "" {
		scope = "all groups"
	}
	switch sp.Kind {
	case AddException:
		a, err := policy.ParseAction(sp.Action)
		if err != nil || (a != policy.Allow && a != policy.Block) {
			return Change{}, invalidChangef("an exception allows or blocks")
		}
		if sp.Pattern, err = NormalizePattern(sp.Pattern); err != nil {
			return Change{}, invalidChangef("%v", err)
		}
		if sp.Group != "" {
			if err := s.groupExists(ctx, tx, sp.Group); err != nil {
				return Change{}, invalidChangef("%v", err)
			}
		}
		sp.Action = a.String()
		c.Loosens = a == policy.Allow
		c.Summary = fmt.Sprintf("%s %s for %s", map[bool]string{true: "Allow", false: "Block"}[c.Loosens], sp.Pattern, scope)
		c.Diff = fmt.Sprintf("+ %s exception %s (%s)", sp.Action, sp.Pattern, scope)
	case RemoveException:
		var gid sql.NullString
		var action, pattern string
		err := tx.QueryRowContext(ctx, tx.Rebind(`SELECT group_id, action, pattern FROM exceptions WHERE id = ?`), sp.ExceptionID).
			Scan(&gid, &action, &pattern)
		if errors.Is(err, sql.ErrNoRows) {
			return Change{}, invalidChangef("exception %d does not exist (any more)", sp.ExceptionID)
		}
		if err != nil {
			return Change{}, fmt.Errorf("read exception %d: %w", sp.ExceptionID, err)
		}
		sp.Group, sp.Action, sp.Pattern = gid.String, action, pattern
		if scope = sp.Group; scope == "" {
			scope = "all groups"
		}
		c.Loosens = action == policy.Block.String()
		c.Summary = fmt.Sprintf("Remove the %s exception %s for %s", action, pattern, scope)
		c.Diff = fmt.Sprintf("- %s exception %s (%s)", action, pattern, scope)
	case SetCategory:
		a, err := policy.ParseAction(sp.Action)
		if err != nil {
			return Change{}, invalidChangef("a category is allowed, alerted or blocked")
		}
		if err := s.checkCategoryAction(sp.Category, a); err != nil {
			return Change{}, invalidChangef("%v", err)
		}
		if sp.Group == "" {
			return Change{}, invalidChangef("say which group's category action to change")
		}
		if err := s.groupExists(ctx, tx, sp.Group); err != nil {
			return Change{}, invalidChangef("%v", err)
		}
		prev, err := s.categoryAction(ctx, tx, sp.Group, sp.Category)
		if err != nil {
			return Change{}, err
		}
		if prev == a {
			return Change{}, invalidChangef("%s is already %s for %s", sp.Category, a, sp.Group)
		}
		sp.Action, sp.Previous = a.String(), prev.String()
		c.Loosens = strictness(a) < strictness(prev)
		c.Summary = fmt.Sprintf("%s: %s %s (was %s)", sp.Group, sp.Category, a, prev)
		c.Diff = fmt.Sprintf("- %s: %s %s\n+ %s: %s %s", sp.Group, sp.Category, prev, sp.Group, sp.Category, a)
	case SetSafeSearch, SetMode:
		if sp.Group == "" {
			return Change{}, invalidChangef("say which group to change")
		}
		if err := s.groupExists(ctx, tx, sp.Group); err != nil {
			return Change{}, invalidChangef("%v", err)
		}
		col, what := "safe_search", "safe search"
		if sp.Kind == SetMode {
			col, what = "mode", "mode"
		}
		var prev string
		if err := tx.QueryRowContext(ctx, tx.Rebind(`SELECT `+col+` FROM groups WHERE id = ?`), sp.Group).Scan(&prev); err != nil {
			return Change{}, fmt.Errorf("read group %s: %w", sp.Group, err)
		}
		var oldRank, newRank int
		if sp.Kind == SetSafeSearch {
			n, err := policy.ParseSafeSearch(sp.Action)
			if err != nil {
				return Change{}, invalidChangef("safe search is off, moderate or strict")
			}
			o, _ := policy.ParseSafeSearch(prev)
			sp.Action, oldRank, newRank = n.String(), int(o), int(n)
		} else {
			n, err := policy.ParseMode(sp.Action)
			if err != nil {
				return Change{}, invalidChangef("a group's mode is filter or approved")
			}
			o, _ := policy.ParseMode(prev)
			sp.Action, oldRank, newRank = n.String(), int(o), int(n)
		}
		if sp.Action == prev {
			return Change{}, invalidChangef("%s's %s is %s already", sp.Group, what, prev)
		}
		sp.Previous = prev
		c.Loosens = newRank < oldRank
		c.Summary = fmt.Sprintf("%s: %s %s (was %s)", sp.Group, what, sp.Action, prev)
		c.Diff = fmt.Sprintf("- %s: %s %s\n+ %s: %s %s", sp.Group, what, prev, sp.Group, what, sp.Action)
	case AddRule:
		if sp.Rule == nil || sp.Group == "" {
			return Change{}, invalidChangef("give the rule and the group it is for")
		}
		if err := s.groupExists(ctx, tx, sp.Group); err != nil {
			return Change{}, invalidChangef("%v", err)
		}
		r, _, err := s.checkRule(*sp.Rule)
		if err != nil {
			return Change{}, invalidChangef("%v", err)
		}
		sp.Rule = &r
		c.Loosens = r.Action != policy.Block.String()
		c.Summary = fmt.Sprintf("%s: add %s", sp.Group, describeRule(r))
		c.Diff = fmt.Sprintf("+ %s: %s", sp.Group, describeRule(r))
	case RemoveRule:
		group, r, err := ruleByID(ctx, tx, sp.RuleID)
		if errors.Is(err, store.ErrNotFound) {
			return Change{}, invalidChangef("rule %d does not exist (any more)", sp.RuleID)
		}
		if err != nil {
			return Change{}, err
		}
		sp.Group, sp.Rule = group, &r
		c.Loosens = r.Action == policy.Block.String()
		c.Summary = fmt.Sprintf("%s: remove %s", group, describeRule(r))
		c.Diff = fmt.Sprintf("- %s: %s", group, describeRule(r))
	case SetDefault, SetEducationFirst:
		if sp.Group == "" {
			return Change{}, invalidChangef("say which group to change")
		}
		if err := s.groupExists(ctx, tx, sp.Group); err != nil {
			return Change{}, invalidChangef("%v", err)
		}
		var def string
		var edu bool
		if err := tx.QueryRowContext(ctx, tx.Rebind(`SELECT default_action, education_first FROM groups WHERE id = ?`), sp.Group).Scan(&def, &edu); err != nil {
			return Change{}, fmt.Errorf("read group %s: %w", sp.Group, err)
		}
		if sp.Kind == SetDefault {
			n, err := policy.ParseAction(sp.Action)
			if err != nil {
				return Change{}, invalidChangef("the default is allow, alert or block")
			}
			o, _ := policy.ParseAction(def)
			if n == o {
				return Change{}, invalidChangef("%s's default is %s already", sp.Group, def)
			}
			sp.Action, sp.Previous = n.String(), def
			c.Loosens = strictness(n) < strictness(o)
			c.Summary = fmt.Sprintf("%s: sites in no category %s (was %s)", sp.Group, n, def)
			c.Diff = fmt.Sprintf("- %s: default %s\n+ %s: default %s", sp.Group, def, sp.Group, n)
		} else {
			if sp.Action != "on" && sp.Action != "off" {
				return Change{}, invalidChangef("education first is on or off")
			}
			prev := map[bool]string{true: "on", false: "off"}[edu]
			if sp.Action == prev {
				return Change{}, invalidChangef("education first is %s already for %s", prev, sp.Group)
			}
			sp.Previous = prev
			c.Loosens = sp.Action == "on"
			c.Summary = fmt.Sprintf("%s: education first %s (was %s)", sp.Group, sp.Action, prev)
			c.Diff = fmt.Sprintf("- %s: education first %s\n+ %s: education first %s", sp.Group, prev, sp.Group, sp.Action)
		}
	case PutZone:
		if sp.Zone == nil {
			return Change{}, invalidChangef("give the zone")
		}
		dz, err := sp.Zone.directory()
		if err != nil {
			return Change{}, invalidChangef("%v", err)
		}
		if dz.GroupID != "" {
			if err := s.groupExists(ctx, tx, dz.GroupID); err != nil {
				return Change{}, invalidChangef("%v", err)
			}
		}
		z := zoneSpecOf(dz)
		sp.Zone, sp.Group = &z, ""
		prev, err := zoneSpec(ctx, tx, z.ID)
		if err != nil {
			return Change{}, err
		}
		sp.PrevZone = prev
		// Giving a network a group can loosen what pupils' devices there
		// get (they would otherwise be unknown clients, the strictest);
		// only naming networks (for rules) cannot.
		c.Loosens = z.Group != "" && (prev == nil || prev.Group != z.Group || !slices.Equal(prev.Networks, z.Networks))
		c.Summary = "Put " + describeZone(z)
		c.Diff = "+ " + describeZone(z)
		if prev != nil {
			c.Diff = "- " + describeZone(*prev) + "\n" + c.Diff
		}
	case DeleteZone:
		if sp.Zone == nil {
			return Change{}, invalidChangef("give the zone")
		}
		prev, err := zoneSpec(ctx, tx, sp.Zone.ID)
		if err != nil {
			return Change{}, err
		}
		if prev == nil {
			return Change{}, invalidChangef("zone %s does not exist (any more)", sp.Zone.ID)
		}
		sp.PrevZone, sp.Group = prev, ""
		// Its clients become unknown clients (the strictest policy), and
		// a zone rules use cannot be deleted: never a loosening.
		c.Summary = "Delete " + describeZone(*prev)
		c.Diff = "- " + describeZone(*prev)
	default:
		return Change{}, invalidChangef("unknown kind of change %q", sp.Kind)
	}
	forPupils, err := s.forPupils(ctx, tx, sp.Group)
	if err != nil {
		return Change{}, err
	}
	c.Spec, c.ForPupils = *sp, forPupils
	return c, nil
}

// categoryAction is a group's action for a category: its own row, else
// the taxonomy's starting action for pupils (as the policy compiles it).
func (s *Store) categoryAction(ctx context.Context, tx *store.Tx, group, category string) (policy.Action, error) {
	var a string
	err := tx.QueryRowContext(ctx, tx.Rebind(`SELECT action FROM group_categories WHERE group_id = ? AND category = ?`), group, category).Scan(&a)
	if errors.Is(err, sql.ErrNoRows) {
		cat, _ := s.tax.Category(category)
		return policy.ParseAction(cat.Pupils)
	}
	if err != nil {
		return 0, fmt.Errorf("read %s for %s: %w", category, group, err)
	}
	return policy.ParseAction(a)
}

// forPupils reports whether a change to group reaches pupils: every
// group ("") does, the unknown clients' group does, and so does a group
// that pupils belong to or that a membership rule gives pupils.
func (s *Store) forPupils(ctx context.Context, tx *store.Tx, group string) (bool, error) {
	if group == "" {
		return true, nil
	}
	var n int
	err := tx.QueryRowContext(ctx, tx.Rebind(`SELECT
		(SELECT COUNT(*) FROM settings WHERE key = ? AND value = ?) +
		(SELECT COUNT(*) FROM group_rules WHERE group_id = ? AND person_kind = 'pupil') +
		(SELECT COUNT(*) FROM people WHERE group_id = ? AND kind = 'pupil')`), SettingUnknownGroup, group, group, group).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("who is in group %s: %w", group, err)
	}
	return n > 0 || group == policy.UnknownGroupID, nil
}

// apply makes the change inside tx and returns the revision.
func (s *Store) apply(ctx context.Context, tx *store.Tx, c Change, actor string) (int64, error) {
	sp := c.Spec
	switch sp.Kind {
	case AddException:
		a, _ := policy.ParseAction(sp.Action)
		_, rev, err := s.addExceptionTx(ctx, tx, actor, sp.Group, policy.Exception{Action: a, Pattern: sp.Pattern, Note: sp.Note})
		return rev, err
	case RemoveException:
		return s.removeExceptionTx(ctx, tx, actor, sp.ExceptionID)
	case SetCategory:
		a, _ := policy.ParseAction(sp.Action)
		return s.setCategoryTx(ctx, tx, actor, sp.Group, sp.Category, a)
	case SetDefault:
		return s.setGroupColumn(ctx, tx, actor, sp.Group, "default_action", sp.Action)
	case SetEducationFirst:
		return s.setGroupColumn(ctx, tx, actor, sp.Group, "education_first", sp.Action == "on")
	case PutZone:
		dz, err := sp.Zone.directory()
		if err != nil {
			return 0, err
		}
		if err := directory.PutZoneTx(ctx, tx, s.now(), actor, dz); err != nil {
			return 0, err
		}
		return store.CurrentRevision(ctx, tx)
	case DeleteZone:
		if err := directory.DeleteZoneTx(ctx, tx, s.now(), actor, sp.Zone.ID); err != nil {
			return 0, err
		}
		return store.CurrentRevision(ctx, tx)
	case AddRule:
		r, pr, err := s.checkRule(*sp.Rule)
		if err != nil {
			return 0, err
		}
		_, rev, err := s.addRuleTx(ctx, tx, actor, sp.Group, r, pr)
		return rev, err
	case RemoveRule:
		return s.removeRuleTx(ctx, tx, actor, sp.RuleID)
	case SetSafeSearch, SetMode:
		col := map[ChangeKind]string{SetSafeSearch: "safe_search", SetMode: "mode"}[sp.Kind]
		return s.setGroupColumn(ctx, tx, actor, sp.Group, col, sp.Action)
	}
	return 0, fmt.Errorf("unknown kind of change %q", sp.Kind)
}

// setGroupColumn sets one of a group's settings inside tx and returns the
// revision. col is one of the fixed column names above.
func (s *Store) setGroupColumn(ctx context.Context, tx *store.Tx, actor, group, col string, v any) (int64, error) {
	res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE groups SET `+col+` = ?, updated_at = ? WHERE id = ?`), v, store.Millis(s.now()), group)
	if err != nil {
		return 0, fmt.Errorf("change group %s: %w", group, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, fmt.Errorf("group %s: %w", group, store.ErrNotFound)
	}
	return store.AddRevision(ctx, tx, s.now(), actor, fmt.Sprintf("group %s: %s -> %v", group, col, v))
}

// zoneSpecOf is a directory zone as a change holds it.
func zoneSpecOf(z directory.Zone) ZoneSpec {
	out := ZoneSpec{ID: z.ID, Name: z.Name, Group: z.GroupID}
	for _, p := range z.Networks {
		out.Networks = append(out.Networks, p.String())
	}
	return out
}

// zoneSpec reads a stored zone (nil if there is none).
func zoneSpec(ctx context.Context, tx *store.Tx, id string) (*ZoneSpec, error) {
	var z ZoneSpec
	var group sql.NullString
	err := tx.QueryRowContext(ctx, tx.Rebind(`SELECT id, name, group_id FROM zones WHERE id = ?`), id).Scan(&z.ID, &z.Name, &group)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read zone %s: %w", id, err)
	}
	z.Group = group.String
	rows, err := tx.QueryContext(ctx, tx.Rebind(`SELECT cidr FROM zone_networks WHERE zone_id = ? ORDER BY cidr`), id)
	if err != nil {
		return nil, fmt.Errorf("read zone %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		z.Networks = append(z.Networks, c)
	}
	// The same order as directory's normalised zones.
	dz, err := z.directory()
	if err != nil {
		return nil, err
	}
	z = zoneSpecOf(dz)
	return &z, rows.Err()
}

// Propose records a change. One that does not need approval (it
// tightens, or reaches no pupils) is applied at once, in the same
// transaction, and logged the same way; one that loosens protection for
// pupils waits for Approve.
func (s *Store) Propose(ctx context.Context, p Proposal) (Change, error) {
	var c Change
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if c, err = s.prepare(ctx, tx, &p); err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		c.ProposedAt, c.Status = now, StatusProposed
		if !c.NeedsApproval() {
			if c.RevisionID, err = s.apply(ctx, tx, c, p.By.Name); err != nil {
				return err
			}
			c.Status, c.DecidedBy, c.DecidedAt = StatusApplied, p.By, now
			c.DecisionNote = "applied at once: it does not loosen protection for pupils"
		}
		c.ID, err = insertChange(ctx, tx, c)
		return err
	})
	return c, err
}

func insertChange(ctx context.Context, tx *store.Tx, c Change) (int64, error) {
	payload, err := json.Marshal(c.Spec)
	if err != nil {
		return 0, err
	}
	var id int64
	err = tx.QueryRowContext(ctx, tx.Rebind(`INSERT INTO changes (kind, group_id, payload, summary, diff, loosens, for_pupils,
		reason, risk, risk_level, status, proposed_by, proposed_by_person, proposed_at, decided_by, decided_by_person,
		decided_at, decision_note, revision_id, reverts_id, review_request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		string(c.Spec.Kind), nullString(c.Spec.Group), string(payload), c.Summary, c.Diff, c.Loosens, c.ForPupils,
		c.Reason, c.Risk, c.RiskLevel, c.Status, c.ProposedBy.Name, nullInt(c.ProposedBy.PersonID), store.Millis(c.ProposedAt),
		c.DecidedBy.Name, nullInt(c.DecidedBy.PersonID), nullTime(c.DecidedAt), c.DecisionNote, nullInt(c.RevisionID),
		nullInt(c.Reverts), nullInt(c.ReviewRequestID)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record change: %w", err)
	}
	return id, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return store.Millis(t)
}

// Approve applies a proposed change on the word of by, who must not be
// its author (the caller checks by's role may approve). If the change can
// no longer be applied, it is marked failed with the reason, and the
// error says so.
func (s *Store) Approve(ctx context.Context, id int64, by Actor, note string) (Change, error) {
	return s.decide(ctx, id, by, note, true)
}

// Reject declines a proposed change with a note saying why.
func (s *Store) Reject(ctx context.Context, id int64, by Actor, note string) (Change, error) {
	if strings.TrimSpace(note) == "" {
		return Change{}, invalidChangef("say why the change is declined")
	}
	return s.decide(ctx, id, by, note, false)
}

func (s *Store) decide(ctx context.Context, id int64, by Actor, note string, approve bool) (Change, error) {
	note = strings.TrimSpace(note)
	if utf8.RuneCountInString(note) > MaxChangeReason {
		return Change{}, invalidChangef("the note may be %d characters", MaxChangeReason)
	}
	var c Change
	var applyErr error
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if c, err = getChange(ctx, tx, id); err != nil {
			return err
		}
		if c.Status != StatusProposed {
			return fmt.Errorf("change %d is %s: %w", id, c.Status, ErrNotProposed)
		}
		if (by.PersonID != 0 && by.PersonID == c.ProposedBy.PersonID) || strings.EqualFold(by.Name, c.ProposedBy.Name) {
			return ErrSelfApproval
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		c.DecidedBy, c.DecidedAt, c.DecisionNote, c.Status = by, now, note, StatusRejected
		if approve {
			c.Status = StatusApplied
			if c.RevisionID, applyErr = s.applySavepoint(ctx, tx, c, by.Name); applyErr != nil {
				c.Status, c.RevisionID = StatusFailed, 0
				c.DecisionNote = strings.TrimSpace(note + " (could not be applied: " + applyErr.Error() + ")")
			}
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`UPDATE changes SET status = ?, decided_by = ?, decided_by_person = ?, decided_at = ?,
			decision_note = ?, revision_id = ? WHERE id = ?`), c.Status, by.Name, nullInt(by.PersonID), store.Millis(now), c.DecisionNote,
			nullInt(c.RevisionID), id)
		return err
	})
	if err != nil {
		return Change{}, err
	}
	if applyErr != nil {
		return c, fmt.Errorf("change %d could not be applied: %w", id, applyErr)
	}
	return c, nil
}

// applySavepoint applies c so that a failure leaves the transaction
// usable (to record the failure).
func (s *Store) applySavepoint(ctx context.Context, tx *store.Tx, c Change, actor string) (int64, error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT apply_change"); err != nil {
		return 0, err
	}
	rev, err := s.apply(ctx, tx, c, actor)
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT apply_change"); rerr != nil {
			return 0, errors.Join(err, rerr)
		}
		return 0, err
	}
	_, err = tx.ExecContext(ctx, "RELEASE SAVEPOINT apply_change")
	return rev, err
}

// Revert proposes the change that undoes applied change id: removing an
// exception it added, restoring one it removed, or the category's
// previous action. Like any change, it applies at once unless it loosens
// protection for pupils.
func (s *Store) Revert(ctx context.Context, id int64, by Actor, reason, risk, riskLevel string) (Change, error) {
	c, err := s.GetChange(ctx, id)
	if err != nil {
		return Change{}, err
	}
	if c.Status != StatusApplied {
		return Change{}, invalidChangef("only an applied change can be reverted; change %d is %s", id, c.Status)
	}
	inv := ChangeSpec{Group: c.Spec.Group}
	switch c.Spec.Kind {
	case AddException:
		var exID int64
		err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT id FROM exceptions WHERE COALESCE(group_id, '') = ? AND action = ? AND pattern = ?`),
			c.Spec.Group, c.Spec.Action, c.Spec.Pattern).Scan(&exID)
		if errors.Is(err, sql.ErrNoRows) {
			return Change{}, invalidChangef("the exception %s is gone already", c.Spec.Pattern)
		}
		if err != nil {
			return Change{}, err
		}
		inv.Kind, inv.ExceptionID = RemoveException, exID
	case RemoveException:
		inv.Kind, inv.Action, inv.Pattern, inv.Note = AddException, c.Spec.Action, c.Spec.Pattern, c.Spec.Note
	case SetCategory:
		inv.Kind, inv.Category, inv.Action = SetCategory, c.Spec.Category, c.Spec.Previous
	case SetSafeSearch, SetMode, SetDefault, SetEducationFirst:
		inv.Kind, inv.Action = c.Spec.Kind, c.Spec.Previous
	case PutZone:
		if c.Spec.PrevZone != nil {
			inv.Kind, inv.Zone = PutZone, c.Spec.PrevZone
		} else {
			inv.Kind, inv.Zone = DeleteZone, &ZoneSpec{ID: c.Spec.Zone.ID}
		}
	case DeleteZone:
		inv.Kind, inv.Zone = PutZone, c.Spec.PrevZone
	case AddRule:
		r := c.Spec.Rule
		var id int64
		err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT id FROM rules WHERE group_id = ? AND name = ? AND action = ? AND categories = ?
			AND domains = ? AND days = ? AND start_time = ? AND end_time = ? AND zones = ? ORDER BY id DESC LIMIT 1`),
			c.Spec.Group, r.Name, r.Action, r.Categories, r.Domains, r.Days, r.Start, r.End, r.Zones).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return Change{}, invalidChangef("the rule %q is gone already", r.Name)
		}
		if err != nil {
			return Change{}, err
		}
		inv.Kind, inv.RuleID = RemoveRule, id
	case RemoveRule:
		r := *c.Spec.Rule
		r.ID = 0
		inv.Kind, inv.Rule = AddRule, &r
	}
	return s.Propose(ctx, Proposal{Spec: inv, Reason: reason, Risk: risk, RiskLevel: riskLevel, By: by, Reverts: id})
}

const changeColumns = `id, payload, summary, diff, loosens, for_pupils, reason, risk, risk_level, status, proposed_by,
	proposed_by_person, proposed_at, decided_by, decided_by_person, decided_at, decision_note, revision_id, reverts_id, review_request_id`

func scanChange(scan func(...any) error) (Change, error) {
	var (
		c                                 Change
		payload                           string
		proposedAt                        int64
		proposer, decider, decidedAt, rev sql.NullInt64
		reverts, request                  sql.NullInt64
	)
	if err := scan(&c.ID, &payload, &c.Summary, &c.Diff, &c.Loosens, &c.ForPupils, &c.Reason, &c.Risk, &c.RiskLevel, &c.Status,
		&c.ProposedBy.Name, &proposer, &proposedAt, &c.DecidedBy.Name, &decider, &decidedAt, &c.DecisionNote, &rev, &reverts, &request); err != nil {
		return Change{}, err
	}
	if err := json.Unmarshal([]byte(payload), &c.Spec); err != nil {
		return Change{}, fmt.Errorf("change %d: %w", c.ID, err)
	}
	c.ProposedBy.PersonID, c.DecidedBy.PersonID = proposer.Int64, decider.Int64
	c.ProposedAt = store.FromMillis(proposedAt)
	if decidedAt.Valid {
		c.DecidedAt = store.FromMillis(decidedAt.Int64)
	}
	c.RevisionID, c.Reverts, c.ReviewRequestID = rev.Int64, reverts.Int64, request.Int64
	return c, nil
}

func getChange(ctx context.Context, q store.Querier, id int64) (Change, error) {
	c, err := scanChange(q.QueryRowContext(ctx, q.Rebind(`SELECT `+changeColumns+` FROM changes WHERE id = ?`), id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Change{}, fmt.Errorf("change %d: %w", id, store.ErrNotFound)
	}
	return c, err
}

// GetChange returns one change.
func (s *Store) GetChange(ctx context.Context, id int64) (Change, error) {
	return getChange(ctx, s.db, id)
}

// Changes returns changes newest first: those with status (all when
// ""), at most limit (default 50).
func (s *Store) Changes(ctx context.Context, status string, limit int) ([]Change, error) {
	if limit <= 0 {
		limit = 50
	}
	q := `SELECT ` + changeColumns + ` FROM changes`
	args := []any{}
	if status != "" {
		q += ` WHERE status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		c, err := scanChange(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
