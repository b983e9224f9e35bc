package accesslog

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/wardentest"
)

func sample(i int, at time.Time) events.Event {
	e := events.Event{Time: at, Source: "dns", ClientIP: netip.MustParseAddr("10.30.1.21"), DeviceID: 3, Group: "key-stage-2",
		Host: fmt.Sprintf("host%d.example", i), QType: "A", Action: "allow", Rule: "default", PolicyVersion: 9,
		Latency: 1500 * time.Microsecond, Upstream: "192.0.2.53:53", Status: "NOERROR"}
	if i%2 == 0 {
		e.Action, e.Category, e.List, e.Rule, e.Upstream = "block", "gambling", "ut1/gambling", "category", ""
	}
	return e
}

func TestWriteAndRead(t *testing.T) {
	ctx := context.Background()
	l := New(wardentest.OpenStore(t))
	base := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	var batch []events.Event
	for i := 0; i < 450; i++ { // more than one statement's worth
		batch = append(batch, sample(i, base.Add(time.Duration(i)*time.Second)))
	}
	if err := l.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.Count(ctx); n != 450 {
		t.Fatalf("count = %d", n)
	}
	got, err := l.Recent(ctx, Filter{Action: "block", Host: "host4", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Host != "host448.example" || got[0].Category != "gambling" || got[0].DeviceID != 3 ||
		got[0].ClientIP.String() != "10.30.1.21" || got[0].Latency != 1500*time.Microsecond || !got[0].Time.Equal(base.Add(448*time.Second)) {
		t.Fatalf("recent = %+v", got)
	}
	got, _ = l.Recent(ctx, Filter{From: base, To: base.Add(10 * time.Second), Group: "key-stage-2", Limit: 100})
	if len(got) != 10 {
		t.Errorf("time range: %d rows", len(got))
	}
	if got, _ := l.Recent(ctx, Filter{Host: "%"}); len(got) != 0 {
		t.Errorf("LIKE wildcard not escaped: %d rows", len(got))
	}
}

// BenchmarkWrite measures batched access-log writes into SQLite.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	l := New(wardentest.OpenStore(b))
	batch := make([]events.Event, 4096)
	now := time.Now()
	for i := range batch {
		batch[i] = sample(i, now)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := l.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}
