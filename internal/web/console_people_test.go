package web

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/identity"
)

// dirTokens issues tokens straight into the directory, as the app does
// (whose own, with the settings' URLs, is tested in internal/app).
type dirTokens struct{ dir *directory.Directory }

func (d dirTokens) IssueToken(ctx context.Context, actor, name string) (IssuedDeviceToken, error) {
	dev, err := d.dir.DeviceByName(ctx, name)
	if err != nil {
		return IssuedDeviceToken{}, err
	}
	tok, err := identity.NewToken(rand.Reader)
	if err != nil {
		return IssuedDeviceToken{}, err
	}
	if err := d.dir.SetDeviceToken(ctx, actor, dev.ID, identity.HashToken(tok)); err != nil {
		return IssuedDeviceToken{}, err
	}
	return IssuedDeviceToken{Device: name, Token: tok, DoHURL: "https://warden.test/dns-query/" + tok, Replaced: dev.TokenHash != ""}, nil
}

func (d dirTokens) RevokeToken(ctx context.Context, actor, name string) (bool, error) {
	dev, err := d.dir.DeviceByName(ctx, name)
	if err != nil {
		return false, err
	}
	return dev.TokenHash != "", d.dir.SetDeviceToken(ctx, actor, dev.ID, "")
}

func TestConsolePeople(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 1000 })
	ctx := context.Background()
	for i, name := range []string{"Ava", "Noah", "Mia"} {
		id, err := f.dir.AddPerson(ctx, "test", directory.Person{Kind: directory.KindPupil, LegalForename: name, Surname: "Pupil",
			Username: strings.ToLower(name) + ".pupil", Year: i + 3, HasYear: true, RegGroup: "4A", Active: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.dir.AddDevice(ctx, "test", directory.Device{Name: strings.ToLower(name) + "-laptop", Kind: directory.DeviceSchool,
			OwnerID: id, IP: netip.AddrFrom4([4]byte{10, 30, 1, byte(10 + i)})}); err != nil {
			t.Fatal(err)
		}
	}
	f.account(t, "itech", auth.RoleIT)
	f.account(t, "leader", auth.RoleLeadership)
	f.account(t, "teacher", auth.RoleStaff)
	it, lead, staff := f.browser(t), f.browser(t), f.browser(t)
	it.signIn("itech", testPassword)
	lead.signIn("leader", testPassword)
	staff.signIn("teacher", testPassword)

	p := it.do("GET", "/people?q=mia", nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Mia Pupil") || strings.Contains(p.body, "Noah Pupil") ||
		!strings.Contains(p.body, "mia-laptop") || strings.Contains(p.body, "noah-laptop") || !strings.Contains(p.body, "Year 5") {
		t.Fatalf("search: %d\n%s", p.status, p.body)
	}
	if p := it.do("GET", "/people?kind=staff", nil); strings.Contains(p.body, "<td>Mia Pupil</td><td>pupil</td>") || !strings.Contains(p.body, "Person itech") {
		t.Errorf("kind filter:\n%s", p.body)
	}
	if p := it.do("GET", "/people?kind=dragons", nil); p.status != http.StatusBadRequest {
		t.Errorf("bad kind: %d", p.status)
	}
	// IT issues a token: shown once, with the settings.
	page := it.do("GET", "/people?q=mia", nil)
	m := regexp.MustCompile(`action="/people/devices/(\d+)/token"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no token action for IT:\n%s", page.body)
	}
	p = it.do("POST", "/people/devices/"+m[1]+"/token", url.Values{"csrf": {it.csrf(page)}})
	tok := regexp.MustCompile(`<code class="secret">([a-z2-7]{52})</code>`).FindStringSubmatch(p.body)
	if p.status != http.StatusOK || tok == nil || !strings.Contains(p.body, "dns-query/"+tok[1]) || !strings.Contains(p.body, "shown only this once") {
		t.Fatalf("issue: %d\n%s", p.status, p.body)
	}
	dev, _ := f.dir.DeviceByName(ctx, "mia-laptop")
	if dev.TokenHash != identity.HashToken(tok[1]) {
		t.Fatal("the token shown is not the one stored")
	}
	page = it.do("GET", "/people?q=mia", nil)
	if !strings.Contains(page.body, "issued ") || !strings.Contains(page.body, "/token/revoke") {
		t.Fatalf("after issuing:\n%s", page.body)
	}
	if p := it.do("POST", "/people/devices/"+m[1]+"/token/revoke", url.Values{"csrf": {it.csrf(page)}}); p.location != "/people" {
		t.Fatalf("revoke: %d %s", p.status, p.location)
	}
	if dev, _ := f.dir.DeviceByName(ctx, "mia-laptop"); dev.TokenHash != "" {
		t.Fatal("token not revoked")
	}
	// Leadership sees people but manages no tokens; staff see nothing.
	lp := lead.do("GET", "/people", nil)
	if lp.status != http.StatusOK || strings.Contains(lp.body, "/token\"") {
		t.Errorf("leadership's page: %d", lp.status)
	}
	if p := lead.do("POST", "/people/devices/"+m[1]+"/token", url.Values{"csrf": {lead.csrf(lp)}}); p.status != http.StatusForbidden {
		t.Errorf("leadership issuing a token: %d", p.status)
	}
	if p := staff.do("GET", "/people", nil); p.status != http.StatusForbidden {
		t.Errorf("staff's people page: %d", p.status)
	}
	entries, _, _ := f.audit.List(ctx, audit.Filter{Limit: 500})
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Action+"/"+e.Outcome] = true
	}
	for _, want := range []string{"people-viewed/ok", "device-token-issued/ok", "device-token-revoked/ok"} {
		if !seen[want] {
			t.Errorf("audit lacks %s", want)
		}
	}
}
