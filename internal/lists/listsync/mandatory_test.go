package listsync

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/store"
)

// importMandatory imports the IWF and CTIRU stand-ins from testdata.
func importMandatory(t *testing.T, s *Store) (iwf, ctiru ImportResult) {
	t.Helper()
	iwf = mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "iwf.txt"), Mandatory: "iwf"})
	ctiru = mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ctiru.sha256"), Mandatory: "ctiru", Category: "terrorism"})
	return iwf, ctiru
}

func TestImportMandatory(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	iwf, ctiru := importMandatory(t, s)

	tests := []struct {
		name     string
		res      ImportResult
		id       string
		category string
		format   string
		urls     int
		hashes   int
		problems []string // the whole text of each problem
	}{
		{
			name: "IWF URL list", res: iwf, id: "iwf", category: "child-abuse", format: "plain", urls: 2,
			problems: []string{
				"testdata/iwf.txt:5: not a valid host name (entry not shown: mandatory list)",
				"testdata/iwf.txt:6: not a valid URL (entry not shown: mandatory list)",
			},
		},
		{
			name: "CTIRU hash list", res: ctiru, id: "ctiru", category: "terrorism", format: "sha256", hashes: 2,
			problems: []string{"testdata/ctiru.sha256:5: not a hex SHA-256 hash (entry not shown: mandatory list)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.res.Lists) != 1 {
				t.Fatalf("result lists %+v", tt.res.Lists)
			}
			lr := tt.res.Lists[0]
			if lr.ID != tt.id || !lr.Changed || lr.URLs != tt.urls || lr.Hashes != tt.hashes || !reflect.DeepEqual(lr.Categories, []string{tt.category}) {
				t.Errorf("result %+v", lr)
			}
			var got []string
			for _, p := range tt.res.Report.Problems {
				if !p.Redacted {
					t.Errorf("problem %v is not redacted", p)
				}
				got = append(got, p.Error())
			}
			if !reflect.DeepEqual(got, tt.problems) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.problems)
			}
			if sum := tt.res.Report.Summary(); strings.Contains(sum, "secret") || strings.Contains(sum, "not-a-hash") {
				t.Errorf("report summary shows entries: %s", sum)
			}

			sm, err := s.Summary(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if !sm.Mandatory || sm.Source != tt.id || sm.Format != tt.format || sm.Origin != "" ||
				sm.URLs != tt.urls || sm.Hashes != tt.hashes || sm.Malformed != len(tt.problems) || !reflect.DeepEqual(sm.Categories, []string{tt.category}) {
				t.Errorf("summary %+v", sm)
			}
			if _, err := s.List(ctx, tt.id); !errors.Is(err, ErrMandatory) {
				t.Errorf("List: err = %v, want ErrMandatory", err)
			}
		})
	}

	// The policy engine gets the entries, flagged mandatory.
	ls, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lists.Compile(ls)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ url, list string }{
		{"http://hidden-one.example/gallery/1", "iwf"},
		{"https://hidden-two.example/path?x=1", "iwf"},
		{"http://terror.example/video/1", "ctiru"},
		{"https://propaganda.example/any/page", "ctiru"},
	} {
		k, err := lists.NormalizeURL(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		var ms lists.Matches
		m.MatchURL(k, &ms)
		if ms.N != 1 || m.Info(ms.M[0].List).ID != tt.list || !m.Info(ms.M[0].List).Mandatory {
			t.Errorf("%s: matches %+v, want the %s list", tt.url, ms.All(), tt.list)
		}
	}
	if revision(t, db) != 2 {
		t.Errorf("revision %d after two imports", revision(t, db))
	}

	// Summaries put mandatory lists first once sorted.
	mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "blocked.txt"), ID: "a/first", Category: "gambling"})
	ss, err := s.Summaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	SortSummaries(ss)
	var order []string
	for _, sm := range ss {
		order = append(order, sm.ID)
	}
	if want := []string{"ctiru", "iwf", "a/first"}; !reflect.DeepEqual(order, want) {
		t.Errorf("sorted summaries %v, want %v", order, want)
	}
}

// A mandatory list whose lines are all malformed is refused without
// showing them.
func TestImportMandatoryNothingValid(t *testing.T) {
	s, db := newTestStore(t)
	text := "http://secret words.example/a\nsecret..example/b\n"
	res, err := s.ImportReader(context.Background(), strings.NewReader(text), "iwf-feed", ReaderOptions{Mandatory: "iwf", Actor: "technician"})
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("err = %v, want ErrEmpty", err)
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(res.Report.Summary(), "secret") {
		t.Errorf("entries shown: %v / %s", err, res.Report.Summary())
	}
	if res.Report.Malformed != 2 || revision(t, db) != 0 {
		t.Errorf("malformed %d, revision %d", res.Report.Malformed, revision(t, db))
	}
}

// Mandatory lists cannot be shown, edited or removed, and nothing about
// them changes when that is tried.
func TestMandatoryRefusals(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	importMandatory(t, s)
	before := snapshot(t, s, db)
	tests := []struct {
		name string
		do   func() error
	}{
		{"list iwf", func() error { _, err := s.List(ctx, "iwf"); return err }},
		{"edit iwf add", func() error {
			_, err := s.Edit(ctx, "technician", "iwf", []string{"new.example/x"}, nil)
			return err
		}},
		{"edit ctiru remove", func() error {
			_, err := s.Edit(ctx, "technician", "ctiru", nil, []string{"terror.example/video/1"})
			return err
		}},
		{"delete iwf", func() error { return s.Delete(ctx, "technician", "iwf") }},
		{"delete ctiru", func() error { return s.Delete(ctx, "technician", "ctiru") }},
		{"import over iwf as a plain list", func() error {
			_, err := s.ImportReader(ctx, strings.NewReader("a.example\n"), "x", ReaderOptions{ID: "iwf", Category: "pornography", Actor: "technician"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrMandatory) && !strings.Contains(err.Error(), "reserved") {
				t.Errorf("err = %v, want ErrMandatory", err)
			}
			checkUnchanged(t, before, snapshot(t, s, db))
		})
	}
}

// Re-importing a mandatory list replaces it as any list: unchanged
// entries write nothing, new entries a new version.
func TestReimportMandatory(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	importMandatory(t, s)
	before := snapshot(t, s, db)
	res := mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "iwf.txt"), Mandatory: "iwf"})
	if res.Lists[0].Changed {
		t.Error("identical mandatory import changed the list")
	}
	checkUnchanged(t, before, snapshot(t, s, db))

	res = importText(t, s, "http://hidden-three.example/x\n", ReaderOptions{Mandatory: "iwf"})
	if lr := res.Lists[0]; !lr.Changed || lr.Version != 2 || lr.URLs != 1 {
		t.Errorf("result %+v", lr)
	}
	sm, err := s.Summary(ctx, "iwf")
	if err != nil {
		t.Fatal(err)
	}
	if !sm.Mandatory || sm.Version != 2 || revision(t, db) != before.Revision+1 {
		t.Errorf("summary %+v, revision %d", sm, revision(t, db))
	}
	if _, err := s.Summary(ctx, "local/iwf"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a mandatory import made another list: %v", err)
	}
}
