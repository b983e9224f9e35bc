package policystore

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
)

func TestPutGroup(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)

	if err := revisions(t, db, 1, func() error { return s.PutGroup(ctx, "admin", ks2()) }); err != nil {
		t.Fatal(err)
	}
	want := policy.Group{
		ID: "key-stage-2", Name: "Key Stage 2", Mode: policy.ModeFilter, DefaultAction: policy.Allow,
		SafeSearch: policy.SafeSearchStrict, EducationFirst: true,
		Categories: map[string]policy.Action{"games": policy.Block, "streaming": policy.Alert, "child-abuse": policy.Block},
	}
	if got := group(t, load(t, s), "key-stage-2"); !reflect.DeepEqual(got, want) {
		t.Errorf("created:\n got %+v\nwant %+v", got, want)
	}

	steps := []struct {
		name   string
		change func(*GroupSpec)
		want   func(*policy.Group)
	}{
		{
			name: "update settings, keep categories",
			change: func(g *GroupSpec) {
				g.Categories = nil
				g.Mode, g.SafeSearch, g.DefaultAction, g.EducationFirst, g.Name = policy.ModeApproved, policy.SafeSearchModerate, policy.Block, false, "KS2"
			},
			want: func(g *policy.Group) {
				g.Mode, g.SafeSearch, g.DefaultAction, g.EducationFirst, g.Name = policy.ModeApproved, policy.SafeSearchModerate, policy.Block, false, "KS2"
			},
		},
		{
			name:   "replace categories",
			change: func(g *GroupSpec) { g.Categories = map[string]policy.Action{"social-media": policy.Alert} },
			want:   func(g *policy.Group) { g.Categories = map[string]policy.Action{"social-media": policy.Alert} },
		},
		{
			name:   "clear categories",
			change: func(g *GroupSpec) { g.Categories = map[string]policy.Action{} },
			want:   func(g *policy.Group) { g.Categories = map[string]policy.Action{} },
		},
		{
			name:   "name defaults to the id",
			change: func(g *GroupSpec) { g.Name = "" },
			want:   func(g *policy.Group) { g.Name = "key-stage-2" },
		},
	}
	spec, wantNow := ks2(), want
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change(&spec)
			st.want(&wantNow)
			if err := revisions(t, db, 1, func() error { return s.PutGroup(ctx, "admin", spec) }); err != nil {
				t.Fatal(err)
			}
			if got := group(t, load(t, s), "key-stage-2"); !reflect.DeepEqual(got, wantNow) {
				t.Errorf("\n got %+v\nwant %+v", got, wantNow)
			}
		})
	}

	var description string
	var created, updated int64
	if err := db.QueryRow("SELECT description, created_at, updated_at FROM groups WHERE id = 'key-stage-2'").Scan(&description, &created, &updated); err != nil {
		t.Fatal(err)
	}
	if description != "Years 3 to 6" || created != store.Millis(testNow) || updated != created {
		t.Errorf("description %q, created %d, updated %d", description, created, updated)
	}
}

