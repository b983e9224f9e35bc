// Package policystore keeps the policy in the store: groups with their
// mode, safe search and category actions, allow and block exceptions,
// time and place rules, and the school-wide settings the policy needs
// (time zone, the group for unknown clients). Every change adds a
// revision in the same transaction, so the policy version moves exactly
// when the policy does.
package policystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
)

// Setting keys.
const (
	SettingTimeZone     = "timezone"
	SettingUnknownGroup = "unknown_group"
	SettingSchoolName   = "school_name"
)

// DefaultTimeZone is the school time zone unless set otherwise.
const DefaultTimeZone = "Europe/London"

// Store reads and writes the policy.
type Store struct {
	db  *store.DB
	tax *lists.Taxonomy
	now func() time.Time
}

// New returns a Store.
func New(db *store.DB, tax *lists.Taxonomy, now func() time.Time) *Store {
	return &Store{db: db, tax: tax, now: now}
}

// Settings are the school-wide settings the policy uses.
type Settings struct {
	SchoolName   string
	TimeZone     string
	UnknownGroup string
}

// Policy is everything policystore holds, ready for policy.Compile.
type Policy struct {
	Version    int64
	Settings   Settings
	Location   *time.Location
	Groups     []policy.Group
	Exceptions []policy.Exception // school-wide
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidateGroupID checks a group id: lower-case letters, digits and '-'.
func ValidateGroupID(id string) error {
	if !slugPattern.MatchString(id) {
		return fmt.Errorf("bad group id %q: use lower-case letters, digits and '-' (e.g. key-stage-2)", id)
	}
	return nil
}

// Load reads the whole policy. Rows that fail to parse are errors, so a
// damaged policy is never half-applied.
func (s *Store) Load(ctx context.Context) (Policy, error) {
	var p Policy
	var err error
	if p.Version, err = store.CurrentRevision(ctx, s.db); err != nil {
		return p, err
	}
	if p.Settings, err = s.Settings(ctx); err != nil {
		return p, err
	}
	if p.Location, err = time.LoadLocation(p.Settings.TimeZone); err != nil {
		return p, fmt.Errorf("school time zone %q: %w", p.Settings.TimeZone, err)
	}
	groups, err := s.loadGroups(ctx)
	if err != nil {
		return p, err
	}
	byID := map[string]*policy.Group{}
	for i := range groups {
		byID[groups[i].ID] = &groups[i]
	}
	if err := s.loadCategories(ctx, byID); err != nil {
		return p, err
	}
	if p.Exceptions, err = s.loadExceptions(ctx, byID); err != nil {
		return p, err
	}
	if err := s.loadRules(ctx, byID); err != nil {
		return p, err
	}
	p.Groups = groups
	return p, nil
}

func (s *Store) loadGroups(ctx context.Context) ([]policy.Group, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, mode, safe_search, default_action, education_first
		FROM groups ORDER BY position, id`)
	if err != nil {
		return nil, fmt.Errorf("load groups: %w", err)
	}
	defer rows.Close()
	var out []policy.Group
	for rows.Next() {
		var g policy.Group
		var mode, safe, def string
		if err := rows.Scan(&g.ID, &g.Name, &mode, &safe, &def, &g.EducationFirst); err != nil {
			return nil, fmt.Errorf("load groups: %w", err)
		}
		if g.Mode, err = policy.ParseMode(mode); err != nil {
			return nil, fmt.Errorf("group %s: %w", g.ID, err)
		}
		if g.SafeSearch, err = policy.ParseSafeSearch(safe); err != nil {
			return nil, fmt.Errorf("group %s: %w", g.ID, err)
		}
		if g.DefaultAction, err = policy.ParseAction(def); err != nil {
			return nil, fmt.Errorf("group %s: %w", g.ID, err)
		}
		g.Categories = map[string]policy.Action{}
		out = append(out, g)
	}
	return out, rows.Err()
}

func (s *Store) loadCategories(ctx context.Context, byID map[string]*policy.Group) error {
	rows, err := s.db.QueryContext(ctx, "SELECT group_id, category, action FROM group_categories")
	if err != nil {
		return fmt.Errorf("load category actions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var gid, cat, action string
		if err := rows.Scan(&gid, &cat, &action); err != nil {
			return fmt.Errorf("load category actions: %w", err)
		}
		a, err := policy.ParseAction(action)
		if err != nil {
			return fmt.Errorf("group %s category %s: %w", gid, cat, err)
		}
		if g := byID[gid]; g != nil {
			g.Categories[cat] = a
		}
	}
	return rows.Err()
}

func (s *Store) loadExceptions(ctx context.Context, byID map[string]*policy.Group) ([]policy.Exception, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, group_id, action, pattern, note FROM exceptions ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("load exceptions: %w", err)
	}
	defer rows.Close()
	var global []policy.Exception
	for rows.Next() {
		var e policy.Exception
		var gid sql.NullString
		var action string
		if err := rows.Scan(&e.ID, &gid, &action, &e.Pattern, &e.Note); err != nil {
			return nil, fmt.Errorf("load exceptions: %w", err)
		}
		if e.Action, err = policy.ParseAction(action); err != nil {
			return nil, fmt.Errorf("exception %d: %w", e.ID, err)
		}
		if !gid.Valid {
			global = append(global, e)
		} else if g := byID[gid.String]; g != nil {
			g.Exceptions = append(g.Exceptions, e)
		}
	}
	return global, rows.Err()
}

func (s *Store) loadRules(ctx context.Context, byID map[string]*policy.Group) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, group_id, name, action, categories, domains, days, start_time, end_time, zones
		FROM rules ORDER BY group_id, position, id`)
	if err != nil {
		return fmt.Errorf("load rules: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r RuleSpec
		var gid string
		if err := rows.Scan(&r.ID, &gid, &r.Name, &r.Action, &r.Categories, &r.Domains, &r.Days, &r.Start, &r.End, &r.Zones); err != nil {
			return fmt.Errorf("load rules: %w", err)
		}
		pr, err := r.Rule()
		if err != nil {
			return fmt.Errorf("group %s rule %d: %w", gid, r.ID, err)
		}
		if g := byID[gid]; g != nil {
			g.Rules = append(g.Rules, pr)
		}
	}
	return rows.Err()
}

// Settings reads the school-wide settings, with defaults.
func (s *Store) Settings(ctx context.Context) (Settings, error) {
	st := Settings{TimeZone: DefaultTimeZone}
	rows, err := s.db.QueryContext(ctx, "SELECT key, value FROM settings")
	if err != nil {
		return st, fmt.Errorf("load settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return st, fmt.Errorf("load settings: %w", err)
		}
		switch k {
		case SettingTimeZone:
			st.TimeZone = v
		case SettingUnknownGroup:
			st.UnknownGroup = v
		case SettingSchoolName:
			st.SchoolName = v
		}
	}
	return st, rows.Err()
}

// SetSetting changes a school-wide setting after checking it.
func (s *Store) SetSetting(ctx context.Context, actor, key, value string) error {
	switch key {
	case SettingTimeZone:
		if _, err := time.LoadLocation(value); err != nil || value == "" || value == "Local" {
			return fmt.Errorf("unknown time zone %q (use an IANA name such as Europe/London)", value)
		}
	case SettingUnknownGroup:
		if value != "" {
			if err := s.groupExists(ctx, s.db, value); err != nil {
				return err
			}
		}
	case SettingSchoolName:
		value = strings.TrimSpace(value)
	default:
		return fmt.Errorf("unknown setting %q", key)
	}
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
			key, value, store.Millis(s.now()))
		if err != nil {
			return fmt.Errorf("set %s: %w", key, err)
		}
		_, err = store.AddRevision(ctx, tx, s.now(), actor, fmt.Sprintf("setting %s = %q", key, value))
		return err
	})
}

