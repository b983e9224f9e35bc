package directory

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

func TestImportLayouts(t *testing.T) {
	tests := []struct {
		file    string
		kind    Kind
		created int
		groups  map[string]int
	}{
		{"sims_student_list.csv", KindPupil, 12, map[string]int{"early-years-ks1": 6, "key-stage-2": 6}},
		{"arbor_students.csv", KindPupil, 10, map[string]int{"early-years-ks1": 6, "key-stage-2": 4}},
		{"staff.csv", KindStaff, 12, map[string]int{"staff": 11, "visitors": 1}},
		{"messy_pupils.csv", KindPupil, 13, map[string]int{"early-years-ks1": 6, "key-stage-2": 7}},
		{"pupils_windows1252.csv", KindPupil, 2, map[string]int{"key-stage-2": 2}},
		{"mixed.csv", "", 3, map[string]int{"early-years-ks1": 1, "staff": 1, "": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d, db := newTestDirectory(t)
			withRules(t, d)
			before := revision(t, db)
			res := importFile(t, d, tt.file, ImportOptions{})
			if res.Kind != tt.kind || res.Created != tt.created || res.Rows != tt.created || res.Updated != 0 || res.Unchanged != 0 {
				t.Errorf("result %+v", res)
			}
			if !reflect.DeepEqual(res.Groups, tt.groups) {
				t.Errorf("groups = %v, want %v", res.Groups, tt.groups)
			}
			if res.Revision != before+1 || revision(t, db) != before+1 {
				t.Errorf("revision %d (store %d), want %d", res.Revision, revision(t, db), before+1)
			}
		})
	}
}

func TestImportStoresNormalisedPeople(t *testing.T) {
	d, _ := newTestDirectory(t)
	withRules(t, d)
	importFile(t, d, "messy_pupils.csv", ImportOptions{})
	p := personByUPN(t, d, "A820000000202") // written in lower case in the file
	if p.LegalForename != "Harry" || p.Surname != "Begum" || p.Year != YearNursery || !p.HasYear || p.RegGroup != "NurA" ||
		p.GroupID != "early-years-ks1" || !p.Active || p.Source != "csv:messy_pupils.csv" || !p.CreatedAt.Equal(testNow) {
		t.Errorf("person %+v", p)
	}
	p = personByUPN(t, d, "A820000000201")
	if p.Email != "cahmed201@pupils.example-school.org.uk" {
		t.Errorf("email %q not lower-cased", p.Email)
	}
	var dobColumns int
	d.db.QueryRow("SELECT COUNT(*) FROM pragma_table_info('people') WHERE name LIKE '%birth%' OR name = 'dob'").Scan(&dobColumns)
	if dobColumns != 0 {
		t.Error("people keep a date of birth")
	}
}

func TestReimportUnchanged(t *testing.T) {
	d, db := newTestDirectory(t)
	withRules(t, d)
	importFile(t, d, "sims_student_list.csv", ImportOptions{})
	before := snapshot(t, db)
	res := importFile(t, d, "sims_student_list.csv", ImportOptions{DeactivateMissing: true})
	if res.Created != 0 || res.Updated != 0 || res.Unchanged != 12 || res.Deactivated != 0 || res.Revision != 0 {
		t.Errorf("result %+v", res)
	}
	if after := snapshot(t, db); after != before {
		t.Errorf("re-import changed the store: %+v -> %+v", before, after)
	}
}