func TestPutGroupRefused(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*GroupSpec)
		wantErr string
	}{
		{"empty id", func(g *GroupSpec) { g.ID = "" }, "bad group id"},
		{"upper-case id", func(g *GroupSpec) { g.ID = "Key-Stage-2" }, "bad group id"},
		{"id with underscore", func(g *GroupSpec) { g.ID = "key_stage_2" }, "bad group id"},
		{"id with a leading dash", func(g *GroupSpec) { g.ID = "-ks2" }, "bad group id"},
		{"id with a slash", func(g *GroupSpec) { g.ID = "ks2/a" }, "bad group id"},
		{"id too long", func(g *GroupSpec) { g.ID = strings.Repeat("a", 64) }, "bad group id"},
		{"unknown category", func(g *GroupSpec) { g.Categories["astrology"] = policy.Block }, `unknown category "astrology"`},
		{"child-abuse allowed", func(g *GroupSpec) { g.Categories["child-abuse"] = policy.Allow }, "child-abuse is always blocked"},
		{"terrorism with an alert", func(g *GroupSpec) { g.Categories["terrorism"] = policy.Alert }, "terrorism is always blocked"},
		{"bad action", func(g *GroupSpec) { g.DefaultAction = policy.Action(9) }, "key-stage-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, db := newTestStore(t)
			putGroup(t, s, GroupSpec{ID: "key-stage-2", Categories: map[string]policy.Action{"games": policy.Alert}})
			before := load(t, s)

			spec := ks2()
			tt.change(&spec)
			err := revisions(t, db, 0, func() error { return s.PutGroup(ctx, "admin", spec) })
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if after := load(t, s); !reflect.DeepEqual(after, before) {
				t.Errorf("policy changed:\n got %+v\nwant %+v", after, before)
			}
		})
	}
	if err := ValidateGroupID(strings.Repeat("a", 63)); err != nil {
		t.Errorf("63-character id refused: %v", err)
	}
}

func TestSetCategoryAction(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	putGroup(t, s, ks2())
	tests := []struct {
		name     string
		group    string
		category string
		action   policy.Action
		wantErr  string
		wantIs   error
	}{
		{name: "new category", group: "key-stage-2", category: "gambling", action: policy.Alert},
		{name: "change a category", group: "key-stage-2", category: "games", action: policy.Allow},
		{name: "mandatory category blocked", group: "key-stage-2", category: "terrorism", action: policy.Block},
		{name: "mandatory category allowed", group: "key-stage-2", category: "child-abuse", action: policy.Allow, wantErr: "child-abuse is always blocked"},
		{name: "mandatory category alert", group: "key-stage-2", category: "terrorism", action: policy.Alert, wantErr: "terrorism is always blocked"},
		{name: "unknown category", group: "key-stage-2", category: "astrology", action: policy.Block, wantErr: `unknown category "astrology"`},
		{name: "unknown group", group: "year-12", category: "games", action: policy.Block, wantErr: "year-12", wantIs: store.ErrNotFound},
		{name: "bad action", group: "key-stage-2", category: "games", action: policy.Action(7), wantErr: "games"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := group(t, load(t, s), "key-stage-2")
			want := int64(1)
			if tt.wantErr != "" {
				want = 0
			}
			err := revisions(t, db, want, func() error {
				return s.SetCategoryAction(ctx, "teacher", tt.group, tt.category, tt.action)
			})
			after := group(t, load(t, s), "key-stage-2")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("err = %v, want %v", err, tt.wantIs)
				}
				if !reflect.DeepEqual(after, before) {
					t.Errorf("group changed: %+v", after.Categories)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantCats := maps.Clone(before.Categories)
			wantCats[tt.category] = tt.action
			if !reflect.DeepEqual(after.Categories, wantCats) {
				t.Errorf("categories %v, want %v", after.Categories, wantCats)
			}
		})
	}
}

