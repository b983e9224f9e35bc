package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/lists"
)

func mustList(t testing.TB, id, source, srcCat string, cats []string, mandatory bool, entries ...string) *lists.List {
	t.Helper()
	c := &lists.Collector{Redact: mandatory}
	if err := c.Parse(strings.NewReader(strings.Join(entries, "\n")), id, lists.FormatPlain); err != nil {
		t.Fatal(err)
	}
	if c.Report.Malformed > 0 {
		t.Fatalf("list %s: %s", id, c.Report.Summary())
	}
	c.Finish()
	return &lists.List{
		Info:    lists.Info{ID: id, Source: source, SourceCategory: srcCat, Categories: cats, Mandatory: mandatory},
		Domains: c.Domains, URLs: c.URLs, Hashes: c.Hashes,
	}
}

func london(t testing.TB) *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// testSnapshot is a small school: lists for gambling, social media, games,
// pornography, chat, education, IWF; the demo's groups.
func testSnapshot(t testing.TB) *Snapshot {
	t.Helper()
	tax := lists.DefaultTaxonomy()
	iwfHash, err := lists.HashURL("http://hashed.example/abuse/page.html")
	if err != nil {
		t.Fatal(err)
	}
	iwf := mustList(t, "iwf", "iwf", "", []string{"child-abuse"}, true, "illegal.example/bad/", "whole-illegal.example")
	iwf.Hashes = append(iwf.Hashes, iwfHash)
	ls := []*lists.List{
		mustList(t, "ut1/gambling", "ut1", "gambling", []string{"gambling"}, false, "bet365.com", "casino.example"),
		mustList(t, "ut1/social_networks", "ut1", "social_networks", []string{"social-media"}, false, "facebook.com", "tiktok.com"),
		mustList(t, "ut1/games", "ut1", "games", []string{"games"}, false, "ttrockstars.com", "roblox.com", "friv.example"),
		mustList(t, "ut1/chat", "ut1", "chat", []string{"chat"}, false, "teams.microsoft.com"),
		mustList(t, "ut1/adult", "ut1", "adult", []string{"pornography"}, false, "porn.example", "blog.example/nsfw/"),
		mustList(t, "ut1/drogue", "ut1", "drogue", []string{"drugs"}, false, "talktofrank.com"),
		mustList(t, "ut1/agressif", "ut1", "agressif", []string{"violence", "hate-speech"}, false, "hate.example"),
		mustList(t, "local/education", "local", "education", []string{"education"}, false,
			"ttrockstars.com", "teams.microsoft.com", "bbc.co.uk/bitesize", "talktofrank.com", "porn.example"),
		iwf,
	}
	m, err := lists.Compile(ls)
	if err != nil {
		t.Fatal(err)
	}
	weekdays, _ := ParseDays("mon-fri")
	pupils := func(id string) Group {
		return Group{ID: id, Mode: ModeFilter, DefaultAction: Allow, SafeSearch: SafeSearchStrict, EducationFirst: true,
			Categories: map[string]Action{"drugs": Alert}}
	}
	ks2 := pupils("key-stage-2")
	ks2.Exceptions = []Exception{
		{ID: 1, Action: Allow, Pattern: "roblox.com", Note: "coding club"},
		{ID: 2, Action: Block, Pattern: "friv.example/unblocked"},
		{ID: 3, Action: Allow, Pattern: "whole-illegal.example"},
		{ID: 4, Action: Allow, Pattern: "facebook.com/schoolpage"},
	}
	ks2.Rules = []Rule{{ID: 9, Name: "Friday golden time", Action: Allow, Categories: []string{"games"},
		Schedule: Schedule{Days: [7]bool{time.Friday: true}, Start: 14 * 60, End: 15 * 60}}}
	staff := Group{ID: "staff", Mode: ModeFilter, DefaultAction: Allow, SafeSearch: SafeSearchModerate,
		Categories: map[string]Action{"games": Allow, "chat": Allow, "social-media": Block, "streaming": Allow}}
	staff.Rules = []Rule{{ID: 7, Name: "Lunchtime social media", Action: Allow, Categories: []string{"social-media"},
		Schedule: Schedule{Days: weekdays, Start: 12 * 60, End: 13*60 + 15}, Zones: []string{"staff-room"}}}
	eyfs := Group{ID: "early-years-ks1", Mode: ModeApproved, SafeSearch: SafeSearchStrict, EducationFirst: true,
		Exceptions: []Exception{{ID: 5, Action: Allow, Pattern: "cbeebies.example"}}}
	snap, err := Compile(Config{
		Version:  42,
		Location: london(t),
		Taxonomy: tax,
		Lists:    m,
		Groups:   []Group{eyfs, ks2, staff},
		Exceptions: []Exception{
			{ID: 6, Action: Block, Pattern: "everyone-blocked.example"},
		},
		Zones: []Zone{{ID: "staff-room", Name: "Staff room", Networks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestDecide(t *testing.T) {
	snap := testSnapshot(t)
	loc := london(t)
	// Wednesday 4 March 2026, 12:30 in London (GMT).
	wedLunch := time.Date(2026, 3, 4, 12, 30, 0, 0, loc)
	wedMorning := time.Date(2026, 3, 4, 9, 0, 0, 0, loc)
	friGolden := time.Date(2026, 3, 6, 14, 30, 0, 0, loc)
	staffRoom := netip.MustParseAddr("10.20.0.15")
	classroom := netip.MustParseAddr("10.30.0.15")

	tests := []struct {
		name      string
		req       Request
		action    Action
		alert     bool
		rule      string
		category  string
		list      string
		matched   string
		mandatory bool
	}{
		{name: "gambling blocked for pupils", req: Request{Host: "www.bet365.com", Group: "key-stage-2", Time: wedMorning},
			action: Block, rule: "category", category: "gambling", list: "ut1/gambling", matched: "bet365.com"},
		{name: "case and trailing dot", req: Request{Host: "WWW.Bet365.COM.", Group: "key-stage-2", Time: wedMorning},
			action: Block, rule: "category", category: "gambling", list: "ut1/gambling", matched: "bet365.com"},
		{name: "unlisted allowed by default", req: Request{Host: "example.org", Group: "key-stage-2", Time: wedMorning},
			action: Allow, rule: "default"},
		{name: "education ahead of games", req: Request{Host: "play.ttrockstars.com", Group: "key-stage-2", Time: wedMorning},
			action: Allow, rule: "education", category: "education", list: "local/education", matched: "ttrockstars.com"},
		{name: "education ahead of chat", req: Request{Host: "teams.microsoft.com", Group: "key-stage-2", Time: wedMorning},
			action: Allow, rule: "education", category: "education", list: "local/education"},
		{name: "education never ahead of pornography", req: Request{Host: "porn.example", Group: "key-stage-2", Time: wedMorning},
			action: Block, rule: "category", category: "pornography", list: "ut1/adult"},
		{name: "education ahead of drugs alert", req: Request{Host: "talktofrank.com", Group: "key-stage-2", Time: wedMorning},
			action: Allow, rule: "education", category: "education"},
		{name: "games still blocked", req: Request{Host: "friv.example", Group: "key-stage-2", Time: wedMorning},
			action: Block, rule: "category", category: "games", list: "ut1/games"},
		{name: "two categories: first in taxonomy order", req: Request{Host: "hate.example", Group: "key-stage-2", Time: wedMorning},
			action: Block, rule: "category", category: "hate-speech", list: "ut1/agressif"},
		{name: "allow exception ahead of category", req: Request{Host: "www.roblox.com", Group: "key-stage-2", Time: wedMorning},
			action: Allow, rule: "exception:allow:roblox.com", matched: "roblox.com"},
		{name: "URL block exception", req: Request{URL: "https://friv.example/unblocked/game", Group: "key-stage-2", Time: wedMorning},
			action: Block, rule: "exception:block:friv.example/unblocked"},
		{name: "URL allow exception only for its prefix", req: Request{URL: "https://www.facebook.com/schoolpage/posts", Group: "key-stage-2", Time: wedMorning},
			action: Allow, rule: "exception:allow:facebook.com/schoolpage"},
		{name: "URL allow exception does not cover the rest", req: Request{URL: "https://www.facebook.com/other", Group: "key-stage-2", Time: wedMorning},
			action: Block, rule: "category", category: "social-media"},
		{name: "school-wide exception", req: Request{Host: "everyone-blocked.example", Group: "staff", Time: wedMorning},
			action: Block, rule: "exception:block:everyone-blocked.example"},
		{name: "mandatory URL prefix", req: Request{URL: "http://illegal.example/bad/x.jpg", Group: "staff", Time: wedMorning},
			action: Block, rule: "mandatory", category: "child-abuse", list: "iwf", mandatory: true},
		{name: "mandatory beats allow exception", req: Request{Host: "whole-illegal.example", Group: "key-stage-2", Time: wedMorning},
			action: Block, rule: "mandatory", list: "iwf", mandatory: true, category: "child-abuse"},
		{name: "mandatory hashed URL", req: Request{URL: "https://HASHED.example/abuse/page.html#frag", Group: "staff", Time: wedMorning},
			action: Block, rule: "mandatory", list: "iwf", mandatory: true, category: "child-abuse"},
		{name: "mandatory list path does not block host at DNS", req: Request{Host: "illegal.example", Group: "staff", Time: wedMorning},
			action: Allow, rule: "default"},
		{name: "URL entry of a category list", req: Request{URL: "http://blog.example/nsfw/1", Group: "staff", Time: wedMorning},
			action: Block, rule: "category", category: "pornography", matched: "blog.example/nsfw/"},
		{name: "URL entry does not match other paths", req: Request{URL: "http://blog.example/cooking", Group: "staff", Time: wedMorning},
			action: Allow, rule: "default"},
		{name: "staff social media blocked outside lunch", req: Request{Host: "facebook.com", Group: "staff", ClientIP: staffRoom, Time: wedMorning},
			action: Block, rule: "category", category: "social-media"},
		{name: "staff social media at lunch in staff room", req: Request{Host: "facebook.com", Group: "staff", ClientIP: staffRoom, Time: wedLunch},
			action: Allow, rule: "rule:7:Lunchtime social media", category: "social-media", list: "ut1/social_networks"},
		{name: "staff social media at lunch elsewhere", req: Request{Host: "facebook.com", Group: "staff", ClientIP: classroom, Time: wedLunch},
			action: Block, rule: "category"},
		{name: "staff social media at lunch without address", req: Request{Host: "facebook.com", Group: "staff", Time: wedLunch},
			action: Block, rule: "category"},
		{name: "staff social media on Saturday lunch", req: Request{Host: "facebook.com", Group: "staff", ClientIP: staffRoom, Time: wedLunch.AddDate(0, 0, 3)},
			action: Block, rule: "category"},
		{name: "Friday golden time games", req: Request{Host: "friv.example", Group: "key-stage-2", Time: friGolden},
			action: Allow, rule: "rule:9:Friday golden time"},
		{name: "alert category", req: Request{Host: "talktofrank.com", Group: "staff", Time: wedMorning},
			action: Block, rule: "category", category: "drugs"},
		{name: "approved only: approved site", req: Request{Host: "www.bbc.co.uk", Group: "early-years-ks1", Time: wedMorning},
			action: Block, rule: "not-approved"},
		{name: "approved only: approved URL", req: Request{URL: "https://www.bbc.co.uk/bitesize/topics", Group: "early-years-ks1", Time: wedMorning},
			action: Allow, rule: "approved", list: "local/education"},
		{name: "approved only: education list", req: Request{Host: "ttrockstars.com", Group: "early-years-ks1", Time: wedMorning},
			action: Allow, rule: "approved", list: "local/education"},
		{name: "approved only: allow exception", req: Request{Host: "www.cbeebies.example", Group: "early-years-ks1", Time: wedMorning},
			action: Allow, rule: "exception:allow:cbeebies.example"},
		{name: "approved only: everything else", req: Request{Host: "example.org", Group: "early-years-ks1", Time: wedMorning},
			action: Block, rule: "not-approved"},
		{name: "approved only: pornography on education list still blocked", req: Request{Host: "porn.example", Group: "early-years-ks1", Time: wedMorning},
			action: Block, rule: "category", category: "pornography"},
		{name: "unknown group gets strictest", req: Request{Host: "ttrockstars.com", Group: "nope", Time: wedMorning},
			action: Block, rule: "category", category: "games"},
		{name: "unknown group allows unlisted", req: Request{Host: "example.org", Time: wedMorning},
			action: Allow, rule: "default"},
		{name: "invalid host", req: Request{Host: "bad host!", Group: "staff", Time: wedMorning},
			action: Block, rule: "invalid"},
		{name: "IP literal", req: Request{Host: "192.0.2.1", Group: "staff", Time: wedMorning},
			action: Allow, rule: "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := snap.Decide(tt.req)
			if d.Action != tt.action || d.Alert != tt.alert || d.Rule != tt.rule || d.Mandatory != tt.mandatory {
				t.Fatalf("got action=%s alert=%v rule=%q mandatory=%v (%s), want action=%s alert=%v rule=%q mandatory=%v",
					d.Action, d.Alert, d.Rule, d.Mandatory, d.Reason, tt.action, tt.alert, tt.rule, tt.mandatory)
			}
			if tt.category != "" && d.Category != tt.category {
				t.Errorf("category = %q, want %q (%s)", d.Category, tt.category, d.Reason)
			}
			if tt.list != "" && d.List != tt.list {
				t.Errorf("list = %q, want %q", d.List, tt.list)
			}
			if tt.matched != "" && d.Matched != tt.matched {
				t.Errorf("matched = %q, want %q", d.Matched, tt.matched)
			}
			if d.PolicyVersion != 42 {
				t.Errorf("policy version = %d", d.PolicyVersion)
			}
			if d.Reason == "" {
				t.Error("empty reason")
			}
			if d.Mandatory && (d.Matched != "" || strings.Contains(d.Reason, "illegal.example") || strings.Contains(d.Reason, "hashed.example")) {
				t.Errorf("mandatory decision shows its entry: matched=%q reason=%q", d.Matched, d.Reason)
			}
		})
	}
}

func TestDecideAlert(t *testing.T) {
	tax := lists.DefaultTaxonomy()
	m, _ := lists.Compile([]*lists.List{mustList(t, "ut1/drogue", "ut1", "drogue", []string{"drugs"}, false, "drugs.example")})
	s2, err := Compile(Config{Taxonomy: tax, Lists: m, Groups: []Group{{ID: "g", Categories: map[string]Action{"drugs": Alert}}}})
	if err != nil {
		t.Fatal(err)
	}
	d := s2.Decide(Request{Host: "drugs.example", Group: "g", Time: time.Now()})
	if d.Action != Allow || !d.Alert || d.Category != "drugs" {
		t.Fatalf("got %+v", d)
	}
	if !strings.Contains(d.Reason, "alert") {
		t.Errorf("reason %q does not mention the alert", d.Reason)
	}
}

func TestReasonsNameSource(t *testing.T) {
	snap := testSnapshot(t)
	d := snap.Decide(Request{Host: "bet365.com", Group: "key-stage-2", Time: time.Now()})
	for _, want := range []string{"gambling", "ut1/gambling", "UT1 gambling", "key-stage-2"} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("reason %q lacks %q", d.Reason, want)
		}
	}
	if d.Source != "UT1 gambling" {
		t.Errorf("source = %q", d.Source)
	}
	d = snap.Decide(Request{Host: "ttrockstars.com", Group: "key-stage-2", Time: time.Now()})
	for _, want := range []string{"education allow list", "ahead of games", "UT1 games"} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("education reason %q lacks %q", d.Reason, want)
		}
	}
}

