package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "warden.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	for i := 0; i < 2; i++ {
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("migrate %d: %v", i, err)
		}
	}
	ms, err := Migrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != len(ms) {
		t.Fatalf("schema version %d, want %d", v, len(ms))
	}
}

func TestPragmas(t *testing.T) {
	db := openTemp(t)
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var fk, timeout int
	db.QueryRow("PRAGMA foreign_keys").Scan(&fk)
	db.QueryRow("PRAGMA busy_timeout").Scan(&timeout)
	if fk != 1 || timeout < 1000 {
		t.Errorf("foreign_keys=%d busy_timeout=%d", fk, timeout)
	}
	var cache, limit int64
	db.QueryRow("PRAGMA cache_size").Scan(&cache)
	db.QueryRow("PRAGMA soft_heap_limit").Scan(&limit)
	if cache != -1024 || limit != 4<<20 {
		t.Errorf("cache_size=%d soft_heap_limit=%d, want -1024 and 4 MiB", cache, limit)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	err := db.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("want refusal of a newer schema, got %v", err)
	}
}

func TestWithTxRollsBack(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec("INSERT INTO settings (key, value, updated_at) VALUES ('k', 'v', 0)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var n int
	db.QueryRow("SELECT COUNT(*) FROM settings").Scan(&n)
	if n != 0 {
		t.Fatalf("rolled-back insert is visible")
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := db.Exec("INSERT INTO group_categories (group_id, category, action) VALUES ('nope', 'games', 'block')")
	if err == nil {
		t.Fatal("insert referencing a missing group succeeded")
	}
}

func TestRebind(t *testing.T) {
	got := rebind(Postgres, "SELECT a FROM t WHERE b = ? AND c = '?' AND d = ?")
	want := "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2"
	if got != want {
		t.Errorf("rebind = %q, want %q", got, want)
	}
	if rebind(SQLite, "a = ?") != "a = ?" {
		t.Error("sqlite query changed")
	}
}

func TestUniqueViolation(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ins := "INSERT INTO settings (key, value, updated_at) VALUES ('k', 'v', 0)"
	if _, err := db.Exec(ins); err != nil {
		t.Fatal(err)
	}
	_, err := db.Exec(ins)
	if !IsUniqueViolation(err) {
		t.Fatalf("IsUniqueViolation(%v) = false", err)
	}
}

// TestDedicated: a dedicated connection has its own settings, and its
// transactions commit and roll back as the pool's do.
func TestDedicated(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := db.Dedicated(ctx, "cache_size = -64")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var cache int
	if c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); cache != -64 {
		t.Errorf("dedicated cache_size = %d, want -64", cache)
	}
	if db.QueryRow("PRAGMA cache_size").Scan(&cache); cache != -1024 {
		t.Errorf("pool cache_size = %d, want -1024", cache)
	}
	boom := errors.New("boom")
	insert := func(key string, fail error) error {
		return c.WithTx(ctx, func(tx *Tx) error {
			if _, err := tx.Exec(tx.Rebind("INSERT INTO settings (key, value, updated_at) VALUES (?, 'v', 0)"), key); err != nil {
				return err
			}
			return fail
		})
	}
	if err := insert("kept", nil); err != nil {
		t.Fatal(err)
	}
	if err := insert("dropped", boom); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var keys string
	db.QueryRow("SELECT group_concat(key) FROM settings").Scan(&keys)
	if keys != "kept" {
		t.Fatalf("settings keys %q, want kept", keys)
	}
	if _, err := db.Dedicated(ctx, "no_such_pragma("); err == nil {
		t.Error("a bad PRAGMA was accepted")
	}
}