func TestReimportMatchesByEachKey(t *testing.T) {
	tests := []struct {
		name, first, second string
		updated, unchanged  int
	}{
		{"UPN", "UPN,Forename,Surname,Year\nA820000000001,Ava,Evans,3\n", "UPN,Forename,Surname,Year\na820000000001,Ava,Evans-Smith,3\n", 1, 0},
		{"MIS id with lost leading zeros", "Student ID,Forename,Surname,Year\n000200,Ava,Evans,3\n", "Student ID,Forename,Surname,Year\n200,Ava,Evans,3\n", 0, 1},
		{"admission number", "Adno,Forename,Surname,Year\n0042,Ava,Evans,3\n", "Adno,Forename,Surname,Year,Reg\n42,Ava,Evans,4,4B\n", 1, 0},
		{"username", "Username,Forename,Surname,Role\nGSmith,Grace,Smith,Teacher\n", "Username,Forename,Surname,Role\ngsmith,Grace,Smith,Headteacher\n", 1, 0},
		{"email", "Email,Forename,Surname,Role\ngs@example.org,Grace,Smith,Teacher\n", "Email,Forename,Surname,Role\nGS@Example.org,Grace,Smith,Teacher\n", 0, 1},
		{"UPN added to a pupil known by adno", "Adno,Forename,Surname,Year\n42,Ava,Evans,3\n", "UPN,Adno,Forename,Surname,Year\nA820000000001,42,Ava,Evans,3\n", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, db := newTestDirectory(t)
			withRules(t, d)
			ctx := context.Background()
			if _, err := d.ImportCSV(ctx, strings.NewReader(tt.first), "first.csv", ImportOptions{}); err != nil {
				t.Fatal(err)
			}
			res, err := d.ImportCSV(ctx, strings.NewReader(tt.second), "second.csv", ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Created != 0 || res.Updated != tt.updated || res.Unchanged != tt.unchanged {
				t.Errorf("result %+v", res)
			}
			if s := snapshot(t, db); s.people != 1 {
				t.Errorf("%d people after re-import, want 1", s.people)
			}
		})
	}
}

func TestSeptemberReimport(t *testing.T) {
	d, db := newTestDirectory(t)
	withRules(t, d)
	ctx := context.Background()
	importFile(t, d, "sims_student_list.csv", ImportOptions{})

	// Ava Evans (Year 2) stays with the younger pupils by hand.
	ava := personByUPN(t, d, "A820000000001")
	if ava.GroupID != "early-years-ks1" {
		t.Fatalf("Ava in %q before September", ava.GroupID)
	}
	if err := d.SetPersonGroup(ctx, "dsl", ava.ID, "early-years-ks1"); err != nil {
		t.Fatal(err)
	}
	before := revision(t, db)
	res := importFile(t, d, "sims_september.csv", ImportOptions{DeactivateMissing: true})
	want := ImportResult{File: "sims_september.csv", Kind: KindPupil, Rows: 12, Created: 1, Updated: 11, Deactivated: 1,
		Groups: map[string]int{"early-years-ks1": 5, "key-stage-2": 7}, Ignored: []string{"DOB"}, Revision: before + 1}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("result\n got %+v\nwant %+v", res, want)
	}
	tests := []struct {
		upn    string
		year   int
		group  string
		active bool
		manual bool
	}{
		{"A820000000001", 3, "early-years-ks1", true, true}, // manual group kept
		{"A820000000002", 6, "key-stage-2", false, false},   // left for secondary school
		{"A820000000004", 1, "early-years-ks1", true, false},
		{"A820000000006", 4, "key-stage-2", true, false},
		{"A820000000007", 3, "key-stage-2", true, false}, // moved up a key stage
		{"A820000000101", 0, "early-years-ks1", true, false},
	}
	for _, tt := range tests {
		p := personByUPN(t, d, tt.upn)
		if p.Year != tt.year || p.GroupID != tt.group || p.Active != tt.active || p.GroupManual != tt.manual {
			t.Errorf("%s: year %d group %q active %t manual %t; want %d %q %t %t", tt.upn, p.Year, p.GroupID, p.Active, p.GroupManual,
				tt.year, tt.group, tt.active, tt.manual)
		}
	}
	if s := snapshot(t, db); s.people != 13 {
		t.Errorf("%d people, want 13 (no duplicates)", s.people)
	}
	if p := personByUPN(t, d, "A820000000006"); p.RegGroup != "4A" {
		t.Errorf("reg group %q not updated", p.RegGroup)
	}

	// Returning Ava to the rules puts her with her new year group.
	if err := d.SetPersonGroup(ctx, "dsl", ava.ID, ""); err != nil {
		t.Fatal(err)
	}
	if p := personByUPN(t, d, "A820000000001"); p.GroupID != "key-stage-2" || p.GroupManual {
		t.Errorf("after returning to rules: group %q manual %t", p.GroupID, p.GroupManual)
	}
}

