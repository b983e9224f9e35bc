package lists_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/liststest"
)

func TestDefaultTaxonomy(t *testing.T) {
	tax := lists.DefaultTaxonomy()
	if len(tax.Categories) < 20 {
		t.Fatalf("only %d categories", len(tax.Categories))
	}
	for _, id := range []string{"child-abuse", "terrorism"} {
		c, ok := tax.Category(id)
		if !ok {
			t.Errorf("mandatory category %q missing", id)
			continue
		}
		if c.Kind != lists.KindMandatory || c.Pupils != "block" || c.EducationOverrides {
			t.Errorf("%s = %+v, want mandatory, blocked, never overridden", id, c)
		}
	}
	for _, c := range tax.Categories {
		if c.Title == "" || c.Description == "" {
			t.Errorf("category %q lacks a title or description", c.ID)
		}
		if got, _ := tax.Category(c.ID); got.ID != c.ID {
			t.Errorf("Category(%q) = %+v", c.ID, got)
		}
	}
	if p, ok := tax.Category("pornography"); !ok || p.EducationOverrides {
		t.Errorf("pornography = %+v, %v; the education list must not override it", p, ok)
	}
	if _, ok := tax.Category("no-such-category"); ok {
		t.Error("Category(no-such-category) found")
	}
	if tax.Order("discrimination") != 0 || tax.Order("no-such-category") != len(tax.Categories) {
		t.Errorf("Order: %d, %d", tax.Order("discrimination"), tax.Order("no-such-category"))
	}
	ms := tax.Mappings()
	if !slices.IsSortedFunc(ms, func(a, b lists.Mapping) int {
		return strings.Compare(a.Source+"\x00"+a.SourceCategory, b.Source+"\x00"+b.SourceCategory)
	}) {
		t.Error("Mappings() not sorted")
	}
	for _, m := range ms {
		for _, c := range m.Categories {
			if _, ok := tax.Category(c); !ok {
				t.Errorf("%s/%s maps onto unknown %q", m.Source, m.SourceCategory, c)
			}
		}
	}
}

func TestTaxonomyMap(t *testing.T) {
	tax := lists.DefaultTaxonomy()
	tests := []struct {
		source, category string
		want             []string
	}{
		{"ut1", "drogue", []string{"drugs"}},
		{"UT1", "Drogue", []string{"drugs"}},
		{"ut1", "ADULT", []string{"pornography"}},
		{"ut1", "porn", []string{"pornography"}}, // alias
		{"ut1", "agressif", []string{"violence", "hate-speech"}},
		{"ut1", "social_networks", []string{"social-media"}},
		{"ut1", "no-such", nil},
		{"other", "drogue", nil},
	}
	for _, tt := range tests {
		got, ok := tax.Map(tt.source, tt.category)
		if ok != (tt.want != nil) || !slices.Equal(got, tt.want) {
			t.Errorf("Map(%q, %q) = %v, %v; want %v", tt.source, tt.category, got, ok, tt.want)
		}
	}
}

// TestTaxonomyCoversSharedUT1 checks that every category folder of the
// shared UT1 data set has a mapping.
func TestTaxonomyCoversSharedUT1(t *testing.T) {
	dir := filepath.Join(liststest.SharedData(), "categories", "ut1")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("shared UT1 data not present: %v", err)
	}
	tax := lists.DefaultTaxonomy()
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue // global_usage
		}
		n++
		if _, ok := tax.Map("ut1", e.Name()); !ok {
			t.Errorf("UT1 category %q has no mapping in taxonomy.yaml", e.Name())
		}
	}
	if n == 0 {
		t.Errorf("no category folders in %s", dir)
	}
}

const validTaxonomy = `
categories:
  - id: drugs
    title: Drugs
    kind: uksic
    pupils: block
    description: d
  - id: games
    title: Games
    kind: school
    pupils: alert
    education_overrides: true
mappings:
  ut1:
    drogue: [drugs]
    Games: [games]
`

func TestParseTaxonomy(t *testing.T) {
	tax, err := lists.ParseTaxonomy([]byte(validTaxonomy))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := tax.Category("games"); !ok || !c.EducationOverrides || c.Pupils != "alert" {
		t.Errorf("games = %+v, %v", c, ok)
	}
	// Mapping names are matched whatever their case in the file.
	if got, ok := tax.Map("ut1", "games"); !ok || !slices.Equal(got, []string{"games"}) {
		t.Errorf("Map(ut1, games) = %v, %v", got, ok)
	}
}

func TestParseTaxonomyErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{
			name: "unknown top-level key",
			yaml: "categories: []\nmapping: {}\n",
			want: []string{"field mapping not found"},
		},
		{
			name: "unknown category key",
			yaml: "categories:\n  - id: a\n    kind: extra\n    pupils: allow\n    colour: red\n",
			want: []string{"field colour not found"},
		},
		{
			name: "not YAML",
			yaml: "categories: [\n",
			want: []string{"taxonomy:"},
		},
		{
			name: "all problems at once",
			yaml: `
categories:
  - id: a
    kind: extra
    pupils: allow
  - id: a
    kind: extra
    pupils: allow
  - id: b
    kind: odd
    pupils: allow
  - id: c
    kind: school
    pupils: maybe
  - title: no id
    kind: school
    pupils: block
mappings:
  ut1:
    x: [a, nowhere]
    y: []
    Z: [a]
    z: [b]
`,
			want: []string{
				`categories[1]: duplicate id "a"`,
				`categories[2] (b): unknown kind "odd"`,
				`categories[3] (c): pupils must be allow, block or alert, not "maybe"`,
				`categories[4]: missing id`,
				`mappings.ut1.x: unknown category "nowhere"`,
				`mappings.ut1.y: no categories`,
				`duplicate mapping`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tax, err := lists.ParseTaxonomy([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseTaxonomy = %+v, want an error", tax)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