func TestExplainHidesMandatoryEntries(t *testing.T) {
	snap := testSnapshot(t)
	e := snap.Explain(Request{URL: "http://illegal.example/bad/x", Group: "staff", Time: time.Now()})
	found := false
	for _, m := range e.Matches {
		if m.Mandatory {
			found = true
			if m.Entry != "" {
				t.Errorf("mandatory entry shown: %q", m.Entry)
			}
		}
	}
	if !found {
		t.Fatal("mandatory match not reported")
	}
	e = snap.Explain(Request{Host: "play.ttrockstars.com", Group: "key-stage-2", Time: time.Now(), ClientIP: netip.MustParseAddr("10.20.0.9")})
	if len(e.Matches) != 2 || e.Zone != "staff-room" {
		t.Errorf("explain = %+v", e)
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	tax := lists.DefaultTaxonomy()
	_, err := Compile(Config{Taxonomy: tax, Groups: []Group{
		{ID: "a", Categories: map[string]Action{"no-such-category": Block, "child-abuse": Allow}},
		{ID: "b", Exceptions: []Exception{{Action: Allow, Pattern: "bad host"}},
			Rules: []Rule{{Name: "r", Action: Allow, Zones: []string{"nowhere"}, Categories: []string{"terrorism"}}}},
	}, UnknownGroup: "missing"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"no-such-category", "child-abuse is a mandatory category", "bad host", "unknown zone \"nowhere\"", "terrorism is mandatory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestUnknownGroupSetting(t *testing.T) {
	tax := lists.DefaultTaxonomy()
	s, err := Compile(Config{Taxonomy: tax, Groups: []Group{{ID: "visitors", DefaultAction: Block}}, UnknownGroup: "visitors"})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Decide(Request{Host: "example.org", Time: time.Now()}); d.Group != "visitors" || d.Action != Block {
		t.Fatalf("unknown client got %+v", d)
	}
	if !s.HasGroup(UnknownGroupID) {
		t.Error("built-in unknown group missing")
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	snap := testSnapshot(t)
	now := time.Now()
	for _, req := range []Request{
		{Host: "www.bet365.com", Group: "key-stage-2", Time: now},
		{Host: "example.org", Group: "staff", Time: now, ClientIP: netip.MustParseAddr("10.20.0.1")},
		{Host: "play.ttrockstars.com", Group: "key-stage-2", Time: now},
	} {
		allocs := testing.AllocsPerRun(100, func() { snap.Decide(req) })
		if allocs != 0 {
			t.Errorf("Decide(%s) allocates %.0f times", req.Host, allocs)
		}
	}
}
