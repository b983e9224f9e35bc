package directory

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/warden-schools/warden/internal/store"
)

// MembershipRule places people in a policy group: people of Kind whose
// year group lies within MinYear..MaxYear (pupils; nil = unbounded) and
// whose role contains Role (staff and visitors; case-insensitive, "" =
// any role) join GroupID. Rules are tried in Position order and the first
// that matches wins; a person no rule matches has no group (and gets the
// policy for unknown clients).
type MembershipRule struct {
	ID       int64
	Position int
	GroupID  string
	Kind     Kind
	MinYear  *int
	MaxYear  *int
	// Role is a case-insensitive substring of the staff role; "" = any.
	Role string
}

// Matches reports whether the rule applies to the person.
func (r MembershipRule) Matches(p Person) bool {
	if r.Kind != p.Kind {
		return false
	}
	if r.MinYear != nil && (!p.HasYear || p.Year < *r.MinYear) {
		return false
	}
	if r.MaxYear != nil && (!p.HasYear || p.Year > *r.MaxYear) {
		return false
	}
	if r.Role != "" && !strings.Contains(strings.ToLower(p.Role), strings.ToLower(r.Role)) {
		return false
	}
	return true
}

// GroupFor returns the group of the first rule (in slice order) that
// matches the person, or "" if none does. Rules from MembershipRules come
// in Position order.
func GroupFor(rules []MembershipRule, p Person) string {
	for _, r := range rules {
		if r.Matches(p) {
			return r.GroupID
		}
	}
	return ""
}

// validate checks one rule; i is its place in the list, for messages.
func (r *MembershipRule) validate(i int) error {
	r.GroupID = strings.TrimSpace(r.GroupID)
	r.Role = strings.TrimSpace(r.Role)
	if r.GroupID == "" {
		return invalidf("membership rule %d: no group", i+1)
	}
	if !r.Kind.Valid() {
		return invalidf("membership rule %d: person kind %q not recognised (want pupil, staff, visitor or parent)", i+1, r.Kind)
	}
	if r.Kind != KindPupil && (r.MinYear != nil || r.MaxYear != nil) {
		return invalidf("membership rule %d: year groups apply only to pupils", i+1)
	}
	if r.Kind == KindPupil && r.Role != "" {
		return invalidf("membership rule %d: roles apply only to staff, visitors and parents", i+1)
	}
	for _, y := range []*int{r.MinYear, r.MaxYear} {
		if y != nil && !validYear(*y) {
			return invalidf("membership rule %d: year group %d out of range (want -1 for Nursery to 13)", i+1, *y)
		}
	}
	if r.MinYear != nil && r.MaxYear != nil && *r.MinYear > *r.MaxYear {
		return invalidf("membership rule %d: from %s is after to %s", i+1, YearGroupName(*r.MinYear), YearGroupName(*r.MaxYear))
	}
	if _, err := cleanText(fmt.Sprintf("membership rule %d: role", i+1), r.Role, maxTextLen); err != nil {
		return err
	}
	return nil
}

// loadRules reads the membership rules in position order.
func loadRules(ctx context.Context, q store.Querier) ([]MembershipRule, error) {
	rows, err := q.QueryContext(ctx, "SELECT id, position, group_id, person_kind, min_year, max_year, role FROM group_rules ORDER BY position, id")
	if err != nil {
		return nil, fmt.Errorf("read membership rules: %w", err)
	}
	defer rows.Close()
	var out []MembershipRule
	for rows.Next() {
		var (
			r        MembershipRule
			kind     string
			min, max sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &r.Position, &r.GroupID, &kind, &min, &max, &r.Role); err != nil {
			return nil, fmt.Errorf("read membership rules: %w", err)
		}
		r.Kind = Kind(kind)
		if min.Valid {
			v := int(min.Int64)
			r.MinYear = &v
		}
		if max.Valid {
			v := int(max.Int64)
			r.MaxYear = &v
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read membership rules: %w", err)
	}
	return out, nil
}

// MembershipRules returns the membership rules in the order they are
// tried.
func (d *Directory) MembershipRules(ctx context.Context) ([]MembershipRule, error) {
	return loadRules(ctx, d.db)
}

// intOrNil stores an optional year.
func intOrNil(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// SetMembershipRules replaces every membership rule with rules, tried in
// slice order (Position is set to 1, 2, 3...; IDs given are ignored), and
// in the same transaction moves every person whose group is not set by
// hand to the group the new rules choose.
func (d *Directory) SetMembershipRules(ctx context.Context, actor string, rules []MembershipRule) error {
	rules = append([]MembershipRule(nil), rules...)
	for i := range rules {
		if err := rules[i].validate(i); err != nil {
			return fmt.Errorf("set membership rules: %w", err)
		}
		rules[i].Position = i + 1
	}
	err := d.db.WithTx(ctx, func(tx *store.Tx) error {
		for i, r := range rules {
			if err := checkGroup(ctx, tx, r.GroupID); err != nil {
				return fmt.Errorf("membership rule %d: %w", i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM group_rules"); err != nil {
			return fmt.Errorf("clear membership rules: %w", err)
		}
		for _, r := range rules {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO group_rules (position, group_id, person_kind, min_year, max_year, role)
				VALUES (?, ?, ?, ?, ?, ?)`), r.Position, r.GroupID, string(r.Kind), intOrNil(r.MinYear), intOrNil(r.MaxYear), r.Role); err != nil {
				return fmt.Errorf("write membership rule %d: %w", r.Position, err)
			}
		}
		moved, err := d.regroup(ctx, tx, rules)
		if err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, d.now(), actor, fmt.Sprintf("set %d membership rules; %d people moved group", len(rules), moved))
		return err
	})
	if err != nil {
		return fmt.Errorf("set membership rules: %w", err)
	}
	return nil
}

// regroup moves every person whose group is not manual to the group the
// rules choose, and returns how many moved.
func (d *Directory) regroup(ctx context.Context, q store.Querier, rules []MembershipRule) (int, error) {
	rows, err := q.QueryContext(ctx, q.Rebind("SELECT "+personColumns+" FROM people WHERE group_manual = ?"), false)
	if err != nil {
		return 0, fmt.Errorf("read people to regroup: %w", err)
	}
	type move struct {
		id    int64
		group string
	}
	var moves []move
	for rows.Next() {
		p, err := scanPerson(rows.Scan)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("read people to regroup: %w", err)
		}
		if g := GroupFor(rules, p); g != p.GroupID {
			moves = append(moves, move{p.ID, g})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read people to regroup: %w", err)
	}
	at := store.Millis(d.now())
	for _, m := range moves {
		if _, err := q.ExecContext(ctx, q.Rebind("UPDATE people SET group_id = ?, updated_at = ? WHERE id = ?"), nullString(m.group), at, m.id); err != nil {
			return 0, fmt.Errorf("regroup person %d: %w", m.id, err)
		}
	}
	return len(moves), nil
}
