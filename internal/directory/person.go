package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/store"
)

// Kind is the kind of a person: pupil, staff, visitor or parent (parents
// and carers).
type Kind string

// The kinds of people.
const (
	KindPupil   Kind = "pupil"
	KindStaff   Kind = "staff"
	KindVisitor Kind = "visitor"
	KindParent  Kind = "parent"
)

// Kinds lists every kind in display order.
var Kinds = []Kind{KindPupil, KindStaff, KindVisitor, KindParent}

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindPupil, KindStaff, KindVisitor, KindParent:
		return true
	}
	return false
}

// ParseKind reads a kind as people write it: "pupil" (or "pupils",
// "student", "learner", "child"), "staff" (or "teacher", "employee"),
// "visitor" (or "guest"), "parent" (or "carer", "guardian", "contact").
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "pupil", "pupils", "student", "students", "learner", "learners", "child", "children":
		return KindPupil, nil
	case "staff", "teacher", "teachers", "employee", "employees":
		return KindStaff, nil
	case "visitor", "visitors", "guest", "guests":
		return KindVisitor, nil
	case "parent", "parents", "carer", "carers", "guardian", "guardians", "contact", "contacts", "parent/carer", "parents/carers":
		return KindParent, nil
	}
	return "", invalidf("person kind %q not recognised (want pupil, staff, visitor or parent)", trunc(s))
}

// article names one person of the kind for messages: "a pupil", "staff".
func (k Kind) article() string {
	switch k {
	case KindPupil:
		return "a pupil"
	case KindStaff:
		return "a member of staff"
	case KindVisitor:
		return "a visitor"
	case KindParent:
		return "a parent or carer"
	}
	return string(k)
}

// plural names the kind for messages: "pupils", "staff".
func (k Kind) plural() string {
	switch k {
	case KindPupil:
		return "pupils"
	case KindStaff:
		return "staff"
	case KindVisitor:
		return "visitors"
	case KindParent:
		return "parents"
	}
	return string(k)
}

