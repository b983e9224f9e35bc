// Package store opens Warden's database (SQLite by default; the schema is
// written so that PostgreSQL can share it), applies the embedded,
// versioned migrations, and runs transactions. Domain packages own their
// SQL and use the DB from here.
//
// Conventions shared by every table: times are BIGINT Unix milliseconds
// (UTC), so both engines compare and index them the same way; booleans are
// BOOLEAN; human-chosen identifiers (groups, zones, lists) are TEXT slugs,
// others integer keys.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go)
)

// Sentinel errors for domain packages to return and callers to test with
// errors.Is.
var (
	// ErrNotFound means the record asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a write would break a uniqueness rule.
	ErrConflict = errors.New("conflicts with an existing record")
)

// Engine names a database engine.
type Engine string

// Supported engines.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Options says which database to open.
type Options struct {
	// Engine is SQLite (the default) or Postgres.
	Engine Engine
	// Path is the SQLite database file.
	Path string
	// Logger receives migration messages; nil discards them.
	Logger *slog.Logger
}

// DB is an open database with its engine, for queries written once with
// "?" placeholders and rebound per engine.
type DB struct {
	*sql.DB
	engine Engine
	log    *slog.Logger
}

// Querier is what both *DB and *Tx offer for queries, so domain packages
// can write a function once and call it inside or outside a transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Rebind(query string) string
}

// Open opens (creating if needed) the database, without migrating.
func Open(ctx context.Context, opts Options) (*DB, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch opts.Engine {
	case "", SQLite:
	case Postgres:
		return nil, errors.New("open store: the PostgreSQL engine is not available in this build yet; use sqlite")
	default:
		return nil, fmt.Errorf("open store: unknown engine %q (want sqlite or postgres)", opts.Engine)
	}
	if opts.Path == "" {
		return nil, errors.New("open store: no database path")
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	q := url.Values{}
	// A 1 MiB page cache per connection (SQLite's default is 2 MiB): the
	// filter's own data lives in memory, not in SQLite's cache. And a
	// soft limit of 4 MiB on all SQLite's memory in the process, past
	// which it reuses its caches' pages rather than allocate more: the
	// access log writes pages it will seldom read again, and its
	// allocator keeps what it has allocated once. (A soft limit never
	// fails an allocation.)
	for _, p := range []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "cache_size(-1024)", "soft_heap_limit(4194304)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + opts.Path + "?" + q.Encode()
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", opts.Path, err)
	}
	sqldb.SetMaxOpenConns(8)
	sqldb.SetMaxIdleConns(2)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Path, err)
	}
	var fk int
	if err := sqldb.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		sqldb.Close()
		return nil, fmt.Errorf("open store %s: foreign keys could not be enabled", opts.Path)
	}
	return &DB{DB: sqldb, engine: SQLite, log: log.With("component", "store")}, nil
}

// Engine returns the database engine.
func (db *DB) Engine() Engine { return db.engine }

// Rebind rewrites "?" placeholders for the engine ($1, $2... for
// PostgreSQL). Queries are written once with "?".
func (db *DB) Rebind(query string) string { return rebind(db.engine, query) }

func rebind(e Engine, query string) string {
	if e != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	inString := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c == '\'' {
			inString = !inString
		}
		if c == '?' && !inString {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Tx is a transaction with the engine's rebinding.
type Tx struct {
	*sql.Tx
	engine Engine
}

// Rebind rewrites "?" placeholders for the engine.
func (tx *Tx) Rebind(query string) string { return rebind(tx.engine, query) }

// WithTx runs fn in a transaction, committing if it returns nil and
// rolling back otherwise (also on panic).
func (db *DB) WithTx(ctx context.Context, fn func(*Tx) error) error {
	return withTx(ctx, db.DB.BeginTx, db.engine, fn)
}

// Conn is one connection held apart from the pool, for a busy writer
// that wants settings of its own (see DB.Dedicated).
type Conn struct {
	*sql.Conn
	engine Engine
}

// Dedicated takes a connection out of the pool and runs the given
// statements on it (PRAGMAs, for SQLite; skipped for other engines).
// Close gives it back.
func (db *DB) Dedicated(ctx context.Context, sqlitePragmas ...string) (*Conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("dedicated connection: %w", err)
	}
	if db.engine == SQLite {
		for _, p := range sqlitePragmas {
			if _, err := c.ExecContext(ctx, "PRAGMA "+p); err != nil {
				c.Close()
				return nil, fmt.Errorf("dedicated connection: PRAGMA %s: %w", p, err)
			}
		}
	}
	return &Conn{Conn: c, engine: db.engine}, nil
}

// Rebind rewrites "?" placeholders for the engine.
func (c *Conn) Rebind(query string) string { return rebind(c.engine, query) }

// WithTx runs fn in a transaction on c, as DB.WithTx does.
func (c *Conn) WithTx(ctx context.Context, fn func(*Tx) error) error {
	return withTx(ctx, c.BeginTx, c.engine, fn)
}

func withTx(ctx context.Context, begin func(context.Context, *sql.TxOptions) (*sql.Tx, error), engine Engine, fn func(*Tx) error) (err error) {
	sqltx, err := begin(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := &Tx{Tx: sqltx, engine: engine}
	defer func() {
		if p := recover(); p != nil {
			_ = sqltx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = sqltx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = sqltx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a uniqueness-constraint
// failure, which domain packages turn into ErrConflict.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "duplicate key value")
}

// Millis converts a time to the stored form (Unix milliseconds).
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts a stored time back (in UTC).
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
