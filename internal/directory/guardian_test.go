package directory

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/warden-schools/warden/internal/store"
)

func TestLinkGuardian(t *testing.T) {
	d, db := newTestDirectory(t)
	ctx := context.Background()
	add := func(p Person) int64 {
		t.Helper()
		id, err := d.AddPerson(ctx, "office", p)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	pupil := add(Person{Kind: KindPupil, LegalForename: "Ava", Surname: "Evans", Year: 3, HasYear: true, UPN: "A820000000001"})
	parent := add(Person{Kind: KindParent, LegalForename: "Sam", Surname: "Evans", Email: "sam@example.net"})
	staff := add(Person{Kind: KindStaff, LegalForename: "Grace", Surname: "Smith", MISID: "S1"})

	before := revision(t, db)
	if err := d.LinkGuardian(ctx, "office", parent, pupil, "Father"); err != nil {
		t.Fatal(err)
	}
	if err := d.LinkGuardian(ctx, "office", parent, pupil, " Step-father "); err != nil {
		t.Fatal(err)
	}
	if revision(t, db) != before+2 {
		t.Error("links made no revisions")
	}
	want := []Guardianship{{ParentID: parent, PupilID: pupil, Relationship: "Step-father"}}
	for _, id := range []int64{pupil, parent} {
		got, err := d.Guardianships(ctx, id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Guardianships(%d) = %+v, %v", id, got, err)
		}
	}
	if got, _ := d.Guardianships(ctx, staff); len(got) != 0 {
		t.Errorf("staff has links %+v", got)
	}

	bad := []struct {
		parent, pupil int64
		is            error
		msg           string
	}{
		{staff, pupil, ErrInvalid, "link guardian: person 3 is a member of staff, not a parent or carer"},
		{parent, parent, ErrInvalid, "link guardian: person 2 is a parent or carer, not a pupil"},
		{99, pupil, store.ErrNotFound, "link guardian: person 99: not found"},
		{parent, 98, store.ErrNotFound, "link guardian: person 98: not found"},
	}
	for _, tt := range bad {
		s := snapshot(t, db)
		if err := d.LinkGuardian(ctx, "office", tt.parent, tt.pupil, ""); !errors.Is(err, tt.is) || err.Error() != tt.msg {
			t.Errorf("LinkGuardian(%d, %d) = %v, want %q", tt.parent, tt.pupil, err, tt.msg)
		}
		if snapshot(t, db) != s {
			t.Error("failed link changed the store")
		}
	}
}
