package listsync

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/store"
)

// newEducationList stores a local/education list as Warden's first start
// does.
func newEducationList(t *testing.T, s *Store) {
	t.Helper()
	importText(t, s, "learn.example\nold.example\nhttps://videos.example/science/\n", ReaderOptions{
		ID: "local/education", Format: lists.FormatPlain, Category: "education", Source: "local", Actor: "warden",
	})
}

func TestEdit(t *testing.T) {
	tests := []struct {
		name        string
		add, remove []string
		wantDomains []string
		wantURLs    []lists.URLKey
		wantChanged bool
	}{
		{
			name:        "add domains and a URL",
			add:         []string{"Maths.Example", "*.spelling.example", "https://Docs.example/course/1"},
			wantDomains: []string{"learn.example", "maths.example", "old.example", "spelling.example"},
			wantURLs:    []lists.URLKey{"docs.example/course/1", "videos.example/science/"},
			wantChanged: true,
		},
		{
			name:        "remove a domain and a URL",
			remove:      []string{"OLD.example", "http://videos.example/science/"},
			wantDomains: []string{"learn.example"},
			wantChanged: true,
		},
		{
			name:        "add and remove",
			add:         []string{"new.example"},
			remove:      []string{"old.example"},
			wantDomains: []string{"learn.example", "new.example"},
			wantURLs:    []lists.URLKey{"videos.example/science/"},
			wantChanged: true,
		},
		{
			name:        "add what is there",
			add:         []string{"learn.example", "https://learn.example/"},
			wantDomains: []string{"learn.example", "old.example"},
			wantURLs:    []lists.URLKey{"videos.example/science/"},
			wantChanged: false,
		},
		{
			name:        "nothing",
			wantDomains: []string{"learn.example", "old.example"},
			wantURLs:    []lists.URLKey{"videos.example/science/"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, db := newTestStore(t)
			newEducationList(t, s)
			rev := revision(t, db)
			fp, _ := s.Fingerprint(ctx)

			lr, err := s.Edit(ctx, "teacher", "local/education", tt.add, tt.remove)
			if err != nil {
				t.Fatal(err)
			}
			wantVersion, wantRev := 1, rev
			if tt.wantChanged {
				wantVersion, wantRev = 2, rev+1
			}
			if lr.Changed != tt.wantChanged || lr.Version != wantVersion || lr.ID != "local/education" {
				t.Errorf("result %+v, want Changed %v, Version %d", lr, tt.wantChanged, wantVersion)
			}
			if got := revision(t, db); got != wantRev {
				t.Errorf("revision %d, want %d", got, wantRev)
			}
			if fp2, _ := s.Fingerprint(ctx); (fp2 != fp) != tt.wantChanged {
				t.Errorf("fingerprint %q -> %q", fp, fp2)
			}
			l, err := s.List(ctx, "local/education")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(l.Domains, tt.wantDomains) || !slices.Equal(l.URLs, tt.wantURLs) {
				t.Errorf("entries %v %v, want %v %v", l.Domains, l.URLs, tt.wantDomains, tt.wantURLs)
			}
			if l.Source != "local" || !reflect.DeepEqual(l.Categories, []string{"education"}) {
				t.Errorf("list info changed: %+v", l.Info)
			}
			if tt.wantChanged {
				sm, err := s.Summary(ctx, "local/education")
				if err != nil {
					t.Fatal(err)
				}
				if sm.UpdatedBy != "teacher" || sm.Origin != "edited" || sm.Entries() != len(tt.wantDomains)+len(tt.wantURLs) {
					t.Errorf("summary %+v", sm)
				}
			}
		})
	}
}

func TestEditRefused(t *testing.T) {
	tests := []struct {
		name        string
		id          string
		add, remove []string
		wantIs      error
		wantErr     string
	}{
		{name: "remove an entry not present", id: "local/education", remove: []string{"missing.example", "learn.example"}, wantIs: store.ErrNotFound, wantErr: "missing.example"},
		{name: "remove a URL not present", id: "local/education", remove: []string{"videos.example/maths/"}, wantIs: store.ErrNotFound, wantErr: "videos.example/maths/"},
		{name: "add a malformed entry", id: "local/education", add: []string{"good.example", "bad entry.example"}, wantErr: "not a valid host name"},
		{name: "remove a malformed entry", id: "local/education", remove: []string{"bad..example"}, wantErr: "not a valid host name"},
		{name: "imported list", id: "ut1/drogue", add: []string{"x.example"}, wantIs: ErrNotLocal},
		{name: "list of another source", id: "easylist/ads", add: []string{"x.example"}, wantIs: ErrNotLocal},
		{name: "no such list", id: "local/nothing", add: []string{"x.example"}, wantIs: store.ErrNotFound},
		{name: "mandatory list", id: "iwf", add: []string{"x.example"}, wantIs: ErrMandatory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, db := newTestStore(t)
			newEducationList(t, s)
			mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ut1")})
			mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "adblock.txt"), ID: "easylist/ads", Category: "advertising"})
			mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "iwf.txt"), Mandatory: "iwf"})
			before := snapshot(t, s, db)

			_, err := s.Edit(ctx, "teacher", tt.id, tt.add, tt.remove)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			checkUnchanged(t, before, snapshot(t, s, db))
		})
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	newEducationList(t, s)
	mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ut1")})
	rev := revision(t, db)
	if err := s.Delete(ctx, "technician", "ut1/games"); err != nil {
		t.Fatal(err)
	}
	if revision(t, db) != rev+1 {
		t.Errorf("revision %d, want %d", revision(t, db), rev+1)
	}
	if _, err := s.Summary(ctx, "ut1/games"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Summary after delete: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM list_versions WHERE list_id = 'ut1/games'").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d versions left (%v)", n, err)
	}
	if _, ok := loaded(t, s)["ut1/games"]; ok {
		t.Error("Load still returns the deleted list")
	}
	if err := s.Delete(ctx, "technician", "ut1/games"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if revision(t, db) != rev+1 {
		t.Error("a failed delete added a revision")
	}
	// The list can come back, starting again at version 1.
	res := mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ut1")})
	for _, lr := range res.Lists {
		if lr.Changed != (lr.ID == "ut1/games") {
			t.Errorf("%s: Changed %v", lr.ID, lr.Changed)
		}
		if lr.ID == "ut1/games" && lr.Version != 1 {
			t.Errorf("re-created list at version %d", lr.Version)
		}
	}
}