func (s *Store) groupExists(ctx context.Context, q store.Querier, id string) error {
	var one int
	err := q.QueryRowContext(ctx, q.Rebind("SELECT 1 FROM groups WHERE id = ?"), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("group %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read group %s: %w", id, err)
	}
	return nil
}

// GroupSpec is a group's own settings, as PutGroup writes them.
type GroupSpec struct {
	ID             string
	Name           string
	Description    string
	Mode           policy.Mode
	SafeSearch     policy.SafeSearch
	DefaultAction  policy.Action
	EducationFirst bool
	Position       int
	// Categories replaces the group's category actions when non-nil.
	Categories map[string]policy.Action
}

// PutGroup creates or updates a group and, if spec.Categories is set,
// replaces its category actions.
func (s *Store) PutGroup(ctx context.Context, actor string, spec GroupSpec) error {
	if err := ValidateGroupID(spec.ID); err != nil {
		return err
	}
	if spec.Name == "" {
		spec.Name = spec.ID
	}
	if spec.Mode > policy.ModeApproved || spec.SafeSearch > policy.SafeSearchStrict || spec.DefaultAction > policy.Block {
		return fmt.Errorf("group %s: bad mode, safe search level or default action", spec.ID)
	}
	for c, a := range spec.Categories {
		cat, ok := s.tax.Category(c)
		if !ok {
			return fmt.Errorf("group %s: unknown category %q", spec.ID, c)
		}
		if cat.Kind == lists.KindMandatory && a != policy.Block {
			return fmt.Errorf("group %s: %s is always blocked", spec.ID, c)
		}
	}
	now := store.Millis(s.now())
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO groups (id, name, description, mode, safe_search, default_action, education_first, position, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, mode = excluded.mode,
				safe_search = excluded.safe_search, default_action = excluded.default_action,
				education_first = excluded.education_first, position = excluded.position, updated_at = excluded.updated_at`),
			spec.ID, spec.Name, spec.Description, spec.Mode.String(), spec.SafeSearch.String(), spec.DefaultAction.String(),
			spec.EducationFirst, spec.Position, now, now)
		if err != nil {
			return fmt.Errorf("write group %s: %w", spec.ID, err)
		}
		if spec.Categories != nil {
			if _, err := tx.ExecContext(ctx, tx.Rebind("DELETE FROM group_categories WHERE group_id = ?"), spec.ID); err != nil {
				return fmt.Errorf("write group %s categories: %w", spec.ID, err)
			}
			for c, a := range spec.Categories {
				if _, err := tx.ExecContext(ctx, tx.Rebind("INSERT INTO group_categories (group_id, category, action) VALUES (?, ?, ?)"),
					spec.ID, c, a.String()); err != nil {
					return fmt.Errorf("write group %s category %s: %w", spec.ID, c, err)
				}
			}
		}
		_, err = store.AddRevision(ctx, tx, s.now(), actor, "group "+spec.ID+" saved")
		return err
	})
}

// SetCategoryAction changes one category's action for a group.
func (s *Store) SetCategoryAction(ctx context.Context, actor, groupID, category string, a policy.Action) error {
	if err := s.checkCategoryAction(category, a); err != nil {
		return err
	}
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := s.setCategoryTx(ctx, tx, actor, groupID, category, a)
		return err
	})
}

func (s *Store) checkCategoryAction(category string, a policy.Action) error {
	cat, ok := s.tax.Category(category)
	if !ok {
		return fmt.Errorf("unknown category %q", category)
	}
	if cat.Kind == lists.KindMandatory && a != policy.Block {
		return fmt.Errorf("%s is always blocked", category)
	}
	return nil
}

// setCategoryTx sets a category's action inside tx and returns the
// revision.
func (s *Store) setCategoryTx(ctx context.Context, tx *store.Tx, actor, groupID, category string, a policy.Action) (int64, error) {
	if err := s.groupExists(ctx, tx, groupID); err != nil {
		return 0, err
	}
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO group_categories (group_id, category, action) VALUES (?, ?, ?)
		ON CONFLICT (group_id, category) DO UPDATE SET action = excluded.action`), groupID, category, a.String())
	if err != nil {
		return 0, fmt.Errorf("set %s for %s: %w", category, groupID, err)
	}
	return store.AddRevision(ctx, tx, s.now(), actor, fmt.Sprintf("group %s: %s -> %s", groupID, category, a))
}

