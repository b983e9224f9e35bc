package policystore

import (
	"context"
	"testing"
	"time"
	_ "time/tzdata" // time zones without relying on the host's zoneinfo

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 9, 3, 8, 30, 0, 0, time.UTC)

// newTestStore opens a migrated SQLite store in a temporary folder, with
// one zone, and returns a Store over it with the default taxonomy.
func newTestStore(t *testing.T) (*Store, *store.DB) {
	t.Helper()
	db := wardentest.OpenStore(t)
	for _, z := range []string{"staff-room", "library"} {
		if _, err := db.Exec("INSERT INTO zones (id, name, created_at, updated_at) VALUES (?, ?, 0, 0)", z, z); err != nil {
			t.Fatal(err)
		}
	}
	return New(db, lists.DefaultTaxonomy(), func() time.Time { return testNow }), db
}

// revision returns the current policy version.
func revision(t testing.TB, db *store.DB) int64 { return wardentest.Revision(t, db) }

// revisions runs do and checks that it added exactly want revisions.
func revisions(t *testing.T, db *store.DB, want int64, do func() error) error {
	t.Helper()
	before := revision(t, db)
	err := do()
	if got := revision(t, db) - before; got != want {
		t.Errorf("added %d revisions, want %d (err %v)", got, want, err)
	}
	return err
}

// putGroup saves a group and fails the test on error.
func putGroup(t *testing.T, s *Store, spec GroupSpec) {
	t.Helper()
	if err := s.PutGroup(context.Background(), "admin", spec); err != nil {
		t.Fatalf("put group %s: %v", spec.ID, err)
	}
}

// load loads the policy and fails the test on error.
func load(t *testing.T, s *Store) Policy {
	t.Helper()
	p, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// group returns a loaded group by id.
func group(t *testing.T, p Policy, id string) policy.Group {
	t.Helper()
	for _, g := range p.Groups {
		if g.ID == id {
			return g
		}
	}
	t.Fatalf("group %s not loaded", id)
	return policy.Group{}
}

// ks2 is a pupil group used throughout.
func ks2() GroupSpec {
	return GroupSpec{
		ID: "key-stage-2", Name: "Key Stage 2", Description: "Years 3 to 6",
		Mode: policy.ModeFilter, SafeSearch: policy.SafeSearchStrict, DefaultAction: policy.Allow,
		EducationFirst: true, Position: 20,
		Categories: map[string]policy.Action{"games": policy.Block, "streaming": policy.Alert, "child-abuse": policy.Block},
	}
}
