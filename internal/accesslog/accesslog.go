// Package accesslog keeps the access log: every DNS query and web request
// the filters decided, written in batches from the event pipeline, and
// read back for the console and reports.
//
// Each batch is stored as one row, a segment (see segment.go): the events
// column by column with dictionaries for the strings, beside a few small
// summaries (time range, counts, the people, devices and groups in it)
// that let a reader skip a segment without decoding it. A small batch
// joins the newest segment while that is small, so a quiet school does
// not pile up tiny rows.
package accesslog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/store"
)

// Merging: a batch joins the newest segment when that holds fewer than
// mergeBelow events, will hold no more than mergeUpTo after, and its
// events will span no more than mergeSpan (which bounds how long
// retention keeps an event past its cutoff, a segment being pruned
// whole).
const (
	mergeBelow = 2048
	mergeUpTo  = 4096
	mergeSpan  = time.Hour
)

// Log reads and writes the access log.
type Log struct {
	db *store.DB

	// mu guards the rest: the writer's connection, the write statements,
	// prepared once because parsing a statement costs more than running
	// it, and the buffers reused from one Write to the next.
	mu    sync.Mutex
	conn  *store.Conn
	stmts *writeStmts
	enc   encoder
	dec   reader
	tail  []events.Event
}

type writeStmts struct {
	newest, data, insert, update *sql.Stmt
}

// The log writes on a connection held apart from the pool, with a small
// page cache (writerPageCache, in KiB): the pages it writes are seldom
// read again, and on pooled connections they would crowd out (and, in
// SQLite's allocator, keep resident) the caches that the console's
// queries share.
const writerPageCache = 128

// New returns a Log over the store.
func New(db *store.DB) *Log { return &Log{db: db} }

// writer returns the writer's connection and statements, opening and
// preparing them on first use (again after a failure). The statements
// belong to the pool, which prepares each once on the connection.
func (l *Log) writer(ctx context.Context) (*store.Conn, *writeStmts, error) {
	if l.stmts == nil {
		var st writeStmts
		var prepared []*sql.Stmt
		for _, p := range []struct {
			dst **sql.Stmt
			sql string
		}{{&st.newest, sqlNewest}, {&st.data, sqlSegmentData}, {&st.insert, sqlInsert}, {&st.update, sqlUpdate}} {
			s, err := l.db.PrepareContext(ctx, l.db.Rebind(p.sql))
			if err != nil {
				for _, s := range prepared {
					s.Close()
				}
				return nil, nil, fmt.Errorf("prepare: %w", err)
			}
			*p.dst = s
			prepared = append(prepared, s)
		}
		l.stmts = &st
	}
	if l.conn == nil {
		conn, err := l.db.Dedicated(ctx, fmt.Sprintf("cache_size = -%d", writerPageCache))
		if err != nil {
			return nil, nil, err
		}
		l.conn = conn
	}
	return l.conn, l.stmts, nil
}

// Close gives the writer's connection back to the pool. A later Write
// takes one again.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
}

// Write stores a batch of events in one transaction (all or nothing). It
// is the event pipeline's sink. A batch becomes one segment (or more, past
// 65,535 events), or joins the newest segment when both are small.
func (l *Log) Write(ctx context.Context, batch []events.Event) error {
	if len(batch) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	conn, st, err := l.writer(ctx)
	if err != nil {
		return fmt.Errorf("write access log: %w", err)
	}
	err = conn.WithTx(ctx, func(tx *store.Tx) error {
		rest, err := l.merge(ctx, tx, st, batch)
		if err != nil {
			return err
		}
		insert := tx.StmtContext(ctx, st.insert)
		for len(rest) > 0 {
			n := min(len(rest), maxSegmentEvents)
			s, err := l.enc.encode(rest[:n])
			if err != nil {
				return err
			}
			if _, err := insert.ExecContext(ctx, s.firstAt, s.lastAt, s.events, s.blocked, segmentFormat,
				s.groups, s.categories, s.people, s.devices, s.hostGrams, s.data); err != nil {
				return fmt.Errorf("insert segment: %w", err)
			}
			rest = rest[n:]
		}
		return nil
	})
	if err != nil {
		// The connection may be what failed: take a fresh one next time.
		l.conn.Close()
		l.conn = nil
		return fmt.Errorf("write access log: %w", err)
	}
	return nil
}

