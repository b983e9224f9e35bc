package app

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/config"
	"github.com/warden-schools/warden/internal/policy"
)

func openDemo(t *testing.T) *App {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	a, err := Open(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	res, err := a.Init(ctx, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fresh || !res.Seeded {
		t.Fatalf("init = %+v", res)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDemoSchool(t *testing.T) {
	a := openDemo(t)
	ctx := context.Background()
	snap := a.Snapshot()
	for _, id := range []string{DemoEarlyYears, DemoKeyStage2, DemoStaff, DemoVisitors, policy.UnknownGroupID} {
		if !snap.HasGroup(id) {
			t.Errorf("demo has no group %s", id)
		}
	}
	if g, _ := snap.Group(DemoEarlyYears); g.Mode != policy.ModeApproved {
		t.Errorf("%s mode = %s", DemoEarlyYears, g.Mode)
	}
	if g, _ := snap.Group(DemoKeyStage2); g.Mode != policy.ModeFilter || g.SafeSearch != policy.SafeSearchStrict {
		t.Errorf("%s = %s, %s", DemoKeyStage2, g.Mode, g.SafeSearch)
	}
	london, _ := time.LoadLocation("Europe/London")
	wedLunch := time.Date(2026, 6, 10, 12, 30, 0, 0, london) // BST
	wedMorning := time.Date(2026, 6, 10, 10, 0, 0, 0, london)
	staffRoom := netip.MustParseAddr("10.20.0.40")
	tests := []struct {
		name     string
		req      CheckRequest
		action   policy.Action
		category string
		rule     string
	}{
		{"KS2 gambling", CheckRequest{Target: "www.bet365.com", Group: DemoKeyStage2}, policy.Block, "gambling", "category"},
		{"KS2 social media", CheckRequest{Target: "www.tiktok.com", Group: DemoKeyStage2}, policy.Block, "social-media", "category"},
		{"KS2 UT1 adult URL entry", CheckRequest{Target: "http://020sextoy.com/sk/shop", Group: DemoKeyStage2}, policy.Block, "pornography", "category"},
		{"KS2 education ahead of games", CheckRequest{Target: "ttrockstars.com", Group: DemoKeyStage2}, policy.Allow, "education", "education"},
		{"EYFS approved only", CheckRequest{Target: "example.org", Group: DemoEarlyYears}, policy.Block, "", "not-approved"},
		{"EYFS approved site", CheckRequest{Target: "www.phonicsplay.co.uk", Group: DemoEarlyYears}, policy.Allow, "education", "approved"},
		{"staff social media at lunch in the staff room", CheckRequest{Target: "facebook.com", Group: DemoStaff, IP: staffRoom, Time: wedLunch}, policy.Allow, "social-media", "rule:1:Social media at lunchtime in the staff room"},
		{"staff social media in the morning", CheckRequest{Target: "facebook.com", Group: DemoStaff, IP: staffRoom, Time: wedMorning}, policy.Block, "social-media", "category"},
		{"staff social media at lunch in a classroom", CheckRequest{Target: "facebook.com", Group: DemoStaff, IP: netip.MustParseAddr("10.30.1.9"), Time: wedLunch}, policy.Block, "social-media", "category"},
		{"staff by user", CheckRequest{Target: "facebook.com", User: "awilliams", IP: staffRoom, Time: wedLunch}, policy.Allow, "social-media", "rule:1:Social media at lunchtime in the staff room"},
		{"visitors may use social media", CheckRequest{Target: "facebook.com", Group: DemoVisitors}, policy.Allow, "social-media", "category"},
		{"device IP gives its group", CheckRequest{Target: "example.org", IP: netip.MustParseAddr("10.30.2.3")}, policy.Block, "", "not-approved"},
		{"loopback is a KS2 device in the demo", CheckRequest{Target: "www.bet365.com", IP: netip.MustParseAddr("127.0.0.1")}, policy.Block, "gambling", "category"},
		{"unknown client", CheckRequest{Target: "roblox.com", IP: netip.MustParseAddr("192.0.2.50")}, policy.Block, "games", "category"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := a.Check(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			d := res.Explanation.Decision
			if d.Action != tt.action || d.Category != tt.category || d.Rule != tt.rule {
				t.Errorf("got %s %q %q (%s), want %s %q %q", d.Action, d.Category, d.Rule, d.Reason, tt.action, tt.category, tt.rule)
			}
		})
	}
}

func TestInitDemoRefusesNonEmptyFolder(t *testing.T) {
	a := openDemo(t)
	if _, err := a.Init(context.Background(), true, true); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("err = %v", err)
	}
	// serve --demo on a school that exists just carries on.
	res, err := a.Init(context.Background(), true, false)
	if err != nil || res.Seeded {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
}

func TestInitWithoutDemo(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	a, err := Open(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	res, err := a.Init(ctx, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Seeded || len(res.Defaults) != 2 {
		t.Fatalf("res = %+v", res)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// A new school: everyone unknown, education allowed, games blocked.
	for target, want := range map[string]policy.Action{"ttrockstars.com": policy.Allow, "nspcc.org.uk": policy.Allow, "example.org": policy.Allow} {
		res, err := a.Check(ctx, CheckRequest{Target: target, IP: netip.MustParseAddr("10.0.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		if d := res.Explanation.Decision; d.Action != want || d.Group != policy.UnknownGroupID {
			t.Errorf("%s: %s for %s (%s)", target, d.Action, d.Group, d.Reason)
		}
	}
	again, err := a.Init(ctx, false, false)
	if err != nil || len(again.Defaults) != 0 {
		t.Fatalf("second init = %+v, %v", again, err)
	}
}

func TestReloadFollowsChangesAndReusesLists(t *testing.T) {
	a := openDemo(t)
	ctx := context.Background()
	before := a.Snapshot()
	if err := a.ReloadIfChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Snapshot() != before {
		t.Fatal("reloaded without a change")
	}
	if _, err := a.Policies.AddException(ctx, "test", DemoKeyStage2, policy.Exception{Action: policy.Allow, Pattern: "roblox.com", Note: "coding club"}); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadIfChanged(ctx); err != nil {
		t.Fatal(err)
	}
	after := a.Snapshot()
	if after == before || after.Version() <= before.Version() {
		t.Fatalf("version %d -> %d", before.Version(), after.Version())
	}
	if after.Lists() != before.Lists() {
		t.Error("a policy-only change rebuilt the list matcher")
	}
	res, err := a.Check(ctx, CheckRequest{Target: "www.roblox.com", Group: DemoKeyStage2})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Explanation.Decision; d.Action != policy.Allow || d.PolicyVersion != after.Version() {
		t.Errorf("after exception: %+v", d)
	}
	if _, err := a.Lists.Edit(ctx, "test", "local/education", []string{"kahoot-extra.example"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadIfChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Snapshot().Lists() == after.Lists() {
		t.Error("a list change did not rebuild the list matcher")
	}
}

func TestFailedReloadKeepsPreviousPolicy(t *testing.T) {
	a := openDemo(t)
	ctx := context.Background()
	before := a.Snapshot()
	// Damage the stored entries of the list in force.
	if _, err := a.DB().ExecContext(ctx, `UPDATE list_version_chunks SET data = X'00' WHERE list_id = 'ut1/gambling'`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DB().ExecContext(ctx, `UPDATE lists SET version = version WHERE id = 'ut1/gambling'`); err != nil {
		t.Fatal(err)
	}
	// Force the lists to be read again: a fingerprint change.
	if _, err := a.DB().ExecContext(ctx, `UPDATE lists SET enabled = FALSE WHERE id = 'ut1/games'`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DB().ExecContext(ctx, `INSERT INTO revisions (at, actor, summary) VALUES (0, 'test', 'damage')`); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadIfChanged(ctx); err == nil {
		t.Fatal("reload of a damaged list succeeded")
	}
	if a.Snapshot() != before {
		t.Fatal("a failed reload replaced the policy in force")
	}
	res, err := a.Check(ctx, CheckRequest{Target: "bet365.com", Group: DemoKeyStage2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Explanation.Decision.Action != policy.Block {
		t.Error("gambling no longer blocked after a failed reload")
	}
}

func TestCheckErrors(t *testing.T) {
	a := openDemo(t)
	ctx := context.Background()
	for name, req := range map[string]CheckRequest{
		"no subject":    {Target: "example.org"},
		"unknown group": {Target: "example.org", Group: "nope"},
		"unknown user":  {Target: "example.org", User: "nobody"},
		"bad host":      {Target: "exa mple.org", Group: DemoStaff},
		"bad URL":       {Target: "http://example.org/%zz", Group: DemoStaff},
	} {
		if _, err := a.Check(ctx, req); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
