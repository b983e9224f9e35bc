package accesslog

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
)

// Limits on a page of entries.
const (
	defaultLimit = 100
	maxLimit     = 10000
)

// maxChunk is the most segments one query reads for Recent: the first
// query reads one (the newest usually fills a page), then twice as many
// each time.
const maxChunk = 32

// query is a Filter made ready to run.
type query struct {
	Filter
	host string // lower case
	// fromUs and toUs bound event times in microseconds (when hasTo,
	// time < toUs); fromMs and toMs bound segments' first_at and last_at.
	fromUs, toUs   int64
	hasTo          bool
	fromMs, toMs   int64
	maxSeg         int64 // the newest segment id to read
	beforeSeg      int64 // in this segment, only rows below beforeRow
	beforeRow      int
	limit          int
	summaryFilters bool // people, devices or groups can skip segments
}

func newQuery(f Filter) query {
	q := query{Filter: f, host: strings.ToLower(f.Host), fromUs: math.MinInt64, fromMs: math.MinInt64,
		toMs: math.MaxInt64, maxSeg: math.MaxInt64, limit: f.Limit}
	if !f.From.IsZero() {
		q.fromUs = f.From.UnixMicro()
		q.fromMs = floorDiv(q.fromUs, 1000)
	}
	if !f.To.IsZero() {
		q.toUs, q.hasTo = f.To.UnixMicro(), true
		q.toMs = floorDiv(q.toUs, 1000)
	}
	if f.Before > 0 {
		q.beforeSeg, q.beforeRow = f.Before>>16, int(f.Before&0xffff)
		q.maxSeg = q.beforeSeg
		if q.beforeRow == 0 {
			q.maxSeg--
		}
	}
	switch {
	case q.limit <= 0:
		q.limit = defaultLimit
	case q.limit > maxLimit:
		q.limit = maxLimit
	}
	q.summaryFilters = f.PersonID > 0 || f.DeviceID > 0 || f.Group != "" || f.Category != "" ||
		f.Action == "block" || f.Action == "allow" || len(q.host) >= 2
	return q
}