// Trim lets go of the buffers kept from one Write to the next (the event
// pipeline calls it while the load is light).
func (l *Log) Trim() {
	l.mu.Lock()
	l.enc, l.dec, l.tail = encoder{}, reader{}, nil
	l.mu.Unlock()
}

// merge adds batch to the newest segment when both are small, returning
// what is left to insert: nothing, or the whole batch.
func (l *Log) merge(ctx context.Context, tx *store.Tx, st *writeStmts, batch []events.Event) ([]events.Event, error) {
	if len(batch) >= mergeUpTo {
		return batch, nil
	}
	var id, n, firstAt, lastAt int64
	var format int
	err := tx.StmtContext(ctx, st.newest).QueryRowContext(ctx).Scan(&id, &n, &firstAt, &lastAt, &format)
	if errors.Is(err, sql.ErrNoRows) {
		return batch, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read newest segment: %w", err)
	}
	if n >= mergeBelow || int(n)+len(batch) > mergeUpTo || format != segmentFormat {
		return batch, nil
	}
	lo, hi := store.Millis(batch[0].Time), store.Millis(batch[0].Time)
	for i := range batch {
		ms := store.Millis(batch[i].Time)
		lo, hi = min(lo, ms), max(hi, ms)
	}
	if max(hi, lastAt)-min(lo, firstAt) > mergeSpan.Milliseconds() {
		return batch, nil
	}
	var data []byte
	if err := tx.StmtContext(ctx, st.data).QueryRowContext(ctx, id).Scan(&data); err != nil {
		return nil, fmt.Errorf("read segment %d: %w", id, err)
	}
	tail, err := l.dec.decodeSegment(data, l.tail[:0])
	if err != nil {
		// Leave a segment that cannot be read as it is (readers report
		// it) and start a new one.
		return batch, nil
	}
	tail = append(tail, batch...)
	defer func() {
		clear(tail) // drop the strings until the next merge
		l.tail = tail[:0]
	}()
	s, err := l.enc.encode(tail)
	if err != nil {
		return nil, err
	}
	if _, err := tx.StmtContext(ctx, st.update).ExecContext(ctx, s.firstAt, s.lastAt, s.events, s.blocked, segmentFormat,
		s.groups, s.categories, s.people, s.devices, s.hostGrams, s.data, id); err != nil {
		return nil, fmt.Errorf("update segment %d: %w", id, err)
	}
	return nil, nil
}

// Count returns the number of events in the log.
func (l *Log) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := l.db.QueryRowContext(ctx, sqlCount).Scan(&n); err != nil {
		return 0, fmt.Errorf("count access log: %w", err)
	}
	return n, nil
}

// pruneChunk is how many segments one Prune statement deletes, so that a
// large prune does not hold the write lock (and the event writer) for long.
const pruneChunk = 256

// Prune deletes the segments whose events are all older than before, and
// returns how many events went. Segments are deleted whole, so events a
// little older than before (up to one segment's span, at most an hour)
// may remain.
func (l *Log) Prune(ctx context.Context, before time.Time) (int64, error) {
	cutoff := store.Millis(before)
	var total int64
	for {
		var n int64
		err := l.db.WithTx(ctx, func(tx *store.Tx) error {
			if err := tx.QueryRowContext(ctx, tx.Rebind(sqlPruneChunkCount), cutoff, pruneChunk).Scan(&n); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, tx.Rebind(sqlPruneChunk), cutoff, pruneChunk)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune access log: %w", err)
		}
		if n == 0 {
			return total, nil
		}
		total += n
	}
}

// Entry is one event of the access log.
type Entry struct {
	events.Event
	// ID is stable and orders entries by when they were written: the
	// segment's id times 65,536 plus the event's place in the segment.
	ID int64
}

// Filter selects access-log entries; zero fields select everything.
type Filter struct {
	// From and To bound the event time (From <= Time < To), to the
	// microsecond.
	From, To time.Time
	// PersonID and DeviceID select one person or device (0: any).
	PersonID, DeviceID int64
	// Group, Action ("allow", "block") and Category select one value.
	Group, Action, Category string
	// Host selects hosts containing it, ignoring case.
	Host string
	// Before pages back: only entries with an ID below it (0: from the
	// newest). Pass the last ID of the previous page.
	Before int64
	// Limit is the most entries Recent returns (0: 100; at most 10,000).
	Limit int
}
