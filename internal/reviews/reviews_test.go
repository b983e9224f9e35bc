package reviews

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

// testNow is the tests' clock; tick moves it on.
var testNow = time.Date(2026, 6, 3, 9, 41, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }
func (c *clock) tick()          { c.t = c.t.Add(time.Second) }

// newTestStore opens a migrated store with one person (id 17), one
// device (id 5) and one exception (id 3).
func newTestStore(t testing.TB) (*Store, *clock, *store.DB) {
	t.Helper()
	db := wardentest.OpenStore(t)
	for _, q := range []string{
		`INSERT INTO groups (id, name, mode, safe_search, default_action, created_at, updated_at) VALUES ('key-stage-2', 'KS2', 'filter', 'strict', 'allow', 0, 0)`,
		`INSERT INTO people (id, kind, legal_forename, surname, created_at, updated_at) VALUES (17, 'pupil', 'Amara', 'Okafor', 0, 0)`,
		`INSERT INTO devices (id, name, kind, owner_id, created_at, updated_at) VALUES (5, 'KS2-iPad-12', 'school', 17, 0, 0)`,
		`INSERT INTO exceptions (id, group_id, action, pattern, created_at) VALUES (3, 'key-stage-2', 'allow', 'bbc.co.uk', 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	c := &clock{t: testNow}
	return New(db, c.now), c, db
}

func requestInput(ref string) RequestInput {
	return RequestInput{
		Ref: ref, BlockedAt: testNow.Add(-time.Minute), Host: "bet365.com", URL: "http://bet365.com/en",
		Category: "gambling", List: "ut1/gambling", Rule: "category", Reason: "Blocked: gambling is blocked for key-stage-2.",
		GroupID: "key-stage-2", PolicyVersion: 42, ClientIP: netip.MustParseAddr("10.1.2.3"), DeviceID: 5, PersonID: 17,
	}
}

func TestCreateRequest(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := context.Background()
	in := requestInput("1DJ0A00000")
	got, err := s.CreateRequest(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := Request{ID: got.ID, Ref: in.Ref, CreatedAt: testNow, BlockedAt: in.BlockedAt, Host: in.Host, URL: in.URL,
		Category: in.Category, List: in.List, Rule: in.Rule, Reason: in.Reason, GroupID: in.GroupID, PolicyVersion: 42,
		ClientIP: in.ClientIP, DeviceID: 5, PersonID: 17, Status: StatusOpen}
	if got != want {
		t.Errorf("request\n got %+v\nwant %+v", got, want)
	}
	if got.ID == 0 {
		t.Error("no id")
	}
	back, err := s.GetRequest(ctx, got.ID)
	if err != nil || back != got {
		t.Errorf("GetRequest = %+v, %v", back, err)
	}
	if byRef, err := s.RequestByRef(ctx, in.Ref); err != nil || byRef != got {
		t.Errorf("RequestByRef = %+v, %v", byRef, err)
	}
}

// TestCreateRequestIdempotent: the same page's form sent twice keeps one
// request; a message is added only if the first had none.
func TestCreateRequestIdempotent(t *testing.T) {
	s, c, _ := newTestStore(t)
	ctx := context.Background()
	in := requestInput("1DJ0A00000")
	first, err := s.CreateRequest(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	c.tick()
	in.Message = "We need it for a maths lesson on probability."
	second, err := s.CreateRequest(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || second.Message != in.Message || !second.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("second submission: %+v", second)
	}
	in.Message = "another message"
	third, err := s.CreateRequest(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if third.ID != first.ID || third.Message != second.Message {
		t.Errorf("third submission replaced the message: %q", third.Message)
	}
	all, err := s.ListRequests(ctx, Filter{})
	if err != nil || len(all) != 1 {
		t.Errorf("%d requests stored, %v", len(all), err)
	}
	// The same reference for another block (a collision) is refused.
	other := requestInput("1DJ0A00000")
	other.Host = "other.example"
	if _, err := s.CreateRequest(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Errorf("colliding reference: err = %v", err)
	}
}

// TestCreateRequestDeletedDevice: ids the identity table still had but
// the directory no longer has are stored as unknown, not refused.
func TestCreateRequestDeletedDevice(t *testing.T) {
	s, _, db := newTestStore(t)
	ctx := context.Background()
	in := requestInput("1DJ0A00001")
	in.DeviceID, in.PersonID = 999, 998
	r, err := s.CreateRequest(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.DeviceID != 0 || r.PersonID != 0 {
		t.Errorf("unknown ids stored: %+v", r)
	}
	r2, err := s.CreateRequest(ctx, requestInput("1DJ0A00002"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM people WHERE id = 17"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetRequest(ctx, r2.ID); got.PersonID != 0 || got.DeviceID != 5 {
		t.Errorf("after deleting the person: %+v", got)
	}
}

func TestRequestInputChecks(t *testing.T) {
	s, _, _ := newTestStore(t)
	tests := []struct {
		name string
		edit func(*RequestInput)
		msg  string
	}{
		{"no ref", func(in *RequestInput) { in.Ref = "" }, "reference is missing"},
		{"bad ref", func(in *RequestInput) { in.Ref = "abc'; --" }, "reference"},
		{"no host", func(in *RequestInput) { in.Host = "" }, "host is missing"},
		{"long host", func(in *RequestInput) { in.Host = strings.Repeat("a", 254) }, "host is 254 bytes long; the limit is 253"},
		{"host with space", func(in *RequestInput) { in.Host = "a b" }, "not a host name"},
		{"long URL", func(in *RequestInput) { in.URL = "http://x/" + strings.Repeat("a", 2048) }, "URL is 2057 bytes long; the limit is 2048"},
		{"long message", func(in *RequestInput) { in.Message = strings.Repeat("é", 1001) }, "message is 1001 characters long; the limit is 1000"},
		{"bad UTF-8", func(in *RequestInput) { in.Message = "a\xffb" }, "message is not valid text"},
		{"control", func(in *RequestInput) { in.Message = "a\x00b" }, "message contains a control character"},
		{"no time", func(in *RequestInput) { in.BlockedAt = time.Time{} }, "time of the block is missing"},
		{"negative", func(in *RequestInput) { in.DeviceID = -1 }, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := requestInput("1DJ0A00009")
			tt.edit(&in)
			_, err := s.CreateRequest(context.Background(), in)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want ErrInvalid with %q", err, tt.msg)
			}
		})
	}
	// A message may have line breaks, exactly 1,000 characters.
	in := requestInput("1DJ0A00008")
	in.Message = "line one\nline two\t" + strings.Repeat("é", 1000-18)
	if _, err := s.CreateRequest(context.Background(), in); err != nil {
		t.Errorf("valid message refused: %v", err)
	}
}

func TestDecideRequest(t *testing.T) {
	s, c, _ := newTestStore(t)
	ctx := context.Background()
	r, err := s.CreateRequest(ctx, requestInput("1DJ0A00000"))
	if err != nil {
		t.Fatal(err)
	}
	c.tick()
	if _, err := s.DecideRequest(ctx, r.ID, Decision{Approve: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no decider: err = %v", err)
	}
	if _, err := s.DecideRequest(ctx, r.ID, Decision{By: "it-tech", ExceptionID: 3}); !errors.Is(err, ErrInvalid) {
		t.Errorf("declined with an exception: err = %v", err)
	}
	if _, err := s.DecideRequest(ctx, r.ID, Decision{Approve: true, By: "it-tech", ExceptionID: 77}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown exception: err = %v", err)
	}
	if got, _ := s.GetRequest(ctx, r.ID); got.Status != StatusOpen {
		t.Errorf("failed decision changed the request: %+v", got)
	}
	got, err := s.DecideRequest(ctx, r.ID, Decision{Approve: true, By: "it-tech", Reply: "Allowed for KS2.", ExceptionID: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusApproved || got.DecidedBy != "it-tech" || !got.DecidedAt.Equal(c.t) || got.Reply != "Allowed for KS2." || got.ExceptionID != 3 {
		t.Errorf("decided: %+v", got)
	}
	if _, err := s.DecideRequest(ctx, r.ID, Decision{By: "dsl"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second decision: err = %v", err)
	}
	if _, err := s.DecideRequest(ctx, 12345, Decision{By: "dsl"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing request: err = %v", err)
	}
}

// TestListRequests pages through a queue with cursors and by status.
func TestListRequests(t *testing.T) {
	s, c, _ := newTestStore(t)
	ctx := context.Background()
	var ids []int64
	for i := range 7 {
		r, err := s.CreateRequest(ctx, requestInput("1DJ0A0000"+string(rune('0'+i))))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		if i%2 == 0 {
			c.tick() // pairs share a time, so the id breaks the tie
		}
	}
	if _, err := s.DecideRequest(ctx, ids[1], Decision{By: "dsl"}); err != nil {
		t.Fatal(err)
	}
	var seen []int64
	f := Filter{Limit: 3}
	for {
		page, err := s.ListRequests(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			seen = append(seen, r.ID)
		}
		f.Before = page[len(page)-1].Cursor()
	}
	want := []int64{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}
	if !equal(seen, want) {
		t.Errorf("paged ids %v, want %v", seen, want)
	}
	open, err := s.ListRequests(ctx, Filter{Status: StatusOpen})
	if err != nil || len(open) != 6 {
		t.Errorf("open: %d, %v", len(open), err)
	}
	declined, err := s.ListRequests(ctx, Filter{Status: StatusDeclined})
	if err != nil || len(declined) != 1 || declined[0].ID != ids[1] {
		t.Errorf("declined: %+v, %v", declined, err)
	}
	nReq, nRep, err := s.Counts(ctx)
	if err != nil || nReq != 6 || nRep != 0 {
		t.Errorf("Counts = %d, %d, %v", nReq, nRep, err)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReports(t *testing.T) {
	s, c, _ := newTestStore(t)
	ctx := context.Background()
	in := ReportInput{URL: "https://Bad.Example:8443/page?x=1", Message: "It showed violent videos.", GroupID: "key-stage-2",
		ClientIP: netip.MustParseAddr("::ffff:10.1.2.3"), DeviceID: 5, PersonID: 17, Ref: "1DJ0A00000"}
	r, err := s.CreateReport(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := Report{ID: r.ID, CreatedAt: testNow, URL: in.URL, Host: "bad.example", Message: in.Message, GroupID: "key-stage-2",
		ClientIP: netip.MustParseAddr("10.1.2.3"), DeviceID: 5, PersonID: 17, Ref: "1DJ0A00000", Status: StatusOpen}
	if r != want {
		t.Errorf("report\n got %+v\nwant %+v", r, want)
	}
	// The same page may report another site.
	c.tick()
	r2, err := s.CreateReport(ctx, ReportInput{URL: "other.example/x", Ref: "1DJ0A00000"})
	if err != nil || r2.Host != "other.example" {
		t.Fatalf("second report: %+v, %v", r2, err)
	}
	for _, bad := range []ReportInput{{}, {URL: strings.Repeat("a", 2049)}, {URL: "x.example", Message: strings.Repeat("m", 1001)}, {URL: "a\x07b"}} {
		if _, err := s.CreateReport(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateReport(%.40q...): err = %v", bad.URL, err)
		}
	}
	c.tick()
	h, err := s.HandleReport(ctx, r.ID, Handling{Actioned: true, By: "dsl", Note: "Added a block exception."})
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != StatusActioned || h.HandledBy != "dsl" || !h.HandledAt.Equal(c.t) || h.Note != "Added a block exception." {
		t.Errorf("handled: %+v", h)
	}
	if _, err := s.HandleReport(ctx, r.ID, Handling{By: "dsl"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second handling: err = %v", err)
	}
	if _, err := s.HandleReport(ctx, 999, Handling{By: "dsl"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing report: err = %v", err)
	}
	if _, err := s.HandleReport(ctx, r2.ID, Handling{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no handler: err = %v", err)
	}
	open, err := s.ListReports(ctx, Filter{Status: StatusOpen})
	if err != nil || len(open) != 1 || open[0].ID != r2.ID {
		t.Errorf("open reports: %+v, %v", open, err)
	}
	all, err := s.ListReports(ctx, Filter{})
	if err != nil || len(all) != 2 || all[0].ID != r2.ID {
		t.Errorf("all reports: %+v, %v", all, err)
	}
	if _, nRep, _ := s.Counts(ctx); nRep != 1 {
		t.Errorf("open reports counted: %d", nRep)
	}
}

// TestStatusCheck: the schema refuses statuses outside the lists.
func TestStatusCheck(t *testing.T) {
	_, _, db := newTestStore(t)
	if _, err := db.Exec(`INSERT INTO review_requests (ref, created_at, blocked_at, host, status) VALUES ('X', 0, 0, 'h', 'maybe')`); err == nil {
		t.Error("review_requests accepted status 'maybe'")
	}
	if _, err := db.Exec(`INSERT INTO site_reports (created_at, url, status) VALUES (0, 'u', 'approved')`); err == nil {
		t.Error("site_reports accepted status 'approved'")
	}
}

func TestHostOf(t *testing.T) {
	tests := map[string]string{
		"example.com":                     "example.com",
		"  Example.COM.  ":                "example.com",
		"https://user@Example.com:8443/x": "example.com",
		"example.com/path?q=1#f":          "example.com",
		"//cdn.example/x":                 "cdn.example",
		"http://[2001:db8::1]:80/":        "2001:db8::1",
		"http://[2001:db8::1":             "",
		"":                                "",
		"a b.example":                     "",
	}
	for in, want := range tests {
		if got := HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q, want %q", in, got, want)
		}
	}
}
