package listsync

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
)

// fingerprintVersions drops the digests from a fingerprint, leaving
// "id@version;" for each list.
func fingerprintVersions(fp string) string {
	return regexp.MustCompile(`:[0-9a-f]{16};`).ReplaceAllString(fp, ";")
}

// Fingerprint moves exactly when a list version changes or a list goes.
func TestFingerprint(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	steps := []struct {
		name        string
		do          func(t *testing.T)
		wantChanged bool
	}{
		{"import a list", func(t *testing.T) {
			mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "blocked.txt"), Category: "gambling"})
		}, true},
		{"import it again", func(t *testing.T) {
			mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "blocked.txt")})
		}, false},
		{"import a UT1 set", func(t *testing.T) {
			mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ut1")})
		}, true},
		{"import the set again", func(t *testing.T) {
			mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ut1")})
		}, false},
		{"new entries", func(t *testing.T) {
			importText(t, s, "only.example\n", ReaderOptions{ID: "local/blocked"})
		}, true},
		{"edit that adds nothing", func(t *testing.T) {
			if _, err := s.Edit(ctx, "teacher", "local/blocked", []string{"only.example"}, nil); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"edit", func(t *testing.T) {
			if _, err := s.Edit(ctx, "teacher", "local/blocked", []string{"two.example"}, nil); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"failed edit", func(t *testing.T) {
			if _, err := s.Edit(ctx, "teacher", "local/blocked", nil, []string{"absent.example"}); err == nil {
				t.Fatal("no error")
			}
		}, false},
		{"failed import", func(t *testing.T) {
			if _, err := s.Import(ctx, ImportOptions{Path: filepath.Join(t.TempDir(), "blocked.txt")}); err == nil {
				t.Fatal("no error")
			}
		}, false},
		{"delete a list", func(t *testing.T) {
			if err := s.Delete(ctx, "technician", "ut1/games"); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	prev, err := s.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if prev != "" {
		t.Errorf("empty store fingerprint %q", prev)
	}
	seen := map[string]string{prev: "empty store"}
	for _, st := range steps {
		st.do(t)
		fp, err := s.Fingerprint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, loadFP, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if loadFP != fp {
			t.Errorf("%s: Load fingerprint %q, Fingerprint %q", st.name, loadFP, fp)
		}
		if (fp != prev) != st.wantChanged {
			t.Errorf("%s: fingerprint %q -> %q, want changed %v", st.name, prev, fp, st.wantChanged)
		}
		if st.wantChanged {
			if earlier, ok := seen[fp]; ok {
				t.Errorf("%s: fingerprint %q repeats the one after %s", st.name, fp, earlier)
			}
			seen[fp] = st.name
		}
		prev = fp
	}
}

// Load gives back what was imported, and the policy engine can compile
// and match it.
func TestLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "blocked.txt"), Category: "gambling"})
	mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ctiru.sha256"), Mandatory: "ctiru"})
	mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ut1")})
	newEducationList(t, s)

	ls, fp, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range ls {
		ids = append(ids, l.ID)
	}
	if want := []string{"ctiru", "local/blocked", "local/education", "ut1/agressif", "ut1/drogue", "ut1/games"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("loaded %v, want %v", ids, want)
	}
	if want := "ctiru@1;local/blocked@1;local/education@1;ut1/agressif@1;ut1/drogue@1;ut1/games@1;"; fingerprintVersions(fp) != want {
		t.Errorf("fingerprint %q, want %q", fp, want)
	}
	blocked := ls[1]
	want := &lists.List{
		Info:    lists.Info{ID: "local/blocked", Source: "local", SourceCategory: "blocked", Categories: []string{"gambling"}},
		Domains: []string{"bet.example", "casino.example", "poker.example", "whole-host.example"},
		URLs:    []lists.URLKey{"example.net/arcade", "example.org/Games?id=1"},
		Hashes:  [][32]byte{},
	}
	if !reflect.DeepEqual(blocked, want) {
		t.Errorf("local/blocked:\n got %+v\nwant %+v", blocked, want)
	}
	h1, _ := lists.HashURL("terror.example/video/1")
	h2, _ := lists.HashURL("propaganda.example/")
	wantHashes := [][32]byte{h2, h1} // sorted: ca.. before ef..
	if ctiru := ls[0]; !ctiru.Mandatory || !reflect.DeepEqual(ctiru.Hashes, wantHashes) || len(ctiru.Domains)+len(ctiru.URLs) != 0 {
		t.Errorf("ctiru: %+v", ctiru)
	}
	// What is loaded is what List gives, for lists that may be shown.
	for _, l := range ls[1:] {
		got, err := s.List(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if render(got) != render(l) {
			t.Errorf("List(%s) = %s\nLoad gave %s", l.ID, render(got), render(l))
		}
	}

	m, err := lists.Compile(ls)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		want []string // list ids
	}{
		{"http://www.casino.example/", []string{"local/blocked"}},
		{"https://example.org/Games?id=1&page=2", []string{"local/blocked"}},
		{"https://example.org/games", nil},
		{"http://cdn.www.pills.example/x", []string{"ut1/drogue"}},
		{"http://forum.example/drugs/thread", []string{"ut1/drogue"}},
		{"https://hate.example/", []string{"ut1/agressif"}},
		{"https://videos.example/science/cells", []string{"local/education"}},
		{"http://terror.example/video/1", []string{"ctiru"}},
		{"https://stars.example/", nil},
	}
	for _, tt := range tests {
		k, err := lists.NormalizeURL(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		var ms lists.Matches
		m.MatchURL(k, &ms)
		var got []string
		for _, x := range ms.All() {
			got = append(got, m.Info(x.List).ID)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s matches %v, want %v", tt.url, got, tt.want)
		}
	}
}

