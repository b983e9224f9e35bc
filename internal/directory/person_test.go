package directory

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/warden-schools/warden/internal/store"
)

func TestDisplayName(t *testing.T) {
	tests := []struct {
		p    Person
		want string
	}{
		{Person{LegalForename: "Oluwaseun", Surname: "Adeyemi"}, "Oluwaseun Adeyemi"},
		{Person{LegalForename: "Oluwaseun", PreferredForename: "Seun", Surname: "Adeyemi"}, "Seun Adeyemi"},
		{Person{PreferredForename: "Seun"}, "Seun"},
	}
	for _, tt := range tests {
		if got := tt.p.DisplayName(); got != tt.want {
			t.Errorf("DisplayName(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestAddPerson(t *testing.T) {
	d, db := newTestDirectory(t)
	withRules(t, d)
	ctx := context.Background()
	before := revision(t, db)
	id, err := d.AddPerson(ctx, "office", Person{Kind: KindPupil, UPN: "a820000000001", LegalForename: " Ava ", Surname: "Evans",
		Year: 4, HasYear: true, Username: "AEvans", Email: "AEvans@Example.org"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.Person(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := Person{ID: id, Kind: KindPupil, UPN: "A820000000001", LegalForename: "Ava", Surname: "Evans", Year: 4, HasYear: true,
		Username: "aevans", Email: "aevans@example.org", GroupID: "key-stage-2", Active: true, Source: SourceManual,
		CreatedAt: testNow, UpdatedAt: testNow}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("stored\n got %+v\nwant %+v", p, want)
	}
	if revision(t, db) != before+1 {
		t.Error("no revision")
	}

	manual, err := d.AddPerson(ctx, "office", Person{Kind: KindStaff, LegalForename: "Grace", Surname: "Smith", MISID: "S1",
		GroupID: "visitors", GroupManual: true})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := d.Person(ctx, manual); p.GroupID != "visitors" || !p.GroupManual {
		t.Errorf("manual group not kept: %+v", p)
	}

	errs := []struct {
		name string
		p    Person
		is   error
		msg  string
	}{
		{"duplicate UPN", Person{Kind: KindPupil, UPN: "A820000000001", LegalForename: "Bea", Surname: "Evans", Year: 1, HasYear: true},
			store.ErrConflict, "add person: UPN A820000000001 is already used by person 1: conflicts with an existing record"},
		{"duplicate username", Person{Kind: KindStaff, Username: "aevans", LegalForename: "Al", Surname: "Evans"},
			store.ErrConflict, "add person: username aevans is already used by person 1: conflicts with an existing record"},
		{"duplicate MIS id", Person{Kind: KindStaff, MISID: "S1", LegalForename: "Al", Surname: "Evans"},
			store.ErrConflict, "add person: MIS id S1 is already used by person 2: conflicts with an existing record"},
		{"no surname", Person{Kind: KindStaff, LegalForename: "Al"}, ErrInvalid, "add person: surname is required"},
		{"no forename", Person{Kind: KindStaff, Surname: "Evans"}, ErrInvalid, "add person: forename is required"},
		{"pupil without a year", Person{Kind: KindPupil, LegalForename: "Al", Surname: "Evans"}, ErrInvalid, "add person: a pupil needs a year group"},
		{"year out of range", Person{Kind: KindPupil, LegalForename: "Al", Surname: "Evans", Year: 14, HasYear: true}, ErrInvalid,
			"add person: year group 14 out of range (want -1 for Nursery to 13)"},
		{"bad kind", Person{Kind: "governor", LegalForename: "Al", Surname: "Evans"}, ErrInvalid,
			`add person: person kind "governor" not recognised (want pupil, staff, visitor or parent)`},
		{"bad email", Person{Kind: KindStaff, LegalForename: "Al", Surname: "Evans", Email: "al at example.org"}, ErrInvalid,
			`add person: email "al at example.org" is not an email address`},
		{"bad UPN", Person{Kind: KindPupil, LegalForename: "Al", Surname: "Evans", Year: 1, HasYear: true, UPN: "A82-000000001"}, ErrInvalid,
			`add person: UPN "A82-000000001" should be 13 letters and digits`},
		{"unknown group", Person{Kind: KindStaff, LegalForename: "Al", Surname: "Evans", GroupID: "nope", GroupManual: true}, store.ErrNotFound,
			`add person: group "nope": not found`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, db)
			_, err := d.AddPerson(ctx, "office", tt.p)
			if !errors.Is(err, tt.is) || err.Error() != tt.msg {
				t.Errorf("err = %v, want %q (%v)", err, tt.msg, tt.is)
			}
			if after := snapshot(t, db); after != before {
				t.Errorf("failed add changed the store")
			}
		})
	}
}

func TestPersonNotFound(t *testing.T) {
	d, _ := newTestDirectory(t)
	ctx := context.Background()
	if _, err := d.Person(ctx, 42); !errors.Is(err, store.ErrNotFound) || err.Error() != "person 42: not found" {
		t.Errorf("Person: %v", err)
	}
	if _, err := d.PersonByLogin(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PersonByLogin: %v", err)
	}
	if err := d.SetPersonGroup(ctx, "x", 42, "staff"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetPersonGroup: %v", err)
	}
	if err := d.SetPersonActive(ctx, "x", 42, false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetPersonActive: %v", err)
	}
}

func TestPersonByLogin(t *testing.T) {
	d, _ := newTestDirectory(t)
	ctx := context.Background()
	add := func(p Person) int64 {
		t.Helper()
		id, err := d.AddPerson(ctx, "office", p)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// A member of staff who is also a parent has two records, one email.
	parent := add(Person{Kind: KindParent, LegalForename: "Grace", Surname: "Smith", Email: "grace@example.org"})
	staff := add(Person{Kind: KindStaff, LegalForename: "Grace", Surname: "Smith", Email: "grace@example.org", Username: "gsmith"})
	pupil := add(Person{Kind: KindPupil, LegalForename: "Ava", Surname: "Evans", Year: 3, HasYear: true, Username: "grace@example.org"})
	left := add(Person{Kind: KindStaff, LegalForename: "Old", Surname: "Hand", Username: "ohand"})
	if err := d.SetPersonActive(ctx, "office", left, false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		login string
		want  int64
	}{
		{"GSMITH", staff},
		{"grace@example.org", pupil}, // a username match wins over email
		{" gsmith ", staff},
	}
	for _, tt := range tests {
		p, err := d.PersonByLogin(ctx, tt.login)
		if err != nil || p.ID != tt.want {
			t.Errorf("PersonByLogin(%q) = %d, %v; want %d", tt.login, p.ID, err, tt.want)
		}
	}
	if err := d.SetPersonActive(ctx, "office", pupil, false); err != nil {
		t.Fatal(err)
	}
	if p, err := d.PersonByLogin(ctx, "Grace@Example.org"); err != nil || p.ID != staff {
		t.Errorf("shared email: %d, %v; want staff %d (not parent %d)", p.ID, err, staff, parent)
	}
	if _, err := d.PersonByLogin(ctx, "ohand"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("inactive person found: %v", err)
	}
}

func TestPeopleFilter(t *testing.T) {
	d, _ := newTestDirectory(t)
	withRules(t, d)
	ctx := context.Background()
	importFile(t, d, "sims_student_list.csv", ImportOptions{})
	importFile(t, d, "staff.csv", ImportOptions{})
	names := func(ps []Person) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.DisplayName())
		}
		return out
	}
	tests := []struct {
		name  string
		f     PeopleFilter
		total int
		want  []string
	}{
		{"kind", PeopleFilter{Kind: KindStaff, Limit: 3}, 12, []string{"Ivy Jones", "Muhammad Kowalski", "Sophia Murphy"}},
		{"group", PeopleFilter{GroupID: "visitors"}, 1, []string{"Ivy Jones"}},
		{"search two words", PeopleFilter{Search: "rosie NOWAK"}, 1, []string{"Rosie Nowak"}},
		{"search role", PeopleFilter{Search: "teaching"}, 2, []string{"Sophia Murphy", "Nia Robinson"}},
		{"search reg group", PeopleFilter{Search: "RecB"}, 1, []string{"Leo Taylor"}},
		{"search wildcard is literal", PeopleFilter{Search: "%"}, 0, nil},
		{"page", PeopleFilter{Kind: KindPupil, Limit: 2, Offset: 2}, 12, []string{"Oliver Davies", "Ava Evans"}},
		{"offset without limit", PeopleFilter{Kind: KindPupil, Offset: 11}, 12, []string{"Harry Williams"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, total, err := d.People(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if total != tt.total || !reflect.DeepEqual(names(ps), tt.want) {
				t.Errorf("got %d %q, want %d %q", total, names(ps), tt.total, tt.want)
			}
		})
	}
	ps, _, _ := d.People(ctx, PeopleFilter{Search: "Murphy Sophia"})
	if len(ps) != 1 {
		t.Fatalf("%d Sophia Murphys", len(ps))
	}
	if err := d.SetPersonActive(ctx, "office", ps[0].ID, false); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := d.People(ctx, PeopleFilter{Kind: KindStaff}); total != 11 {
		t.Errorf("active staff %d, want 11", total)
	}
	if _, total, _ := d.People(ctx, PeopleFilter{Kind: KindStaff, IncludeInactive: true}); total != 12 {
		t.Errorf("all staff %d, want 12", total)
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"Pupil": KindPupil, "students": KindPupil, "STAFF": KindStaff, "Teacher": KindStaff,
		"visitor": KindVisitor, "Carer": KindParent, "parent/carer": KindParent, " contact ": KindParent} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseKind("governor"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseKind(governor) = %v", err)
	}
}
