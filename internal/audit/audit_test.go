package audit

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

var testKey = bytes.Repeat([]byte("a"), 32)

func newLog(t *testing.T) (*Log, *store.DB) {
	t.Helper()
	db := wardentest.OpenStore(t)
	at := time.Date(2026, 9, 3, 8, 30, 0, 0, time.UTC)
	l, err := New(db, testKey, func() time.Time { at = at.Add(time.Second); return at })
	if err != nil {
		t.Fatal(err)
	}
	return l, db
}

func fill(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		e := Entry{PersonID: int64(i%3 + 1), Actor: fmt.Sprintf("user%d", i%3+1), Action: ActionSignIn, ClientIP: netip.MustParseAddr("10.20.0.15")}
		if i%4 == 3 {
			e.Outcome = Failed
		}
		if err := l.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func verify(t *testing.T, l *Log) Report {
	t.Helper()
	r, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// untrigger lets a test play the attacker with direct database access.
func untrigger(t *testing.T, db *store.DB) {
	t.Helper()
	for _, q := range []string{`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRecordListVerify(t *testing.T) {
	l, _ := newLog(t)
	ctx := context.Background()
	if r := verify(t, l); !r.Intact() || r.Rows != 0 {
		t.Fatalf("empty log: %+v", r)
	}
	fill(t, l, 10)
	if err := l.Record(ctx, Entry{Actor: "bad\x00actor\nname", Action: ActionSignIn, Detail: strings.Repeat("é", 2000), Outcome: Refused}); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, l); !r.Intact() || r.Rows != 11 {
		t.Fatalf("verify: %+v", r)
	}
	page, total, err := l.List(ctx, Filter{Limit: 4})
	if err != nil || total != 11 || len(page) != 4 || page[0].ID != 11 || page[3].ID != 8 {
		t.Fatalf("first page: %d %+v %v", total, page, err)
	}
	if page[0].Actor != "bad actor name" || !strings.HasSuffix(page[0].Detail, "…") || page[0].Outcome != Refused {
		t.Errorf("cleaned entry %+v", page[0])
	}
	mine, total, _ := l.List(ctx, Filter{PersonID: 2})
	if total != 3 || len(mine) != 3 || mine[0].Actor != "user2" || mine[0].ClientIP != netip.MustParseAddr("10.20.0.15") {
		t.Fatalf("one person's: %d %+v", total, mine)
	}
}

func TestAppendOnly(t *testing.T) {
	l, db := newLog(t)
	fill(t, l, 3)
	for _, q := range []string{`UPDATE audit_log SET actor = 'x' WHERE id = 2`, `DELETE FROM audit_log WHERE id = 3`} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, l *Log, db *store.DB)
		want   []Problem
	}{
		{"row changed", func(t *testing.T, _ *Log, db *store.DB) {
			db.Exec(`UPDATE audit_log SET outcome = 'ok' WHERE id = 4`)
		}, []Problem{{4, "this row was changed, or the row before it was changed or removed"}}},
		{"row removed from the middle", func(t *testing.T, _ *Log, db *store.DB) {
			db.Exec(`DELETE FROM audit_log WHERE id = 5`)
		}, []Problem{{6, "rows 5 to 5 are missing"}, {6, "this row was changed, or the row before it was changed or removed"}}},
		{"rows cut from the end", func(t *testing.T, _ *Log, db *store.DB) {
			db.Exec(`DELETE FROM audit_log WHERE id > 8`)
		}, []Problem{{0, "the log should end at row 10 but ends at row 8: rows were removed from the end"}}},
		{"rows cut from the end, then more recorded", func(t *testing.T, l *Log, db *store.DB) {
			db.Exec(`DELETE FROM audit_log WHERE id > 8`)
			fill(t, l, 1)
		}, []Problem{{11, "rows 9 to 10 are missing"}, {11, "this row was changed, or the row before it was changed or removed"}}},
		{"row forged", func(t *testing.T, _ *Log, db *store.DB) {
			db.Exec(`INSERT INTO audit_log (id, at, actor, action, mac) VALUES (11, 0, 'ghost', 'sign-in', 'abc')`)
		}, []Problem{{11, "this row was changed, or the row before it was changed or removed"}, {0, "the log should end at row 10 but ends at row 11: rows were removed from the end"}}},
		{"head removed", func(t *testing.T, _ *Log, db *store.DB) {
			db.Exec(`DELETE FROM audit_head`)
		}, []Problem{{0, "the record of the log's last row is missing"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, db := newLog(t)
			fill(t, l, 10)
			untrigger(t, db)
			tc.tamper(t, l, db)
			got := verify(t, l)
			if fmt.Sprint(got.Problems) != fmt.Sprint(tc.want) {
				t.Errorf("problems\n got %v\nwant %v", got.Problems, tc.want)
			}
		})
	}
}

func TestVerifyNeedsTheKey(t *testing.T) {
	l, db := newLog(t)
	fill(t, l, 3)
	other, _ := New(db, bytes.Repeat([]byte("b"), 32), nil)
	if r := verify(t, other); r.Intact() {
		t.Fatal("a log verified under another key")
	}
	if _, err := New(db, []byte("short"), nil); err == nil {
		t.Fatal("short key accepted")
	}
}
