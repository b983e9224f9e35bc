// Package listsync keeps Warden's category lists in the store: it imports
// list files, folders and archives, keeps the last good version of every
// list (a failed import changes nothing), loads the lists in force for the
// policy engine, and edits the school's local lists.
package listsync

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/store"
)

// KeepVersions is how many versions of each list are kept for rollback.
const KeepVersions = 3

// Errors callers test with errors.Is.
var (
	// ErrMandatory is returned when asked to show, export, edit or delete
	// a mandatory list (IWF, CTIRU).
	ErrMandatory = errors.New("mandatory list: its entries are never shown, and it cannot be edited or removed")
	// ErrNotLocal is returned when editing a list that an import manages.
	ErrNotLocal = errors.New("only local lists can be edited entry by entry; re-import the source instead")
	// ErrEmpty is returned when an import finds no entries.
	ErrEmpty = errors.New("no entries found")
)

// Mandatory lists Warden knows, by id.
var mandatoryLists = map[string]struct {
	category string
}{
	"iwf":   {category: "child-abuse"},
	"ctiru": {category: "terrorism"},
}

// Store reads and writes lists in the database.
type Store struct {
	db  *store.DB
	tax *lists.Taxonomy
	now func() time.Time
}

// New returns a Store. now is the clock for timestamps.
func New(db *store.DB, tax *lists.Taxonomy, now func() time.Time) *Store {
	return &Store{db: db, tax: tax, now: now}
}

// ImportOptions describes one import.
type ImportOptions struct {
	// Path is a list file (plain or gzipped), a UT1 folder, or a UT1
	// .tar.gz archive.
	Path string
	// Format is the file format; empty means detect it.
	Format lists.Format
	// ID names the list for single-file imports; the default is
	// "local/" + the file name without extensions. UT1 sets give each
	// category its own list, "ut1/CATEGORY".
	ID string
	// Category is the Warden category of a single-file import. It may be
	// omitted when the list already exists.
	Category string
	// Mandatory marks the import as the IWF ("iwf") or CTIRU ("ctiru")
	// list: non-overridable, entries never shown.
	Mandatory string
	// Actor is who imports, for the change record.
	Actor string
}

// ListResult says what an import did to one list.
type ListResult struct {
	ID         string
	Categories []string
	Domains    int
	URLs       int
	Hashes     int
	Version    int
	// Changed is false when the entries were the same as the version in
	// force, so nothing was written.
	Changed bool
}

// ImportResult says what an import did.
type ImportResult struct {
	Lists []ListResult
	// Skipped names source categories that have no mapping onto Warden's
	// taxonomy, with the reason.
	Skipped []string
	// Report counts malformed lines across all files read.
	Report lists.Report
	// PolicyVersion is the policy version the import made, 0 if it
	// changed nothing.
	PolicyVersion int64
}

var listIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$`)

// ValidateID checks a list id: lower-case letters, digits, '.', '_' and
// '-', optionally "source/name".
func ValidateID(id string) error {
	if len(id) > 100 || !listIDPattern.MatchString(id) {
		return fmt.Errorf("bad list id %q: use lower-case letters, digits, '.', '_' and '-', optionally as source/name", id)
	}
	return nil
}

// Import reads opts.Path and stores a new version of each list in it. The
// file is read and parsed completely before anything is written, and all
// lists are written in one transaction, so an unreadable file or a failed
// write leaves the previous versions in force.
func (s *Store) Import(ctx context.Context, opts ImportOptions) (ImportResult, error) {
	fi, err := os.Stat(opts.Path)
	if err != nil {
		return ImportResult{}, fmt.Errorf("import %s: %w", opts.Path, err)
	}
	format := opts.Format
	lower := strings.ToLower(opts.Path)
	isArchive := strings.HasSuffix(lower, ".tar.gz") || strings.HasSuffix(lower, ".tgz") || strings.HasSuffix(lower, ".tar")
	if format == "" && (fi.IsDir() || isArchive) {
		format = lists.FormatUT1
	}
	if format == lists.FormatUT1 {
		if opts.Mandatory != "" {
			return ImportResult{}, errors.New("import: a mandatory list is one file of URLs or hashes, not a UT1 set")
		}
		var cats []lists.SourceCategory
		if fi.IsDir() {
			cats, err = lists.ReadUT1(os.DirFS(opts.Path), opts.Path)
		} else {
			var f *os.File
			if f, err = os.Open(opts.Path); err != nil {
				return ImportResult{}, fmt.Errorf("import %s: %w", opts.Path, err)
			}
			cats, err = lists.ReadUT1Tar(f, opts.Path)
			f.Close()
		}
		if err != nil {
			return ImportResult{}, fmt.Errorf("import %s: %w", opts.Path, err)
		}
		return s.saveUT1(ctx, cats, opts.Path, opts.Actor)
	}
	if fi.IsDir() {
		return ImportResult{}, fmt.Errorf("import %s: a folder can only be a UT1 set (--format ut1)", opts.Path)
	}
	f, err := os.Open(opts.Path)
	if err != nil {
		return ImportResult{}, fmt.Errorf("import %s: %w", opts.Path, err)
	}
	defer f.Close()
	id := opts.ID
	if id == "" {
		id = defaultID(opts.Path)
	}
	return s.ImportReader(ctx, f, opts.Path, ReaderOptions{ID: id, Format: format, Category: opts.Category, Mandatory: opts.Mandatory, Actor: opts.Actor})
}

// defaultID makes "local/name" from a file path.
func defaultID(path string) string {
	base := strings.ToLower(filepath.Base(path))
	for _, ext := range []string{".gz", ".txt", ".list", ".hosts", ".csv"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, base)
	return "local/" + strings.Trim(base, "-._")
}

// ReaderOptions describes a single-list import from a reader.
type ReaderOptions struct {
	ID        string
	Format    lists.Format // empty: detect
	Category  string       // required for a new, non-mandatory list
	Source    string       // default "local" (or the mandatory list's id)
	Mandatory string       // "iwf" or "ctiru"
	Actor     string
}

// ImportReader imports one list from r (plain or gzipped). label names
// the input in problems ("file:line").
func (s *Store) ImportReader(ctx context.Context, r io.Reader, label string, opts ReaderOptions) (ImportResult, error) {
	info, err := s.resolveInfo(ctx, opts)
	if err != nil {
		return ImportResult{}, err
	}
	format := opts.Format
	if format == lists.FormatUT1 {
		return ImportResult{}, fmt.Errorf("import %s: format ut1 needs a folder or archive", label)
	}
	if format == "" {
		head, rest, err := lists.Peek(r, 16<<10)
		if err != nil {
			return ImportResult{}, fmt.Errorf("import %s: %w", label, err)
		}
		format, r = lists.DetectFormat(head), rest
	}
	c := &lists.Collector{Redact: info.Mandatory}
	if err := c.ParseMaybeGzip(r, label, format); err != nil {
		return ImportResult{}, fmt.Errorf("import %s: %w", label, err)
	}
	c.Finish()
	if c.Entries() == 0 {
		return ImportResult{Report: c.Report}, fmt.Errorf("import %s: %w (%d lines read, %d malformed)", label, ErrEmpty, c.Report.Lines, c.Report.Malformed)
	}
	l := &lists.List{Info: info, Domains: c.Domains, URLs: c.URLs, Hashes: c.Hashes}
	res := ImportResult{Report: c.Report}
	err = s.db.WithTx(ctx, func(tx *store.Tx) error {
		lr, err := s.save(ctx, tx, l, string(format), label, c.Report.Malformed, opts.Actor)
		if err != nil {
			return err
		}
		res.Lists = append(res.Lists, lr)
		if lr.Changed {
			res.PolicyVersion, err = store.AddRevision(ctx, tx, s.now(), opts.Actor, fmt.Sprintf("list %s updated from %s (version %d)", l.ID, filepath.Base(label), lr.Version))
		}
		return err
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("import %s: %w", label, err)
	}
	return res, nil
}

// resolveInfo works out a single list's id, categories and flags from the
// options and, for an existing list, the store.
func (s *Store) resolveInfo(ctx context.Context, opts ReaderOptions) (lists.Info, error) {
	id := opts.ID
	info := lists.Info{ID: id, Source: opts.Source}
	if opts.Mandatory != "" {
		m, ok := mandatoryLists[opts.Mandatory]
		if !ok {
			return info, fmt.Errorf("unknown mandatory list %q (want iwf or ctiru)", opts.Mandatory)
		}
		if opts.Category != "" && opts.Category != m.category {
			return info, fmt.Errorf("the %s list's category is %s", opts.Mandatory, m.category)
		}
		return lists.Info{ID: opts.Mandatory, Source: opts.Mandatory, Categories: []string{m.category}, Mandatory: true}, nil
	}
	if _, isMandatory := mandatoryLists[id]; isMandatory {
		return info, fmt.Errorf("list id %q is reserved for the mandatory list: import it with --mandatory %s", id, id)
	}
	if err := ValidateID(id); err != nil {
		return info, err
	}
	existing, err := s.summary(ctx, id)
	switch {
	case err == nil:
		if existing.Mandatory {
			return info, ErrMandatory
		}
		info.Source, info.SourceCategory, info.Categories = existing.Source, existing.SourceCategory, existing.Categories
	case errors.Is(err, store.ErrNotFound):
	default:
		return info, err
	}
	if opts.Category != "" {
		cat, ok := s.tax.Category(opts.Category)
		if !ok {
			return info, fmt.Errorf("unknown category %q (see `warden lists categories`)", opts.Category)
		}
		if cat.Kind == lists.KindMandatory {
			return info, fmt.Errorf("category %s belongs to a mandatory list: use --mandatory", cat.ID)
		}
		info.Categories = []string{cat.ID}
	}
	if len(info.Categories) == 0 {
		return info, fmt.Errorf("list %s is new: say which category it is with --category (see `warden lists categories`)", id)
	}
	if src, name, ok := strings.Cut(id, "/"); ok && info.SourceCategory == "" {
		if info.Source == "" {
			info.Source = src
		}
		info.SourceCategory = name
	}
	if info.Source == "" {
		info.Source = "local"
	}
	return info, nil
}

// saveUT1 stores every mapped category of a UT1 set in one transaction.
func (s *Store) saveUT1(ctx context.Context, cats []lists.SourceCategory, label, actor string) (ImportResult, error) {
	res, ls, malformed, err := s.buildUT1(cats, label)
	if err != nil {
		return res, err
	}
	return s.writeUT1(ctx, res, ls, malformed, label, actor)
}

// buildUT1 maps a UT1 set's categories onto Warden's as lists, skipping
// (and reporting) what has no mapping or no entries.
func (s *Store) buildUT1(cats []lists.SourceCategory, label string) (ImportResult, []*lists.List, []int, error) {
	var res ImportResult
	var ls []*lists.List
	var malformed []int // by list in ls
	for _, sc := range cats {
		res.Report.Merge(sc.Collector.Report)
		mapped, ok := s.tax.Map("ut1", sc.Name)
		if !ok {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: no mapping onto Warden's categories (import its files with --category)", sc.Name))
			continue
		}
		if sc.Collector.Entries() == 0 {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: no entries", sc.Name))
			continue
		}
		ls = append(ls, &lists.List{
			Info:    lists.Info{ID: "ut1/" + sc.Name, Source: "ut1", SourceCategory: sc.Name, Categories: mapped},
			Domains: sc.Collector.Domains, URLs: sc.Collector.URLs, Hashes: sc.Collector.Hashes,
		})
		malformed = append(malformed, sc.Collector.Report.Malformed)
	}
	if len(ls) == 0 {
		return res, nil, nil, fmt.Errorf("import %s: %w in any mapped category", label, ErrEmpty)
	}
	return res, ls, malformed, nil
}

// writeUT1 stores the lists buildUT1 made in one transaction.
func (s *Store) writeUT1(ctx context.Context, res ImportResult, ls []*lists.List, malformed []int, label, actor string) (ImportResult, error) {
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		changed := 0
		for i, l := range ls {
			lr, err := s.save(ctx, tx, l, string(lists.FormatUT1), label, malformed[i], actor)
			if err != nil {
				return err
			}
			res.Lists = append(res.Lists, lr)
			if lr.Changed {
				changed++
			}
		}
		if changed == 0 {
			return nil
		}
		var err error
		res.PolicyVersion, err = store.AddRevision(ctx, tx, s.now(), actor, fmt.Sprintf("UT1 set imported from %s (%d lists changed)", filepath.Base(label), changed))
		return err
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("import %s: %w", label, err)
	}
	return res, nil
}

// save writes a new version of l unless its entries and categories are
// unchanged, and prunes old versions.
func (s *Store) save(ctx context.Context, tx *store.Tx, l *lists.List, format, origin string, malformed int, actor string) (ListResult, error) {
	data := l.MarshalEntries()
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	lr := ListResult{ID: l.ID, Categories: l.Categories, Domains: len(l.Domains), URLs: len(l.URLs), Hashes: len(l.Hashes)}
	now := store.Millis(s.now())
	cats := strings.Join(l.Categories, " ")
	var version int
	var currentCats string
	var current sql.NullString
	err := tx.QueryRowContext(ctx, tx.Rebind(`SELECT l.version, l.categories, v.sha256 FROM lists l
		LEFT JOIN list_versions v ON v.list_id = l.id AND v.version = l.version WHERE l.id = ?`), l.ID).Scan(&version, &currentCats, &current)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		version = 0
	case err != nil:
		return lr, fmt.Errorf("read list %s: %w", l.ID, err)
	}
	// A list moved to other categories with the same entries is a change
	// too: the categories in force must be the ones just asked for.
	if current.Valid && current.String == digest && currentCats == cats {
		lr.Version = version
		return lr, nil
	}
	version++
	lr.Version, lr.Changed = version, true
	if version == 1 {
		_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO lists (id, source, source_category, categories, mandatory, format, origin, enabled, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, TRUE, ?, ?, ?)`),
			l.ID, l.Source, l.SourceCategory, cats, l.Mandatory, format, origin, version, now, now)
	} else {
		_, err = tx.ExecContext(ctx, tx.Rebind(`UPDATE lists SET categories = ?, format = ?, origin = ?, version = ?, updated_at = ? WHERE id = ?`),
			cats, format, origin, version, now, l.ID)
	}
	if err != nil {
		return lr, fmt.Errorf("write list %s: %w", l.ID, err)
	}
	_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO list_versions (list_id, version, domains, urls, hashes, malformed, sha256, size, imported_at, imported_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		l.ID, version, len(l.Domains), len(l.URLs), len(l.Hashes), malformed, digest, len(data), now, actor)
	if err == nil {
		err = writeChunks(ctx, tx, l.ID, version, data)
	}
	if err != nil {
		return lr, fmt.Errorf("write list %s version %d: %w", l.ID, version, err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM list_versions WHERE list_id = ? AND version <= ?`), l.ID, version-KeepVersions); err != nil {
		return lr, fmt.Errorf("prune list %s: %w", l.ID, err)
	}
	return lr, nil
}

// ImportUT1FS imports a UT1 set from a file system (the embedded starter
// sample).
func (s *Store) ImportUT1FS(ctx context.Context, fsys fs.FS, label, actor string) (ImportResult, error) {
	cats, err := lists.ReadUT1(fsys, label)
	if err != nil {
		return ImportResult{}, fmt.Errorf("import %s: %w", label, err)
	}
	return s.saveUT1(ctx, cats, label, actor)
}

// Summary describes a stored list without its entries.
type Summary struct {
	lists.Info
	Format    string
	Origin    string
	Enabled   bool
	Version   int
	Domains   int
	URLs      int
	Hashes    int
	Malformed int
	SHA256    string
	UpdatedAt time.Time
	UpdatedBy string
}

// Entries returns the number of entries.
func (s Summary) Entries() int { return s.Domains + s.URLs + s.Hashes }

const summaryQuery = `SELECT l.id, l.source, l.source_category, l.categories, l.mandatory, l.format, l.origin, l.enabled, l.version,
	v.domains, v.urls, v.hashes, v.malformed, v.sha256, v.imported_at, v.imported_by
	FROM lists l JOIN list_versions v ON v.list_id = l.id AND v.version = l.version`

func scanSummary(row interface{ Scan(...any) error }) (Summary, error) {
	var sm Summary
	var cats string
	var at int64
	err := row.Scan(&sm.ID, &sm.Source, &sm.SourceCategory, &cats, &sm.Mandatory, &sm.Format, &sm.Origin, &sm.Enabled, &sm.Version,
		&sm.Domains, &sm.URLs, &sm.Hashes, &sm.Malformed, &sm.SHA256, &at, &sm.UpdatedBy)
	sm.Categories = strings.Fields(cats)
	sm.UpdatedAt = store.FromMillis(at)
	if sm.Mandatory {
		// Even the origin path of a mandatory list is not shown.
		sm.Origin = ""
	}
	return sm, err
}

// Summaries lists every stored list, by id.
func (s *Store) Summaries(ctx context.Context) ([]Summary, error) {
	rows, err := s.db.QueryContext(ctx, summaryQuery+" ORDER BY l.id")
	if err != nil {
		return nil, fmt.Errorf("list lists: %w", err)
	}
	defer rows.Close()
	var out []Summary
	for rows.Next() {
		sm, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("list lists: %w", err)
		}
		out = append(out, sm)
	}
	return out, rows.Err()
}

func (s *Store) summary(ctx context.Context, id string) (Summary, error) {
	sm, err := scanSummary(s.db.QueryRowContext(ctx, s.db.Rebind(summaryQuery+" WHERE l.id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return sm, fmt.Errorf("list %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return sm, fmt.Errorf("read list %s: %w", id, err)
	}
	return sm, nil
}

// Summary describes one list.
func (s *Store) Summary(ctx context.Context, id string) (Summary, error) { return s.summary(ctx, id) }

// Fingerprint identifies the set of list versions in force; it changes
// exactly when Load would return something different.
func (s *Store) Fingerprint(ctx context.Context) (string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT l.id, l.version, l.source, l.source_category, l.categories, l.mandatory, v.sha256
		FROM lists l JOIN list_versions v ON v.list_id = l.id AND v.version = l.version
		WHERE l.enabled ORDER BY l.id`)
	if err != nil {
		return "", fmt.Errorf("list fingerprint: %w", err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var info lists.Info
		var version int
		var cats, sum string
		if err := rows.Scan(&info.ID, &version, &info.Source, &info.SourceCategory, &cats, &info.Mandatory, &sum); err != nil {
			return "", fmt.Errorf("list fingerprint: %w", err)
		}
		info.Categories = strings.Fields(cats)
		writeFingerprint(&b, info, version, sum)
	}
	return b.String(), rows.Err()
}

// writeFingerprint adds one list to a fingerprint: its id and version,
// and a digest of its description and entries, because a list deleted and
// imported again starts again at version 1.
func writeFingerprint(b *strings.Builder, info lists.Info, version int, entriesSHA256 string) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%t\x00%s", info.Source, info.SourceCategory, strings.Join(info.Categories, " "), info.Mandatory, entriesSHA256)
	fmt.Fprintf(b, "%s@%d:%x;", info.ID, version, h.Sum(nil)[:8])
}

