package listsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/liststest"
	"github.com/warden-schools/warden/internal/store"
)

// ut1Want is what testdata/ut1 imports as, in every form.
var ut1Want = map[string]string{
	"ut1/agressif": "ut1/agressif source=ut1/agressif [violence hate-speech] domains: fight-club.example hate.example | urls: ",
	"ut1/drogue":   "ut1/drogue source=ut1/drogue [drugs] domains: cannabis-shop.example www.pills.example | urls: forum.example/drugs",
	"ut1/games":    "ut1/games source=ut1/games [games] domains: arcade.example play.example | urls: ",
}

func TestImportUT1(t *testing.T) {
	tests := []struct {
		name string
		// build returns the path to import and the file name problems
		// in games/domains are reported under.
		build func(t *testing.T) (path, gamesFile string)
	}{
		{
			name: "folder",
			build: func(t *testing.T) (string, string) {
				return filepath.Join("testdata", "ut1"), "testdata/ut1/blacklists/games/domains"
			},
		},
		{
			name: "folder with gzipped files and an alias link",
			build: func(t *testing.T) (string, string) {
				dir := copyUT1(t, "blacklists/games/domains", "blacklists/drogue/urls")
				// UT1 aliases are symbolic links; following one would
				// import the same entries as a second list.
				if err := os.Symlink("drogue", filepath.Join(dir, "blacklists", "drugs")); err != nil {
					t.Skipf("cannot make a symbolic link: %v", err)
				}
				return dir, filepath.Join(dir, "blacklists/games/domains.gz")
			},
		},
		{
			name: "tar.gz archive",
			build: func(t *testing.T) (string, string) {
				p := writeFile(t, filepath.Join(t.TempDir(), "blacklists.tar.gz"), liststest.Tar(t, ut1Entries(t), true))
				return p, p + ":blacklists/games/domains"
			},
		},
		{
			name: "tgz archive",
			build: func(t *testing.T) (string, string) {
				p := writeFile(t, filepath.Join(t.TempDir(), "ut1.tgz"), liststest.Tar(t, ut1Entries(t), true))
				return p, p + ":blacklists/games/domains"
			},
		},
		{
			name: "uncompressed tar archive",
			build: func(t *testing.T) (string, string) {
				p := writeFile(t, filepath.Join(t.TempDir(), "blacklists.tar"), liststest.Tar(t, ut1Entries(t), false))
				return p, p + ":blacklists/games/domains"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, db := newTestStore(t)
			path, gamesFile := tt.build(t)
			res := mustImport(t, s, ImportOptions{Path: path})

			if got := loaded(t, s); !reflect.DeepEqual(got, ut1Want) {
				t.Errorf("loaded lists:\n got %q\nwant %q", got, ut1Want)
			}
			var ids []string
			for _, lr := range res.Lists {
				ids = append(ids, lr.ID)
				if !lr.Changed || lr.Version != 1 {
					t.Errorf("%s: Changed %v, Version %d; want true, 1", lr.ID, lr.Changed, lr.Version)
				}
			}
			if want := []string{"ut1/agressif", "ut1/drogue", "ut1/games"}; !reflect.DeepEqual(ids, want) {
				t.Errorf("result lists %v, want %v", ids, want)
			}
			drogue := res.Lists[1]
			if drogue.Domains != 2 || drogue.URLs != 1 || drogue.Hashes != 0 || !reflect.DeepEqual(drogue.Categories, []string{"drugs"}) {
				t.Errorf("ut1/drogue result %+v", drogue)
			}
			if len(res.Skipped) != 1 || !strings.HasPrefix(res.Skipped[0], "astrologie: no mapping") {
				t.Errorf("Skipped = %q, want only astrologie, unmapped", res.Skipped)
			}
			if _, err := s.Summary(context.Background(), "ut1/astrologie"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("unmapped category was imported (Summary err %v)", err)
			}
			// 11 entry lines; games/domains lines 2 and 3 are malformed.
			if res.Report.Lines != 11 || res.Report.Malformed != 2 || len(res.Report.Problems) != 2 {
				t.Fatalf("report %+v, want 11 lines, 2 malformed", res.Report)
			}
			for i, line := range []int{2, 3} {
				p := res.Report.Problems[i]
				want := fmt.Sprintf("%s:%d: ", gamesFile, line)
				if p.File != gamesFile || p.Line != line || !strings.HasPrefix(p.Error(), want) {
					t.Errorf("problem %d = %q, want it to start %q", i, p.Error(), want)
				}
			}
			if res.PolicyVersion == 0 || res.PolicyVersion != revision(t, db) {
				t.Errorf("PolicyVersion %d, current revision %d", res.PolicyVersion, revision(t, db))
			}
			if rev := revision(t, db); rev != 1 {
				t.Errorf("one import added %d revisions, want 1", rev)
			}
			sm, err := s.Summary(context.Background(), "ut1/games")
			if err != nil {
				t.Fatal(err)
			}
			if sm.Format != "ut1" || sm.Origin != path || sm.Source != "ut1" || sm.SourceCategory != "games" || sm.Malformed != 2 ||
				sm.Domains != 2 || sm.Version != 1 || !sm.Enabled || sm.UpdatedBy != "technician" || !sm.UpdatedAt.Equal(testNow) {
				t.Errorf("ut1/games summary %+v", sm)
			}
		})
	}
}

