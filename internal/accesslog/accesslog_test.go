package accesslog

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

var base = time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)

// stored is e as the log gives it back: time and latency to the
// microsecond, time in UTC.
func stored(e events.Event) events.Event {
	e.Time = time.UnixMicro(e.Time.UnixMicro()).UTC()
	e.Latency = time.Duration(e.Latency.Microseconds()) * time.Microsecond
	return e
}

func full(i int) events.Event {
	return events.Event{Time: base.Add(time.Duration(i) * time.Second), Source: "doh", ClientIP: netip.MustParseAddr("2001:db8::21"),
		DeviceID: 7, PersonID: 1042, Group: "key-stage-4", Host: fmt.Sprintf("host%d.example", i), URL: "https://host.example/a?b",
		QType: "HTTPS", Action: "block", Alert: true, Category: "proxies", List: "ut1/proxies", Rule: "category",
		PolicyVersion: 9, Latency: 1500 * time.Microsecond, Upstream: "192.0.2.53:53", Status: "NXDOMAIN",
		Method: "GET", Bytes: int64(2048 + i), SearchTerm: "how to revise"}
}

func segments(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM access_log_segments").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// all reads every entry, newest first (up to f.Limit, if set).
func all(t testing.TB, l *Log, f Filter) []Entry {
	t.Helper()
	var out []Entry
	full := errors.New("full")
	err := l.Scan(context.Background(), f, func(e Entry) error {
		out = append(out, e)
		if len(out) == f.Limit {
			return full
		}
		return nil
	})
	if err != nil && err != full {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	many := func(n int, f func(i int, e *events.Event)) []events.Event {
		var out []events.Event
		for i := range n {
			e := full(i)
			f(i, &e)
			out = append(out, e)
		}
		return out
	}
	tests := []struct {
		name  string
		batch []events.Event
	}{
		{"every field", []events.Event{full(1)}},
		{"zero event", []events.Event{{}}},
		{"zero values among full ones", []events.Event{full(1), {Time: base}, full(2), {Time: base, Host: "only.example"}}},
		{"addresses", many(6, func(i int, e *events.Event) {
			e.ClientIP = []netip.Addr{{}, netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8::1"),
				netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("::ffff:10.1.2.3"),
				netip.MustParseAddr("fe80::2%" + strings.Repeat("z", 200))}[i]
		})},
		{"alerts across bytes", many(21, func(i int, e *events.Event) { e.Alert = i%3 == 0 || i == 20 })},
		{"no alerts", many(9, func(i int, e *events.Event) { e.Alert = false })},
		{"case and unicode", many(3, func(i int, e *events.Event) {
			e.Host = []string{"UPPER.Example", "ünïcode.example", "lower.example"}[i]
		})},
		{"times out of order, below a microsecond", many(5, func(i int, e *events.Event) {
			e.Time = base.Add(time.Duration(5-i)*time.Millisecond + time.Duration(i)*333*time.Nanosecond)
		})},
		{"odd numbers", many(4, func(i int, e *events.Event) {
			e.PersonID = []int64{0, -5, 1 << 62, 1}[i]
			e.DeviceID = []int64{1 << 40, 0, -1, 3}[i]
			e.Latency = []time.Duration{-time.Millisecond, 0, time.Hour, 999 * time.Nanosecond}[i]
			e.PolicyVersion = []int64{0, 1 << 50, 3, 2}[i]
		})},
		{"many distinct values", many(700, func(i int, e *events.Event) {
			e.ClientIP = netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)})
			e.Group = fmt.Sprint("g", i%300)
		})},
		{"long strings", many(3, func(i int, e *events.Event) { e.URL = strings.Repeat("x", 70000+i) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The codec alone.
			var enc encoder
			s, err := enc.encode(tt.batch)
			if err != nil {
				t.Fatal(err)
			}
			var r reader
			got, err := r.decodeSegment(s.data, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.batch {
				if want := stored(tt.batch[i]); got[i] != want {
					t.Fatalf("event %d decoded as\n%+v\nwant\n%+v", i, got[i], want)
				}
			}
			// Through the store.
			ctx := context.Background()
			l := New(wardentest.OpenStore(t))
			if err := l.Write(ctx, tt.batch); err != nil {
				t.Fatal(err)
			}
			es, err := l.Recent(ctx, Filter{Limit: maxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != len(tt.batch) {
				t.Fatalf("%d entries, want %d", len(es), len(tt.batch))
			}
			for i, e := range es {
				j := len(tt.batch) - 1 - i
				if want := stored(tt.batch[j]); e.Event != want || e.ID&0xffff != int64(j) {
					t.Fatalf("entry %d (id %x) is\n%+v\nwant\n%+v", i, e.ID, e.Event, want)
				}
			}
			if n, err := l.Count(ctx); err != nil || n != int64(len(tt.batch)) {
				t.Errorf("Count = %d, %v", n, err)
			}
		})
	}
}

func TestSummaries(t *testing.T) {
	batch := []events.Event{full(3), full(1), full(2), {Time: base.Add(-time.Second), Group: "staff", PersonID: 5, DeviceID: 9}}
	batch[1].PersonID, batch[2].Action = 3, "allow"
	var enc encoder
	s, err := enc.encode(batch)
	if err != nil {
		t.Fatal(err)
	}
	if s.firstAt != store.Millis(base.Add(-time.Second)) || s.lastAt != store.Millis(base.Add(3*time.Second)) ||
		s.events != 4 || s.blocked != 2 || s.groups != "key-stage-4\nstaff" || s.categories != "proxies" {
		t.Errorf("summary = %+v", s)
	}
	for _, id := range []int64{3, 5, 1042} {
		if !summaryHas(s.people, id) {
			t.Errorf("people summary lacks %d", id)
		}
	}
	for _, id := range []int64{0, 1, 4, 1041, 1043} {
		if summaryHas(s.people, id) {
			t.Errorf("people summary has %d", id)
		}
	}
	if !summaryHas(s.devices, 9) || summaryHas(s.devices, 8) {
		t.Errorf("devices summary wrong")
	}
}

func TestMerge(t *testing.T) {
	ctx := context.Background()
	db := wardentest.OpenStore(t)
	l := New(db)
	at := base
	write := func(n int) {
		t.Helper()
		var batch []events.Event
		for i := range n {
			e := full(i)
			e.Time = at
			at = at.Add(time.Millisecond)
			batch = append(batch, e)
		}
		if err := l.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		write(100)
	}
	if n := segments(t, db); n != 1 {
		t.Fatalf("20 small batches made %d segments, want 1", n)
	}
	before := all(t, l, Filter{})
	l.Trim()   // the buffers go; the merge decodes and encodes afresh
	write(100) // 2000 < 2048: joins
	if n := segments(t, db); n != 1 {
		t.Fatalf("%d segments, want 1", n)
	}
	after := all(t, l, Filter{})
	if len(after) != 2100 || !slices.Equal(after[100:], before) {
		t.Fatalf("merging changed the entries already there")
	}
	write(100)  // 2100: a new segment
	write(8100) // 100 + 8100 > 8192: another
	write(10)   // 8100 >= 2048: another
	if n := segments(t, db); n != 4 {
		t.Fatalf("%d segments, want 4", n)
	}
	at = at.Add(2 * time.Hour)
	write(10) // would span more than an hour: another
	if n := segments(t, db); n != 5 {
		t.Fatalf("%d segments, want 5", n)
	}
	es := all(t, l, Filter{})
	if n, _ := l.Count(ctx); n != 2100+100+8100+10+10 || len(es) != int(n) {
		t.Fatalf("count %d, %d entries", n, len(es))
	}
	for i := 1; i < len(es); i++ {
		if es[i].ID >= es[i-1].ID || es[i].Time.After(es[i-1].Time) {
			t.Fatalf("entries %d and %d out of order: %x %v, %x %v", i-1, i, es[i-1].ID, es[i-1].Time, es[i].ID, es[i].Time)
		}
	}
}

func TestLargeBatch(t *testing.T) {
	ctx := context.Background()
	db := wardentest.OpenStore(t)
	l := New(db)
	batch := make([]events.Event, maxSegmentEvents+100)
	for i := range batch {
		batch[i] = full(i)
	}
	if err := l.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if n := segments(t, db); n != 2 {
		t.Fatalf("%d segments, want 2", n)
	}
	es, err := l.Recent(ctx, Filter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 200 || es[0].Host != batch[len(batch)-1].Host || es[99].ID&0xffff != 0 || es[100].ID&0xffff != maxSegmentEvents-1 ||
		es[100].Host != batch[maxSegmentEvents-1].Host {
		t.Fatalf("entries across the split: %x %s, %x %s", es[99].ID, es[99].Host, es[100].ID, es[100].Host)
	}
}

// want reports whether f selects e, written out plainly.
func want(f Filter, e events.Event) bool {
	return (f.From.IsZero() || !e.Time.Before(f.From)) && (f.To.IsZero() || e.Time.Before(f.To)) &&
		(f.PersonID == 0 || e.PersonID == f.PersonID) && (f.DeviceID == 0 || e.DeviceID == f.DeviceID) &&
		(f.Group == "" || e.Group == f.Group) && (f.Action == "" || e.Action == f.Action) &&
		(f.Category == "" || e.Category == f.Category) &&
		(f.Host == "" || strings.Contains(strings.ToLower(e.Host), strings.ToLower(f.Host)))
}

func TestFilters(t *testing.T) {
	ctx := context.Background()
	db := wardentest.OpenStore(t)
	l := New(db)
	tr := newTraffic(7, 300, 100, 5000)
	tr.rate, tr.rare = 400, 0.001
	var written []events.Event // oldest first
	for len(written) < 30000 {
		batch := tr.batch(nil)
		if err := l.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			written = append(written, stored(e))
		}
	}
	if n := segments(t, db); n < 10 || n > 16 {
		t.Errorf("%d segments for %d events: merging is off", n, len(written))
	}
	some := written[len(written)/2]
	mid := written[len(written)/2].Time
	tests := []struct {
		name string
		f    Filter
	}{
		{"everything", Filter{}},
		{"person", Filter{PersonID: some.PersonID}},
		{"device", Filter{DeviceID: some.DeviceID}},
		{"person not there", Filter{PersonID: 99999}},
		{"rare host, any case", Filter{Host: "RARE-Term"}},
		{"common host", Filter{Host: "google"}},
		{"host in mixed case", Filter{Host: "weather-now.c"}},
		{"host wildcard is literal", Filter{Host: "%"}},
		{"two-byte host", Filter{Host: "Qz"}},
		{"two-byte host present", Filter{Host: "4."}},
		{"group and block", Filter{Group: "key-stage-3", Action: "block"}},
		{"category", Filter{Category: "gambling"}},
		{"no such category", Filter{Category: "weapons"}},
		{"allowed, with category", Filter{Action: "allow", Category: "education"}},
		{"no such group", Filter{Group: "governors"}},
		{"time range", Filter{From: mid.Add(-10 * time.Second), To: mid.Add(5 * time.Second)}},
		{"since, with person", Filter{From: mid, PersonID: some.PersonID}},
		{"until, blocked", Filter{To: mid, Action: "block", Host: ".com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var expect []events.Event
			for i := len(written) - 1; i >= 0; i-- {
				if want(tt.f, written[i]) {
					expect = append(expect, written[i])
				}
			}
			t.Logf("%d of %d entries match", len(expect), len(written))
			// Page through, 333 at a time.
			var got []Entry
			f := tt.f
			f.Limit = 333
			for page := 0; ; page++ {
				es, err := l.Recent(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(es) > f.Limit || (len(es) < f.Limit && len(got)+len(es) != len(expect)) {
					t.Fatalf("page %d: %d entries", page, len(es))
				}
				got = append(got, es...)
				if len(es) == 0 {
					break
				}
				f.Before = es[len(es)-1].ID
			}
			if len(got) != len(expect) {
				t.Fatalf("%d entries, want %d", len(got), len(expect))
			}
			for i := range got {
				if got[i].Event != expect[i] {
					t.Fatalf("entry %d is\n%+v\nwant\n%+v", i, got[i].Event, expect[i])
				}
				if i > 0 && got[i].ID >= got[i-1].ID {
					t.Fatalf("entry %d: id %x after %x", i, got[i].ID, got[i-1].ID)
				}
			}
			// One page with the default limit; Scan sees the same.
			es, err := l.Recent(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if n := min(len(expect), defaultLimit); len(es) != n || (n > 0 && es[n-1].ID != got[n-1].ID) {
				t.Fatalf("first page: %d entries, want %d", len(es), n)
			}
			if s := all(t, l, tt.f); !slices.Equal(s, got) {
				t.Fatalf("Scan gave %d entries, Recent %d", len(s), len(got))
			}
		})
	}
	if len(written) < 20000 || len(all(t, l, Filter{Host: rareHost})) == 0 {
		t.Fatal("the traffic lacks the rare host")
	}
}

func TestLimitAndScanStop(t *testing.T) {
	ctx := context.Background()
	l := New(wardentest.OpenStore(t))
	batch := make([]events.Event, 12000)
	for i := range batch {
		batch[i] = full(i)
	}
	if err := l.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {5, 5}, {20000, 10000}} {
		if es, err := l.Recent(ctx, Filter{Limit: tt.limit}); err != nil || len(es) != tt.want {
			t.Errorf("Limit %d: %d entries, %v", tt.limit, len(es), err)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := l.Scan(ctx, Filter{}, func(Entry) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	if err != stop || n != 10 {
		t.Errorf("Scan = %v after %d entries", err, n)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	db := wardentest.OpenStore(t)
	l := New(db)
	for h := range 3 {
		batch := make([]events.Event, 100)
		for i := range batch {
			batch[i] = full(i)
			batch[i].Time = base.Add(time.Duration(2*h)*time.Hour + time.Duration(i)*time.Second)
		}
		if err := l.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if n := segments(t, db); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	n, err := l.Prune(ctx, base.Add(3*time.Hour))
	if err != nil || n != 200 {
		t.Fatalf("Prune = %d, %v; want 200", n, err)
	}
	if c, _ := l.Count(ctx); c != 100 {
		t.Errorf("Count after prune = %d", c)
	}
	es := all(t, l, Filter{})
	if len(es) != 100 || es[99].Time.Before(base.Add(4*time.Hour)) {
		t.Errorf("after prune: %d entries from %v", len(es), es[len(es)-1].Time)
	}
	if n, err := l.Prune(ctx, base.Add(3*time.Hour)); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v", n, err)
	}
	// Pruning the newest segment must not let its id (and so entry ids)
	// be used again.
	last := es[0].ID
	if n, err := l.Prune(ctx, base.Add(24*time.Hour)); err != nil || n != 100 {
		t.Fatalf("Prune all = %d, %v", n, err)
	}
	if err := l.Write(ctx, []events.Event{full(1)}); err != nil {
		t.Fatal(err)
	}
	if es := all(t, l, Filter{}); len(es) != 1 || es[0].ID <= last {
		t.Errorf("after pruning everything, new entry id %x, old %x", es[0].ID, last)
	}
}

func TestCorruptSegment(t *testing.T) {
	ctx := context.Background()
	db := wardentest.OpenStore(t)
	l := New(db)
	if err := l.Write(ctx, []events.Event{full(1), full(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE access_log_segments SET data = X'0105070A0102'"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Recent(ctx, Filter{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Recent over a corrupt segment: %v", err)
	}
	// Writing goes on: the corrupt segment is not merged into.
	if err := l.Write(ctx, []events.Event{full(3)}); err != nil {
		t.Fatal(err)
	}
	if es, err := l.Recent(ctx, Filter{Limit: 1}); err != nil || len(es) != 1 || es[0].Host != "host3.example" {
		t.Fatalf("after a corrupt segment: %v, %v", es, err)
	}
}

func TestMigration(t *testing.T) {
	db := wardentest.OpenStore(t)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = 'access_log'").Scan(&n); err != nil || n != 0 {
		t.Errorf("access_log still there (%d, %v)", n, err)
	}
	var cols []string
	rows, err := db.Query("SELECT name FROM pragma_table_info('access_log_segments') ORDER BY cid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 || cols[len(cols)-1] != "data" {
		t.Errorf("columns %v: data must come last", cols)
	}
	l := New(db)
	if n, err := l.Count(context.Background()); err != nil || n != 0 {
		t.Errorf("Count on a new store = %d, %v", n, err)
	}
	if es, err := l.Recent(context.Background(), Filter{}); err != nil || len(es) != 0 {
		t.Errorf("Recent on a new store = %v, %v", es, err)
	}
}

// TestWriterConnection: the log writes on a connection of its own, with
// a small page cache, and takes a fresh one after it fails; Close gives
// it back to the pool.
func TestWriterConnection(t *testing.T) {
	ctx := context.Background()
	db := wardentest.OpenStore(t)
	l := New(db)
	if err := l.Write(ctx, []events.Event{full(1)}); err != nil {
		t.Fatal(err)
	}
	var cache int
	if err := l.conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil || cache != -writerPageCache {
		t.Fatalf("writer's cache_size = %d (%v), want -%d", cache, err, writerPageCache)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil || cache == -writerPageCache {
		t.Fatalf("the pool's cache_size = %d (%v): the writer's setting leaked", cache, err)
	}
	l.conn.Close() // as if the connection had broken
	if err := l.Write(ctx, []events.Event{full(2)}); err == nil {
		t.Fatal("write on a closed connection succeeded")
	}
	if err := l.Write(ctx, []events.Event{full(2)}); err != nil {
		t.Fatalf("write after a failed connection: %v", err)
	}
	if n, _ := l.Count(ctx); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
	l.Close()
	if l.conn != nil || db.Stats().InUse != 0 {
		t.Fatalf("after Close: writer connection %v, %d connections in use", l.conn, db.Stats().InUse)
	}
}
