package app

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/lists/builtin"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/policy/policystore"
)

const demoActor = "demo"

// DemoDNSAddr is where `warden serve --demo` answers DNS unless told
// otherwise: loopback, a port that needs no privileges.
const DemoDNSAddr = "127.0.0.1:5353"

// DemoUpstreams returns the resolvers the demo forwards to when none are
// configured (Quad9, which also blocks known malware).
func DemoUpstreams() []string { return []string{"9.9.9.9:53", "149.112.112.112:53"} }

// Demo group ids, relied on by documentation and checks.
const (
	DemoEarlyYears = "early-years-ks1"
	DemoKeyStage2  = "key-stage-2"
	DemoStaff      = "staff"
	DemoVisitors   = "visitors"
)

func intp(v int) *int { return &v }

// seedDemo writes the demonstration school: its groups and policies,
// membership rules, zones, a handful of people and devices, and the
// starter category lists.
func (a *App) seedDemo(ctx context.Context) error {
	if err := a.Policies.SetSetting(ctx, demoActor, policystore.SettingSchoolName, "Warden Demo Primary School"); err != nil {
		return err
	}
	pupils := func() map[string]policy.Action {
		m := map[string]policy.Action{}
		for _, c := range a.tax.Categories {
			a, err := policy.ParseAction(c.Pupils)
			if err != nil {
				a = policy.Block
			}
			m[c.ID] = a
		}
		return m
	}
	staffCats := pupils()
	for _, c := range []string{"games", "chat", "webmail", "streaming", "file-sharing", "translation", "shorteners", "dynamic-dns", "advertising", "banking", "adult-themes"} {
		staffCats[c] = policy.Allow
	}
	staffCats["social-media"] = policy.Block // open at lunchtime in the staff room, by rule
	visitorCats := pupils()
	for _, c := range []string{"social-media", "games", "chat", "webmail", "streaming", "file-sharing", "translation", "shorteners", "dynamic-dns", "banking", "dating"} {
		visitorCats[c] = policy.Allow
	}
	groups := []policystore.GroupSpec{
		{ID: DemoEarlyYears, Name: "Early years and key stage 1", Description: "Nursery to Year 2: approved sites only.",
			Mode: policy.ModeApproved, SafeSearch: policy.SafeSearchStrict, DefaultAction: policy.Block, EducationFirst: true, Position: 10, Categories: pupils()},
		{ID: DemoKeyStage2, Name: "Key stage 2", Description: "Years 3 to 6: category filtering, strict safe search.",
			Mode: policy.ModeFilter, SafeSearch: policy.SafeSearchStrict, DefaultAction: policy.Allow, EducationFirst: true, Position: 20, Categories: pupils()},
		{ID: DemoStaff, Name: "Staff", Description: "All staff: social media only at lunchtime in the staff room.",
			Mode: policy.ModeFilter, SafeSearch: policy.SafeSearchModerate, DefaultAction: policy.Allow, EducationFirst: true, Position: 30, Categories: staffCats},
		{ID: DemoVisitors, Name: "Visitors", Description: "Guest Wi-Fi and visitors' devices.",
			Mode: policy.ModeFilter, SafeSearch: policy.SafeSearchModerate, DefaultAction: policy.Allow, Position: 40, Categories: visitorCats},
	}
	for _, g := range groups {
		if err := a.Policies.PutGroup(ctx, demoActor, g); err != nil {
			return err
		}
	}
	if err := a.Policies.SetSetting(ctx, demoActor, policystore.SettingUnknownGroup, policy.UnknownGroupID); err != nil {
		return err
	}
	zones := []directory.Zone{
		{ID: "staff-room", Name: "Staff room", Description: "Staff room Wi-Fi and desktops.", Networks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24")}},
		{ID: "classrooms", Name: "Classrooms", Description: "Classroom devices.", Networks: []netip.Prefix{netip.MustParsePrefix("10.30.0.0/16")}},
		{ID: "guest-wifi", Name: "Guest Wi-Fi", Description: "Visitors' network.", GroupID: DemoVisitors, Networks: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}},
		{ID: "this-computer", Name: "This computer", Description: "Loopback: the demo treats this computer as a key stage 2 pupil's device.",
			GroupID: DemoKeyStage2, Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
	}
	for _, z := range zones {
		if err := a.Directory.PutZone(ctx, demoActor, z); err != nil {
			return err
		}
	}
	if _, err := a.Policies.AddRule(ctx, demoActor, DemoStaff, policystore.RuleSpec{
		Name: "Social media at lunchtime in the staff room", Action: "allow", Categories: "social-media",
		Days: "mon-fri", Start: "12:00", End: "13:15", Zones: "staff-room",
	}); err != nil {
		return err
	}
	rules := []directory.MembershipRule{
		{Position: 1, GroupID: DemoEarlyYears, Kind: directory.KindPupil, MinYear: intp(-1), MaxYear: intp(2)},
		{Position: 2, GroupID: DemoKeyStage2, Kind: directory.KindPupil, MinYear: intp(3), MaxYear: intp(6)},
		{Position: 3, GroupID: DemoStaff, Kind: directory.KindStaff},
		{Position: 4, GroupID: DemoVisitors, Kind: directory.KindVisitor},
	}
	if err := a.Directory.SetMembershipRules(ctx, demoActor, rules); err != nil {
		return err
	}
	people := []directory.Person{
		{Kind: directory.KindPupil, UPN: "A820000000101", LegalForename: "Ava", Surname: "Evans", Year: 0, HasYear: true, RegGroup: "RB", Username: "ava.evans"},
		{Kind: directory.KindPupil, UPN: "A820000000102", LegalForename: "Noah", Surname: "Patel", Year: 2, HasYear: true, RegGroup: "2C", Username: "noah.patel"},
		{Kind: directory.KindPupil, UPN: "A820000000103", LegalForename: "Mia", Surname: "Jones", Year: 4, HasYear: true, RegGroup: "4A", Username: "mia.jones"},
		{Kind: directory.KindPupil, UPN: "A820000000104", LegalForename: "Jack", Surname: "Brown", Year: 6, HasYear: true, RegGroup: "6B", Username: "jack.brown"},
		{Kind: directory.KindStaff, MISID: "S001", LegalForename: "Grace", Surname: "Smith", Role: "Headteacher", Username: "gsmith", Email: "gsmith@demo-school.example"},
		{Kind: directory.KindStaff, MISID: "S003", LegalForename: "Alfie", Surname: "Williams", Role: "Designated Safeguarding Lead", Username: "awilliams", Email: "awilliams@demo-school.example"},
		{Kind: directory.KindStaff, MISID: "S004", LegalForename: "Sophia", Surname: "O'Brien", Role: "Class Teacher", Username: "sobrien", Email: "sobrien@demo-school.example"},
		{Kind: directory.KindStaff, MISID: "S009", LegalForename: "Priya", Surname: "Shah", Role: "IT Technician", Username: "pshah", Email: "pshah@demo-school.example"},
		{Kind: directory.KindVisitor, LegalForename: "Sam", Surname: "Taylor", Role: "Supply teacher (visitor)", Email: "sam.taylor@agency.example"},
		{Kind: directory.KindParent, LegalForename: "Olivia", Surname: "Jones", Email: "olivia.jones@home.example"},
	}
	ids := map[string]int64{}
	for _, p := range people {
		id, err := a.Directory.AddPerson(ctx, demoActor, p)
		if err != nil {
			return fmt.Errorf("person %s %s: %w", p.LegalForename, p.Surname, err)
		}
		ids[p.LegalForename+" "+p.Surname] = id
	}
	if err := a.Directory.LinkGuardian(ctx, demoActor, ids["Olivia Jones"], ids["Mia Jones"], "Mother"); err != nil {
		return err
	}
	devices := []directory.Device{
		{Name: "reception-ipad-03", Kind: "school", GroupID: DemoEarlyYears, IP: netip.MustParseAddr("10.30.2.3"), MAC: "02:00:5e:10:00:03", Notes: "Reception class iPad trolley."},
		{Name: "ks2-ipad-01", Kind: "school", GroupID: DemoKeyStage2, IP: netip.MustParseAddr("10.30.1.21"), MAC: "02:00:5e:10:01:21", Notes: "Year 4 iPad trolley."},
		{Name: "library-pc-2", Kind: "school", IP: netip.MustParseAddr("10.30.3.2"), MAC: "02:00:5e:10:03:02", Notes: "Library desktop; pupils sign in."},
		{Name: "dsl-laptop", Kind: "school", OwnerID: ids["Alfie Williams"], IP: netip.MustParseAddr("10.20.0.15"), MAC: "02:00:5e:20:00:15", Notes: "DSL's laptop; also used off site."},
		{Name: "head-laptop", Kind: "school", OwnerID: ids["Grace Smith"], IP: netip.MustParseAddr("10.20.0.16"), MAC: "02:00:5e:20:00:16"},
		{Name: "visitor-phone", Kind: "personal", OwnerID: ids["Sam Taylor"], IP: netip.MustParseAddr("10.99.0.40")},
	}
	for _, d := range devices {
		if _, err := a.Directory.AddDevice(ctx, demoActor, d); err != nil {
			return fmt.Errorf("device %s: %w", d.Name, err)
		}
	}
	if _, err := a.Lists.ImportUT1FS(ctx, builtin.StarterUT1(), "starter/ut1", demoActor); err != nil {
		return fmt.Errorf("starter lists: %w", err)
	}
	return nil
}
