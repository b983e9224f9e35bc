// Package reviews keeps the two things a block page lets people send:
// requests to review a block ("this should not be blocked") and reports
// of unsuitable sites. Both wait in queues for the people who look after
// filtering and safeguarding; the console (a later piece) lists them and
// records what was decided.
//
// The package owns its SQL over the shared store. The details of a
// request (what was blocked, for whom, why, under which policy version)
// come from the block page's signed token, checked by the web listener
// before they reach this package; this package checks only their shape
// and length.
package reviews

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/store"
)

// Limits on stored text. Messages and replies are counted in characters,
// the rest in bytes.
const (
	MaxHostLen    = 253
	MaxURLLen     = 2048
	MaxMessageLen = 1000
	MaxReasonLen  = 1000
	MaxNameLen    = 200
	MaxRefLen     = 32
)

// ErrInvalid marks an error caused by input that breaks a rule (too long,
// missing, not valid text). Its message is written to be shown to the
// person who gave the input.
var ErrInvalid = errors.New("invalid input")

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Status is where a request or report is in its queue.
type Status string

// Statuses. A request is open until approved or declined; a report is
// open until actioned or dismissed.
const (
	StatusOpen      Status = "open"
	StatusApproved  Status = "approved"
	StatusDeclined  Status = "declined"
	StatusActioned  Status = "actioned"
	StatusDismissed Status = "dismissed"
)

// Store reads and writes review requests and site reports. It holds no
// state beyond its dependencies and is safe for concurrent use.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// New returns a Store over db; now is the clock for created and decided
// times (nil means time.Now).
func New(db *store.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// Cursor marks a place in a queue listed newest first: the next page
// holds what is older than it. The zero Cursor starts at the newest.
type Cursor struct {
	CreatedAt time.Time
	ID        int64
}

// IsZero reports whether c is the start of the queue.
func (c Cursor) IsZero() bool { return c.ID == 0 }

// Filter selects a page of a queue.
type Filter struct {
	// Status selects one status; empty means every status.
	Status Status
	// Limit is the page size: DefaultLimit if 0, at most MaxLimit.
	Limit int
	// Before continues after the last item of the previous page (its
	// Cursor()).
	Before Cursor
}

// Page sizes for listing.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

func (f Filter) limit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

// where builds the filter's conditions (written once with "?") and their
// arguments, for a queue ordered by created_at and id, newest first.
func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if f.Status != "" {
		conds = append(conds, "status = ?")
		args = append(args, string(f.Status))
	}
	if !f.Before.IsZero() {
		ms := store.Millis(f.Before.CreatedAt)
		conds = append(conds, "(created_at < ? OR (created_at = ? AND id < ?))")
		args = append(args, ms, ms, f.Before.ID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// checkText checks free text: valid UTF-8, no control characters but
// line breaks and tabs (if multiline), at most max characters.
func checkText(field, s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid text", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalidf("%s is %d characters long; the limit is %d", field, n, max)
	}
	for _, r := range s {
		if (r == '\n' || r == '\t') && multiline {
			continue
		}
		if unicode.IsControl(r) {
			return invalidf("%s contains a control character", field)
		}
	}
	return nil
}

// checkName checks a short single-line value (ids, names) of at most max
// bytes, required if need.
func checkName(field, s string, max int, need bool) error {
	if need && strings.TrimSpace(s) == "" {
		return invalidf("%s is missing", field)
	}
	if len(s) > max {
		return invalidf("%s is %d bytes long; the limit is %d", field, len(s), max)
	}
	return checkText(field, s, max, false)
}

// checkHost checks a host name or address as the filter saw it.
func checkHost(field, s string, need bool) error {
	if err := checkName(field, s, MaxHostLen, need); err != nil {
		return err
	}
	if strings.ContainsAny(s, " /\\") {
		return invalidf("%s %q is not a host name", field, s)
	}
	return nil
}

// checkRef checks a block page reference: letters and digits.
func checkRef(s string, need bool) error {
	if need && s == "" {
		return invalidf("reference is missing")
	}
	if len(s) > MaxRefLen {
		return invalidf("reference is %d characters long; the limit is %d", len(s), MaxRefLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
			return invalidf("reference %q has characters other than upper-case letters and digits", s)
		}
	}
	return nil
}

// nullID stores 0 as NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// addrString stores an address as text, "" for none.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

// parseAddr reads a stored address; "" or junk is the zero Addr.
func parseAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

// fromNullMillis reads an optional stored time.
func fromNullMillis(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return store.FromMillis(ms.Int64)
}

// HostOf returns the lower-case host of an address as a person may write
// it ("example.com/page", "https://Example.com:8080/x", "example.com"),
// or "" if it has none.
func HostOf(addr string) string {
	s := strings.TrimSpace(addr)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	} else {
		s = strings.TrimPrefix(s, "//")
	}
	if i := strings.IndexAny(s, "/?#\\"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return strings.ToLower(s[1:i])
		}
		return ""
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" || len(s) > MaxHostLen || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return ""
	}
	return s
}

// listPage runs selectFrom (a SELECT ... FROM table) for the page f
// asks for, newest first, and scans each row; what names the rows in
// errors.
func listPage[T any](ctx context.Context, s *Store, f Filter, what, selectFrom string, scan func(rowScanner) (T, error)) ([]T, error) {
	where, args := f.where()
	args = append(args, f.limit())
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(selectFrom+where+` ORDER BY created_at DESC, id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }
