package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/events"
)

// fillAccessLog writes n events, a second apart up to the fixture's
// clock: every third by Mia on her iPad and blocked, the rest anonymous
// and allowed; one host would be a formula in a spreadsheet.
func fillAccessLog(t *testing.T, f *consoleFixture, n int) (mia int64) {
	t.Helper()
	ctx := context.Background()
	mia, err := f.dir.AddPerson(ctx, "test", directory.Person{Kind: directory.KindPupil, LegalForename: "Mia", Surname: "Jones",
		Username: "mia.jones", Year: 4, HasYear: true, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	ipad, err := f.dir.AddDevice(ctx, "test", directory.Device{Name: "ks2-ipad-01", Kind: directory.DeviceSchool, OwnerID: mia})
	if err != nil {
		t.Fatal(err)
	}
	start := f.clock().Add(-time.Duration(n) * time.Second)
	var batch []events.Event
	for i := range n {
		e := events.Event{Time: start.Add(time.Duration(i) * time.Second), Source: "dns", ClientIP: netip.MustParseAddr("10.30.1.21"),
			Group: "key-stage-2", Host: fmt.Sprintf("site%d.example", i), QType: "A", Action: "allow", Status: "NOERROR"}
		if i%3 == 0 {
			e.PersonID, e.DeviceID, e.Action, e.Category, e.Host = mia, ipad, "block", "games", fmt.Sprintf("game%d.example", i)
		}
		if i == n-1 {
			e.Host = "=cmd|calc.example"
		}
		batch = append(batch, e)
	}
	if err := f.access.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	return mia
}

var rowRE = regexp.MustCompile(`<tr><td><time`)

func TestConsoleMonitoring(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 100 })
	f.account(t, "dsl", auth.RoleDSL)
	f.account(t, "teacher", auth.RoleStaff)
	fillAccessLog(t, f, 250)
	filled := f.clock()
	b := f.browser(t)
	b.signIn("dsl", testPassword)

	p := b.do("GET", "/monitoring", nil)
	if p.status != http.StatusOK || len(rowRE.FindAllString(p.body, -1)) != monitoringPageSize {
		t.Fatalf("first page: %d, %d rows\n%s", p.status, len(rowRE.FindAllString(p.body, -1)), p.body)
	}
	if !strings.Contains(p.body, "=cmd|calc.example") || strings.Index(p.body, "=cmd|calc.example") > strings.Index(p.body, "site248.example") {
		t.Error("newest entry not first")
	}
	// Paging back through everything.
	total := 0
	next := "/monitoring"
	for range 5 {
		p := b.do("GET", next, nil)
		total += len(rowRE.FindAllString(p.body, -1))
		m := regexp.MustCompile(`href="/monitoring\?([^"]+)">Older`).FindStringSubmatch(p.body)
		if m == nil {
			break
		}
		next = "/monitoring?" + html.UnescapeString(m[1])
	}
	if total != 250 {
		t.Errorf("paged through %d entries, want 250", total)
	}
	// Filters.
	for _, tc := range []struct {
		query string
		rows  int
		want  string
	}{
		{"person=mia.jones", 84, "Mia Jones"},
		{"device=ks2-ipad-01&action=block", 84, "ks2-ipad-01"},
		{"action=allow&site=site24", 6, "site24"}, // site240 to site248, less the blocked ones
		{"category=games&site=game246", 1, "game246"},
		{"from=" + url.QueryEscape(filled.Add(-time.Minute).In(londonTZ(t)).Format(localTimeLayout)), 60, "site"}, // the last minute
	} {
		p := b.do("GET", "/monitoring?"+tc.query, nil)
		if n := len(rowRE.FindAllString(p.body, -1)); p.status != http.StatusOK || n != tc.rows || !strings.Contains(p.body, tc.want) {
			t.Errorf("%s: %d, %d rows, want %d with %q", tc.query, p.status, n, tc.rows, tc.want)
		}
	}
	for query, want := range map[string]string{"person=nobody": "Nobody active has", "from=yesterday": "give a date and time",
		"action=maybe": "Blocked, Allowed or Any", "device=toaster": "no device called"} {
		if p := b.do("GET", "/monitoring?"+query, nil); p.status != http.StatusBadRequest || !strings.Contains(p.body, want) {
			t.Errorf("%s: %d, want 400 saying %q", query, p.status, want)
		}
	}

	// CSV: every match, names resolved, formulas defused.
	p = b.do("GET", "/monitoring/export.csv?action=block", nil)
	if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(p.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", p.status, p.header)
	}
	recs, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
	if err != nil || len(recs) != 85 || recs[0][0] != "time" || recs[1][1] != "Mia Jones" || recs[1][2] != "ks2-ipad-01" {
		t.Fatalf("export: %d records, %v\n%v", len(recs), err, recs[:min(3, len(recs))])
	}
	p = b.do("GET", "/monitoring/export.csv?site=cmd", nil)
	if recs, _ := csv.NewReader(strings.NewReader(p.body)).ReadAll(); len(recs) != 2 || recs[1][6] != "'=cmd|calc.example" {
		t.Fatalf("formula not defused: %v", recs)
	}

	// Every search and export is audited; staff may not look.
	entries, _, _ := f.audit.List(context.Background(), audit.Filter{Action: audit.ActionAccessLogExported})
	if len(entries) != 2 || entries[1].Detail != "action=block" {
		t.Errorf("export audit entries %+v", entries)
	}
	if _, n, _ := f.audit.List(context.Background(), audit.Filter{Action: audit.ActionAccessLogViewed}); n < 9 {
		t.Errorf("%d searches audited", n)
	}
	s := f.browser(t)
	s.signIn("teacher", testPassword)
	for _, path := range []string{"/monitoring", "/monitoring/export.csv"} {
		if p := s.do("GET", path, nil); p.status != http.StatusForbidden {
			t.Errorf("staff %s: %d", path, p.status)
		}
	}
}

func londonTZ(t *testing.T) *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+44": "'+44", "-x": "'-x", "@SUM": "'@SUM", "\tx": "'\tx",
		"plain": "plain", "": "", "a=b": "a=b"} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