// The same set in another form, or with its lines in another order,
// holds the same entries: nothing is written.
func TestImportUT1Unchanged(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ut1")})
	before := snapshot(t, s, db)

	archive := writeFile(t, filepath.Join(t.TempDir(), "blacklists.tar.gz"), liststest.Tar(t, ut1Entries(t), true))
	reordered := copyUT1(t)
	writeFile(t, filepath.Join(reordered, "blacklists/games/domains"), []byte("arcade.example\nplay.example\nplay.example\n"))
	for _, path := range []string{filepath.Join("testdata", "ut1"), archive, reordered} {
		res, err := s.Import(ctx, ImportOptions{Path: path, Actor: "technician"})
		if err != nil {
			t.Fatal(err)
		}
		for _, lr := range res.Lists {
			if lr.Changed || lr.Version != 1 {
				t.Errorf("%s: %s Changed %v, Version %d; want false, 1", path, lr.ID, lr.Changed, lr.Version)
			}
		}
		if res.PolicyVersion != 0 {
			t.Errorf("%s: PolicyVersion %d for an import that changed nothing", path, res.PolicyVersion)
		}
		checkUnchanged(t, before, snapshot(t, s, db))
	}

	// One changed category writes one version of that list only.
	changed := copyUT1(t)
	writeFile(t, filepath.Join(changed, "blacklists/drogue/domains"), []byte("cannabis-shop.example\nnew-pills.example\n"))
	res := mustImport(t, s, ImportOptions{Path: changed})
	for _, lr := range res.Lists {
		if want := lr.ID == "ut1/drogue"; lr.Changed != want {
			t.Errorf("%s: Changed %v, want %v", lr.ID, lr.Changed, want)
		}
	}
	if rev := revision(t, db); rev != before.Revision+1 || res.PolicyVersion != rev {
		t.Errorf("revision %d (PolicyVersion %d), want %d", rev, res.PolicyVersion, before.Revision+1)
	}
}

func TestImportUT1FS(t *testing.T) {
	s, _ := newTestStore(t)
	fsys := fstest.MapFS{
		"ut1/drogue/domains":     {Data: []byte("cannabis-shop.example\nwww.pills.example\n")},
		"ut1/drogue/urls.gz":     {Data: gzipBytes(t, "forum.example/drugs\n")},
		"ut1/agressif/domains.0": {Data: []byte("fight-club.example\n")},
		"ut1/agressif/domains.1": {Data: []byte("hate.example\n")},
		"ut1/games/domains":      {Data: []byte("play.example\nbad entry.example\nbroken..example\narcade.example\n")},
		"ut1/games/usage":        {Data: []byte("black\n")},
		"ut1/astrologie/domains": {Data: []byte("stars.example\n")},
		"ut1/social_networks":    {Data: []byte("empty category: a file, not a folder\n")},
		// Aliases are symbolic links: never read.
		"ut1/drugs":          {Data: []byte("drogue"), Mode: os.ModeSymlink},
		"ut1/porn/domains":   {Data: []byte("../agressif/domains.0"), Mode: os.ModeSymlink},
		"ut1/chat/domains.x": {Data: []byte("not-an-entry-file.example\n")},
	}
	res, err := s.ImportUT1FS(context.Background(), fsys, "starter", "warden")
	if err != nil {
		t.Fatal(err)
	}
	if got := loaded(t, s); !reflect.DeepEqual(got, ut1Want) {
		t.Errorf("loaded lists:\n got %q\nwant %q", got, ut1Want)
	}
	if len(res.Skipped) != 1 || !strings.HasPrefix(res.Skipped[0], "astrologie:") {
		t.Errorf("Skipped = %q", res.Skipped)
	}
	if res.Report.Malformed != 2 || !strings.HasPrefix(res.Report.Problems[0].Error(), "starter/ut1/games/domains:2: ") {
		t.Errorf("report %+v", res.Report)
	}
}