func TestNormalizePattern(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "example.com", want: "example.com"},
		{in: "  Example.COM.  ", want: "example.com"},
		{in: "*.example.com", want: "example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "example.com/", want: "example.com"},
		{in: "https://Example.com/", want: "example.com"},
		{in: "https://example.com:443/", want: "example.com"},
		{in: "https://Example.com/Maths/Games?level=2", want: "example.com/Maths/Games?level=2"},
		{in: "example.com/a/../b", want: "example.com/b"},
		{in: "http://example.com:8080/", want: "example.com:8080/"},
		{in: "192.0.2.10", want: "192.0.2.10"},
		{in: "", bad: true},
		{in: "two words.example", bad: true},
		{in: "bad..example", bad: true},
		{in: "https:///path", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizePattern(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("NormalizePattern(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormalizePattern(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestAddException(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	putGroup(t, s, ks2())
	putGroup(t, s, GroupSpec{ID: "staff", Position: 30})

	type added struct {
		group   string
		action  policy.Action
		pattern string // stored
	}
	tests := []struct {
		name    string
		group   string
		exc     policy.Exception
		want    string // stored pattern
		wantErr string
		wantIs  error
	}{
		{name: "allow a domain for a group", group: "key-stage-2", exc: policy.Exception{Action: policy.Allow, Pattern: "Scratch.MIT.edu", Note: "coding club"}, want: "scratch.mit.edu"},
		{name: "block a URL prefix for a group", group: "key-stage-2", exc: policy.Exception{Action: policy.Block, Pattern: "https://video.example/Shorts/"}, want: "video.example/Shorts/"},
		{name: "host with a slash is the host", group: "staff", exc: policy.Exception{Action: policy.Allow, Pattern: "http://news.example/"}, want: "news.example"},
		{name: "allow for all groups", exc: policy.Exception{Action: policy.Allow, Pattern: "learn.example"}, want: "learn.example"},
		{name: "block for all groups", exc: policy.Exception{Action: policy.Block, Pattern: "*.bad.example"}, want: "bad.example"},
		{name: "same pattern for another group", group: "staff", exc: policy.Exception{Action: policy.Allow, Pattern: "scratch.mit.edu"}, want: "scratch.mit.edu"},
		{name: "same pattern for all groups", exc: policy.Exception{Action: policy.Allow, Pattern: "scratch.mit.edu"}, want: "scratch.mit.edu"},
		{name: "same pattern, other action", group: "key-stage-2", exc: policy.Exception{Action: policy.Block, Pattern: "scratch.mit.edu"}, want: "scratch.mit.edu"},
		{name: "duplicate for a group", group: "key-stage-2", exc: policy.Exception{Action: policy.Allow, Pattern: "https://SCRATCH.mit.edu/"}, wantIs: store.ErrConflict, wantErr: "scratch.mit.edu"},
		{name: "duplicate for all groups", exc: policy.Exception{Action: policy.Allow, Pattern: "learn.example."}, wantIs: store.ErrConflict, wantErr: "learn.example"},
		{name: "duplicate URL prefix", group: "key-stage-2", exc: policy.Exception{Action: policy.Block, Pattern: "video.example/Shorts/"}, wantIs: store.ErrConflict},
		{name: "unknown group", group: "year-12", exc: policy.Exception{Action: policy.Allow, Pattern: "x.example"}, wantIs: store.ErrNotFound, wantErr: "year-12"},
		{name: "alert is not an exception", group: "staff", exc: policy.Exception{Action: policy.Alert, Pattern: "x.example"}, wantErr: "allows or blocks"},
		{name: "bad pattern", group: "staff", exc: policy.Exception{Action: policy.Allow, Pattern: "two words.example"}, wantErr: `exception "two words.example"`},
		{name: "empty pattern", group: "staff", exc: policy.Exception{Action: policy.Allow, Pattern: " "}, wantErr: "exception"},
	}
	var want []added
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := int64(1)
			if tt.wantErr != "" || tt.wantIs != nil {
				n = 0
			}
			var id int64
			err := revisions(t, db, n, func() error {
				var err error
				id, err = s.AddException(ctx, "teacher", tt.group, tt.exc)
				return err
			})
			if n == 0 {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("err = %v, want %v", err, tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id <= 0 {
				t.Errorf("id %d", id)
			}
			want = append(want, added{tt.group, tt.exc.Action, tt.want})
		})
	}

	// Load puts each exception with its group, and the school-wide ones
	// apart, in the order they were added.
	p := load(t, s)
	var got []added
	for _, g := range p.Groups {
		for _, e := range g.Exceptions {
			got = append(got, added{g.ID, e.Action, e.Pattern})
		}
	}
	for _, e := range p.Exceptions {
		got = append(got, added{"", e.Action, e.Pattern})
	}
	var wantGrouped []added
	for _, g := range []string{"key-stage-2", "staff", ""} {
		for _, w := range want {
			if w.group == g {
				wantGrouped = append(wantGrouped, w)
			}
		}
	}
	if !reflect.DeepEqual(got, wantGrouped) {
		t.Errorf("loaded exceptions:\n got %v\nwant %v", got, wantGrouped)
	}
	if e := group(t, p, "key-stage-2").Exceptions[0]; e.Note != "coding club" || e.ID <= 0 {
		t.Errorf("first exception %+v", e)
	}
	var createdBy string
	var at int64
	if err := db.QueryRow("SELECT created_by, created_at FROM exceptions WHERE pattern = 'learn.example'").Scan(&createdBy, &at); err != nil {
		t.Fatal(err)
	}
	if createdBy != "teacher" || at != store.Millis(testNow) {
		t.Errorf("created by %q at %d", createdBy, at)
	}
	var nullGroups int
	if err := db.QueryRow("SELECT COUNT(*) FROM exceptions WHERE group_id IS NULL").Scan(&nullGroups); err != nil || nullGroups != 3 {
		t.Errorf("%d school-wide exceptions stored with a NULL group, want 3 (%v)", nullGroups, err)
	}
}

func TestRemoveException(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	putGroup(t, s, ks2())
	keep, err := s.AddException(ctx, "teacher", "key-stage-2", policy.Exception{Action: policy.Allow, Pattern: "keep.example"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.AddException(ctx, "teacher", "", policy.Exception{Action: policy.Block, Pattern: "gone.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := revisions(t, db, 1, func() error { return s.RemoveException(ctx, "teacher", gone) }); err != nil {
		t.Fatal(err)
	}
	p := load(t, s)
	if len(p.Exceptions) != 0 || len(group(t, p, "key-stage-2").Exceptions) != 1 || group(t, p, "key-stage-2").Exceptions[0].ID != keep {
		t.Errorf("after removal: school-wide %v, group %v", p.Exceptions, group(t, p, "key-stage-2").Exceptions)
	}
	err = revisions(t, db, 0, func() error { return s.RemoveException(ctx, "teacher", gone) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second removal: %v, want ErrNotFound", err)
	}
	// Removed, it can be added again.
	if _, err := s.AddException(ctx, "teacher", "", policy.Exception{Action: policy.Block, Pattern: "gone.example"}); err != nil {
		t.Errorf("re-adding a removed exception: %v", err)
	}
}

func TestAddRule(t *testing.T) {
	tests := []struct {
		name string
		spec RuleSpec
		// want is the stored form.
		want     RuleSpec
		schedule string // policy.Schedule.String of the loaded rule
	}{
		{
			name:     "weekdays lunchtime",
			spec:     RuleSpec{Name: "Lunchtime games", Action: "allow", Categories: "games  social-media", Days: "weekdays", Start: "9:05", End: "13:15"},
			want:     RuleSpec{Name: "Lunchtime games", Action: "allow", Categories: "games social-media", Days: "mon-fri", Start: "09:05", End: "13:15"},
			schedule: "09:05–13:15 mon-fri",
		},
		{
			name:     "days only",
			spec:     RuleSpec{Name: "Weekend", Action: "Block", Domains: "youtube.com", Days: "Sat, Sun"},
			want:     RuleSpec{Name: "Weekend", Action: "block", Domains: "youtube.com", Days: "sat sun", Start: "00:00", End: "24:00"},
			schedule: "sat sun",
		},
		{
			name:     "every day overnight",
			spec:     RuleSpec{Name: "Night", Action: "allow-and-alert", Days: "mon tue wed thu fri sat sun", Start: "22:00", End: "6:00"},
			want:     RuleSpec{Name: "Night", Action: "alert", Days: "every-day", Start: "22:00", End: "06:00"},
			schedule: "22:00–06:00 every-day",
		},
		{
			name:     "any time, from zones",
			spec:     RuleSpec{Name: "Staff room", Action: "allow", Categories: "streaming", Zones: "staff-room library"},
			want:     RuleSpec{Name: "Staff room", Action: "allow", Categories: "streaming", Zones: "staff-room library"},
			schedule: "any time",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, db := newTestStore(t)
			putGroup(t, s, ks2())
			var id int64
			err := revisions(t, db, 1, func() error {
				var err error
				id, err = s.AddRule(ctx, "teacher", "key-stage-2", tt.spec)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var got RuleSpec
			var position int
			err = db.QueryRow(`SELECT id, name, action, categories, domains, days, start_time, end_time, zones, position FROM rules WHERE group_id = 'key-stage-2'`).
				Scan(&got.ID, &got.Name, &got.Action, &got.Categories, &got.Domains, &got.Days, &got.Start, &got.End, &got.Zones, &position)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.ID = id
			if got != want || position != 1 {
				t.Errorf("stored (position %d):\n got %+v\nwant %+v", position, got, want)
			}
			rules := group(t, load(t, s), "key-stage-2").Rules
			if len(rules) != 1 || rules[0].ID != id || rules[0].Name != tt.want.Name || rules[0].Schedule.String() != tt.schedule ||
				rules[0].Action.String() != tt.want.Action {
				t.Errorf("loaded %+v (schedule %s), want schedule %s", rules, rules[0].Schedule, tt.schedule)
			}
		})
	}
}

func TestAddRuleRefused(t *testing.T) {
	tests := []struct {
		name    string
		group   string
		spec    RuleSpec
		wantErr string
		wantIs  error
	}{
		{name: "unknown zone", spec: RuleSpec{Name: "r", Action: "allow", Zones: "staff-room sports-hall"}, wantErr: "sports-hall", wantIs: store.ErrNotFound},
		{name: "unknown category", spec: RuleSpec{Name: "r", Action: "allow", Categories: "games astrology"}, wantErr: `unknown category "astrology"`},
		{name: "mandatory category", spec: RuleSpec{Name: "r", Action: "block", Categories: "child-abuse"}, wantErr: "child-abuse is always blocked"},
		{name: "other mandatory category", spec: RuleSpec{Name: "r", Action: "allow", Categories: "terrorism"}, wantErr: "terrorism is always blocked"},
		{name: "empty name", spec: RuleSpec{Name: "  ", Action: "allow"}, wantErr: "needs a name"},
		{name: "unknown group", group: "year-12", spec: RuleSpec{Name: "r", Action: "allow"}, wantErr: "year-12", wantIs: store.ErrNotFound},
		{name: "bad action", spec: RuleSpec{Name: "r", Action: "permit"}, wantErr: "unknown action"},
		{name: "empty schedule", spec: RuleSpec{Name: "r", Action: "allow", Days: "mon", Start: "09:00", End: "09:00"}, wantErr: "empty"},
		{name: "bad time", spec: RuleSpec{Name: "r", Action: "allow", Days: "mon", Start: "25:00", End: "26:00"}, wantErr: "bad time"},
		{name: "times without days", spec: RuleSpec{Name: "r", Action: "allow", Start: "09:00", End: "10:00"}, wantErr: "no days"},
		{name: "bad day", spec: RuleSpec{Name: "r", Action: "allow", Days: "funday"}, wantErr: "unknown day"},
		{name: "bad domain", spec: RuleSpec{Name: "r", Action: "allow", Domains: "ok.example bad..example"}, wantErr: `domain "bad..example"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, db := newTestStore(t)
			putGroup(t, s, ks2())
			g := tt.group
			if g == "" {
				g = "key-stage-2"
			}
			err := revisions(t, db, 0, func() error {
				_, err := s.AddRule(ctx, "teacher", g, tt.spec)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want %v", err, tt.wantIs)
			}
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM rules").Scan(&n); err != nil || n != 0 {
				t.Errorf("%d rules stored", n)
			}
		})
	}
}

func TestRulePositions(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	putGroup(t, s, ks2())
	putGroup(t, s, GroupSpec{ID: "staff"})
	add := func(g, name string) int64 {
		t.Helper()
		id, err := s.AddRule(ctx, "teacher", g, RuleSpec{Name: name, Action: "allow", Days: "weekdays", Start: "12:00", End: "13:00"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	first := add("key-stage-2", "first")
	add("staff", "staff only")
	second := add("key-stage-2", "second")
	add("key-stage-2", "third")

	positions := func(g string) map[string]int {
		rows, err := db.Query("SELECT name, position FROM rules WHERE group_id = ?", g)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var name string
			var pos int
			if err := rows.Scan(&name, &pos); err != nil {
				t.Fatal(err)
			}
			out[name] = pos
		}
		return out
	}
	if got, want := positions("key-stage-2"), map[string]int{"first": 1, "second": 2, "third": 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("positions %v, want %v", got, want)
	}
	if got := positions("staff"); got["staff only"] != 1 {
		t.Errorf("staff positions %v: each group counts from 1", got)
	}

	names := func() []string {
		var out []string
		for _, r := range group(t, load(t, s), "key-stage-2").Rules {
			out = append(out, r.Name)
		}
		return out
	}
	if got := names(); !reflect.DeepEqual(got, []string{"first", "second", "third"}) {
		t.Errorf("loaded rules %v", got)
	}
	if err := revisions(t, db, 1, func() error { return s.RemoveRule(ctx, "teacher", second) }); err != nil {
		t.Fatal(err)
	}
	if got := names(); !reflect.DeepEqual(got, []string{"first", "third"}) {
		t.Errorf("after removal %v", got)
	}
	add("key-stage-2", "fourth")
	if got := names(); !reflect.DeepEqual(got, []string{"first", "third", "fourth"}) {
		t.Errorf("a rule added after a removal is not last: %v", got)
	}
	// Loaded order follows position, not id.
	if _, err := db.Exec("UPDATE rules SET position = 99 WHERE id = ?", first); err != nil {
		t.Fatal(err)
	}
	if got := names(); !reflect.DeepEqual(got, []string{"third", "fourth", "first"}) {
		t.Errorf("after moving first to the end %v", got)
	}
	err := revisions(t, db, 0, func() error { return s.RemoveRule(ctx, "teacher", second) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing a removed rule: %v, want ErrNotFound", err)
	}
}

func TestSetSetting(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		value   string
		want    func(Settings) string // the setting as loaded
		wantVal string
		wantErr string
		wantIs  error
	}{
		{name: "time zone", key: SettingTimeZone, value: "Europe/Paris", want: tz, wantVal: "Europe/Paris"},
		{name: "UTC", key: SettingTimeZone, value: "UTC", want: tz, wantVal: "UTC"},
		{name: "Local time zone", key: SettingTimeZone, value: "Local", wantErr: "unknown time zone"},
		{name: "empty time zone", key: SettingTimeZone, value: "", wantErr: "unknown time zone"},
		{name: "bogus time zone", key: SettingTimeZone, value: "Europe/Atlantis", wantErr: `unknown time zone "Europe/Atlantis"`},
		{name: "time zone path", key: SettingTimeZone, value: "../../etc/passwd", wantErr: "unknown time zone"},
		{name: "unknown group", key: SettingUnknownGroup, value: "key-stage-2", want: unknownGroup, wantVal: "key-stage-2"},
		{name: "unknown group cleared", key: SettingUnknownGroup, value: "", want: unknownGroup, wantVal: ""},
		{name: "unknown group missing", key: SettingUnknownGroup, value: "year-12", wantErr: "year-12", wantIs: store.ErrNotFound},
		{name: "school name", key: SettingSchoolName, value: "  Warden Primary  ", want: schoolName, wantVal: "Warden Primary"},
		{name: "unknown key", key: "colour", value: "blue", wantErr: `unknown setting "colour"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, db := newTestStore(t)
			putGroup(t, s, ks2())
			before, err := s.Settings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n := int64(1)
			if tt.wantErr != "" {
				n = 0
			}
			err = revisions(t, db, n, func() error { return s.SetSetting(ctx, "admin", tt.key, tt.value) })
			after, lerr := s.Settings(ctx)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("err = %v, want %v", err, tt.wantIs)
				}
				if after != before {
					t.Errorf("settings changed to %+v", after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.want(after); got != tt.wantVal {
				t.Errorf("loaded %q, want %q", got, tt.wantVal)
			}
			p := load(t, s)
			if p.Settings != after || p.Location.String() != after.TimeZone {
				t.Errorf("Load settings %+v, location %v", p.Settings, p.Location)
			}
		})
	}
}

func tz(s Settings) string           { return s.TimeZone }
func unknownGroup(s Settings) string { return s.UnknownGroup }
func schoolName(s Settings) string   { return s.SchoolName }

func TestSetSettingTwice(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	for _, zone := range []string{"Europe/Paris", "America/New_York"} {
		if err := revisions(t, db, 1, func() error { return s.SetSetting(ctx, "admin", SettingTimeZone, zone) }); err != nil {
			t.Fatal(err)
		}
	}
	p := load(t, s)
	if p.Settings.TimeZone != "America/New_York" || p.Location.String() != "America/New_York" {
		t.Errorf("settings %+v, location %v", p.Settings, p.Location)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM settings WHERE key = ?", SettingTimeZone).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d time zone rows", n)
	}
}

func TestLoadEmpty(t *testing.T) {
	s, _ := newTestStore(t)
	p := load(t, s)
	if p.Version != 0 || len(p.Groups) != 0 || len(p.Exceptions) != 0 {
		t.Errorf("empty policy %+v", p)
	}
	if p.Settings != (Settings{TimeZone: DefaultTimeZone}) || p.Location.String() != DefaultTimeZone {
		t.Errorf("default settings %+v, location %v", p.Settings, p.Location)
	}
}

// Load returns the whole policy, ready for policy.Compile.
func TestLoad(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	putGroup(t, s, GroupSpec{ID: "staff", Name: "Staff", Mode: policy.ModeFilter, SafeSearch: policy.SafeSearchOff, DefaultAction: policy.Allow, Position: 30,
		Categories: map[string]policy.Action{"social-media": policy.Allow}})
	putGroup(t, s, ks2())
	putGroup(t, s, GroupSpec{ID: "early-years", Name: "Early years", Mode: policy.ModeApproved, SafeSearch: policy.SafeSearchStrict, DefaultAction: policy.Block,
		EducationFirst: true, Position: 10})
	putGroup(t, s, GroupSpec{ID: "key-stage-1", Position: 20}) // same position as key-stage-2: by id
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetSetting(ctx, "admin", SettingTimeZone, "Europe/London"))
	must(s.SetSetting(ctx, "admin", SettingUnknownGroup, "key-stage-2"))
	must(s.SetSetting(ctx, "admin", SettingSchoolName, "Warden Primary"))
	_, err := s.AddException(ctx, "teacher", "early-years", policy.Exception{Action: policy.Allow, Pattern: "phonics.example", Note: "phonics"})
	must(err)
	_, err = s.AddException(ctx, "teacher", "", policy.Exception{Action: policy.Block, Pattern: "https://everyone.example/bad/"})
	must(err)
	_, err = s.AddRule(ctx, "teacher", "staff", RuleSpec{Name: "Lessons", Action: "block", Categories: "social-media", Days: "weekdays", Start: "08:45", End: "15:15"})
	must(err)
	_, err = s.AddRule(ctx, "teacher", "staff", RuleSpec{Name: "Staff room", Action: "allow", Categories: "social-media", Zones: "staff-room"})
	must(err)

	p := load(t, s)
	if p.Version != revision(t, db) || p.Version != 11 {
		t.Errorf("version %d, current revision %d, want 11", p.Version, revision(t, db))
	}
	if p.Settings != (Settings{SchoolName: "Warden Primary", TimeZone: "Europe/London", UnknownGroup: "key-stage-2"}) || p.Location.String() != "Europe/London" {
		t.Errorf("settings %+v, location %v", p.Settings, p.Location)
	}
	var order []string
	for _, g := range p.Groups {
		order = append(order, g.ID)
	}
	if want := []string{"early-years", "key-stage-1", "key-stage-2", "staff"}; !reflect.DeepEqual(order, want) {
		t.Errorf("groups %v, want %v", order, want)
	}
	ey := group(t, p, "early-years")
	if ey.Mode != policy.ModeApproved || ey.DefaultAction != policy.Block || ey.SafeSearch != policy.SafeSearchStrict || !ey.EducationFirst ||
		len(ey.Exceptions) != 1 || ey.Exceptions[0].Pattern != "phonics.example" || ey.Exceptions[0].Note != "phonics" || len(ey.Categories) != 0 || ey.Categories == nil {
		t.Errorf("early-years %+v", ey)
	}
	if len(p.Exceptions) != 1 || p.Exceptions[0].Pattern != "everyone.example/bad/" || p.Exceptions[0].Action != policy.Block {
		t.Errorf("school-wide exceptions %+v", p.Exceptions)
	}
	staff := group(t, p, "staff")
	if len(staff.Rules) != 2 || staff.Rules[0].Name != "Lessons" || staff.Rules[1].Name != "Staff room" ||
		!reflect.DeepEqual(staff.Rules[1].Zones, []string{"staff-room"}) || !reflect.DeepEqual(staff.Rules[0].Categories, []string{"social-media"}) {
		t.Errorf("staff rules %+v", staff.Rules)
	}
	if len(staff.Exceptions) != 0 {
		t.Errorf("school-wide exception loaded into a group: %+v", staff.Exceptions)
	}

	// Compile accepts what Load gives, and decides with it.
	snap, err := policy.Compile(policy.Config{
		Version: p.Version, Location: p.Location, Taxonomy: lists.DefaultTaxonomy(),
		Groups: p.Groups, Exceptions: p.Exceptions, UnknownGroup: p.Settings.UnknownGroup,
		Zones: []policy.Zone{{ID: "staff-room"}, {ID: "library"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != p.Version || snap.UnknownGroup() != "key-stage-2" || snap.Location().String() != "Europe/London" {
		t.Errorf("snapshot version %d, unknown group %s, location %v", snap.Version(), snap.UnknownGroup(), snap.Location())
	}
}

// A row that does not parse fails Load rather than loading half a policy.
func TestLoadDamaged(t *testing.T) {
	tests := []struct {
		name    string
		sql     string
		wantErr string
	}{
		{"bad time zone", "INSERT INTO settings (key, value, updated_at) VALUES ('timezone', 'Mars/Olympus', 0)", "Mars/Olympus"},
		{"bad rule schedule", "INSERT INTO rules (group_id, name, action, days, created_at, updated_at) VALUES ('key-stage-2', 'r', 'allow', 'funday', 0, 0)", "key-stage-2 rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, db := newTestStore(t)
			putGroup(t, s, ks2())
			if _, err := db.Exec(tt.sql); err != nil {
				t.Fatal(err)
			}
			_, err := s.Load(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load: %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestExceptionsRecords(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	id, err := s.AddException(ctx, "cli:tech", "", policy.Exception{Action: policy.Block, Pattern: "bad.example", Note: "seen in class"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Exceptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id || got[0].Group != "" || got[0].Action != policy.Block || got[0].Pattern != "bad.example" ||
		got[0].Note != "seen in class" || got[0].CreatedBy != "cli:tech" || got[0].CreatedAt.IsZero() {
		t.Fatalf("exceptions %+v", got)
	}
}