// Recent returns the newest entries matching f, newest first (in the
// order they were written), at most f.Limit. For the next page, call it
// again with Before set to the last entry's ID.
func (l *Log) Recent(ctx context.Context, f Filter) ([]Entry, error) {
	q := newQuery(f)
	var out []Entry
	err := l.walk(ctx, &q, q.limit, maxChunk, func(es []Entry) error {
		out = append(out, es...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Scan calls fn with every entry matching f (ignoring f.Limit), newest
// first, reading one segment at a time; it stops at fn's first error and
// returns it. No query is open while fn runs, so fn may take its time.
func (l *Log) Scan(ctx context.Context, f Filter, fn func(Entry) error) error {
	q := newQuery(f)
	return l.walk(ctx, &q, -1, 1, func(es []Entry) error {
		for _, e := range es {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// walk finds the entries q selects, newest first, and hands them to emit
// after each query has closed, until it has handed over want (want < 0:
// all). It reads up to chunk segments a query.
func (l *Log) walk(ctx context.Context, q *query, want, chunk int, emit func([]Entry) error) error {
	var (
		r    reader
		buf  []Entry
		ids  []int64
		n    = 1
		err  error
		room = func() int {
			if want < 0 {
				return math.MaxInt
			}
			return want
		}
		flush = func() error {
			if len(buf) == 0 {
				return nil
			}
			if want > 0 {
				want -= len(buf)
			}
			err := emit(buf)
			buf = buf[:0]
			return err
		}
	)
	for cursor := q.maxSeg; want != 0 && cursor > 0; n = min(2*n, chunk) {
		if err := ctx.Err(); err != nil {
			return err
		}
		var scanned int
		var last int64
		if q.summaryFilters {
			// Summaries are small: read more of them at a time, then the
			// data of those that may match, in chunks.
			ids, scanned, last, err = l.candidates(ctx, q, cursor, 4*n, ids[:0])
			for start := 0; err == nil && start < len(ids) && want != 0; start += n {
				buf, err = l.readSegments(ctx, &r, q, ids[start:min(start+n, len(ids))], room(), buf)
				if err == nil {
					err = flush()
				}
			}
			if err != nil {
				return err
			}
			if scanned < 4*n {
				return nil
			}
		} else {
			buf, scanned, last, err = l.readRange(ctx, &r, q, cursor, n, room(), buf)
			if err == nil {
				err = flush()
			}
			if err != nil {
				return err
			}
			if scanned < n {
				return nil
			}
		}
		cursor = last - 1
	}
	return nil
}

// readRange matches the newest n segments at or below cursor in q's time
// range, appending to buf up to room entries; it returns how many
// segments it read and the last one's id.
func (l *Log) readRange(ctx context.Context, r *reader, q *query, cursor int64, n, room int, buf []Entry) ([]Entry, int, int64, error) {
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(sqlScanData), cursor, q.fromMs, q.toMs, n)
	if err != nil {
		return buf, 0, 0, fmt.Errorf("read access log: %w", err)
	}
	defer rows.Close()
	scanned, last := 0, int64(0)
	for len(buf) < room && rows.Next() {
		var data sql.RawBytes
		if err := rows.Scan(&last, &data); err != nil {
			return buf, 0, 0, fmt.Errorf("read access log: %w", err)
		}
		scanned++
		if buf, err = r.match(last, data, q, room, buf); err != nil {
			return buf, 0, 0, fmt.Errorf("read access log segment %d: %w", last, err)
		}
	}
	if err := rows.Err(); err != nil {
		return buf, 0, 0, fmt.Errorf("read access log: %w", err)
	}
	return buf, scanned, last, nil
}

// candidates reads the summaries of the newest n segments at or below
// cursor in q's time range and appends to ids those that may hold a
// match; it returns how many it read and the last one's id.
func (l *Log) candidates(ctx context.Context, q *query, cursor int64, n int, ids []int64) ([]int64, int, int64, error) {
	people, devices, grams := "NULL", "NULL", "NULL"
	if q.PersonID > 0 {
		people = "people"
	}
	if q.DeviceID > 0 {
		devices = "devices"
	}
	if len(q.host) >= 2 {
		grams = "host_grams"
	}
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(fmt.Sprintf(sqlScanSummaries, people, devices, grams)), cursor, q.fromMs, q.toMs, n)
	if err != nil {
		return ids, 0, 0, fmt.Errorf("read access log: %w", err)
	}
	defer rows.Close()
	scanned, last := 0, int64(0)
	for rows.Next() {
		var events, blocked int
		var groups, categories, ppl, devs, grams sql.RawBytes
		if err := rows.Scan(&last, &events, &blocked, &groups, &categories, &ppl, &devs, &grams); err != nil {
			return ids, 0, 0, fmt.Errorf("read access log: %w", err)
		}
		scanned++
		if (q.Action == "block" && blocked == 0) || (q.Action == "allow" && blocked == events) ||
			(q.Group != "" && !namesHas(groups, q.Group)) || (q.Category != "" && !namesHas(categories, q.Category)) ||
			(q.PersonID > 0 && !summaryHas(ppl, q.PersonID)) || (q.DeviceID > 0 && !summaryHas(devs, q.DeviceID)) ||
			(len(q.host) >= 2 && !gramsMayHold(grams, q.host)) {
			continue
		}
		ids = append(ids, last)
	}
	if err := rows.Err(); err != nil {
		return ids, 0, 0, fmt.Errorf("read access log: %w", err)
	}
	return ids, scanned, last, nil
}

// readSegments matches the segments ids (newest first), appending to buf
// up to room entries.
func (l *Log) readSegments(ctx context.Context, r *reader, q *query, ids []int64, room int, buf []Entry) ([]Entry, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(fmt.Sprintf(sqlSegmentsData, marks)), args...)
	if err != nil {
		return buf, fmt.Errorf("read access log: %w", err)
	}
	defer rows.Close()
	for len(buf) < room && rows.Next() {
		var id int64
		var data sql.RawBytes
		if err := rows.Scan(&id, &data); err != nil {
			return buf, fmt.Errorf("read access log: %w", err)
		}
		if buf, err = r.match(id, data, q, room, buf); err != nil {
			return buf, fmt.Errorf("read access log segment %d: %w", id, err)
		}
	}
	if err := rows.Err(); err != nil {
		return buf, fmt.Errorf("read access log: %w", err)
	}
	return buf, nil
}

// namesHas reports whether a groups or categories summary (newline-joined)
// holds v.
func namesHas(names []byte, v string) bool {
	for len(names) > 0 {
		var line []byte
		line, names, _ = bytes.Cut(names, []byte{'\n'})
		if string(line) == v {
			return true
		}
	}
	return false
}

// match appends to out, newest first and up to room entries, the rows of
// segment id (blob) that q selects. It rejects a segment from the
// dictionaries of the filtered columns before decoding the rest.
func (r *reader) match(id int64, blob []byte, q *query, room int, out []Entry) ([]Entry, error) {
	if err := r.start(blob); err != nil {
		return out, err
	}
	end := r.seg.rows
	if id == q.beforeSeg {
		end = min(end, q.beforeRow)
	}
	if end == 0 {
		return out, nil
	}
	var hosts *strColumn
	var hostMatch []bool
	if q.host != "" {
		c, err := r.str(colHost, false)
		if err != nil {
			return out, err
		}
		if !c.mayContain(q.host) {
			return out, nil
		}
		if err := c.index(); err != nil {
			return out, fmt.Errorf("column %d: %w", colHost, err)
		}
		var any bool
		if r.hostMatch, any = c.containing(q.host, r.hostMatch, &r.scratch); !any {
			return out, nil
		}
		hosts, hostMatch = c, r.hostMatch
	}
	type equal struct {
		c *strColumn
		i int
	}
	var eqs [3]equal
	neq := 0
	for _, f := range [...]struct {
		id int
		v  string
	}{{colGroup, q.Group}, {colAction, q.Action}, {colCategory, q.Category}} {
		if f.v == "" {
			continue
		}
		c, err := r.str(f.id, true)
		if err != nil {
			return out, err
		}
		i := c.find(f.v)
		if i < 0 {
			return out, nil
		}
		if c.idx.w > 0 { // else every row has it
			eqs[neq] = equal{c, i}
			neq++
		}
	}
	if q.PersonID != 0 {
		if err := r.ints(colPerson, &r.people); err != nil {
			return out, err
		}
	}
	if q.DeviceID != 0 {
		if err := r.ints(colDevice, &r.devices); err != nil {
			return out, err
		}
	}
	if err := r.ints(colTime, &r.times); err != nil {
		return out, err
	}
	loaded := false
rows:
	for row := end - 1; row >= 0 && len(out) < room; row-- {
		if (q.PersonID != 0 && r.people[row] != q.PersonID) || (q.DeviceID != 0 && r.devices[row] != q.DeviceID) ||
			(hosts != nil && !hostMatch[hosts.at(row)]) {
			continue
		}
		for _, e := range eqs[:neq] {
			if e.c.at(row) != e.i {
				continue rows
			}
		}
		if t := r.times[row]; t < q.fromUs || (q.hasTo && t >= q.toUs) {
			continue
		}
		if !loaded {
			if err := r.loadAll(); err != nil {
				return out, err
			}
			loaded = true
		}
		out = append(out, Entry{Event: r.event(row), ID: id<<16 | int64(row)})
	}
	return out, nil
}
