package directory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/warden-schools/warden/internal/store"
)

// ImportOptions controls ImportCSV.
type ImportOptions struct {
	// Kind is the kind of people in the file; "" means detect it from the
	// headers (see ParseCSV).
	Kind Kind
	// Actor is who is importing, for the revision.
	Actor string
	// DeactivateMissing marks inactive (leavers) the active people of the
	// kinds in the file who came from an earlier import and are not in
	// this file. People added by hand are never deactivated.
	DeactivateMissing bool
	// DryRun does everything but keep it: the result (or the rows'
	// problems) is what a real import would give, for a preview.
	DryRun bool
}

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// ImportResult says what an import did.
type ImportResult struct {
	File string
	// Kind is the kind of people imported, "" for a file of mixed kinds.
	Kind Kind
	// Rows counts data rows. Created, Updated and Unchanged count people;
	// a parent on several rows (one per child) counts once.
	Rows, Created, Updated, Unchanged, Deactivated int
	// Linked counts parent-pupil links added or changed.
	Linked int
	// Groups counts active people per group after the import, for the
	// kinds imported; "" counts people no membership rule places.
	Groups map[string]int
	// Ignored lists columns recognised and deliberately not kept (DOB...),
	// Unknown columns not recognised; both are ignored.
	Ignored, Unknown []string
	// Revision is the policy version the import made, 0 if it changed
	// nothing.
	Revision int64
}

