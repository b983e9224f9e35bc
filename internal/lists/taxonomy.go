package lists

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed taxonomy.yaml
var taxonomyYAML []byte

// CategoryKind groups categories by where they come from.
type CategoryKind string

// Category kinds.
const (
	KindUKSIC     CategoryKind = "uksic"     // UK Safer Internet Centre filtering categories
	KindSchool    CategoryKind = "school"    // categories schools also manage
	KindExtra     CategoryKind = "extra"     // categories Warden adds for its own work
	KindMandatory CategoryKind = "mandatory" // the illegal-content lists; never overridable
)

// Category is one category of Warden's taxonomy.
type Category struct {
	ID          string       `yaml:"id"`
	Title       string       `yaml:"title"`
	Kind        CategoryKind `yaml:"kind"`
	Description string       `yaml:"description"`
	// Pupils is the starting action for pupil groups and unknown clients:
	// "allow", "block" or "alert".
	Pupils string `yaml:"pupils"`
	// EducationOverrides says whether the education allow list may allow a
	// site in this category for groups that put education first.
	EducationOverrides bool `yaml:"education_overrides"`
}

// Taxonomy is the set of Warden categories and the mapping of source
// categories (such as UT1's "drogue") onto them. It is data: the default
// ships embedded in the binary and is shown by `warden lists categories`.
type Taxonomy struct {
	Categories []Category
	byID       map[string]int
	// mappings[source][sourceCategory] = Warden category ids
	mappings map[string]map[string][]string
}

type taxonomyFile struct {
	Categories []Category                     `yaml:"categories"`
	Mappings   map[string]map[string][]string `yaml:"mappings"`
}

// DefaultTaxonomy returns the taxonomy embedded in the binary.
func DefaultTaxonomy() *Taxonomy {
	t, err := ParseTaxonomy(taxonomyYAML)
	if err != nil {
		// The embedded file is tested; failing here is a build defect.
		panic(fmt.Sprintf("embedded taxonomy: %v", err))
	}
	return t
}

// ParseTaxonomy reads a taxonomy in the format of the embedded
// taxonomy.yaml, rejecting unknown keys, duplicate ids and mappings onto
// unknown categories, and reporting every problem found.
func ParseTaxonomy(data []byte) (*Taxonomy, error) {
	var f taxonomyFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("taxonomy: %w", err)
	}
	t := &Taxonomy{Categories: f.Categories, byID: map[string]int{}, mappings: map[string]map[string][]string{}}
	var errs []error
	for i, c := range f.Categories {
		if c.ID == "" {
			errs = append(errs, fmt.Errorf("categories[%d]: missing id", i))
			continue
		}
		if _, dup := t.byID[c.ID]; dup {
			errs = append(errs, fmt.Errorf("categories[%d]: duplicate id %q", i, c.ID))
		}
		switch c.Kind {
		case KindUKSIC, KindSchool, KindExtra, KindMandatory:
		default:
			errs = append(errs, fmt.Errorf("categories[%d] (%s): unknown kind %q", i, c.ID, c.Kind))
		}
		switch c.Pupils {
		case "allow", "block", "alert":
		default:
			errs = append(errs, fmt.Errorf("categories[%d] (%s): pupils must be allow, block or alert, not %q", i, c.ID, c.Pupils))
		}
		t.byID[c.ID] = i
	}
	for src, m := range f.Mappings {
		// Map looks names up in lower case; store them so.
		lsrc := strings.ToLower(src)
		if t.mappings[lsrc] == nil {
			t.mappings[lsrc] = map[string][]string{}
		}
		for sc, cats := range m {
			lsc := strings.ToLower(sc)
			if _, dup := t.mappings[lsrc][lsc]; dup {
				errs = append(errs, fmt.Errorf("mappings.%s.%s: duplicate mapping (names are not case-sensitive)", src, sc))
			}
			t.mappings[lsrc][lsc] = cats
			if len(cats) == 0 {
				errs = append(errs, fmt.Errorf("mappings.%s.%s: no categories", src, sc))
			}
			for _, c := range cats {
				if _, ok := t.byID[c]; !ok {
					errs = append(errs, fmt.Errorf("mappings.%s.%s: unknown category %q", src, sc, c))
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("taxonomy: %w", errors.Join(errs...))
	}
	return t, nil
}

// Category returns the category with the given id.
func (t *Taxonomy) Category(id string) (Category, bool) {
	i, ok := t.byID[id]
	if !ok {
		return Category{}, false
	}
	return t.Categories[i], true
}

// Order returns the position of a category in the taxonomy, used to rank
// categories when a site is in several: earlier is more serious. Unknown
// categories sort last.
func (t *Taxonomy) Order(id string) int {
	if i, ok := t.byID[id]; ok {
		return i
	}
	return len(t.Categories)
}

// Map returns the Warden categories for a source category, such as
// ("ut1", "drogue") -> [drugs].
func (t *Taxonomy) Map(source, sourceCategory string) ([]string, bool) {
	cats, ok := t.mappings[strings.ToLower(source)][strings.ToLower(sourceCategory)]
	return cats, ok
}

// Mapping is one row of the source mapping, for display.
type Mapping struct {
	Source         string
	SourceCategory string
	Categories     []string
}

// Mappings returns every source mapping, sorted by source and category.
func (t *Taxonomy) Mappings() []Mapping {
	var out []Mapping
	for src, m := range t.mappings {
		for sc, cats := range m {
			out = append(out, Mapping{Source: src, SourceCategory: sc, Categories: cats})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].SourceCategory < out[j].SourceCategory
	})
	return out
}
