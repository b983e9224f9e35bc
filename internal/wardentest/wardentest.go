// Package wardentest holds helpers for Warden's tests: a migrated store
// in a temporary folder, the current policy version, and self-signed
// certificates.
package wardentest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/warden-schools/warden/internal/store"
)

// OpenStore opens a migrated SQLite store in a temporary folder, closed
// when the test ends.
func OpenStore(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(t.TempDir(), "warden.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// Revision returns the current policy version.
func Revision(t testing.TB, q store.Querier) int64 {
	t.Helper()
	v, err := store.CurrentRevision(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