// ImportCSV imports a people file exported from the school's MIS (see
// ParseCSV for the layouts it reads) in one transaction.
//
// A row updates the person it matches, looked for by UPN, then (kind, MIS
// id), then (kind, admission number), then username, then email (an email
// shared by several people matches none of them); otherwise it adds a new
// person. A re-import changes only the fields the file has columns for and
// never clears an identifying key. Imported people are active, and those
// whose group is not set by hand join the group the membership rules
// choose, so a September re-import with year groups moved up moves pupils
// to their new key stage's policy. Parent rows are linked to their pupil,
// which must exist already or be in the same file.
//
// If any row is wrong (in the file, or against the people already stored)
// nothing changes and the error is an *ImportError listing the rows as
// "file:line: what is wrong".
func (d *Directory) ImportCSV(ctx context.Context, r io.Reader, file string, opts ImportOptions) (ImportResult, error) {
	res := ImportResult{File: file}
	sheet, err := ParseCSV(r, file, opts.Kind)
	if err != nil {
		return res, err
	}
	res.Kind, res.Rows = sheet.Kind, len(sheet.Records)
	res.Ignored, res.Unknown = sheet.Ignored(), sheet.Unknown()
	err = d.db.WithTx(ctx, func(tx *store.Tx) error {
		people, err := loadPeople(ctx, tx)
		if err != nil {
			return err
		}
		links, err := loadGuardians(ctx, tx)
		if err != nil {
			return err
		}
		rules, err := loadRules(ctx, tx)
		if err != nil {
			return err
		}
		plan, err := planImport(sheet, people, links, rules, opts.DeactivateMissing)
		if err != nil {
			return err
		}
		if err := d.applyImport(ctx, tx, plan, &res); err != nil {
			return err
		}
		if res.Created+res.Updated+res.Deactivated > 0 {
			summary := fmt.Sprintf("import %s: %d created, %d updated, %d deactivated", sourceName(file),
				res.Created, res.Updated, res.Deactivated)
			if res.Revision, err = store.AddRevision(ctx, tx, d.now(), opts.Actor, summary); err != nil {
				return err
			}
		}
		if res.Groups, err = countGroups(ctx, tx, plan.kinds); err != nil {
			return err
		}
		if opts.DryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		res.Revision = 0
		return res, nil
	}
	if err != nil {
		var ie *ImportError
		if errors.As(err, &ie) {
			return ImportResult{File: file}, err
		}
		return ImportResult{File: file}, fmt.Errorf("import %s: %w", file, err)
	}
	return res, nil
}

// sourceName is the file name kept in Person.Source.
func sourceName(file string) string {
	b := filepath.Base(strings.ReplaceAll(file, `\`, "/"))
	if b == "." || b == "/" || b == "" {
		b = "import"
	}
	if r := []rune(b); len(r) > 90 {
		b = string(r[:90])
	}
	return b
}

// entityState says what an import does to a person.
type entityState int

const (
	stateUnchanged entityState = iota
	stateCreated
	stateUpdated
)

// entity is one person of an import: its first row, the stored person it
// matches (nil for a new one) and its state after the import.
type entity struct {
	rec   *Record
	old   *Person
	next  Person
	state entityState
	// linked is set when a parent-pupil link of this parent changes.
	linked bool
}

// pupilTarget is a pupil a parent row refers to: stored (id) or new in
// this import (ent, whose id is known only once inserted).
type pupilTarget struct {
	id  int64
	ent *entity
}

// plannedLink is a parent-pupil link of the file.
type plannedLink struct {
	parent       *entity
	pupil        pupilTarget
	relationship string
	// change is set when the link is new or its relationship changes.
	change bool
}

// linkKey identifies a link within an import.
type linkKey struct {
	parent *entity
	pupil  pupilTarget
}

// importPlan is everything an import will write, decided before any
// write.
type importPlan struct {
	source     string
	entities   []*entity
	links      []plannedLink
	linkLines  map[linkKey]int
	deactivate []Person
	kinds      []Kind
}

// personIndex finds stored people by their keys, in canonical form.
type personIndex map[recordKey][]*Person

// personKeys returns the keys of a stored person as Record.keys does.
func personKeys(p *Person) []recordKey {
	r := Record{Kind: p.Kind, UPN: strings.ToUpper(p.UPN), MISID: p.MISID, AdmissionNo: p.AdmissionNo,
		Username: strings.ToLower(p.Username), Email: strings.ToLower(p.Email)}
	return r.keys()
}

// loadPeople reads every stored person.
func loadPeople(ctx context.Context, q store.Querier) ([]Person, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+personColumns+" FROM people ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read people: %w", err)
	}
	defer rows.Close()
	var out []Person
	for rows.Next() {
		p, err := scanPerson(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("read people: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read people: %w", err)
	}
	return out, nil
}

// describe names a stored person in a message.
func describe(p *Person) string {
	return fmt.Sprintf("person %d (%s)", p.ID, p.DisplayName())
}

// planImport decides what importing the sheet does to the stored people,
// guardian links and rules, without writing; problems are returned as an
// *ImportError.
func planImport(sheet *Sheet, people []Person, links map[[2]int64]string, rules []MembershipRule, deactivateMissing bool) (*importPlan, error) {
	ps := &problems{file: sheet.File}
	plan := &importPlan{source: csvSourcePrefix + sourceName(sheet.File), linkLines: make(map[linkKey]int)}
	idx := make(personIndex)
	for i := range people {
		for _, k := range personKeys(&people[i]) {
			idx[k] = append(idx[k], &people[i])
		}
	}
	claimed := make(map[int64]int) // stored person id -> line that matched it
	byLine := make(map[int]*entity)
	kindSeen := make(map[Kind]bool)

	// People first, parents after, so that links can find pupils of this
	// file.
	var order []*Record
	for i := range sheet.Records {
		if sheet.Records[i].Kind != KindParent {
			order = append(order, &sheet.Records[i])
		}
	}
	for i := range sheet.Records {
		if sheet.Records[i].Kind == KindParent {
			order = append(order, &sheet.Records[i])
		}
	}
	var pupilIdx map[string][]pupilTarget
	pupilsFailed := false
	for _, r := range order {
		if !kindSeen[r.Kind] {
			kindSeen[r.Kind] = true
			plan.kinds = append(plan.kinds, r.Kind)
		}
		if r.Kind == KindParent && pupilIdx == nil {
			pupilIdx = indexPupils(people, plan.entities)
			pupilsFailed = len(ps.list) > 0
		}
		e := byLine[r.SameAs]
		if r.SameAs == 0 || e == nil {
			var msgs []string
			old := matchPerson(r, idx, &msgs)
			if old != nil {
				if line, ok := claimed[old.ID]; ok {
					msgs = append(msgs, fmt.Sprintf("matches the same person as line %d: %s", line, describe(old)))
				}
			}
			if len(msgs) > 0 {
				ps.add(r.Line, "%s", strings.Join(msgs, "; "))
				continue
			}
			e = plan.newEntity(r, old, sheet, rules)
			if old != nil {
				claimed[old.ID] = r.Line
			}
			byLine[r.Line] = e
		}
		// Pupils that failed would make every link to them fail too: report
		// the pupils' rows alone.
		if r.Kind == KindParent && !pupilsFailed {
			if msg := plan.linkParent(e, r, pupilIdx, links, sheet.has[fRelationship]); msg != "" {
				ps.add(r.Line, "%s", msg)
			}
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	if deactivateMissing {
		for _, p := range people {
			if kindSeen[p.Kind] && p.Active && strings.HasPrefix(p.Source, csvSourcePrefix) {
				if _, ok := claimed[p.ID]; !ok {
					plan.deactivate = append(plan.deactivate, p)
				}
			}
		}
	}
	return plan, nil
}

// matchPerson finds the stored person a record describes, or nil for a
// new person; conflicts between keys go to msgs.
func matchPerson(r *Record, idx personIndex, msgs *[]string) *Person {
	var match *Person
	var matchKey recordKey
	for _, k := range r.keys() {
		if k.label == "email" {
			continue
		}
		found := idx[k]
		switch {
		case len(found) == 0:
			continue
		case len(found) > 1:
			*msgs = append(*msgs, fmt.Sprintf("%s %s matches %d people already stored", k.label, r.displayValue(k), len(found)))
			return nil
		}
		p := found[0]
		if p.Kind != r.Kind {
			*msgs = append(*msgs, fmt.Sprintf("%s %s belongs to %s, who is %s, not %s",
				k.label, r.displayValue(k), describe(p), p.Kind.article(), r.Kind.article()))
			return nil
		}
		if match != nil && match.ID != p.ID {
			*msgs = append(*msgs, fmt.Sprintf("%s %s belongs to %s but %s %s belongs to %s",
				matchKey.label, r.displayValue(matchKey), describe(match), k.label, r.displayValue(k), describe(p)))
			return nil
		}
		match, matchKey = p, k
	}
	if match == nil && r.Email != "" {
		// Email is the weakest key: it is not unique (a family may share
		// one), so it matches only when exactly one person has it and no
		// other key of the row says that person is someone else.
		if found := idx[recordKey{r.Kind, "email", r.Email}]; len(found) == 1 && !keysDiffer(r, found[0]) {
			match = found[0]
		}
	}
	return match
}

// keysDiffer reports whether a record and a stored person both have a
// UPN, MIS id, admission number or username and they differ.
func keysDiffer(r *Record, p *Person) bool {
	differ := func(a, b string) bool { return a != "" && b != "" && canonKey(a) != canonKey(b) }
	return differ(r.UPN, p.UPN) || differ(r.MISID, p.MISID) || differ(r.AdmissionNo, p.AdmissionNo) || differ(r.Username, p.Username)
}

// newEntity works out the state of the person a record describes after
// the import.
func (plan *importPlan) newEntity(r *Record, old *Person, sheet *Sheet, rules []MembershipRule) *entity {
	e := &entity{rec: r, old: old}
	next := Person{Kind: r.Kind, Source: plan.source}
	if old != nil {
		next = *old
	}
	next.LegalForename, next.Surname = r.LegalForename, r.Surname
	if sheet.has[fPreferredForename] || old == nil {
		next.PreferredForename = r.PreferredForename
	}
	setKey := func(dst *string, v string) {
		if v != "" && canonKey(v) != canonKey(*dst) {
			*dst = v
		}
	}
	setKey(&next.UPN, r.UPN)
	setKey(&next.MISID, r.MISID)
	setKey(&next.AdmissionNo, r.AdmissionNo)
	if r.Username != "" {
		next.Username = r.Username
	}
	if r.Email != "" {
		next.Email = r.Email
	}
	if r.Kind == KindPupil {
		next.Year, next.HasYear = r.Year, r.HasYear
	}
	if sheet.has[fRegGroup] && (r.Kind == KindPupil || r.Kind == KindStaff) {
		next.RegGroup = r.RegGroup
	}
	if sheet.has[fRole] && (r.Kind == KindStaff || r.Kind == KindVisitor) {
		next.Role = r.Role
	}
	next.Active = true
	if !next.GroupManual {
		next.GroupID = GroupFor(rules, next)
	}
	switch {
	case old == nil:
		e.state = stateCreated
	case !sameState(*old, next) || !strings.HasPrefix(old.Source, csvSourcePrefix):
		e.state = stateUpdated
		next.Source = plan.source
	}
	e.next = next
	plan.entities = append(plan.entities, e)
	return e
}

// sameState reports whether two versions of a person store the same
// values, ignoring the source and times.
func sameState(a, b Person) bool {
	a.Source, a.CreatedAt, a.UpdatedAt = b.Source, b.CreatedAt, b.UpdatedAt
	return a == b
}

// indexPupils indexes every pupil as it will be after the import, by
// "upn:", "adno:" and "mis:" references, for parent rows.
func indexPupils(people []Person, entities []*entity) map[string][]pupilTarget {
	out := make(map[string][]pupilTarget)
	add := func(p *Person, t pupilTarget) {
		if p.Kind != KindPupil {
			return
		}
		r := Record{PupilUPN: strings.ToUpper(p.UPN), PupilAdmissionNo: p.AdmissionNo, PupilMISID: p.MISID}
		for _, ref := range r.pupilRefs() {
			out[ref] = append(out[ref], t)
		}
	}
	imported := make(map[int64]bool)
	for _, e := range entities {
		if e.old != nil {
			imported[e.old.ID] = true
			add(&e.next, pupilTarget{id: e.old.ID})
		} else {
			add(&e.next, pupilTarget{ent: e})
		}
	}
	for i := range people {
		if !imported[people[i].ID] {
			add(&people[i], pupilTarget{id: people[i].ID})
		}
	}
	return out
}

// linkParent plans the link of a parent row to its pupil and returns what
// is wrong, if anything.
func (plan *importPlan) linkParent(e *entity, r *Record, pupils map[string][]pupilTarget, links map[[2]int64]string, hasRelationship bool) string {
	labels := map[string]string{"upn": "UPN", "adno": "admission number", "mis": "MIS id"}
	var target pupilTarget
	var targetRef string
	for _, ref := range r.pupilRefs() {
		kind, val, _ := strings.Cut(ref, ":")
		found := pupils[ref]
		switch {
		case len(found) == 0:
			return fmt.Sprintf("no pupil with %s %s, stored or in this file", labels[kind], displayRef(r, kind, val))
		case len(found) > 1:
			return fmt.Sprintf("pupil %s %s matches %d pupils", labels[kind], displayRef(r, kind, val), len(found))
		}
		if targetRef != "" && found[0] != target {
			k0, v0, _ := strings.Cut(targetRef, ":")
			return fmt.Sprintf("pupil %s %s and %s %s are different pupils", labels[k0], displayRef(r, k0, v0), labels[kind], displayRef(r, kind, val))
		}
		target, targetRef = found[0], ref
	}
	key := linkKey{e, target}
	if line, ok := plan.linkLines[key]; ok {
		return fmt.Sprintf("the same parent and pupil are also on line %d", line)
	}
	plan.linkLines[key] = r.Line
	l := plannedLink{parent: e, pupil: target, relationship: r.Relationship, change: true}
	if e.old != nil && target.ent == nil {
		stored, ok := links[[2]int64{e.old.ID, target.id}]
		if ok && !hasRelationship {
			l.relationship = stored
		}
		l.change = !ok || stored != l.relationship
	}
	if l.change {
		e.linked = true
	}
	plan.links = append(plan.links, l)
	return ""
}

// displayRef shows a pupil reference as the row gave it.
func displayRef(r *Record, kind, val string) string {
	switch kind {
	case "adno":
		return r.PupilAdmissionNo
	case "mis":
		return r.PupilMISID
	}
	return val
}

// applyImport writes a plan and counts what it did.
func (d *Directory) applyImport(ctx context.Context, tx *store.Tx, plan *importPlan, res *ImportResult) error {
	ps := &problems{file: res.File}
	at := store.Millis(d.now())
	ids := make(map[*entity]int64)
	for _, e := range plan.entities {
		switch e.state {
		case stateCreated:
			id, err := insertPerson(ctx, tx, e.next, at)
			if store.IsUniqueViolation(err) {
				ps.add(e.rec.Line, "conflicts with a person already stored: %v", err)
				continue
			}
			if err != nil {
				return fmt.Errorf("add person from line %d: %w", e.rec.Line, err)
			}
			ids[e] = id
			res.Created++
		case stateUpdated:
			err := updatePerson(ctx, tx, e.next, at)
			if store.IsUniqueViolation(err) {
				ps.add(e.rec.Line, "conflicts with a person already stored: %v", err)
				continue
			}
			if err != nil {
				return fmt.Errorf("update person from line %d: %w", e.rec.Line, err)
			}
			ids[e] = e.old.ID
			res.Updated++
		default:
			ids[e] = e.old.ID
			if e.linked {
				res.Updated++
			} else {
				res.Unchanged++
			}
		}
	}
	if err := ps.err(); err != nil {
		return err
	}
	for _, p := range plan.deactivate {
		if _, err := tx.ExecContext(ctx, tx.Rebind("UPDATE people SET active = ?, updated_at = ? WHERE id = ?"), false, at, p.ID); err != nil {
			return fmt.Errorf("deactivate person %d: %w", p.ID, err)
		}
		res.Deactivated++
	}
	for _, l := range plan.links {
		if !l.change {
			continue
		}
		pupil := l.pupil.id
		if l.pupil.ent != nil {
			pupil = ids[l.pupil.ent]
		}
		if err := upsertGuardian(ctx, tx, ids[l.parent], pupil, l.relationship); err != nil {
			return err
		}
		res.Linked++
	}
	return nil
}

// countGroups counts active people of the kinds per group.
func countGroups(ctx context.Context, q store.Querier, kinds []Kind) (map[string]int, error) {
	out := make(map[string]int)
	if len(kinds) == 0 {
		return out, nil
	}
	args := []any{true}
	marks := make([]string, len(kinds))
	for i, k := range kinds {
		marks[i] = "?"
		args = append(args, string(k))
	}
	rows, err := q.QueryContext(ctx, q.Rebind("SELECT COALESCE(group_id, ''), COUNT(*) FROM people WHERE active = ? AND kind IN ("+
		strings.Join(marks, ", ")+") GROUP BY COALESCE(group_id, '')"), args...)
	if err != nil {
		return nil, fmt.Errorf("count people per group: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		var n int
		if err := rows.Scan(&g, &n); err != nil {
			return nil, fmt.Errorf("count people per group: %w", err)
		}
		out[g] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count people per group: %w", err)
	}
	return out, nil
}
