package directory

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

// FuzzParseCSV checks that ParseCSV never panics and either rejects a
// file with problems at sensible lines or returns records that keep every
// rule the importer relies on. The seed corpus is in testdata/fuzz and
// the fixtures in testdata.
func FuzzParseCSV(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.csv"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
	}
	f.Add([]byte("Person Type,UPN,Name,Year,Email,Pupil UPN\nPupil,A820000000001,\"Evans, Ava\",R,,\nParent,,Sam Evans,,s@x.org,A820000000001\n"), "")
	f.Add([]byte("Forename;Surname;Email;Role\nAnn;Other;ann@example.org;Supply\n"), "visitor")
	f.Add([]byte("Contact ID,Forename,Surname,Relationship,Pupil Adno\nC1,Sam,Evans,Father,1\nC1,Sam,Evans,Father,2\n"), "parent")
	f.Fuzz(func(t *testing.T, data []byte, kind string) {
		k := Kind(kind)
		if !k.Valid() {
			k = ""
		}
		s, err := ParseCSV(bytes.NewReader(data), "fuzz.csv", k)
		if err != nil {
			var ie *ImportError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v (%T) is not an *ImportError", err, err)
			}
			if len(ie.Problems) == 0 || len(ie.Problems) > MaxProblems {
				t.Fatalf("%d problems", len(ie.Problems))
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, p := range ie.Problems {
				if p.File != "fuzz.csv" || p.Line < 0 || p.Line > lines || p.Msg == "" {
					t.Fatalf("bad problem %+v (file has %d lines)", p, lines)
				}
			}
			return
		}
		checkSheet(t, s, k)
		again, err := ParseCSV(bytes.NewReader(data), "fuzz.csv", k)
		if err != nil || !reflect.DeepEqual(s, again) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}

// checkSheet checks the rules every parsed record keeps.
func checkSheet(t *testing.T, s *Sheet, forced Kind) {
	t.Helper()
	if len(s.Records) == 0 {
		t.Fatal("no records and no error")
	}
	if s.Kind != "" && !s.Kind.Valid() || forced != "" && s.Kind != forced {
		t.Fatalf("sheet kind %q (forced %q)", s.Kind, forced)
	}
	lines := make(map[int]*Record)
	keys := make(map[recordKey]int)
	prev := 1
	for i := range s.Records {
		r := &s.Records[i]
		if r.Line <= prev {
			t.Fatalf("record line %d after %d", r.Line, prev)
		}
		prev = r.Line
		lines[r.Line] = r
		if !r.Kind.Valid() || s.Kind != "" && r.Kind != s.Kind {
			t.Fatalf("line %d: kind %q in a %q sheet", r.Line, r.Kind, s.Kind)
		}
		for what, v := range map[string]string{"forename": r.LegalForename, "surname": r.Surname} {
			if v == "" || v != strings.TrimSpace(v) {
				t.Fatalf("line %d: %s %q", r.Line, what, v)
			}
		}
		for _, v := range []string{r.LegalForename, r.PreferredForename, r.Surname, r.RegGroup, r.Role, r.Relationship,
			r.MISID, r.AdmissionNo, r.Username, r.Email, r.PupilMISID, r.PupilAdmissionNo} {
			if strings.ContainsFunc(v, unicode.IsControl) {
				t.Fatalf("line %d: control character in %q", r.Line, v)
			}
		}
		if r.Kind == KindPupil {
			if !r.HasYear || !validYear(r.Year) {
				t.Fatalf("line %d: pupil year %d (%t)", r.Line, r.Year, r.HasYear)
			}
		} else if r.HasYear || r.UPN != "" || r.AdmissionNo != "" {
			t.Fatalf("line %d: %s with pupil fields %+v", r.Line, r.Kind, r)
		}
		for _, upn := range []string{r.UPN, r.PupilUPN} {
			if got, err := normUPN(upn); err != nil || got != upn {
				t.Fatalf("line %d: UPN %q not normalised", r.Line, upn)
			}
		}
		if got, err := normEmail(r.Email); err != nil || got != r.Email {
			t.Fatalf("line %d: email %q not normalised", r.Line, r.Email)
		}
		if got, err := normUsername(r.Username); err != nil || got != r.Username {
			t.Fatalf("line %d: username %q not normalised", r.Line, r.Username)
		}
		if len(r.keys()) == 0 {
			t.Fatalf("line %d: nothing identifies the person", r.Line)
		}
		if r.Kind == KindParent {
			if len(r.pupilRefs()) == 0 {
				t.Fatalf("line %d: parent without a pupil", r.Line)
			}
		} else if len(r.pupilRefs()) != 0 || r.Relationship != "" || r.SameAs != 0 {
			t.Fatalf("line %d: %s with parent fields", r.Line, r.Kind)
		}
		if r.SameAs != 0 {
			first := lines[r.SameAs]
			if first == nil || first.SameAs != 0 || !samePerson(first, r) {
				t.Fatalf("line %d: SameAs %d is not the same parent", r.Line, r.SameAs)
			}
			continue
		}
		for _, k := range r.keys() {
			if other, ok := keys[k]; ok {
				t.Fatalf("line %d: %s %s also on line %d", r.Line, k.label, k.value, other)
			}
			keys[k] = r.Line
		}
	}
}
