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

// ReportInput is a new report of an unsuitable site.
type ReportInput struct {
	// URL is the site's address as the reporter wrote it (required, at
	// most MaxURLLen bytes).
	URL string
	// Host is the site's host; empty means HostOf(URL).
	Host string
	// Message is the optional message, at most MaxMessageLen characters.
	Message string
	// GroupID, ClientIP, DeviceID and PersonID say who reported it, from
	// the block page's token.
	GroupID            string
	ClientIP           netip.Addr
	DeviceID, PersonID int64
	// Ref is the block page the report was made from, if any.
	Ref string
}

// Report is a stored site report.
type Report struct {
	ID        int64
	CreatedAt time.Time
	URL, Host string
	Message   string
	GroupID   string
	ClientIP  netip.Addr
	// DeviceID and PersonID are 0 when not known, or when the device or
	// person has since been deleted.
	DeviceID, PersonID int64
	Ref                string
	Status             Status
	// HandledBy, HandledAt and Note are set when the report is handled.
	HandledBy string
	HandledAt time.Time
	Note      string
}

// Cursor returns the place after r in a queue, for Filter.Before.
func (r Report) Cursor() Cursor { return Cursor{CreatedAt: r.CreatedAt, ID: r.ID} }

func (in *ReportInput) check() error {
	if in.Host == "" {
		in.Host = HostOf(in.URL)
	}
	checks := []error{
		checkName("site address", in.URL, MaxURLLen, true),
		checkHost("host", in.Host, false),
		checkText("message", in.Message, MaxMessageLen, true),
		checkName("group", in.GroupID, MaxNameLen, false),
		checkRef(in.Ref, false),
	}
	if in.DeviceID < 0 || in.PersonID < 0 {
		checks = append(checks, invalidf("device and person must not be negative"))
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

const reportColumns = `id, created_at, url, host, message, group_id, client_ip, device_id, person_id, ref, status, handled_by, handled_at, note`

func scanReport(sc rowScanner) (Report, error) {
	var r Report
	var created int64
	var ip, status string
	var dev, person, handled sql.NullInt64
	err := sc.Scan(&r.ID, &created, &r.URL, &r.Host, &r.Message, &r.GroupID, &ip, &dev, &person, &r.Ref, &status,
		&r.HandledBy, &handled, &r.Note)
	if err != nil {
		return Report{}, err
	}
	r.CreatedAt, r.HandledAt = store.FromMillis(created), fromNullMillis(handled)
	r.ClientIP, r.Status = parseAddr(ip), Status(status)
	r.DeviceID, r.PersonID = dev.Int64, person.Int64
	return r, nil
}

// CreateReport stores a site report and returns it. Reports are not
// de-duplicated: one block page may be used to report several sites.
// Invalid input is a wrapped ErrInvalid.
func (s *Store) CreateReport(ctx context.Context, in ReportInput) (Report, error) {
	if err := in.check(); err != nil {
		return Report{}, err
	}
	var id int64
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`INSERT INTO site_reports
		(created_at, url, host, message, group_id, client_ip, device_id, person_id, ref)
		VALUES (?, ?, ?, ?, ?, ?, (SELECT id FROM devices WHERE id = ?), (SELECT id FROM people WHERE id = ?), ?)
		RETURNING id`),
		store.Millis(s.now()), in.URL, in.Host, in.Message, in.GroupID, addrString(in.ClientIP),
		nullID(in.DeviceID), nullID(in.PersonID), in.Ref).Scan(&id)
	if err != nil {
		return Report{}, fmt.Errorf("insert site report: %w", err)
	}
	return s.GetReport(ctx, id)
}

func reportByID(ctx context.Context, q store.Querier, id int64) (Report, error) {
	r, err := scanReport(q.QueryRowContext(ctx, q.Rebind(`SELECT `+reportColumns+` FROM site_reports WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Report{}, fmt.Errorf("site report %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Report{}, fmt.Errorf("read site report %d: %w", id, err)
	}
	return r, nil
}

// GetReport returns the report with this id, or a wrapped
// store.ErrNotFound.
func (s *Store) GetReport(ctx context.Context, id int64) (Report, error) {
	return reportByID(ctx, s.db, id)
}

// ListReports returns a page of reports, newest first.
func (s *Store) ListReports(ctx context.Context, f Filter) ([]Report, error) {
	return listPage(ctx, s, f, "site reports", `SELECT `+reportColumns+` FROM site_reports`, scanReport)
}

// Handling is what someone did about a site report.
type Handling struct {
	// Actioned says the report led to action (such as a block); false
	// dismisses it.
	Actioned bool
	// By names who handled it (a console user); required.
	By string
	// Note is an optional note, at most MaxMessageLen characters.
	Note string
}

// HandleReport marks an open report actioned or dismissed and returns
// it. A missing report is a wrapped store.ErrNotFound; one already
// handled a wrapped store.ErrConflict; bad input a wrapped ErrInvalid.
func (s *Store) HandleReport(ctx context.Context, id int64, h Handling) (Report, error) {
	if err := checkName("handled by", h.By, MaxNameLen, true); err != nil {
		return Report{}, err
	}
	if err := checkText("note", h.Note, MaxMessageLen, true); err != nil {
		return Report{}, err
	}
	status := StatusDismissed
	if h.Actioned {
		status = StatusActioned
	}
	var out Report
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE site_reports SET status = ?, handled_by = ?, handled_at = ?, note = ?
			WHERE id = ? AND status = 'open'`), string(status), h.By, store.Millis(s.now()), h.Note, id)
		if err != nil {
			return fmt.Errorf("handle site report %d: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("handle site report %d: %w", id, err)
		}
		if out, err = reportByID(ctx, tx, id); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("site report %d is already %s: %w", id, out.Status, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	return out, nil
}
