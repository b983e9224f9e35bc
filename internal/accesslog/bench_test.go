package accesslog

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

// storedBytes reports the log's stored bytes per event: the rows'
// payload, and the database file after a checkpoint.
func storedBytes(tb testing.TB, db *store.DB) (payload, file float64) {
	tb.Helper()
	var bytes, n, pages, size float64
	if err := db.QueryRow(`SELECT COALESCE(SUM(LENGTH(data) + COALESCE(LENGTH(people), 0) + COALESCE(LENGTH(devices), 0) +
		COALESCE(LENGTH(groups), 0) + COALESCE(LENGTH(host_grams), 0)), 0), COALESCE(SUM(events), 0) FROM access_log_segments`).Scan(&bytes, &n); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		tb.Fatal(err)
	}
	if err := db.QueryRow("SELECT page_count, page_size FROM pragma_page_count(), pragma_page_size()").Scan(&pages, &size); err != nil {
		tb.Fatal(err)
	}
	return bytes / n, pages * size / n
}

// BenchmarkWrite measures writing batches as segments: full batches of a
// busy school's traffic, the same with every host different (the old
// benchmark's data), and small batches joining the newest segment.
func BenchmarkWrite(b *testing.B) {
	tr := newTraffic(1, 2000, 600, 50000)
	var full4096 [][]events.Event
	for range 8 {
		full4096 = append(full4096, tr.events(nil, 4096, time.Second))
	}
	distinct := tr.events(nil, 4096, time.Second)
	for i := range distinct {
		distinct[i].Host = "host" + strconv.Itoa(i) + ".example"
	}
	var small [][]events.Event
	for range 64 {
		small = append(small, tr.events(nil, 250, 250*time.Millisecond))
	}
	for _, bm := range []struct {
		name    string
		batches [][]events.Event
	}{{"batch4096", full4096}, {"batch4096-distinct-hosts", [][]events.Event{distinct}}, {"batch250-merging", small}} {
		b.Run(bm.name, func(b *testing.B) {
			ctx := context.Background()
			db := wardentest.OpenStore(b)
			l := New(db)
			b.ReportAllocs()
			i, events := 0, 0
			for b.Loop() {
				batch := bm.batches[i%len(bm.batches)]
				if err := l.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
				i, events = i+1, events+len(batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
			payload, file := storedBytes(b, db)
			b.ReportMetric(payload, "B/event")
			b.ReportMetric(file, "file-B/event")
		})
	}
}

// BenchmarkEncode measures encoding alone: a full batch of a busy
// school's traffic.
func BenchmarkEncode(b *testing.B) {
	tr := newTraffic(1, 2000, 600, 50000)
	batch := tr.events(nil, 4096, time.Second)
	var e encoder
	b.ReportAllocs()
	var s summary
	for b.Loop() {
		var err error
		if s, err = e.encode(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
	b.ReportMetric(float64(len(s.data)+len(s.people)+len(s.devices)+len(s.groups)+len(s.categories)+len(s.hostGrams))/float64(len(batch)), "B/event")
}

// bench is BenchmarkRecent's log, built once per process (and removed by
// TestMain).
var bench struct {
	once sync.Once
	dir  string
	db   *store.DB
	log  *Log
	n    int
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.db != nil {
		bench.db.Close()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// benchLog builds a log of WARDEN_BENCH_EVENTS events (default two
// million) of a 2,000-person school: 600 devices, 5 groups, 50,000 hosts,
// 15% blocked, written as the pipeline would at 1,000 events a second
// (batches of 125 to 375 every 250 ms, so segments form by merging), and
// a rare host about 20 times in all.
func benchLog(b *testing.B) *Log {
	bench.once.Do(func() {
		bench.n = 2_000_000
		if s := os.Getenv("WARDEN_BENCH_EVENTS"); s != "" {
			if bench.n, bench.err = strconv.Atoi(s); bench.err != nil {
				return
			}
		}
		ctx := context.Background()
		if bench.dir, bench.err = os.MkdirTemp("", "accesslog-bench"); bench.err != nil {
			return
		}
		if bench.db, bench.err = store.Open(ctx, store.Options{Path: filepath.Join(bench.dir, "warden.db")}); bench.err != nil {
			return
		}
		if bench.err = bench.db.Migrate(ctx); bench.err != nil {
			return
		}
		bench.log = New(bench.db)
		tr := newTraffic(1, 2000, 600, 50000)
		tr.rare = 20 / float64(bench.n)
		start := time.Now()
		var batch []events.Event
		for written := 0; written < bench.n; {
			batch = tr.batch(batch[:0])
			batch = batch[:min(len(batch), bench.n-written)]
			if bench.err = bench.log.Write(ctx, batch); bench.err != nil {
				return
			}
			written += len(batch)
		}
		took := time.Since(start)
		payload, file := storedBytes(b, bench.db)
		var segs int
		bench.db.QueryRow("SELECT COUNT(*) FROM access_log_segments").Scan(&segs)
		b.Logf("built %d events in %d segments in %v (%.0f ns/event with merging); %.1f B/event in rows, %.1f in the file",
			bench.n, segs, took.Round(time.Millisecond), float64(took.Nanoseconds())/float64(bench.n), payload, file)
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.log
}

// BenchmarkRecent measures a page of 100 entries, newest first, from a
// large log (see benchLog) with the console viewer's filters.
func BenchmarkRecent(b *testing.B) {
	l := benchLog(b)
	ctx := context.Background()
	// Someone online now, and the device they use.
	var person, device int64
	for _, e := range all(b, l, Filter{Limit: 1000}) {
		if e.PersonID != 0 && e.DeviceID != 0 {
			person, device = e.PersonID, e.DeviceID
			break
		}
	}
	page20 := Filter{}
	for range 19 {
		es, err := l.Recent(ctx, page20)
		if err != nil || len(es) == 0 {
			b.Fatal(err)
		}
		page20.Before = es[len(es)-1].ID
	}
	for _, bm := range []struct {
		name string
		f    Filter
	}{
		{"newest", Filter{}},
		{"person", Filter{PersonID: person}},
		{"person-absent", Filter{PersonID: 99999}},
		{"device", Filter{DeviceID: device}},
		{"host-rare", Filter{Host: "RARE-term"}},
		{"host-common", Filter{Host: "youtube"}},
		{"host-2-bytes-absent", Filter{Host: "qz"}},
		{"category-absent", Filter{Category: "weapons"}},
		{"group-block", Filter{Group: "key-stage-3", Action: "block"}},
		{"page20", page20},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				es, err := l.Recent(ctx, bm.f)
				if err != nil {
					b.Fatal(err)
				}
				n = len(es)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(n), "entries")
		})
	}
}
