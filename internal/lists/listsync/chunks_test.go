package listsync

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/store"
)

// A list larger than one chunk is stored in several and read back whole.
func TestChunkedEntries(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t)
	var text strings.Builder
	for i := range 20000 { // about 380 KB encoded: six chunks
		fmt.Fprintf(&text, "host-%06d.chunked.example\n", i)
	}
	importText(t, s, text.String(), ReaderOptions{ID: "local/big", Category: "gambling"})
	var chunks int
	if err := db.QueryRow("SELECT COUNT(*) FROM list_version_chunks WHERE list_id = 'local/big'").Scan(&chunks); err != nil {
		t.Fatal(err)
	}
	if chunks < 5 {
		t.Errorf("%d chunks, want several", chunks)
	}
	l, err := s.List(ctx, "local/big")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Domains) != 20000 || l.Domains[0] != "host-000000.chunked.example" {
		t.Errorf("read back %d domains, first %q", len(l.Domains), l.Domains[0])
	}
}

// Migration 0004 moves entries stored as one blob per version into chunks.
func TestMigrateToChunks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "warden.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ms, err := store.Migrations(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SchemaVersion(ctx); err != nil { // creates schema_migrations
		t.Fatal(err)
	}
	for _, m := range ms[:3] {
		if _, err := db.ExecContext(ctx, m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)", m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	want := &lists.List{Info: lists.Info{ID: "local/old", Source: "local", SourceCategory: "old", Categories: []string{"gambling"}}}
	for i := range 9000 {
		want.Domains = append(want.Domains, fmt.Sprintf("old-%05d.example", i))
	}
	data := want.MarshalEntries()
	if len(data) < 2*chunkSize {
		t.Fatalf("test list of %d bytes fits in fewer than three chunks", len(data))
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO lists (id, source, source_category, categories, mandatory, format, origin, enabled, version, created_at, updated_at)
			VALUES ('local/old', 'local', 'old', 'gambling', FALSE, 'plain', '', TRUE, 2, 0, 0)`, nil},
		{`INSERT INTO list_versions (list_id, version, domains, urls, hashes, malformed, sha256, data, imported_at, imported_by)
			VALUES ('local/old', 1, 1, 0, 0, 0, 'x', X'00', 0, 'test')`, nil},
		{`INSERT INTO list_versions (list_id, version, domains, urls, hashes, malformed, sha256, data, imported_at, imported_by)
			VALUES ('local/old', 2, 9000, 0, 0, 0, 'y', ?, 0, 'test')`, []any{data}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	got, _, err := New(db, lists.DefaultTaxonomy(), time.Now).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Domains) != 9000 || got[0].Domains[8999] != "old-08999.example" {
		t.Fatalf("after the migration: %d lists", len(got))
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM list_version_chunks WHERE list_id = 'local/old' AND version = 1").Scan(&n); err != nil || n != 1 {
		t.Errorf("version 1: %d chunks (%v), want 1", n, err)
	}
}
