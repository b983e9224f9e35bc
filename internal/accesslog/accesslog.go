// Package accesslog keeps the access log: every DNS query and web request
// the filters decided, written in batches from the event pipeline, and
// read back for the console and reports.
package accesslog

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/store"
)

// rowsPerStatement is how many events one INSERT carries: few statements
// per batch, well inside SQLite's limit of 32,766 parameters.
const rowsPerStatement = 200

const columns = 18

// Log reads and writes the access log.
type Log struct {
	db *store.DB
	// full and one insert rowsPerStatement rows and one row; prepared
	// once, because parsing a statement costs more than running it.
	prepare   sync.Once
	full, one *sql.Stmt
	prepErr   error
}

// New returns a Log over the store.
func New(db *store.DB) *Log { return &Log{db: db} }

// insertSQL is the INSERT for n rows.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO access_log (at, source, client_ip, device_id, person_id, group_id, host, url, qtype,
		action, alert, category, list_id, rule, policy_version, latency_us, upstream, status) VALUES `)
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", columns), ", ") + ")"
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// Write stores a batch of events in one transaction (all or nothing). It
// is the event pipeline's sink.
func (l *Log) Write(ctx context.Context, batch []events.Event) error {
	l.prepare.Do(func() {
		if l.full, l.prepErr = l.db.PrepareContext(ctx, l.db.Rebind(insertSQL(rowsPerStatement))); l.prepErr == nil {
			l.one, l.prepErr = l.db.PrepareContext(ctx, l.db.Rebind(insertSQL(1)))
		}
	})
	if l.prepErr != nil {
		return fmt.Errorf("write access log: %w", l.prepErr)
	}
	args := make([]any, 0, rowsPerStatement*columns)
	return l.db.WithTx(ctx, func(tx *store.Tx) error {
		full, one := tx.StmtContext(ctx, l.full), tx.StmtContext(ctx, l.one)
		defer full.Close()
		defer one.Close()
		for len(batch) > 0 {
			n, stmt := rowsPerStatement, full
			if len(batch) < rowsPerStatement {
				n, stmt = 1, one
			}
			args = args[:0]
			for _, e := range batch[:n] {
				args = append(args, store.Millis(e.Time), e.Source, addr(e.ClientIP), nullID(e.DeviceID), nullID(e.PersonID), e.Group,
					e.Host, e.URL, e.QType, e.Action, e.Alert, e.Category, e.List, e.Rule, e.PolicyVersion,
					e.Latency.Microseconds(), e.Upstream, e.Status)
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("write access log: %w", err)
			}
			batch = batch[n:]
		}
		return nil
	})
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// Entry is one row of the access log.
type Entry struct {
	events.Event
	ID int64
}

// Filter selects access-log rows; zero fields select everything.
type Filter struct {
	From, To time.Time
	Group    string
	Host     string // substring
	Action   string
	Limit    int
}

// Recent returns the newest rows matching f, newest first.
func (l *Log) Recent(ctx context.Context, f Filter) ([]Entry, error) {
	q := `SELECT id, at, source, client_ip, COALESCE(device_id, 0), COALESCE(person_id, 0), group_id, host, url, qtype, action, alert,
		category, list_id, rule, policy_version, latency_us, upstream, status FROM access_log WHERE 1 = 1`
	var args []any
	if !f.From.IsZero() {
		q += " AND at >= ?"
		args = append(args, store.Millis(f.From))
	}
	if !f.To.IsZero() {
		q += " AND at < ?"
		args = append(args, store.Millis(f.To))
	}
	if f.Group != "" {
		q += " AND group_id = ?"
		args = append(args, f.Group)
	}
	if f.Action != "" {
		q += " AND action = ?"
		args = append(args, f.Action)
	}
	if f.Host != "" {
		q += " AND host LIKE ? ESCAPE '\\'"
		args = append(args, "%"+escapeLike(f.Host)+"%")
	}
	limit := f.Limit
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	q += fmt.Sprintf(" ORDER BY at DESC, id DESC LIMIT %d", limit)
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read access log: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var at, latency int64
		var client string
		if err := rows.Scan(&e.ID, &at, &e.Source, &client, &e.DeviceID, &e.PersonID, &e.Group, &e.Host, &e.URL, &e.QType,
			&e.Action, &e.Alert, &e.Category, &e.List, &e.Rule, &e.PolicyVersion, &latency, &e.Upstream, &e.Status); err != nil {
			return nil, fmt.Errorf("read access log: %w", err)
		}
		e.Time = store.FromMillis(at)
		e.Latency = time.Duration(latency) * time.Microsecond
		e.ClientIP, _ = netip.ParseAddr(client)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Count returns the number of rows.
func (l *Log) Count(ctx context.Context) (int64, error) {
	var n int64
	err := l.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM access_log").Scan(&n)
	return n, err
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}
