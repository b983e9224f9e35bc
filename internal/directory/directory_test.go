package directory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 9, 3, 8, 30, 0, 0, time.UTC)

// testGroups are the policy groups of the demonstration school.
var testGroups = []string{"early-years-ks1", "key-stage-2", "staff", "visitors"}

// newTestDirectory opens a migrated SQLite store in a temporary folder
// with the test groups and returns a Directory over it.
func newTestDirectory(t testing.TB) (*Directory, *store.DB) {
	t.Helper()
	db := wardentest.OpenStore(t)
	for _, g := range testGroups {
		if _, err := db.Exec(`INSERT INTO groups (id, name, mode, safe_search, default_action, created_at, updated_at)
			VALUES (?, ?, 'filter', 'strict', 'allow', 0, 0)`, g, g); err != nil {
			t.Fatal(err)
		}
	}
	return New(db, func() time.Time { return testNow }), db
}

func intp(v int) *int { return &v }

// schoolRules are the membership rules of the demonstration school:
// Nursery to Year 2 in early-years-ks1, Years 3 to 6 in key-stage-2,
// governors (by role) in visitors, other staff in staff.
func schoolRules() []MembershipRule {
	return []MembershipRule{
		{GroupID: "early-years-ks1", Kind: KindPupil, MinYear: intp(YearNursery), MaxYear: intp(2)},
		{GroupID: "key-stage-2", Kind: KindPupil, MinYear: intp(3), MaxYear: intp(6)},
		{GroupID: "visitors", Kind: KindStaff, Role: "GOVERNOR"},
		{GroupID: "staff", Kind: KindStaff},
		{GroupID: "visitors", Kind: KindVisitor},
	}
}

// withRules sets the school rules.
func withRules(t testing.TB, d *Directory) {
	t.Helper()
	if err := d.SetMembershipRules(context.Background(), "test", schoolRules()); err != nil {
		t.Fatal(err)
	}
}

// importFile imports a fixture from testdata.
func importFile(t *testing.T, d *Directory, name string, opts ImportOptions) ImportResult {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if opts.Actor == "" {
		opts.Actor = "technician"
	}
	res, err := d.ImportCSV(context.Background(), f, name, opts)
	if err != nil {
		t.Fatalf("import %s: %v", name, err)
	}
	return res
}

// dbState is what a failed write must leave unchanged.
type dbState struct {
	people, guardians, devices, zones, rules int
	revision                                 int64
}

func snapshot(t *testing.T, db *store.DB) dbState {
	t.Helper()
	var s dbState
	for _, c := range []struct {
		table string
		dst   *int
	}{{"people", &s.people}, {"guardians", &s.guardians}, {"devices", &s.devices}, {"zones", &s.zones}, {"group_rules", &s.rules}} {
		if err := db.QueryRow("SELECT COUNT(*) FROM " + c.table).Scan(c.dst); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := store.CurrentRevision(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	s.revision = rev
	return s
}

// revision returns the current policy version.
func revision(t testing.TB, db *store.DB) int64 { return wardentest.Revision(t, db) }

// personByUPN finds an imported pupil.
func personByUPN(t *testing.T, d *Directory, upn string) Person {
	t.Helper()
	var id int64
	if err := d.db.QueryRow("SELECT id FROM people WHERE upn = ?", upn).Scan(&id); err != nil {
		t.Fatalf("pupil %s: %v", upn, err)
	}
	p, err := d.Person(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInvalidErrors(t *testing.T) {
	err := invalidf("surname is required")
	if !errors.Is(err, ErrInvalid) || err.Error() != "surname is required" {
		t.Fatalf("invalidf: %v, is ErrInvalid %t", err, errors.Is(err, ErrInvalid))
	}
	ie := &ImportError{Problems: []Problem{{File: "a.csv", Line: 3, Msg: "x"}, {File: "a.csv", Msg: "y"}}, Omitted: 2}
	if !errors.Is(ie, ErrInvalid) {
		t.Error("ImportError is not ErrInvalid")
	}
	if got, want := ie.Error(), "a.csv:3: x\na.csv: y\n... and 2 more problems"; got != want {
		t.Errorf("ImportError = %q, want %q", got, want)
	}
}

// readTestdata returns a fixture's text.
func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
