// Package audit keeps the audit log: every console action and sign-in,
// append-only and chained with an HMAC so that a row changed, removed or
// added out of band is detected (warden audit verify), for the
// headteacher and the DSL to read.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warden-schools/warden/internal/store"
)

// Actions recorded. Other packages may record their own; these are the
// console's.
const (
	ActionSignIn             = "sign-in"
	ActionSecondFactor       = "second-factor"
	ActionSignOut            = "sign-out"
	ActionTOTPEnrolled       = "two-factor-enrolled"
	ActionPasswordChanged    = "password-changed"
	ActionFirstAdmin         = "first-admin-created"
	ActionYouTubeApproved    = "youtube-approved"
	ActionAuditViewed        = "audit-log-viewed"
	ActionAuditVerified      = "audit-log-verified"
	ActionPermissionRefused  = "permission-refused"
	ActionAccessLogViewed    = "access-log-viewed"
	ActionAccessLogExported  = "access-log-exported"
	ActionSiteChecked        = "site-checked"
	ActionChangeProposed     = "change-proposed"
	ActionChangeApproved     = "change-approved"
	ActionChangeRejected     = "change-declined"
	ActionReviewApproved     = "review-request-approved"
	ActionReviewDeclined     = "review-request-declined"
	ActionPeopleViewed       = "people-viewed"
	ActionDeviceTokenIssued  = "device-token-issued"
	ActionDeviceTokenRevoked = "device-token-revoked"
	ActionAccountCreated     = "account-created"
	ActionAccountChanged     = "account-changed"
	ActionListsUpdated       = "lists-updated"
	ActionPeopleImported     = "people-imported"
	ActionReportHandled      = "site-report-handled"
)

// Outcomes of an action.
const (
	OK      = "ok"
	Failed  = "failed"
	Refused = "refused"
)

// Field limits: the log takes what people typed (logins) as well as what
// Warden decided, so every field is bounded.
const (
	maxField  = 200
	maxDetail = 1000
)

// Entry is one audited action.
type Entry struct {
	ID int64
	At time.Time
	// PersonID is the person who acted, when known (0 for a failed
	// sign-in with an unknown login).
	PersonID int64
	// Actor names who acted as people read it: a login, "cli:root".
	Actor string
	// Action is what was done (Action...), Target what to, Detail any
	// more (never a password or code).
	Action, Target, Detail string
	ClientIP               netip.Addr
	// Outcome is OK, Failed or Refused.
	Outcome string
}

// Log reads and appends to the audit log.
type Log struct {
	db  *store.DB
	key []byte
	now func() time.Time
}

// New returns a Log over db whose chain is keyed with key (at least 32
// bytes, derived from the master key: without it the chain can be
// neither extended nor checked).
func New(db *store.DB, key []byte, now func() time.Time) (*Log, error) {
	if len(key) < 32 {
		return nil, errors.New("audit: key must be at least 32 bytes")
	}
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, key: key, now: now}, nil
}

// clean makes a field safe to store: valid UTF-8, no control
// characters, bounded.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return s
}

// mac is the chain's MAC of a row, given the previous row's MAC.
func (l *Log) mac(e Entry, prev string) string {
	m := hmac.New(sha256.New, l.key)
	io := func(s string) { writeField(m, s) }
	io("warden audit v1")
	io(strconv.FormatInt(e.ID, 10))
	io(strconv.FormatInt(e.At.UnixMilli(), 10))
	io(strconv.FormatInt(e.PersonID, 10))
	io(e.Actor)
	io(e.Action)
	io(e.Target)
	io(e.Detail)
	io(addrText(e.ClientIP))
	io(e.Outcome)
	io(prev)
	return hex.EncodeToString(m.Sum(nil))
}

// writeField writes a length-prefixed field, so that no two rows encode
// alike.
func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

func (l *Log) headMAC(lastID int64, lastMAC string) string {
	m := hmac.New(sha256.New, l.key)
	writeField(m, "warden audit head v1")
	writeField(m, strconv.FormatInt(lastID, 10))
	writeField(m, lastMAC)
	return hex.EncodeToString(m.Sum(nil))
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Record appends e (its ID and, if zero, its time are set here). It
// fails rather than leave an action unrecorded: callers refuse the
// action when it does.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.At = e.At.UTC().Truncate(time.Millisecond)
	if e.Outcome == "" {
		e.Outcome = OK
	}
	e.Actor, e.Action, e.Target = clean(e.Actor, maxField), clean(e.Action, maxField), clean(e.Target, maxField)
	e.Detail, e.Outcome = clean(e.Detail, maxDetail), clean(e.Outcome, maxField)
	err := l.db.WithTx(ctx, func(tx *store.Tx) error {
		// Chain from the head, not the table's last row: rows cut from
		// the end then leave a gap that Verify reports.
		var prevID int64
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT last_id, last_mac FROM audit_head WHERE one = 1`).Scan(&prevID, &prev)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, `SELECT id, mac FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&prevID, &prev)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var taken int
		if err := tx.QueryRowContext(ctx, tx.Rebind(`SELECT COUNT(*) FROM audit_log WHERE id > ?`), prevID).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			// Rows past the head: added out of band. Append after them;
			// Verify reports them.
			if err := tx.QueryRowContext(ctx, `SELECT id, mac FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&prevID, &prev); err != nil {
				return err
			}
		}
		e.ID = prevID + 1
		mac := l.mac(e, prev)
		var person any
		if e.PersonID != 0 {
			person = e.PersonID
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO audit_log (id, at, person_id, actor, action, target, detail,
			client_ip, outcome, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			e.ID, store.Millis(e.At), person, e.Actor, e.Action, e.Target, e.Detail, addrText(e.ClientIP), e.Outcome, mac); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO audit_head (one, last_id, last_mac, mac) VALUES (1, ?, ?, ?)
			ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id, last_mac = excluded.last_mac, mac = excluded.mac`),
			e.ID, mac, l.headMAC(e.ID, mac))
		return err
	})
	if err != nil {
		return fmt.Errorf("record %s in the audit log: %w", e.Action, err)
	}
	return nil
}