func TestImportUT1NothingMapped(t *testing.T) {
	s, db := newTestStore(t)
	fsys := fstest.MapFS{
		"astrologie/domains": {Data: []byte("stars.example\n")},
		"games/domains":      {Data: []byte("bad entry.example\n")},
	}
	res, err := s.ImportUT1FS(context.Background(), fsys, "set", "technician")
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("err = %v, want ErrEmpty", err)
	}
	if want := []string{"astrologie: no mapping onto Warden's categories (import its files with --category)", "games: no entries"}; !reflect.DeepEqual(res.Skipped, want) {
		t.Errorf("Skipped = %q, want %q", res.Skipped, want)
	}
	if revision(t, db) != 0 || len(loaded(t, s)) != 0 {
		t.Error("a failed import wrote something")
	}
}

func TestImportSingleFile(t *testing.T) {
	tests := []struct {
		name string
		// file is a fixture name, or build makes the file.
		file  string
		build func(t *testing.T) string
		opts  ImportOptions

		wantID          string
		wantFormat      string
		wantList        string
		wantLines       int
		wantMalformed   []int // lines
		wantUnsupported int
	}{
		{
			name: "hosts file", file: "hosts", opts: ImportOptions{Category: "advertising"},
			wantID: "local/hosts", wantFormat: "hosts",
			wantList:  "local/hosts source=local/hosts [advertising] domains: ads.example metrics.example tracker.example | urls: ",
			wantLines: 6, wantMalformed: []int{6},
		},
		{
			name: "adblock rules", file: "adblock.txt", opts: ImportOptions{Category: "advertising", ID: "easylist/ads"},
			wantID: "easylist/ads", wantFormat: "adblock",
			wantList:  "easylist/ads source=easylist/ads [advertising] domains: ads.example track.example | urls: ",
			wantLines: 6, wantMalformed: []int{8}, wantUnsupported: 3,
		},
		{
			name: "plain domains and URLs", file: "blocked.txt", opts: ImportOptions{Category: "gambling"},
			wantID: "local/blocked", wantFormat: "plain",
			wantList:  "local/blocked source=local/blocked [gambling] domains: bet.example casino.example poker.example whole-host.example | urls: example.net/arcade example.org/Games?id=1",
			wantLines: 7, wantMalformed: []int{8},
		},
		{
			name: "gzipped plain list",
			build: func(t *testing.T) string {
				return writeFile(t, filepath.Join(t.TempDir(), "Blocked Sites.TXT.gz"), gzipBytes(t, readFixture(t, "blocked.txt")))
			},
			opts:   ImportOptions{Category: "gambling"},
			wantID: "local/blocked-sites", wantFormat: "plain",
			wantList:  "local/blocked-sites source=local/blocked-sites [gambling] domains: bet.example casino.example poker.example whole-host.example | urls: example.net/arcade example.org/Games?id=1",
			wantLines: 7, wantMalformed: []int{8},
		},
		{
			name: "sha256 list", file: "ctiru.sha256", opts: ImportOptions{Category: "malware-hacking", ID: "local/hashed"},
			wantID: "local/hashed", wantFormat: "sha256",
			wantList:  "local/hashed source=local/hashed [malware-hacking] domains:  | urls:  | hashes: ##",
			wantLines: 3, wantMalformed: []int{5},
		},
		{
			name: "format given", file: "blocked.txt", opts: ImportOptions{Category: "gambling", Format: lists.FormatAdblock, ID: "local/as-adblock"},
			wantID: "local/as-adblock", wantFormat: "adblock",
			// Adblock rules take bare domains; wildcards and paths are
			// unsupported.
			wantList:  "local/as-adblock source=local/as-adblock [gambling] domains: bet.example poker.example | urls: ",
			wantLines: 7, wantMalformed: []int{8}, wantUnsupported: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, db := newTestStore(t)
			path := filepath.Join("testdata", tt.file)
			if tt.build != nil {
				path = tt.build(t)
			}
			opts := tt.opts
			opts.Path = path
			res := mustImport(t, s, opts)
			if len(res.Lists) != 1 || res.Lists[0].ID != tt.wantID || !res.Lists[0].Changed || res.Lists[0].Version != 1 {
				t.Fatalf("result lists %+v, want one new list %s", res.Lists, tt.wantID)
			}
			if got := loaded(t, s); !reflect.DeepEqual(got, map[string]string{tt.wantID: tt.wantList}) {
				t.Errorf("loaded:\n got %q\nwant %q", got[tt.wantID], tt.wantList)
			}
			r := res.Report
			if r.Lines != tt.wantLines || r.Malformed != len(tt.wantMalformed) || r.Unsupported != tt.wantUnsupported {
				t.Errorf("report lines %d, malformed %d, unsupported %d; want %d, %d, %d",
					r.Lines, r.Malformed, r.Unsupported, tt.wantLines, len(tt.wantMalformed), tt.wantUnsupported)
			}
			for i, line := range tt.wantMalformed {
				if i >= len(r.Problems) {
					break
				}
				if want := fmt.Sprintf("%s:%d: ", path, line); !strings.HasPrefix(r.Problems[i].Error(), want) {
					t.Errorf("problem %q, want it to start %q", r.Problems[i].Error(), want)
				}
			}
			sm, err := s.Summary(context.Background(), tt.wantID)
			if err != nil {
				t.Fatal(err)
			}
			if sm.Format != tt.wantFormat || sm.Origin != path || sm.Malformed != len(tt.wantMalformed) || sm.Mandatory ||
				sm.Entries() != res.Lists[0].Domains+res.Lists[0].URLs+res.Lists[0].Hashes || len(sm.SHA256) != 64 {
				t.Errorf("summary %+v", sm)
			}
			if res.PolicyVersion != 1 || revision(t, db) != 1 {
				t.Errorf("PolicyVersion %d, revision %d; want 1, 1", res.PolicyVersion, revision(t, db))
			}
		})
	}
}