// Person is a pupil, member of staff, visitor, or parent or carer.
//
// MISID, UPN and AdmissionNo are keys from the school's MIS that let a
// re-import find the same person; Username and Email are stored lower
// case. Year (with HasYear) is the year group of a pupil, as in
// ParseYearGroup. GroupID is the policy group, set by the membership rules
// unless GroupManual says a person chose it. Dates of birth and contact
// details are deliberately not kept.
type Person struct {
	ID                int64
	Kind              Kind
	MISID             string
	UPN               string
	AdmissionNo       string
	LegalForename     string
	PreferredForename string
	Surname           string
	Year              int
	HasYear           bool
	RegGroup          string
	Role              string
	Username          string
	Email             string
	GroupID           string
	GroupManual       bool
	Active            bool
	// Source says where the record came from: "manual", or "csv:FILE" for
	// the import that last changed it.
	Source    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DisplayName is the name to show: the preferred forename if there is one,
// else the legal forename, then the surname.
func (p Person) DisplayName() string {
	f := p.PreferredForename
	if f == "" {
		f = p.LegalForename
	}
	return strings.TrimSpace(f + " " + p.Surname)
}

// SourceManual is the Source of people added one by one.
const SourceManual = "manual"

// csvSourcePrefix starts the Source of imported people.
const csvSourcePrefix = "csv:"

// normalize checks and tidies the fields a person is stored with. It does
// not touch the group.
func (p *Person) normalize() error {
	if !p.Kind.Valid() {
		return invalidf("person kind %q not recognised (want pupil, staff, visitor or parent)", p.Kind)
	}
	var err error
	clean := func(dst *string, what string, max int) {
		if err == nil {
			*dst, err = cleanText(what, *dst, max)
		}
	}
	clean(&p.LegalForename, "legal forename", maxNameLen)
	clean(&p.PreferredForename, "preferred forename", maxNameLen)
	clean(&p.Surname, "surname", maxNameLen)
	clean(&p.RegGroup, "registration group", maxTextLen)
	clean(&p.Role, "role", maxTextLen)
	clean(&p.Source, "source", maxTextLen)
	if err != nil {
		return err
	}
	if p.LegalForename == "" && p.PreferredForename == "" {
		return invalidf("forename is required")
	}
	if p.LegalForename == "" {
		p.LegalForename = p.PreferredForename
	}
	if p.Surname == "" {
		return invalidf("surname is required")
	}
	if p.UPN, err = normUPN(p.UPN); err != nil {
		return err
	}
	if p.MISID, err = normKey("MIS id", p.MISID); err != nil {
		return err
	}
	if p.AdmissionNo, err = normKey("admission number", p.AdmissionNo); err != nil {
		return err
	}
	if p.Username, err = normUsername(p.Username); err != nil {
		return err
	}
	if p.Email, err = normEmail(p.Email); err != nil {
		return err
	}
	if p.Kind == KindPupil {
		if !p.HasYear {
			return invalidf("a pupil needs a year group")
		}
		if !validYear(p.Year) {
			return invalidf("year group %d out of range (want -1 for Nursery to 13)", p.Year)
		}
	} else {
		p.Year, p.HasYear = 0, false
	}
	return nil
}

// PeopleFilter selects people for People.
type PeopleFilter struct {
	// Kind, if set, keeps people of that kind.
	Kind Kind
	// GroupID, if set, keeps people in that policy group.
	GroupID string
	// Search keeps people each of whose words appears (case-insensitively,
	// for ASCII letters) in a name, login, email, registration group, role
	// or MIS key.
	Search string
	// IncludeInactive also returns people marked inactive (leavers).
	IncludeInactive bool
	// Limit caps the number returned (0 = no limit); Offset skips that
	// many first.
	Limit, Offset int
}

// personColumns is the column list scanPerson reads.
const personColumns = `id, kind, mis_id, upn, admission_no, legal_forename, preferred_forename, surname,
	year_group, reg_group, role, username, email, group_id, group_manual, active, source, created_at, updated_at`

// scanPerson reads one row of personColumns.
func scanPerson(scan func(...any) error) (Person, error) {
	var (
		p                                    Person
		kind                                 string
		misID, upn, adno, user, email, group sql.NullString
		year                                 sql.NullInt64
		created, updated                     int64
	)
	err := scan(&p.ID, &kind, &misID, &upn, &adno, &p.LegalForename, &p.PreferredForename, &p.Surname,
		&year, &p.RegGroup, &p.Role, &user, &email, &group, &p.GroupManual, &p.Active, &p.Source, &created, &updated)
	if err != nil {
		return Person{}, err
	}
	p.Kind = Kind(kind)
	p.MISID, p.UPN, p.AdmissionNo = scanNullString(misID), scanNullString(upn), scanNullString(adno)
	p.Username, p.Email, p.GroupID = scanNullString(user), scanNullString(email), scanNullString(group)
	if year.Valid {
		p.Year, p.HasYear = int(year.Int64), true
	}
	p.CreatedAt, p.UpdatedAt = store.FromMillis(created), store.FromMillis(updated)
	return p, nil
}

// yearValue stores a year group, NULL when the person has none.
func yearValue(p Person) any {
	if !p.HasYear {
		return nil
	}
	return p.Year
}

// likePattern turns a search word into a LIKE pattern with '\' escaping.
func likePattern(w string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(w)) + "%"
}

