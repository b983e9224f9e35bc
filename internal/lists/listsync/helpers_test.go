package listsync

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/liststest"
	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 9, 3, 8, 30, 0, 0, time.UTC)

// newTestStore opens a migrated SQLite store in a temporary folder and
// returns a Store over it with the default taxonomy.
func newTestStore(t *testing.T) (*Store, *store.DB) {
	t.Helper()
	db := wardentest.OpenStore(t)
	return New(db, lists.DefaultTaxonomy(), func() time.Time { return testNow }), db
}

// revision returns the current policy version.
func revision(t testing.TB, db *store.DB) int64 { return wardentest.Revision(t, db) }

// mustImport imports opts and fails the test on error.
func mustImport(t *testing.T, s *Store, opts ImportOptions) ImportResult {
	t.Helper()
	if opts.Actor == "" {
		opts.Actor = "technician"
	}
	res, err := s.Import(context.Background(), opts)
	if err != nil {
		t.Fatalf("import %s: %v", opts.Path, err)
	}
	return res
}

// importText imports one list from text with ImportReader.
func importText(t *testing.T, s *Store, text string, opts ReaderOptions) ImportResult {
	t.Helper()
	if opts.Actor == "" {
		opts.Actor = "technician"
	}
	res, err := s.ImportReader(context.Background(), strings.NewReader(text), opts.ID+".txt", opts)
	if err != nil {
		t.Fatalf("import %s: %v", opts.ID, err)
	}
	return res
}

// render describes a list and its entries on one line, for comparisons.
func render(l *lists.List) string {
	var b strings.Builder
	b.WriteString(l.ID + " source=" + l.Source + "/" + l.SourceCategory + " [" + strings.Join(l.Categories, " ") + "]")
	if l.Mandatory {
		b.WriteString(" mandatory")
	}
	b.WriteString(" domains: " + strings.Join(l.Domains, " "))
	var urls []string
	for _, u := range l.URLs {
		urls = append(urls, string(u))
	}
	b.WriteString(" | urls: " + strings.Join(urls, " "))
	if len(l.Hashes) > 0 {
		b.WriteString(" | hashes: " + strings.Repeat("#", len(l.Hashes)))
	}
	return b.String()
}

// loaded returns every list Load returns, rendered, by id, and checks
// that Load's fingerprint agrees with Fingerprint.
func loaded(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	ls, fp, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fp2, err := s.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fp != fp2 {
		t.Errorf("Load fingerprint %q, Fingerprint %q", fp, fp2)
	}
	out := map[string]string{}
	for _, l := range ls {
		out[l.ID] = render(l)
	}
	return out
}

// state is everything an import that fails must leave as it was.
type state struct {
	Revision    int64
	Fingerprint string
	Summaries   []Summary
	Lists       map[string]string
	Versions    int
}

func snapshot(t *testing.T, s *Store, db *store.DB) state {
	t.Helper()
	ctx := context.Background()
	st := state{Revision: revision(t, db), Lists: loaded(t, s)}
	var err error
	if st.Fingerprint, err = s.Fingerprint(ctx); err != nil {
		t.Fatal(err)
	}
	if st.Summaries, err = s.Summaries(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM list_versions").Scan(&st.Versions); err != nil {
		t.Fatal(err)
	}
	return st
}

func checkUnchanged(t *testing.T, before, after state) {
	t.Helper()
	if after.Revision != before.Revision {
		t.Errorf("revision moved from %d to %d", before.Revision, after.Revision)
	}
	if after.Fingerprint != before.Fingerprint {
		t.Errorf("fingerprint changed from %q to %q", before.Fingerprint, after.Fingerprint)
	}
	if !reflect.DeepEqual(after.Summaries, before.Summaries) {
		t.Errorf("summaries changed:\n got %+v\nwant %+v", after.Summaries, before.Summaries)
	}
	if !reflect.DeepEqual(after.Lists, before.Lists) {
		t.Errorf("loaded lists changed:\n got %v\nwant %v", after.Lists, before.Lists)
	}
	if after.Versions != before.Versions {
		t.Errorf("stored versions went from %d to %d", before.Versions, after.Versions)
	}
}

func gzipBytes(t *testing.T, text string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ut1Entries packs testdata/ut1 as UT1's blacklists.tar.gz does: "./"
// names, folder entries, one gzipped file, and aliases as symbolic links
// (a folder alias, drugs -> drogue, and a file alias), which must be
// skipped.
func ut1Entries(t *testing.T) []liststest.TarEntry {
	t.Helper()
	var out []liststest.TarEntry
	root := filepath.Join("testdata", "ut1")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		name := "./" + filepath.ToSlash(rel)
		if d.IsDir() {
			out = append(out, liststest.TarEntry{Name: name + "/", Type: tar.TypeDir})
			return nil
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, "agressif/domains") {
			out = append(out, liststest.TarEntry{Name: name + ".gz", Body: gzipBytes(t, string(body))})
			return nil
		}
		out = append(out, liststest.TarEntry{Name: name, Body: body})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return append(out,
		liststest.TarEntry{Name: "./blacklists/drugs", Type: tar.TypeSymlink, Link: "drogue"},
		liststest.TarEntry{Name: "./blacklists/porn/", Type: tar.TypeDir},
		liststest.TarEntry{Name: "./blacklists/porn/domains", Type: tar.TypeSymlink, Link: "../agressif/domains"},
	)
}

// copyUT1 copies testdata/ut1 to a temporary folder, gzipping the files
// named in gz (paths under the set, such as "blacklists/games/domains").
func copyUT1(t *testing.T, gz ...string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "ut1")
	root := filepath.Join("testdata", "ut1")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if slices.Contains(gz, filepath.ToSlash(rel)) {
			writeFile(t, filepath.Join(dst, rel+".gz"), gzipBytes(t, string(body)))
			return nil
		}
		writeFile(t, filepath.Join(dst, rel), body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