func TestImportNoEntries(t *testing.T) {
	s, db := newTestStore(t)
	p := writeFile(t, filepath.Join(t.TempDir(), "empty.txt"), []byte("# nothing here\n\nbad entry.example\n"))
	res, err := s.Import(context.Background(), ImportOptions{Path: p, Category: "games", Actor: "technician"})
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("err = %v, want ErrEmpty", err)
	}
	if res.Report.Malformed != 1 || !strings.HasPrefix(res.Report.Problems[0].Error(), p+":3: ") {
		t.Errorf("report %+v", res.Report)
	}
	if revision(t, db) != 0 || len(loaded(t, s)) != 0 {
		t.Error("an empty import wrote something")
	}
}

// A file that cannot be read fails the import, and every list stays as it
// was: the same version in force, the same entries, the same policy
// version.
func TestImportUnreadableKeepsLastGood(t *testing.T) {
	corruptGzip := func(t *testing.T, text string) []byte {
		t.Helper()
		b := gzipBytes(t, text)
		for i := 12; i < len(b)-8; i++ {
			b[i] ^= 0xff
		}
		return b
	}
	truncated := func(b []byte) []byte { return b[:len(b)/2] }
	tests := []struct {
		name    string
		opts    func(t *testing.T) ImportOptions
		wantErr string
	}{
		{
			name: "missing file",
			opts: func(t *testing.T) ImportOptions {
				return ImportOptions{Path: filepath.Join(t.TempDir(), "blocked.txt"), ID: "local/blocked"}
			},
			wantErr: "no such file",
		},
		{
			name: "folder where a list file is expected",
			opts: func(t *testing.T) ImportOptions {
				return ImportOptions{Path: t.TempDir(), ID: "local/blocked", Format: lists.FormatPlain}
			},
			wantErr: "a folder can only be a UT1 set",
		},
		{
			name: "corrupt gzip list",
			opts: func(t *testing.T) ImportOptions {
				p := writeFile(t, filepath.Join(t.TempDir(), "blocked.txt.gz"), corruptGzip(t, "new.example\n"+readFixture(t, "blocked.txt")))
				return ImportOptions{Path: p}
			},
			wantErr: "blocked.txt.gz",
		},
		{
			name: "truncated gzip list",
			opts: func(t *testing.T) ImportOptions {
				p := writeFile(t, filepath.Join(t.TempDir(), "blocked.gz"), truncated(gzipBytes(t, strings.Repeat("new.example\n", 2000))))
				return ImportOptions{Path: p, Format: lists.FormatPlain}
			},
			wantErr: "unexpected EOF",
		},
		{
			name: "gzip header only",
			opts: func(t *testing.T) ImportOptions {
				p := writeFile(t, filepath.Join(t.TempDir(), "blocked.txt"), []byte{0x1f, 0x8b, 0x08})
				return ImportOptions{Path: p}
			},
			wantErr: "blocked.txt",
		},
		{
			name: "unreadable list file",
			opts: func(t *testing.T) ImportOptions {
				p := writeFile(t, filepath.Join(t.TempDir(), "blocked.txt"), []byte("new.example\n"))
				if err := os.Chmod(p, 0); err != nil {
					t.Fatal(err)
				}
				if f, err := os.Open(p); err == nil {
					f.Close()
					t.Skip("a file with mode 000 is readable here (running as root?)")
				}
				return ImportOptions{Path: p}
			},
			wantErr: "permission denied",
		},
		{
			name: "corrupt gzip in a UT1 folder",
			opts: func(t *testing.T) ImportOptions {
				dir := copyUT1(t)
				writeFile(t, filepath.Join(dir, "blacklists/drogue/domains"), []byte("changed.example\n"))
				writeFile(t, filepath.Join(dir, "blacklists/games/domains.1.gz"), corruptGzip(t, "more-games.example\n"))
				return ImportOptions{Path: dir}
			},
			wantErr: "games/domains.1.gz",
		},
		{
			name: "unreadable file in a UT1 folder",
			opts: func(t *testing.T) ImportOptions {
				dir := copyUT1(t)
				writeFile(t, filepath.Join(dir, "blacklists/drogue/domains"), []byte("changed.example\n"))
				p := filepath.Join(dir, "blacklists/games/domains")
				if err := os.Chmod(p, 0); err != nil {
					t.Fatal(err)
				}
				if f, err := os.Open(p); err == nil {
					f.Close()
					t.Skip("a file with mode 000 is readable here (running as root?)")
				}
				return ImportOptions{Path: dir}
			},
			wantErr: "permission denied",
		},
		{
			name: "truncated UT1 archive",
			opts: func(t *testing.T) ImportOptions {
				entries := append(ut1Entries(t), liststest.TarEntry{Name: "./blacklists/drogue/domains.1", Body: []byte(strings.Repeat("x.example\n", 5000))})
				p := writeFile(t, filepath.Join(t.TempDir(), "blacklists.tar.gz"), truncated(liststest.Tar(t, entries, true)))
				return ImportOptions{Path: p}
			},
			wantErr: "blacklists.tar.gz",
		},
		{
			name: "corrupt UT1 archive",
			opts: func(t *testing.T) ImportOptions {
				p := writeFile(t, filepath.Join(t.TempDir(), "blacklists.tar.gz"), corruptGzip(t, "not a tar archive"))
				return ImportOptions{Path: p}
			},
			wantErr: "blacklists.tar.gz",
		},
		{
			name: "UT1 folder with no lists",
			opts: func(t *testing.T) ImportOptions {
				dir := t.TempDir()
				writeFile(t, filepath.Join(dir, "README"), []byte("nothing\n"))
				return ImportOptions{Path: dir}
			},
			wantErr: "no CATEGORY/domains",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, db := newTestStore(t)
			mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "blocked.txt"), Category: "gambling"})
			mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "ut1")})
			opts := tt.opts(t)
			before := snapshot(t, s, db)
			blocked, err := s.List(ctx, "local/blocked")
			if err != nil {
				t.Fatal(err)
			}

			opts.Actor = "technician"
			_, err = s.Import(ctx, opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want an error mentioning %q", err, tt.wantErr)
			}
			t.Logf("error: %v", err)
			if !strings.HasPrefix(err.Error(), "import ") {
				t.Errorf("error %q does not say what failed", err)
			}
			checkUnchanged(t, before, snapshot(t, s, db))
			after, err := s.List(ctx, "local/blocked")
			if err != nil {
				t.Fatal(err)
			}
			if render(after) != render(blocked) {
				t.Errorf("local/blocked is now %s", render(after))
			}
		})
	}
}

