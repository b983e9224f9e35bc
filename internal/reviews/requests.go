package reviews

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/warden-schools/warden/internal/store"
)

// RequestInput is a new review request: the block page's details, from
// its verified token, and the pupil's or teacher's message.
type RequestInput struct {
	// Ref is the block page's reference id; one request per page.
	Ref string
	// BlockedAt is when the block page was shown.
	BlockedAt time.Time
	// Host is the blocked host; URL the blocked URL, if known.
	Host, URL string
	// Category, List and Rule are the decision's; Reason the reason the
	// page showed.
	Category, List, Rule, Reason string
	// GroupID is the group whose policy decided; PolicyVersion the
	// policy snapshot's version.
	GroupID       string
	PolicyVersion int64
	// ClientIP, DeviceID and PersonID say who was blocked (0 for a
	// device or person not known).
	ClientIP           netip.Addr
	DeviceID, PersonID int64
	// Message is the optional message, at most MaxMessageLen characters.
	Message string
}

// Request is a stored review request.
type Request struct {
	ID        int64
	Ref       string
	CreatedAt time.Time
	BlockedAt time.Time
	Host, URL string
	Category  string
	List      string
	Rule      string
	Reason    string
	GroupID   string
	// PolicyVersion is the version of the policy that blocked.
	PolicyVersion int64
	ClientIP      netip.Addr
	// DeviceID and PersonID are 0 when not known, or when the device or
	// person has since been deleted.
	DeviceID, PersonID int64
	Message            string
	Status             Status
	// DecidedBy, DecidedAt and Reply are set when the request is decided.
	DecidedBy string
	DecidedAt time.Time
	Reply     string
	// ExceptionID is the allow exception an approval created, if any.
	ExceptionID int64
}

// Cursor returns the place after r in a queue, for Filter.Before.
func (r Request) Cursor() Cursor { return Cursor{CreatedAt: r.CreatedAt, ID: r.ID} }

func (in RequestInput) check() error {
	checks := []error{
		checkRef(in.Ref, true),
		checkHost("host", in.Host, true),
		checkName("URL", in.URL, MaxURLLen, false),
		checkName("category", in.Category, MaxNameLen, false),
		checkName("list", in.List, MaxNameLen, false),
		checkName("rule", in.Rule, MaxNameLen, false),
		checkText("reason", in.Reason, MaxReasonLen, false),
		checkName("group", in.GroupID, MaxNameLen, false),
		checkText("message", in.Message, MaxMessageLen, true),
	}
	if in.BlockedAt.IsZero() {
		checks = append(checks, invalidf("the time of the block is missing"))
	}
	if in.DeviceID < 0 || in.PersonID < 0 || in.PolicyVersion < 0 {
		checks = append(checks, invalidf("device, person and policy version must not be negative"))
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

const requestColumns = `id, ref, created_at, blocked_at, host, url, category, list, rule, reason, group_id, policy_version,
	client_ip, device_id, person_id, message, status, decided_by, decided_at, reply, exception_id`

func scanRequest(sc rowScanner) (Request, error) {
	var r Request
	var created, blocked int64
	var ip, status string
	var dev, person, exc, decided sql.NullInt64
	err := sc.Scan(&r.ID, &r.Ref, &created, &blocked, &r.Host, &r.URL, &r.Category, &r.List, &r.Rule, &r.Reason, &r.GroupID,
		&r.PolicyVersion, &ip, &dev, &person, &r.Message, &status, &r.DecidedBy, &decided, &r.Reply, &exc)
	if err != nil {
		return Request{}, err
	}
	r.CreatedAt, r.BlockedAt = store.FromMillis(created), store.FromMillis(blocked)
	r.ClientIP, r.Status = parseAddr(ip), Status(status)
	r.DeviceID, r.PersonID, r.ExceptionID = dev.Int64, person.Int64, exc.Int64
	r.DecidedAt = fromNullMillis(decided)
	return r, nil
}

// CreateRequest stores a review request and returns it.
//
// It is idempotent per reference: a block page's form sent again (a
// double click, a reload after the thanks page) returns the request
// already stored and changes nothing, except that a message is added if
// the first submission had none and the request is still open. A
// different request under a reference already used (a different host or
// client, which only a reference collision can cause) is a wrapped
// store.ErrConflict. Invalid input is a wrapped ErrInvalid.
func (s *Store) CreateRequest(ctx context.Context, in RequestInput) (Request, error) {
	if err := in.check(); err != nil {
		return Request{}, err
	}
	var out Request
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		// Device and person ids from the identity table may name a record
		// deleted since; the sub-selects store NULL for those rather than
		// failing the foreign key.
		res, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO review_requests
			(ref, created_at, blocked_at, host, url, category, list, rule, reason, group_id, policy_version,
			 client_ip, device_id, person_id, message)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
			 (SELECT id FROM devices WHERE id = ?), (SELECT id FROM people WHERE id = ?), ?)
			ON CONFLICT (ref) DO NOTHING`),
			in.Ref, store.Millis(s.now()), store.Millis(in.BlockedAt), in.Host, in.URL, in.Category, in.List, in.Rule, in.Reason,
			in.GroupID, in.PolicyVersion, addrString(in.ClientIP), nullID(in.DeviceID), nullID(in.PersonID), in.Message)
		if err != nil {
			return fmt.Errorf("insert review request: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("insert review request: %w", err)
		}
		if out, err = requestByRef(ctx, tx, in.Ref); err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		if out.Host != in.Host || out.ClientIP != in.ClientIP.Unmap() || !out.BlockedAt.Equal(in.BlockedAt.Truncate(time.Millisecond)) {
			return fmt.Errorf("reference %s is already used by another request: %w", in.Ref, store.ErrConflict)
		}
		if out.Message == "" && in.Message != "" && out.Status == StatusOpen {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE review_requests SET message = ? WHERE id = ?`), in.Message, out.ID); err != nil {
				return fmt.Errorf("add message to review request %d: %w", out.ID, err)
			}
			out.Message = in.Message
		}
		return nil
	})
	if err != nil {
		return Request{}, err
	}
	return out, nil
}