// Load returns every enabled list with its entries in force, and the
// fingerprint of what it read. A list whose stored entries fail to decode
// is reported as an error (the caller keeps its previous lists).
func (s *Store) Load(ctx context.Context) ([]*lists.List, string, error) {
	type stored struct {
		l       *lists.List
		version int
		size    int64
	}
	var found []stored
	var fp strings.Builder
	err := func() error {
		rows, err := s.db.QueryContext(ctx, `SELECT l.id, l.source, l.source_category, l.categories, l.mandatory, l.version, v.sha256, v.size
			FROM lists l JOIN list_versions v ON v.list_id = l.id AND v.version = l.version
			WHERE l.enabled ORDER BY l.id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			st := stored{l: &lists.List{}}
			var cats, sum string
			if err := rows.Scan(&st.l.ID, &st.l.Source, &st.l.SourceCategory, &cats, &st.l.Mandatory, &st.version, &sum, &st.size); err != nil {
				return err
			}
			st.l.Categories = strings.Fields(cats)
			found = append(found, st)
			writeFingerprint(&fp, st.l.Info, st.version, sum)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, "", fmt.Errorf("load lists: %w", err)
	}
	out := make([]*lists.List, 0, len(found))
	for _, st := range found {
		data, err := readChunks(ctx, s.db, st.l.ID, st.version, st.size)
		if err != nil {
			return nil, "", fmt.Errorf("load list %s version %d: %w", st.l.ID, st.version, err)
		}
		// data is this function's own copy and is never written again, so
		// the entries can share it rather than copy a large list twice.
		if err := st.l.UnmarshalEntries(unsafe.String(unsafe.SliceData(data), len(data))); err != nil {
			return nil, "", fmt.Errorf("load list %s version %d: %w", st.l.ID, st.version, err)
		}
		out = append(out, st.l)
	}
	return out, fp.String(), nil
}

// chunkSize is the most bytes of a list's entries one row of
// list_version_chunks holds. SQLite reads a blob spread over many pages
// into one buffer of its whole size, which its allocator then keeps
// mapped; small chunks keep that to a few pages.
const chunkSize = 64 << 10

// writeChunks stores a version's encoded entries as chunks.
func writeChunks(ctx context.Context, tx *store.Tx, id string, version int, data []byte) error {
	stmt, err := tx.PrepareContext(ctx, tx.Rebind(`INSERT INTO list_version_chunks (list_id, version, seq, data) VALUES (?, ?, ?, ?)`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for seq, off := 0, 0; off < len(data); seq, off = seq+1, off+chunkSize {
		if _, err := stmt.ExecContext(ctx, id, version, seq, data[off:min(off+chunkSize, len(data))]); err != nil {
			return fmt.Errorf("chunk %d: %w", seq, err)
		}
	}
	return nil
}

// readChunks reads a version's encoded entries, size bytes in all.
func readChunks(ctx context.Context, q store.Querier, id string, version int, size int64) ([]byte, error) {
	rows, err := q.QueryContext(ctx, q.Rebind(`SELECT data FROM list_version_chunks WHERE list_id = ? AND version = ? ORDER BY seq`), id, version)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	data := make([]byte, 0, size)
	for rows.Next() {
		var chunk sql.RawBytes
		if err := rows.Scan(&chunk); err != nil {
			return nil, err
		}
		if int64(len(data)+len(chunk)) > size {
			return nil, fmt.Errorf("%w: more than the %d bytes recorded", lists.ErrBadEncoding, size)
		}
		data = append(data, chunk...)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("%w: %d bytes of the %d recorded", lists.ErrBadEncoding, len(data), size)
	}
	return data, nil
}

// List returns one list with its entries. Mandatory lists are refused.
func (s *Store) List(ctx context.Context, id string) (*lists.List, error) {
	sm, err := s.summary(ctx, id)
	if err != nil {
		return nil, err
	}
	if sm.Mandatory {
		return nil, fmt.Errorf("list %s: %w", id, ErrMandatory)
	}
	var size int64
	err = s.db.QueryRowContext(ctx, s.db.Rebind("SELECT size FROM list_versions WHERE list_id = ? AND version = ?"), id, sm.Version).Scan(&size)
	if err != nil {
		return nil, fmt.Errorf("read list %s: %w", id, err)
	}
	data, err := readChunks(ctx, s.db, id, sm.Version, size)
	if err != nil {
		return nil, fmt.Errorf("read list %s: %w", id, err)
	}
	l := &lists.List{Info: sm.Info}
	if err := l.UnmarshalEntries(string(data)); err != nil {
		return nil, fmt.Errorf("read list %s: %w", id, err)
	}
	return l, nil
}

// Edit adds and removes entries of a local list (one the school keeps by
// hand, such as local/education), as a new version.
func (s *Store) Edit(ctx context.Context, actor, id string, add, remove []string) (ListResult, error) {
	l, err := s.List(ctx, id)
	if err != nil {
		return ListResult{}, err
	}
	if l.Source != "local" {
		return ListResult{}, fmt.Errorf("list %s: %w", id, ErrNotLocal)
	}
	c := &lists.Collector{}
	for _, e := range add {
		if err := c.Parse(strings.NewReader(e), "entry", lists.FormatPlain); err != nil {
			return ListResult{}, err
		}
	}
	if c.Report.Malformed > 0 {
		return ListResult{}, fmt.Errorf("list %s: %v", id, c.Report.Problems[0].Err)
	}
	rm := &lists.Collector{}
	for _, e := range remove {
		rm.Parse(strings.NewReader(e), "entry", lists.FormatPlain)
	}
	if rm.Report.Malformed > 0 {
		return ListResult{}, fmt.Errorf("list %s: %v", id, rm.Report.Problems[0].Err)
	}
	var missing []string
	for _, d := range rm.Domains {
		if !slices.Contains(l.Domains, d) {
			missing = append(missing, d)
		}
	}
	for _, u := range rm.URLs {
		if !slices.Contains(l.URLs, u) {
			missing = append(missing, string(u))
		}
	}
	if len(missing) > 0 {
		return ListResult{}, fmt.Errorf("list %s does not hold %s: %w", id, strings.Join(missing, ", "), store.ErrNotFound)
	}
	domains := append(slices.Clone(l.Domains), c.Domains...)
	urls := append(slices.Clone(l.URLs), c.URLs...)
	domains = slices.DeleteFunc(domains, func(d string) bool { return slices.Contains(rm.Domains, d) })
	urls = slices.DeleteFunc(urls, func(u lists.URLKey) bool { return slices.Contains(rm.URLs, u) })
	next := &lists.Collector{Domains: domains, URLs: urls, Hashes: l.Hashes}
	next.Finish()
	nl := &lists.List{Info: l.Info, Domains: next.Domains, URLs: next.URLs, Hashes: next.Hashes}
	var lr ListResult
	err = s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if lr, err = s.save(ctx, tx, nl, string(lists.FormatPlain), "edited", 0, actor); err != nil {
			return err
		}
		if !lr.Changed {
			return nil
		}
		var parts []string
		if len(add) > 0 {
			parts = append(parts, "added "+strings.Join(add, ", "))
		}
		if len(remove) > 0 {
			parts = append(parts, "removed "+strings.Join(remove, ", "))
		}
		_, err = store.AddRevision(ctx, tx, s.now(), actor, fmt.Sprintf("list %s: %s", id, strings.Join(parts, "; ")))
		return err
	})
	if err != nil {
		return ListResult{}, fmt.Errorf("edit list %s: %w", id, err)
	}
	return lr, nil
}

// Delete removes a list and its versions. Mandatory lists cannot be
// removed.
func (s *Store) Delete(ctx context.Context, actor, id string) error {
	sm, err := s.summary(ctx, id)
	if err != nil {
		return err
	}
	if sm.Mandatory {
		return fmt.Errorf("list %s: %w", id, ErrMandatory)
	}
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, tx.Rebind("DELETE FROM lists WHERE id = ?"), id); err != nil {
			return fmt.Errorf("delete list %s: %w", id, err)
		}
		_, err := store.AddRevision(ctx, tx, s.now(), actor, "list "+id+" removed")
		return err
	})
}

// SortSummaries orders summaries with mandatory lists first, then by id.
func SortSummaries(ss []Summary) {
	sort.SliceStable(ss, func(i, j int) bool {
		if ss[i].Mandatory != ss[j].Mandatory {
			return ss[i].Mandatory
		}
		return ss[i].ID < ss[j].ID
	})
}