func TestReimportIdentical(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	first := mustImport(t, s, ImportOptions{Path: filepath.Join("testdata", "blocked.txt"), Category: "gambling"})
	before := snapshot(t, s, db)

	// The same entries in another order, with duplicates and another
	// spelling, in a gzipped file of another name: nothing to write.
	same := "whole-host.example\nhttps://example.net/arcade\nBET.example.\npoker.example\ncasino.example\nexample.org/Games?id=1\nbet.example\n"
	p := writeFile(t, filepath.Join(t.TempDir(), "again.txt.gz"), gzipBytes(t, same))
	for _, opts := range []ImportOptions{
		{Path: filepath.Join("testdata", "blocked.txt")},
		{Path: filepath.Join("testdata", "blocked.txt"), Category: "gambling"},
		{Path: p, ID: "local/blocked"},
	} {
		res := mustImport(t, s, opts)
		lr := res.Lists[0]
		if lr.Changed || lr.Version != first.Lists[0].Version || res.PolicyVersion != 0 {
			t.Errorf("%s: Changed %v, Version %d, PolicyVersion %d; want false, %d, 0", opts.Path, lr.Changed, lr.Version, res.PolicyVersion, first.Lists[0].Version)
		}
		checkUnchanged(t, before, snapshot(t, s, db))
	}
	sm, err := s.Summary(ctx, "local/blocked")
	if err != nil {
		t.Fatal(err)
	}
	if sm.Origin != filepath.Join("testdata", "blocked.txt") {
		t.Errorf("origin %q: an unchanged import rewrote the list", sm.Origin)
	}
}

// Moving a list to another category with the same entries is a change:
// the list in force must carry the new category.
func TestReimportNewCategory(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	path := filepath.Join("testdata", "blocked.txt")
	mustImport(t, s, ImportOptions{Path: path, Category: "games"})
	fp, _ := s.Fingerprint(ctx)
	rev := revision(t, db)

	res := mustImport(t, s, ImportOptions{Path: path, Category: "gambling"})
	if lr := res.Lists[0]; !lr.Changed || lr.Version != 2 || !reflect.DeepEqual(lr.Categories, []string{"gambling"}) {
		t.Errorf("result %+v, want a changed version 2 in gambling", lr)
	}
	sm, err := s.Summary(ctx, "local/blocked")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sm.Categories, []string{"gambling"}) || sm.Version != 2 {
		t.Errorf("summary categories %v version %d, want [gambling] 2", sm.Categories, sm.Version)
	}
	if got := loaded(t, s)["local/blocked"]; !strings.Contains(got, "[gambling]") {
		t.Errorf("loaded %s", got)
	}
	if fp2, _ := s.Fingerprint(ctx); fp2 == fp {
		t.Error("fingerprint did not change with the category")
	}
	if revision(t, db) != rev+1 || res.PolicyVersion != rev+1 {
		t.Errorf("revision %d, PolicyVersion %d, want %d", revision(t, db), res.PolicyVersion, rev+1)
	}
	// And back again without naming the category: unchanged.
	res = mustImport(t, s, ImportOptions{Path: path})
	if res.Lists[0].Changed || !reflect.DeepEqual(res.Lists[0].Categories, []string{"gambling"}) {
		t.Errorf("re-import without --category: %+v", res.Lists[0])
	}
}

func TestKeepVersions(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	const n = KeepVersions + 3
	for i := 1; i <= n; i++ {
		res := importText(t, s, fmt.Sprintf("site%d.example\n", i), ReaderOptions{ID: "local/rotating", Category: "games"})
		if lr := res.Lists[0]; !lr.Changed || lr.Version != i {
			t.Fatalf("import %d: Changed %v Version %d", i, lr.Changed, lr.Version)
		}
		if rev := revision(t, db); rev != int64(i) {
			t.Fatalf("import %d: revision %d", i, rev)
		}
	}
	rows, err := db.Query("SELECT version FROM list_versions WHERE list_id = 'local/rotating' ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if want := []int{n - 2, n - 1, n}; !reflect.DeepEqual(versions, want) {
		t.Errorf("kept versions %v, want %v", versions, want)
	}
	l, err := s.List(ctx, "local/rotating")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("site%d.example", n); !reflect.DeepEqual(l.Domains, []string{want}) {
		t.Errorf("list in force %v, want %s", l.Domains, want)
	}
}