func requestByRef(ctx context.Context, q store.Querier, ref string) (Request, error) {
	r, err := scanRequest(q.QueryRowContext(ctx, q.Rebind(`SELECT `+requestColumns+` FROM review_requests WHERE ref = ?`), ref))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, fmt.Errorf("review request %s: %w", ref, store.ErrNotFound)
	}
	if err != nil {
		return Request{}, fmt.Errorf("read review request %s: %w", ref, err)
	}
	return r, nil
}

func requestByID(ctx context.Context, q store.Querier, id int64) (Request, error) {
	r, err := scanRequest(q.QueryRowContext(ctx, q.Rebind(`SELECT `+requestColumns+` FROM review_requests WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, fmt.Errorf("review request %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Request{}, fmt.Errorf("read review request %d: %w", id, err)
	}
	return r, nil
}

// GetRequest returns the request with this id, or a wrapped
// store.ErrNotFound.
func (s *Store) GetRequest(ctx context.Context, id int64) (Request, error) {
	return requestByID(ctx, s.db, id)
}

// RequestByRef returns the request made from the block page with this
// reference (canonical form), or a wrapped store.ErrNotFound.
func (s *Store) RequestByRef(ctx context.Context, ref string) (Request, error) {
	return requestByRef(ctx, s.db, ref)
}

// ListRequests returns a page of requests, newest first.
func (s *Store) ListRequests(ctx context.Context, f Filter) ([]Request, error) {
	return listPage(ctx, s, f, "review requests", `SELECT `+requestColumns+` FROM review_requests`, scanRequest)
}

// Decision is what someone decided about a review request.
type Decision struct {
	// Approve approves the request; false declines it.
	Approve bool
	// By names who decided (a console user); required.
	By string
	// Reply is an optional answer for the requester, at most
	// MaxMessageLen characters.
	Reply string
	// ExceptionID is the allow exception the approval created, if any
	// (approvals only).
	ExceptionID int64
}

// DecideRequest approves or declines an open request and returns it. A
// missing request is a wrapped store.ErrNotFound; one already decided a
// wrapped store.ErrConflict; bad input a wrapped ErrInvalid.
func (s *Store) DecideRequest(ctx context.Context, id int64, d Decision) (Request, error) {
	if err := checkName("decided by", d.By, MaxNameLen, true); err != nil {
		return Request{}, err
	}
	if err := checkText("reply", d.Reply, MaxMessageLen, true); err != nil {
		return Request{}, err
	}
	if d.ExceptionID != 0 && !d.Approve {
		return Request{}, invalidf("only an approval can create an exception")
	}
	status := StatusDeclined
	if d.Approve {
		status = StatusApproved
	}
	var out Request
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE review_requests
			SET status = ?, decided_by = ?, decided_at = ?, reply = ?, exception_id = (SELECT id FROM exceptions WHERE id = ?)
			WHERE id = ? AND status = 'open'`),
			string(status), d.By, store.Millis(s.now()), d.Reply, nullID(d.ExceptionID), id)
		if err != nil {
			return fmt.Errorf("decide review request %d: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("decide review request %d: %w", id, err)
		}
		if out, err = requestByID(ctx, tx, id); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("review request %d is already %s: %w", id, out.Status, store.ErrConflict)
		}
		if d.ExceptionID != 0 && out.ExceptionID != d.ExceptionID {
			return fmt.Errorf("exception %d: %w", d.ExceptionID, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return Request{}, err
	}
	return out, nil
}

// Counts returns how many requests and reports are open, for the
// console's badges.
func (s *Store) Counts(ctx context.Context) (openRequests, openReports int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM review_requests WHERE status = 'open'),
		(SELECT COUNT(*) FROM site_reports WHERE status = 'open')`).Scan(&openRequests, &openReports)
	if err != nil {
		return 0, 0, fmt.Errorf("count open requests and reports: %w", err)
	}
	return openRequests, openReports, nil
}