// Filter selects entries; zero fields select everything.
type Filter struct {
	PersonID int64
	Action   string
	// From and To bound the time (To exclusive).
	From, To time.Time
	// Limit (default 50, at most 500) and Offset page the entries,
	// newest first.
	Limit, Offset int
}

// List returns a page of entries, newest first, and how many match.
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, int, error) {
	var where []string
	var args []any
	if f.PersonID != 0 {
		where, args = append(where, "person_id = ?"), append(args, f.PersonID)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if !f.From.IsZero() {
		where, args = append(where, "at >= ?"), append(args, store.Millis(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, "at < ?"), append(args, store.Millis(f.To))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT COUNT(*) FROM audit_log`+cond), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count audit entries: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT id, at, person_id, actor, action, target, detail, client_ip, outcome
		FROM audit_log`+cond+` ORDER BY id DESC LIMIT ? OFFSET ?`), append(args, limit, max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list audit entries: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, _, err := scan(rows.Scan, false)
		if err != nil {
			return nil, 0, fmt.Errorf("list audit entries: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list audit entries: %w", err)
	}
	return out, total, nil
}

func scan(scanFn func(...any) error, withMAC bool) (Entry, string, error) {
	var (
		e      Entry
		at     int64
		person sql.NullInt64
		ip     string
		mac    string
	)
	dst := []any{&e.ID, &at, &person, &e.Actor, &e.Action, &e.Target, &e.Detail, &ip, &e.Outcome}
	if withMAC {
		dst = append(dst, &mac)
	}
	if err := scanFn(dst...); err != nil {
		return Entry{}, "", err
	}
	e.At = store.FromMillis(at)
	e.PersonID = person.Int64
	e.ClientIP, _ = netip.ParseAddr(ip)
	return e, mac, nil
}

// Problem is a place where the chain is broken.
type Problem struct {
	// ID is the row where it shows (0: the end of the log).
	ID     int64
	Reason string
}

// Report is what Verify found.
type Report struct {
	Rows     int64
	Problems []Problem
}

// Intact reports whether the log verified.
func (r Report) Intact() bool { return len(r.Problems) == 0 }

// maxProblems bounds what a report lists; one broken row usually breaks
// the next too.
const maxProblems = 100

// Verify walks the whole log in order and checks every row's MAC, the
// ids' sequence and the head.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT id, at, person_id, actor, action, target, detail, client_ip, outcome, mac
		FROM audit_log ORDER BY id`)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	defer rows.Close()
	var rep Report
	add := func(id int64, reason string) {
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, Problem{ID: id, Reason: reason})
		}
	}
	var lastID int64
	prev := ""
	for rows.Next() {
		e, mac, err := scan(rows.Scan, true)
		if err != nil {
			return Report{}, fmt.Errorf("verify audit log: %w", err)
		}
		rep.Rows++
		if e.ID != lastID+1 {
			add(e.ID, fmt.Sprintf("rows %d to %d are missing", lastID+1, e.ID-1))
		}
		if !hmac.Equal([]byte(l.mac(e, prev)), []byte(mac)) {
			add(e.ID, "this row was changed, or the row before it was changed or removed")
		}
		lastID, prev = e.ID, mac
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	var headID int64
	var headLast, headMAC string
	err = l.db.QueryRowContext(ctx, `SELECT last_id, last_mac, mac FROM audit_head WHERE one = 1`).Scan(&headID, &headLast, &headMAC)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if rep.Rows > 0 {
			add(0, "the record of the log's last row is missing")
		}
	case err != nil:
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	case headID != lastID:
		add(0, fmt.Sprintf("the log should end at row %d but ends at row %d: rows were removed from the end", headID, lastID))
	case headLast != prev || !hmac.Equal([]byte(l.headMAC(headID, prev)), []byte(headMAC)):
		add(0, "the last row, or the record of it, was changed")
	}
	return rep, nil
}