func TestImportRefused(t *testing.T) {
	ut1 := filepath.Join("testdata", "ut1")
	blocked := filepath.Join("testdata", "blocked.txt")
	tests := []struct {
		name    string
		opts    ImportOptions
		wantErr string
	}{
		{"new list without category", ImportOptions{Path: blocked}, "--category"},
		{"unknown category", ImportOptions{Path: blocked, Category: "astrology"}, `unknown category "astrology"`},
		{"mandatory category child-abuse", ImportOptions{Path: blocked, Category: "child-abuse"}, "--mandatory"},
		{"mandatory category terrorism", ImportOptions{Path: blocked, Category: "terrorism"}, "--mandatory"},
		{"reserved id iwf", ImportOptions{Path: blocked, ID: "iwf", Category: "pornography"}, `list id "iwf" is reserved`},
		{"reserved id ctiru", ImportOptions{Path: blocked, ID: "ctiru", Category: "extremism"}, `list id "ctiru" is reserved`},
		{"bad id", ImportOptions{Path: blocked, ID: "Local/Blocked", Category: "games"}, "bad list id"},
		{"id too deep", ImportOptions{Path: blocked, ID: "a/b/c", Category: "games"}, "bad list id"},
		{"unknown mandatory list", ImportOptions{Path: blocked, Mandatory: "nca"}, `unknown mandatory list "nca"`},
		{"mandatory list in another category", ImportOptions{Path: blocked, Mandatory: "iwf", Category: "pornography"}, "category is child-abuse"},
		{"mandatory UT1 set", ImportOptions{Path: ut1, Mandatory: "ctiru"}, "not a UT1 set"},
		{"UT1 format for a file", ImportOptions{Path: blocked, Format: lists.FormatUT1}, "import"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, db := newTestStore(t)
			opts := tt.opts
			opts.Actor = "technician"
			_, err := s.Import(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if revision(t, db) != 0 || len(loaded(t, s)) != 0 {
				t.Error("a refused import wrote something")
			}
		})
	}
	t.Run("UT1 format from a reader", func(t *testing.T) {
		s, _ := newTestStore(t)
		_, err := s.ImportReader(context.Background(), strings.NewReader("a.example\n"), "x", ReaderOptions{ID: "local/x", Category: "games", Format: lists.FormatUT1})
		if err == nil || !strings.Contains(err.Error(), "needs a folder or archive") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestDefaultID(t *testing.T) {
	tests := []struct{ path, want string }{
		{"blocked.txt", "local/blocked"},
		{"/srv/lists/Blocked Sites.TXT", "local/blocked-sites"},
		{"education.list.gz", "local/education"},
		{"ads.hosts", "local/ads"},
		{"ads.hosts.gz", "local/ads"},
		{"export.csv", "local/export"},
		{`C:\lists\games.txt`, "local/c--lists-games"}, // a Windows name on a Unix host stays one base
		{"easylist", "local/easylist"},
		{"my_list.v2.txt", "local/my_list.v2"},
		{"-odd-.txt", "local/odd"},
		{"café.txt", "local/caf"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got := defaultID(tt.path)
			if got != tt.want {
				t.Errorf("defaultID(%q) = %q, want %q", tt.path, got, tt.want)
			}
			if err := ValidateID(got); err != nil {
				t.Errorf("defaultID gives an invalid id: %v", err)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"local/education", true},
		{"ut1/social_networks", true},
		{"blocked", true},
		{"easylist/ads.v2", true},
		{"", false},
		{"Local/x", false},
		{"local/", false},
		{"/x", false},
		{"a/b/c", false},
		{"local/has space", false},
		{"-x", false},
		{strings.Repeat("a", 101), false},
	}
	for _, tt := range tests {
		if err := ValidateID(tt.id); (err == nil) != tt.ok {
			t.Errorf("ValidateID(%q) = %v, want ok %v", tt.id, err, tt.ok)
		}
	}
}
