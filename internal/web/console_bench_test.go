package web

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/events"
)

// BenchmarkMonitoringPage measures the server time of one page of the
// access-log viewer (session, audit record, query, names, rendering) over
// a log of WARDEN_BENCH_EVENTS events (default 500,000) from 300 people
// on 300 devices, 15% blocked. The access-log store's own benchmark
// (accesslog BenchmarkRecent) covers 10 million.
func BenchmarkMonitoringPage(b *testing.B) {
	n := 500_000
	if s := os.Getenv("WARDEN_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	f := newConsoleFixture(b, func(o *ConsoleOptions) { o.SignInLimit = 1 << 30 })
	ctx := context.Background()
	var people, devices []int64
	for i := range 300 {
		p, err := f.dir.AddPerson(ctx, "bench", directory.Person{Kind: directory.KindPupil, LegalForename: "Pupil", Surname: strconv.Itoa(i),
			Username: fmt.Sprintf("pupil%d", i), Year: 5, HasYear: true, Active: true})
		if err != nil {
			b.Fatal(err)
		}
		d, err := f.dir.AddDevice(ctx, "bench", directory.Device{Name: fmt.Sprintf("device-%d", i), Kind: directory.DeviceSchool, OwnerID: p})
		if err != nil {
			b.Fatal(err)
		}
		people, devices = append(people, p), append(devices, d)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := f.clock().Add(-time.Duration(n) * 10 * time.Millisecond)
	batch := make([]events.Event, 0, 4096)
	for i := 0; i < n; {
		batch = batch[:0]
		for ; len(batch) < cap(batch) && i < n; i++ {
			k := rng.IntN(300)
			e := events.Event{Time: start.Add(time.Duration(i) * 10 * time.Millisecond), Source: "dns", ClientIP: netip.AddrFrom4([4]byte{10, 30, byte(k / 250), byte(k % 250)}),
				PersonID: people[k], DeviceID: devices[k], Group: "key-stage-2", Host: fmt.Sprintf("host%d.example", rng.IntN(50000)),
				QType: "A", Action: "allow", Status: "NOERROR"}
			if rng.IntN(100) < 15 {
				e.Action, e.Category = "block", "games"
			}
			batch = append(batch, e)
		}
		if err := f.access.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	if got, err := f.access.Count(ctx); err != nil || got != int64(n) {
		b.Fatalf("the log holds %d events, want %d (%v)", got, n, err)
	}
	b.Logf("%d events in the access log", n)
	// IT reads the access log; the session is given its second factor
	// directly, as the sign-in is not what is measured.
	id := f.account(b, "bench-it", auth.RoleIT)
	acct, err := f.accounts.Get(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	secret, sess, err := f.accounts.StartSession(ctx, acct, netip.MustParseAddr("127.0.0.1"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := f.accounts.PassSecondFactor(ctx, sess); err != nil {
		b.Fatal(err)
	}
	handler := f.srv.Config.Handler
	for _, bm := range []struct{ name, query string }{
		{"newest", ""},
		{"person", "person=pupil7"},
		{"person-blocked", "person=pupil7&action=block"},
		{"site", "site=host4242"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", "/monitoring?"+bm.query, nil)
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: secret})
				rw := httptest.NewRecorder()
				handler.ServeHTTP(rw, req)
				if rw.Code != http.StatusOK {
					b.Fatalf("%d %s", rw.Code, rw.Body.String())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}