// A stored version that no longer decodes makes Load fail, so the caller
// keeps the lists it has, rather than running with a list missing.
func TestLoadCorruptVersion(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "blocked.txt"), Category: "gambling"})
	for _, q := range []string{
		"DELETE FROM list_version_chunks WHERE list_id = 'local/blocked' AND seq > 0",
		"UPDATE list_version_chunks SET data = CAST('garbage' AS BLOB) WHERE list_id = 'local/blocked'",
		"UPDATE list_versions SET size = 7 WHERE list_id = 'local/blocked'",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := s.Load(ctx)
	if !errors.Is(err, lists.ErrBadEncoding) || !strings.Contains(err.Error(), "local/blocked") {
		t.Errorf("Load: %v, want ErrBadEncoding naming the list", err)
	}
	if _, err := s.List(ctx, "local/blocked"); !errors.Is(err, lists.ErrBadEncoding) {
		t.Errorf("List: %v, want ErrBadEncoding", err)
	}
}

// A disabled list is not loaded and is not in the fingerprint.
func TestLoadSkipsDisabled(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ut1")})
	if _, err := db.Exec("UPDATE lists SET enabled = FALSE WHERE id = 'ut1/games'"); err != nil {
		t.Fatal(err)
	}
	ls, fp, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || fingerprintVersions(fp) != "ut1/agressif@1;ut1/drogue@1;" {
		t.Errorf("loaded %d lists, fingerprint %q", len(ls), fp)
	}
	if fp2, _ := s.Fingerprint(ctx); fp2 != fp {
		t.Errorf("Fingerprint %q, Load %q", fp2, fp)
	}
}

// A list deleted and imported again starts again at version 1; a reader
// that last saw the old version 1 must still see a change, or it would
// keep the old entries in force.
func TestFingerprintAfterRecreate(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		category string
		same     bool
	}{
		{name: "other entries", text: "other.example\n", category: "games"},
		{name: "other category", text: "a.example\nb.example\n", category: "gambling"},
		{name: "the same list", text: "b.example\na.example\n", category: "games", same: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := newTestStore(t)
			importText(t, s, "a.example\nb.example\n", ReaderOptions{ID: "local/x", Category: "games"})
			before, _, err := s.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			fp, _ := s.Fingerprint(ctx)
			if err := s.Delete(ctx, "technician", "local/x"); err != nil {
				t.Fatal(err)
			}
			importText(t, s, tt.text, ReaderOptions{ID: "local/x", Category: tt.category})
			after, fp2, err := s.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if same := render(after[0]) == render(before[0]); same != tt.same {
				t.Fatalf("test set-up: lists the same %v, want %v", same, tt.same)
			}
			if (fp2 == fp) != tt.same {
				t.Errorf("fingerprint %q -> %q; Load gave %s, then %s", fp, fp2, render(before[0]), render(after[0]))
			}
		})
	}
}