// AddException adds an allow or block exception for a group, or for every
// group when groupID is empty.
func (s *Store) AddException(ctx context.Context, actor, groupID string, e policy.Exception) (int64, error) {
	var id int64
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		id, _, err = s.addExceptionTx(ctx, tx, actor, groupID, e)
		return err
	})
	return id, err
}

// addExceptionTx adds an exception inside tx and returns its id and the
// revision.
func (s *Store) addExceptionTx(ctx context.Context, tx *store.Tx, actor, groupID string, e policy.Exception) (int64, int64, error) {
	if e.Action != policy.Allow && e.Action != policy.Block {
		return 0, 0, errors.New("an exception allows or blocks")
	}
	pattern, err := NormalizePattern(e.Pattern)
	if err != nil {
		return 0, 0, err
	}
	var gid any
	if groupID != "" {
		if err := s.groupExists(ctx, tx, groupID); err != nil {
			return 0, 0, err
		}
		gid = groupID
	}
	var id int64
	err = tx.QueryRowContext(ctx, tx.Rebind(`INSERT INTO exceptions (group_id, action, pattern, note, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), gid, e.Action.String(), pattern, e.Note, actor, store.Millis(s.now())).Scan(&id)
	if store.IsUniqueViolation(err) {
		return 0, 0, fmt.Errorf("%s exception for %s: %w", e.Action, pattern, store.ErrConflict)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("add exception: %w", err)
	}
	scope := groupID
	if scope == "" {
		scope = "all groups"
	}
	rev, err := store.AddRevision(ctx, tx, s.now(), actor, fmt.Sprintf("%s exception %s for %s", e.Action, pattern, scope))
	return id, rev, err
}

// ExceptionRecord is an exception with its scope and who made it.
type ExceptionRecord struct {
	policy.Exception
	// Group is the group's id, "" for an exception for every group.
	Group     string
	CreatedBy string
	CreatedAt time.Time
}

// Exceptions returns every exception, oldest first.
func (s *Store) Exceptions(ctx context.Context) ([]ExceptionRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, group_id, action, pattern, note, created_by, created_at FROM exceptions ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("read exceptions: %w", err)
	}
	defer rows.Close()
	var out []ExceptionRecord
	for rows.Next() {
		var r ExceptionRecord
		var gid sql.NullString
		var action string
		var at int64
		if err := rows.Scan(&r.ID, &gid, &action, &r.Pattern, &r.Note, &r.CreatedBy, &at); err != nil {
			return nil, fmt.Errorf("read exceptions: %w", err)
		}
		if r.Action, err = policy.ParseAction(action); err != nil {
			return nil, fmt.Errorf("exception %d: %w", r.ID, err)
		}
		r.Group, r.CreatedAt = gid.String, store.FromMillis(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read exceptions: %w", err)
	}
	return out, nil
}

// NormalizePattern checks and normalises an exception pattern: a domain
// or a URL prefix.
func NormalizePattern(p string) (string, error) {
	p = strings.TrimSpace(p)
	if strings.ContainsAny(p, "/?") {
		k, err := lists.NormalizeURL(p)
		if err != nil {
			return "", fmt.Errorf("exception %q: %w", p, err)
		}
		if k.PathQuery() == "/" && k.Port() == "" {
			return k.Host(), nil
		}
		return string(k), nil
	}
	h, err := lists.NormalizeHost(p)
	if err != nil {
		return "", fmt.Errorf("exception %q: %w", p, err)
	}
	return h, nil
}

// RemoveException deletes an exception.
func (s *Store) RemoveException(ctx context.Context, actor string, id int64) error {
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := s.removeExceptionTx(ctx, tx, actor, id)
		return err
	})
}

// removeExceptionTx deletes an exception inside tx and returns the
// revision.
func (s *Store) removeExceptionTx(ctx context.Context, tx *store.Tx, actor string, id int64) (int64, error) {
	var pattern string
	err := tx.QueryRowContext(ctx, tx.Rebind("DELETE FROM exceptions WHERE id = ? RETURNING pattern"), id).Scan(&pattern)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("exception %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("remove exception %d: %w", id, err)
	}
	return store.AddRevision(ctx, tx, s.now(), actor, "exception "+pattern+" removed")
}

// RuleSpec is a rule as stored: lists are space-separated text.
type RuleSpec struct {
	ID         int64
	Name       string
	Action     string
	Categories string
	Domains    string
	Days       string
	Start      string
	End        string
	Zones      string
}

// Rule parses the stored form.
func (r RuleSpec) Rule() (policy.Rule, error) {
	pr := policy.Rule{ID: r.ID, Name: r.Name, Categories: strings.Fields(r.Categories), Domains: strings.Fields(r.Domains), Zones: strings.Fields(r.Zones)}
	var err error
	if pr.Action, err = policy.ParseAction(r.Action); err != nil {
		return pr, err
	}
	if pr.Schedule, err = policy.ParseSchedule(r.Days, r.Start, r.End); err != nil {
		return pr, err
	}
	return pr, nil
}

// AddRule appends a rule to a group's rules after checking it.
func (s *Store) AddRule(ctx context.Context, actor, groupID string, r RuleSpec) (int64, error) {
	r, pr, err := s.checkRule(r)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.db.WithTx(ctx, func(tx *store.Tx) error {
		id, _, err = s.addRuleTx(ctx, tx, actor, groupID, r, pr)
		return err
	})
	return id, err
}

// checkRule checks a rule and returns it in canonical form.
func (s *Store) checkRule(r RuleSpec) (RuleSpec, policy.Rule, error) {
	pr, err := r.Rule()
	if err != nil {
		return r, pr, fmt.Errorf("rule %q: %w", r.Name, err)
	}
	if strings.TrimSpace(r.Name) == "" {
		return r, pr, errors.New("a rule needs a name")
	}
	for _, c := range pr.Categories {
		cat, ok := s.tax.Category(c)
		if !ok {
			return r, pr, fmt.Errorf("rule %q: unknown category %q", r.Name, c)
		}
		if cat.Kind == lists.KindMandatory {
			return r, pr, fmt.Errorf("rule %q: %s is always blocked", r.Name, c)
		}
	}
	for i, d := range pr.Domains {
		h, err := lists.NormalizeHost(d)
		if err != nil {
			return r, pr, fmt.Errorf("rule %q: domain %q: %w", r.Name, d, err)
		}
		pr.Domains[i] = h
	}
	// Store the schedule in its canonical form.
	if !pr.Schedule.Always() {
		r.Days = policy.FormatDays(pr.Schedule.Days)
		r.Start, r.End = policy.FormatClock(pr.Schedule.Start), policy.FormatClock(pr.Schedule.End)
	}
	r.Action, r.Categories, r.Domains, r.Zones = pr.Action.String(), strings.Join(pr.Categories, " "), strings.Join(pr.Domains, " "), strings.Join(pr.Zones, " ")
	return r, pr, nil
}

// addRuleTx adds a checked rule inside tx and returns its id and the
// revision.
func (s *Store) addRuleTx(ctx context.Context, tx *store.Tx, actor, groupID string, r RuleSpec, pr policy.Rule) (int64, int64, error) {
	if err := s.groupExists(ctx, tx, groupID); err != nil {
		return 0, 0, err
	}
	for _, z := range pr.Zones {
		var one int
		if err := tx.QueryRowContext(ctx, tx.Rebind("SELECT 1 FROM zones WHERE id = ?"), z).Scan(&one); err != nil {
			return 0, 0, fmt.Errorf("rule %q: zone %s: %w", r.Name, z, store.ErrNotFound)
		}
	}
	now := store.Millis(s.now())
	var id int64
	err := tx.QueryRowContext(ctx, tx.Rebind(`INSERT INTO rules (group_id, position, name, action, categories, domains, days, start_time, end_time, zones, created_at, updated_at)
		VALUES (?, (SELECT COALESCE(MAX(position), 0) + 1 FROM rules WHERE group_id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		groupID, groupID, r.Name, r.Action, r.Categories, r.Domains, r.Days, r.Start, r.End, r.Zones, now, now).Scan(&id)
	if err != nil {
		return 0, 0, fmt.Errorf("add rule: %w", err)
	}
	rev, err := store.AddRevision(ctx, tx, s.now(), actor, fmt.Sprintf("group %s: rule %q added", groupID, r.Name))
	return id, rev, err
}

// RemoveRule deletes a rule.
func (s *Store) RemoveRule(ctx context.Context, actor string, id int64) error {
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := s.removeRuleTx(ctx, tx, actor, id)
		return err
	})
}

// ruleByID reads a stored rule and its group.
func ruleByID(ctx context.Context, q store.Querier, id int64) (string, RuleSpec, error) {
	var group string
	r := RuleSpec{ID: id}
	err := q.QueryRowContext(ctx, q.Rebind(`SELECT group_id, name, action, categories, domains, days, start_time, end_time, zones FROM rules WHERE id = ?`), id).
		Scan(&group, &r.Name, &r.Action, &r.Categories, &r.Domains, &r.Days, &r.Start, &r.End, &r.Zones)
	if errors.Is(err, sql.ErrNoRows) {
		return "", r, fmt.Errorf("rule %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return "", r, fmt.Errorf("read rule %d: %w", id, err)
	}
	return group, r, nil
}

// removeRuleTx deletes a rule inside tx and returns the revision.
func (s *Store) removeRuleTx(ctx context.Context, tx *store.Tx, actor string, id int64) (int64, error) {
	var name string
	err := tx.QueryRowContext(ctx, tx.Rebind("DELETE FROM rules WHERE id = ? RETURNING name"), id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("rule %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("remove rule %d: %w", id, err)
	}
	return store.AddRevision(ctx, tx, s.now(), actor, fmt.Sprintf("rule %q removed", name))
}