// People returns the people the filter selects, ordered by surname and
// forename, and how many it selects in all (ignoring Limit and Offset).
func (d *Directory) People(ctx context.Context, f PeopleFilter) ([]Person, int, error) {
	var (
		where []string
		args  []any
	)
	if f.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, string(f.Kind))
	}
	if f.GroupID != "" {
		where = append(where, "group_id = ?")
		args = append(args, f.GroupID)
	}
	if !f.IncludeInactive {
		where = append(where, "active = ?")
		args = append(args, true)
	}
	for _, w := range strings.Fields(f.Search) {
		var ors []string
		for _, col := range []string{"legal_forename", "preferred_forename", "surname", "reg_group", "role",
			"COALESCE(username, '')", "COALESCE(email, '')", "COALESCE(upn, '')", "COALESCE(mis_id, '')", "COALESCE(admission_no, '')"} {
			ors = append(ors, "LOWER("+col+`) LIKE ? ESCAPE '\'`)
			args = append(args, likePattern(w))
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := d.db.QueryRowContext(ctx, d.db.Rebind("SELECT COUNT(*) FROM people"+cond), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count people: %w", err)
	}
	q := "SELECT " + personColumns + " FROM people" + cond + " ORDER BY LOWER(surname), LOWER(legal_forename), id"
	if f.Limit > 0 {
		q += " LIMIT ? OFFSET ?"
		args = append(args, f.Limit, max(f.Offset, 0))
	} else if f.Offset > 0 {
		// Both engines accept a LIMIT large enough to mean "all".
		q += " LIMIT ? OFFSET ?"
		args = append(args, int64(1)<<62, f.Offset)
	}
	rows, err := d.db.QueryContext(ctx, d.db.Rebind(q), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list people: %w", err)
	}
	defer rows.Close()
	var out []Person
	for rows.Next() {
		p, err := scanPerson(rows.Scan)
		if err != nil {
			return nil, 0, fmt.Errorf("list people: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list people: %w", err)
	}
	return out, total, nil
}

// getPerson reads one person by id inside or outside a transaction.
func getPerson(ctx context.Context, q store.Querier, id int64) (Person, error) {
	row := q.QueryRowContext(ctx, q.Rebind("SELECT "+personColumns+" FROM people WHERE id = ?"), id)
	p, err := scanPerson(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, fmt.Errorf("person %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Person{}, fmt.Errorf("read person %d: %w", id, err)
	}
	return p, nil
}

// Person returns the person with this id, or a wrapped store.ErrNotFound.
func (d *Directory) Person(ctx context.Context, id int64) (Person, error) {
	return getPerson(ctx, d.db, id)
}

// PersonByLogin finds the active person whose username or email is login,
// ignoring case. A username match wins over an email match; when several
// people share an email (a member of staff who is also a parent), staff
// come first, then pupils, visitors and parents. It returns a wrapped
// store.ErrNotFound when no active person has that login.
func (d *Directory) PersonByLogin(ctx context.Context, login string) (Person, error) {
	l := strings.ToLower(strings.TrimSpace(login))
	if l == "" {
		return Person{}, fmt.Errorf("person with login %q: %w", login, store.ErrNotFound)
	}
	q := "SELECT " + personColumns + ` FROM people WHERE active = ? AND (username = ? OR email = ?)
		ORDER BY CASE WHEN username = ? THEN 0 ELSE 1 END,
		CASE kind WHEN 'staff' THEN 0 WHEN 'pupil' THEN 1 WHEN 'visitor' THEN 2 ELSE 3 END, id LIMIT 1`
	row := d.db.QueryRowContext(ctx, d.db.Rebind(q), true, l, l, l)
	p, err := scanPerson(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, fmt.Errorf("person with login %q: %w", login, store.ErrNotFound)
	}
	if err != nil {
		return Person{}, fmt.Errorf("find person with login %q: %w", login, err)
	}
	return p, nil
}

// insertPerson writes a new person and returns its id.
func insertPerson(ctx context.Context, q store.Querier, p Person, at int64) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, q.Rebind(`INSERT INTO people (kind, mis_id, upn, admission_no, legal_forename,
		preferred_forename, surname, year_group, reg_group, role, username, email, group_id, group_manual, active,
		source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		string(p.Kind), nullString(p.MISID), nullString(p.UPN), nullString(p.AdmissionNo), p.LegalForename,
		p.PreferredForename, p.Surname, yearValue(p), p.RegGroup, p.Role, nullString(p.Username), nullString(p.Email),
		nullString(p.GroupID), p.GroupManual, p.Active, p.Source, at, at).Scan(&id)
	if err != nil {
		return 0, err
	}
	return id, nil
}

// updatePerson rewrites every stored field of an existing person.
func updatePerson(ctx context.Context, q store.Querier, p Person, at int64) error {
	_, err := q.ExecContext(ctx, q.Rebind(`UPDATE people SET kind = ?, mis_id = ?, upn = ?, admission_no = ?,
		legal_forename = ?, preferred_forename = ?, surname = ?, year_group = ?, reg_group = ?, role = ?,
		username = ?, email = ?, group_id = ?, group_manual = ?, active = ?, source = ?, updated_at = ? WHERE id = ?`),
		string(p.Kind), nullString(p.MISID), nullString(p.UPN), nullString(p.AdmissionNo), p.LegalForename,
		p.PreferredForename, p.Surname, yearValue(p), p.RegGroup, p.Role, nullString(p.Username), nullString(p.Email),
		nullString(p.GroupID), p.GroupManual, p.Active, p.Source, at, p.ID)
	return err
}

// personConflict explains which key of p is already taken, as a wrapped
// store.ErrConflict.
func personConflict(ctx context.Context, q store.Querier, p Person) error {
	checks := []struct {
		what, cond string
		args       []any
	}{
		{"UPN " + p.UPN, "upn = ?", []any{p.UPN}},
		{"MIS id " + p.MISID, "kind = ? AND mis_id = ?", []any{string(p.Kind), p.MISID}},
		{"admission number " + p.AdmissionNo, "kind = ? AND admission_no = ?", []any{string(p.Kind), p.AdmissionNo}},
		{"username " + p.Username, "username = ?", []any{p.Username}},
	}
	for _, c := range checks {
		if c.args[len(c.args)-1] == "" {
			continue
		}
		args := append(c.args, p.ID)
		var id int64
		err := q.QueryRowContext(ctx, q.Rebind("SELECT id FROM people WHERE "+c.cond+" AND id <> ? LIMIT 1"), args...).Scan(&id)
		if err == nil {
			return fmt.Errorf("%s is already used by person %d: %w", c.what, id, store.ErrConflict)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check %s: %w", c.what, err)
		}
	}
	return nil
}

// AddPerson adds a person and returns the new id. The person is stored
// active, whatever p.Active says; Source "" becomes SourceManual. Unless
// p.GroupManual is set, the membership rules choose the group. It returns
// an ErrInvalid error for a missing name, a pupil without a year group or
// a malformed key, a wrapped store.ErrNotFound for an unknown group, and
// a wrapped store.ErrConflict when a UPN, MIS id, admission number or
// username is already used.
func (d *Directory) AddPerson(ctx context.Context, actor string, p Person) (int64, error) {
	p.ID = 0
	p.Active = true
	if p.Source == "" {
		p.Source = SourceManual
	}
	if err := p.normalize(); err != nil {
		return 0, fmt.Errorf("add person: %w", err)
	}
	var id int64
	err := d.db.WithTx(ctx, func(tx *store.Tx) error {
		if p.GroupManual {
			if err := checkGroup(ctx, tx, p.GroupID); err != nil {
				return err
			}
		} else {
			rules, err := loadRules(ctx, tx)
			if err != nil {
				return err
			}
			p.GroupID = GroupFor(rules, p)
		}
		if err := personConflict(ctx, tx, p); err != nil {
			return err
		}
		var err error
		id, err = insertPerson(ctx, tx, p, store.Millis(d.now()))
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		}
		if err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, d.now(), actor, fmt.Sprintf("add %s %d", p.Kind, id))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add person: %w", err)
	}
	return id, nil
}

// SetPersonGroup puts a person in a policy group by hand, overriding the
// membership rules; groupID "" returns the person to the group the rules
// choose.
func (d *Directory) SetPersonGroup(ctx context.Context, actor string, id int64, groupID string) error {
	err := d.db.WithTx(ctx, func(tx *store.Tx) error {
		p, err := getPerson(ctx, tx, id)
		if err != nil {
			return err
		}
		summary := ""
		if groupID == "" {
			rules, err := loadRules(ctx, tx)
			if err != nil {
				return err
			}
			p.GroupManual = false
			p.GroupID = GroupFor(rules, p)
			summary = fmt.Sprintf("return %s %d to rule-based group %q", p.Kind, id, p.GroupID)
		} else {
			if err := checkGroup(ctx, tx, groupID); err != nil {
				return err
			}
			p.GroupManual = true
			p.GroupID = groupID
			summary = fmt.Sprintf("put %s %d in group %q by hand", p.Kind, id, groupID)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind("UPDATE people SET group_id = ?, group_manual = ?, updated_at = ? WHERE id = ?"),
			nullString(p.GroupID), p.GroupManual, store.Millis(d.now()), id); err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, d.now(), actor, summary)
		return err
	})
	if err != nil {
		return fmt.Errorf("set group of person %d: %w", id, err)
	}
	return nil
}

// SetPersonActive marks a person active or inactive (a leaver). Inactive
// people are kept, with their records, but no longer identified by login.
func (d *Directory) SetPersonActive(ctx context.Context, actor string, id int64, active bool) error {
	err := d.db.WithTx(ctx, func(tx *store.Tx) error {
		p, err := getPerson(ctx, tx, id)
		if err != nil {
			return err
		}
		if p.Active == active {
			return nil
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind("UPDATE people SET active = ?, updated_at = ? WHERE id = ?"),
			active, store.Millis(d.now()), id); err != nil {
			return err
		}
		verb := "deactivate"
		if active {
			verb = "reactivate"
		}
		_, err = store.AddRevision(ctx, tx, d.now(), actor, fmt.Sprintf("%s %s %d", verb, p.Kind, id))
		return err
	})
	if err != nil {
		return fmt.Errorf("set person %d active=%t: %w", id, active, err)
	}
	return nil
}
