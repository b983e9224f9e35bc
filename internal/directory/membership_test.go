package directory

import (
	"context"
	"errors"
	"testing"

	"github.com/warden-schools/warden/internal/store"
)

func TestGroupFor(t *testing.T) {
	rules := schoolRules()
	tests := []struct {
		name string
		p    Person
		want string
	}{
		{"nursery", Person{Kind: KindPupil, Year: -1, HasYear: true}, "early-years-ks1"},
		{"year 2", Person{Kind: KindPupil, Year: 2, HasYear: true}, "early-years-ks1"},
		{"year 3", Person{Kind: KindPupil, Year: 3, HasYear: true}, "key-stage-2"},
		{"year 7 (no rule)", Person{Kind: KindPupil, Year: 7, HasYear: true}, ""},
		{"pupil without a year", Person{Kind: KindPupil}, ""},
		{"governor by role, any case", Person{Kind: KindStaff, Role: "Chair of Governors"}, "visitors"},
		{"teacher", Person{Kind: KindStaff, Role: "Class Teacher"}, "staff"},
		{"staff without a role", Person{Kind: KindStaff}, "staff"},
		{"visitor", Person{Kind: KindVisitor}, "visitors"},
		{"parent", Person{Kind: KindParent}, ""},
	}
	for _, tt := range tests {
		if got := GroupFor(rules, tt.p); got != tt.want {
			t.Errorf("%s: GroupFor = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestSetMembershipRulesRegroups(t *testing.T) {
	d, db := newTestDirectory(t)
	withRules(t, d)
	ctx := context.Background()
	importFile(t, d, "sims_student_list.csv", ImportOptions{})
	ava := personByUPN(t, d, "A820000000001") // Year 2
	if err := d.SetPersonGroup(ctx, "dsl", ava.ID, "visitors"); err != nil {
		t.Fatal(err)
	}
	// Everyone in one pupil group now.
	before := revision(t, db)
	rules := []MembershipRule{{GroupID: "key-stage-2", Kind: KindPupil, Position: 99}, {GroupID: "staff", Kind: KindStaff, Role: "teach"}}
	if err := d.SetMembershipRules(ctx, "head", rules); err != nil {
		t.Fatal(err)
	}
	if revision(t, db) != before+1 {
		t.Error("rules change made no single revision")
	}
	got, err := d.MembershipRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Position != 1 || got[1].Position != 2 || got[0].GroupID != "key-stage-2" || got[1].Role != "teach" ||
		got[0].MinYear != nil || got[0].ID == 0 {
		t.Errorf("rules %+v", got)
	}
	_, n, _ := d.People(ctx, PeopleFilter{GroupID: "key-stage-2"})
	if n != 11 {
		t.Errorf("%d pupils in key-stage-2, want 11 (all but the manual one)", n)
	}
	if p := personByUPN(t, d, "A820000000001"); p.GroupID != "visitors" {
		t.Errorf("manual group overwritten: %q", p.GroupID)
	}
}

func TestSetMembershipRulesInvalid(t *testing.T) {
	d, db := newTestDirectory(t)
	withRules(t, d)
	ctx := context.Background()
	tests := []struct {
		name string
		rule MembershipRule
		is   error
		msg  string
	}{
		{"no group", MembershipRule{Kind: KindPupil}, ErrInvalid, "set membership rules: membership rule 2: no group"},
		{"unknown group", MembershipRule{Kind: KindPupil, GroupID: "sixth-form"}, store.ErrNotFound,
			`set membership rules: membership rule 2: group "sixth-form": not found`},
		{"bad kind", MembershipRule{Kind: "pupils", GroupID: "staff"}, ErrInvalid,
			`set membership rules: membership rule 2: person kind "pupils" not recognised (want pupil, staff, visitor or parent)`},
		{"years on staff", MembershipRule{Kind: KindStaff, GroupID: "staff", MinYear: intp(3)}, ErrInvalid,
			"set membership rules: membership rule 2: year groups apply only to pupils"},
		{"role on pupils", MembershipRule{Kind: KindPupil, GroupID: "staff", Role: "x"}, ErrInvalid,
			"set membership rules: membership rule 2: roles apply only to staff, visitors and parents"},
		{"years reversed", MembershipRule{Kind: KindPupil, GroupID: "staff", MinYear: intp(6), MaxYear: intp(3)}, ErrInvalid,
			"set membership rules: membership rule 2: from Year 6 is after to Year 3"},
		{"year out of range", MembershipRule{Kind: KindPupil, GroupID: "staff", MaxYear: intp(14)}, ErrInvalid,
			"set membership rules: membership rule 2: year group 14 out of range (want -1 for Nursery to 13)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, db)
			err := d.SetMembershipRules(ctx, "head", []MembershipRule{{GroupID: "staff", Kind: KindStaff}, tt.rule})
			if !errors.Is(err, tt.is) || err.Error() != tt.msg {
				t.Errorf("err = %v, want %q", err, tt.msg)
			}
			if after := snapshot(t, db); after != before {
				t.Error("failed change altered the store")
			}
		})
	}
}
