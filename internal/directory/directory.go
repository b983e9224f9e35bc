// Package directory keeps the people, parents and carers, devices and
// network zones that Warden's policy applies to, the rules that place
// people in policy groups, and the import of the school's MIS (management
// information system) CSV exports.
//
// Every write runs in one transaction that also adds a store revision, so
// a running filter reloads its policy snapshot when the directory changes;
// the revision id is the policy version decisions report. Revision
// summaries name people by id, never by name, since the change history is
// shown more widely than the people themselves.
//
// The package keeps only what filtering, monitoring and safeguarding need
// (data minimisation): names, year group, registration group, staff role,
// login names and the MIS keys that let a re-import find the same person.
// Dates of birth, addresses, telephone numbers and other columns of an MIS
// export are recognised and deliberately not stored.
//
// CSV parsing (ParseCSV) is pure and separate from the SQL (ImportCSV), so
// it can be tested, fuzzed and previewed without a database.
package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/warden-schools/warden/internal/store"
)

// ErrInvalid marks an error caused by input that breaks a rule of the
// directory (a missing name, a malformed MAC address, a bad CSV row). Its
// message is written to be shown to the person who gave the input.
var ErrInvalid = errors.New("invalid input")

// invalidError is an ErrInvalid with a message meant for people.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf returns an error that errors.Is(err, ErrInvalid) recognises and
// whose message is exactly the formatted text.
func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Directory reads and writes people, guardians, devices, zones and
// membership rules in the store. It holds no state of its own beyond its
// dependencies and is safe for concurrent use.
type Directory struct {
	db  *store.DB
	now func() time.Time
}

// New returns a Directory over db. now is the clock used for the created
// and updated times of records; nil means time.Now.
func New(db *store.DB, now func() time.Time) *Directory {
	if now == nil {
		now = time.Now
	}
	return &Directory{db: db, now: now}
}

// slugRE is the shape of human-chosen identifiers (zones, groups).
var slugRE = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// maxSlugLen bounds zone and group identifiers.
const maxSlugLen = 64

// nullString stores "" as NULL, for optional keys with partial unique
// indexes.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullID stores 0 as NULL, for optional references.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// checkGroup returns a wrapped store.ErrNotFound when a non-empty group id
// names no policy group.
func checkGroup(ctx context.Context, q store.Querier, id string) error {
	if id == "" {
		return nil
	}
	var n int
	if err := q.QueryRowContext(ctx, q.Rebind("SELECT COUNT(*) FROM groups WHERE id = ?"), id).Scan(&n); err != nil {
		return fmt.Errorf("look up group %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("group %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// scanNullString reads a nullable TEXT column as "" for NULL.
func scanNullString(ns sql.NullString) string {
	if ns.Valid {
		return ns.String
	}
	return ""
}