func TestDeactivateMissingSparesOthers(t *testing.T) {
	d, _ := newTestDirectory(t)
	withRules(t, d)
	ctx := context.Background()
	importFile(t, d, "staff.csv", ImportOptions{})
	manual, err := d.AddPerson(ctx, "office", Person{Kind: KindPupil, LegalForename: "Nia", Surname: "Hand", Year: 2, HasYear: true, UPN: "A820000000999"})
	if err != nil {
		t.Fatal(err)
	}
	importFile(t, d, "sims_student_list.csv", ImportOptions{})
	res := importFile(t, d, "sims_september.csv", ImportOptions{DeactivateMissing: true})
	if res.Deactivated != 1 {
		t.Errorf("deactivated %d, want 1", res.Deactivated)
	}
	if p, _ := d.Person(ctx, manual); !p.Active {
		t.Error("a pupil added by hand was deactivated")
	}
	staff, total, err := d.People(ctx, PeopleFilter{Kind: KindStaff})
	if err != nil || total != 12 || len(staff) != 12 {
		t.Errorf("staff after a pupil import: %d (%v)", total, err)
	}
}

func TestImportBadFileChangesNothing(t *testing.T) {
	tests := []struct {
		name, data string
		kind       Kind
		want       []string
	}{
		{
			name: "bad rows",
			data: "UPN,Forename,Surname,Year\nA820000000001,Ava,Evans,3\nA820000000050,,Lewis,3\n",
			want: []string{"in.csv:3: forename is missing"},
		},
		{
			name: "keys of two stored people",
			data: "UPN,Adno,Forename,Surname,Year\nA820000000001,000003,Ava,Evans,3\n",
			want: []string{"in.csv:2: UPN A820000000001 belongs to person 1 (Ava Evans) but admission number 000003 belongs to person 3 (Mia Jones)"},
		},
		{
			name: "two rows match one stored person",
			data: "UPN,Adno,Forename,Surname,Year\nA820000000001,,Ava,Evans,3\n,000001,Ava,Evans,3\n",
			want: []string{"in.csv:3: matches the same person as line 2: person 1 (Ava Evans)"},
		},
		{
			name: "a key of another kind",
			data: "Username,Forename,Surname,Role\ngsmith,Grace,Smith,Head\n",
			want: []string{"in.csv:2: username gsmith belongs to person 1 (Ava Evans), who is a pupil, not a member of staff"},
		},
		{
			name: "parent of an unknown pupil",
			data: "Contact Forename,Contact Surname,Relationship,Email,Pupil UPN\nSam,Evans,Father,sam@example.net,A820000000777\n" +
				"Kim,Jones,Mother,kim@example.net,A820000000003\n",
			want: []string{"in.csv:2: no pupil with UPN A820000000777, stored or in this file"},
		},
		{
			name: "parent naming two pupils",
			data: "Contact Forename,Contact Surname,Relationship,Email,Pupil UPN,Pupil Adno\nSam,Evans,Father,sam@example.net,A820000000001,000003\n",
			want: []string{"in.csv:2: pupil UPN A820000000001 and admission number 000003 are different pupils"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, db := newTestDirectory(t)
			withRules(t, d)
			ctx := context.Background()
			importFile(t, d, "sims_student_list.csv", ImportOptions{})
			if _, err := d.db.Exec("UPDATE people SET username = 'gsmith' WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, db)
			res, err := d.ImportCSV(ctx, strings.NewReader(tt.data), "in.csv", ImportOptions{Kind: tt.kind})
			if err == nil {
				t.Fatalf("import succeeded: %+v", res)
			}
			if got := problemsOf(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if after := snapshot(t, db); after != before {
				t.Errorf("failed import changed the store: %+v -> %+v", before, after)
			}
		})
	}
}

func TestImportBadFixtureChangesNothing(t *testing.T) {
	d, db := newTestDirectory(t)
	withRules(t, d)
	importFile(t, d, "sims_student_list.csv", ImportOptions{})
	before := snapshot(t, db)
	_, err := d.ImportCSV(context.Background(), strings.NewReader(readTestdata(t, "bad_pupils.csv")), "bad_pupils.csv", ImportOptions{})
	if got := problemsOf(t, err); len(got) != 9 || got[0] != "bad_pupils.csv:3: surname is missing" {
		t.Errorf("problems %q", got)
	}
	if after := snapshot(t, db); after != before {
		t.Errorf("failed import changed the store: %+v -> %+v", before, after)
	}
}

func TestImportParents(t *testing.T) {
	d, db := newTestDirectory(t)
	withRules(t, d)
	ctx := context.Background()
	importFile(t, d, "sims_student_list.csv", ImportOptions{})
	res := importFile(t, d, "parents.csv", ImportOptions{})
	if res.Kind != KindParent || res.Rows != 4 || res.Created != 3 || res.Linked != 4 || !reflect.DeepEqual(res.Groups, map[string]int{"": 3}) {
		t.Errorf("result %+v", res)
	}
	ava := personByUPN(t, d, "A820000000001")
	links, err := d.Guardianships(ctx, ava.ID)
	if err != nil {
		t.Fatal(err)
	}
	var rels []string
	for _, l := range links {
		parent, err := d.Person(ctx, l.ParentID)
		if err != nil {
			t.Fatal(err)
		}
		if parent.Kind != KindParent || l.PupilID != ava.ID {
			t.Errorf("link %+v to %+v", l, parent)
		}
		rels = append(rels, parent.DisplayName()+" "+l.Relationship)
	}
	if want := []string{"Sarah Evans Mother", "Tom Evans Father"}; !reflect.DeepEqual(rels, want) {
		t.Errorf("Ava's parents %q, want %q", rels, want)
	}
	sarah, err := d.PersonByLogin(ctx, "SEVANS@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if links, _ := d.Guardianships(ctx, sarah.ID); len(links) != 2 {
		t.Errorf("Sarah has %d children, want 2", len(links))
	}

	before := snapshot(t, db)
	res = importFile(t, d, "parents.csv", ImportOptions{})
	if res.Created != 0 || res.Updated != 0 || res.Unchanged != 3 || res.Linked != 0 {
		t.Errorf("re-import %+v", res)
	}
	if after := snapshot(t, db); after != before {
		t.Errorf("re-import changed the store: %+v -> %+v", before, after)
	}

	// A changed relationship updates the link and counts the parent.
	changed := strings.Replace(readTestdata(t, "parents.csv"), "Foster carer", "Special guardian", 1)
	res, err = d.ImportCSV(ctx, strings.NewReader(changed), "parents.csv", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Updated != 1 || res.Unchanged != 2 || res.Linked != 1 {
		t.Errorf("relationship change %+v", res)
	}
}

func TestImportMixedLinksPupilOfSameFile(t *testing.T) {
	d, _ := newTestDirectory(t)
	withRules(t, d)
	ctx := context.Background()
	res := importFile(t, d, "mixed.csv", ImportOptions{})
	if res.Linked != 1 {
		t.Fatalf("result %+v", res)
	}
	nia := personByUPN(t, d, "A820000000301")
	links, err := d.Guardianships(ctx, nia.ID)
	if err != nil || len(links) != 1 || links[0].Relationship != "Mother" {
		t.Fatalf("links %+v, %v", links, err)
	}
	kate, err := d.Person(ctx, links[0].ParentID)
	if err != nil || kate.DisplayName() != "Kate Smith" || kate.Kind != KindParent {
		t.Errorf("parent %+v, %v", kate, err)
	}
	grace, err := d.PersonByLogin(ctx, "ghopper@EXAMPLE-school.org.uk")
	if err != nil || grace.Kind != KindStaff || grace.Role != "Class Teacher" || grace.GroupID != "staff" {
		t.Errorf("staff %+v, %v", grace, err)
	}
}

func TestImportForcedKind(t *testing.T) {
	d, _ := newTestDirectory(t)
	withRules(t, d)
	data := "Forename,Surname,Email,Role\nAnn,Other,ann@example.org,Supply teacher\n"
	res, err := d.ImportCSV(context.Background(), strings.NewReader(data), "visitors.csv", ImportOptions{Kind: KindVisitor})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindVisitor || res.Created != 1 || !reflect.DeepEqual(res.Groups, map[string]int{"visitors": 1}) {
		t.Errorf("result %+v", res)
	}
	_, err = d.ImportCSV(context.Background(), strings.NewReader(data), "visitors.csv", ImportOptions{Kind: "governor"})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestImportTrailingSeparators(t *testing.T) {
	d, _ := newTestDirectory(t)
	data := "UPN,Forename,Surname,Year\nA820000000001,Ava,Evans,3,\nA820000000002,Bea,Evans,4,,\n"
	res, err := d.ImportCSV(context.Background(), strings.NewReader(data), "in.csv", ImportOptions{})
	if err != nil || res.Created != 2 {
		t.Errorf("import %+v, %v", res, err)
	}
}

func TestImportReadError(t *testing.T) {
	d, _ := newTestDirectory(t)
	boom := errors.New("disk on fire")
	_, err := d.ImportCSV(context.Background(), errReader{boom}, "in.csv", ImportOptions{})
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v", err)
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Error("read error looks like not found")
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestImportSharedEmailDoesNotMergePupils(t *testing.T) {
	d, db := newTestDirectory(t)
	ctx := context.Background()
	first := "UPN,Forename,Surname,Year,Email\nA820000000001,Ava,Evans,3,family@example.net\n"
	if _, err := d.ImportCSV(ctx, strings.NewReader(first), "a.csv", ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	// A sibling with the family email but a UPN of her own is someone else.
	second := "UPN,Forename,Surname,Year,Email\nA820000000002,Bea,Evans,1,family@example.net\n"
	res, err := d.ImportCSV(ctx, strings.NewReader(second), "b.csv", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 1 || res.Updated != 0 || snapshot(t, db).people != 2 {
		t.Errorf("result %+v", res)
	}
	if p := personByUPN(t, d, "A820000000001"); p.LegalForename != "Ava" {
		t.Errorf("first pupil overwritten: %+v", p)
	}
	// With both on file the email matches no one; a third row by email
	// alone is a new person.
	third := "Email,Forename,Surname,Year\nfamily@example.net,Cal,Evans,R\n"
	if res, err := d.ImportCSV(ctx, strings.NewReader(third), "c.csv", ImportOptions{}); err != nil || res.Created != 1 {
		t.Errorf("third: %+v, %v", res, err)
	}
}

// A dry run reports what an import would do, and keeps nothing.
func TestImportDryRun(t *testing.T) {
	d, db := newTestDirectory(t)
	ctx := context.Background()
	csv := "UPN,Legal Forename,Legal Surname,Year\nA820000000101,Ava,Evans,R\nA820000000102,Noah,Patel,2\n"
	before := wardentest.Revision(t, db)
	res, err := d.ImportCSV(ctx, strings.NewReader(csv), "pupils.csv", ImportOptions{Kind: KindPupil, Actor: "test", DryRun: true})
	if err != nil || res.Created != 2 || res.Revision != 0 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if people, n, _ := d.People(ctx, PeopleFilter{}); n != 0 || len(people) != 0 || wardentest.Revision(t, db) != before {
		t.Fatalf("a dry run kept %d people", n)
	}
	if _, err := d.ImportCSV(ctx, strings.NewReader("UPN,Year\nbad,99\n"), "bad.csv", ImportOptions{Kind: KindPupil, DryRun: true}); err == nil {
		t.Fatal("a dry run of a bad file passed")
	}
}
