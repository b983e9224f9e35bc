package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
)

func TestConsoleSettings(t *testing.T) {
	f := newConsoleFixture(t, func(o *ConsoleOptions) { o.SignInLimit = 1000 })
	ctx := context.Background()
	headID := f.account(t, "head", auth.RoleHeadteacher)
	teacherID := f.account(t, "teacher", auth.RoleStaff)
	newbie, err := f.dir.AddPerson(ctx, "test", directory.Person{Kind: directory.KindStaff, LegalForename: "New", Surname: "Starter",
		Username: "nstarter", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn("head", testPassword)
	settings := b.do("GET", "/settings", nil)
	if settings.status != http.StatusOK || !strings.Contains(settings.body, "Test Person teacher") || !strings.Contains(settings.body, "your own account") {
		t.Fatalf("settings: %d\n%s", settings.status, settings.body)
	}
	tok := b.csrf(settings)
	post := func(path string, form url.Values) page {
		form.Set("csrf", tok)
		return b.do("POST", path, form)
	}
	// Give an account: the first password is shown once, to be changed.
	p := post("/settings/accounts", url.Values{"login": {"nstarter"}, "role": {"leadership"}})
	m := regexp.MustCompile(`<code class="secret">([a-z2-9-]{19})</code>`).FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		t.Fatalf("give an account: %d\n%s", p.status, p.body)
	}
	a, err := f.accounts.Verify(ctx, "nstarter", m[1])
	if err != nil || a.Role != auth.RoleLeadership || !a.MustChange {
		t.Fatalf("the new account: %+v %v", a, err)
	}
	if p := post("/settings/accounts", url.Values{"login": {"nobody"}, "role": {"staff"}}); p.status != http.StatusBadRequest {
		t.Errorf("unknown person: %d", p.status)
	}
	// Role, lockout, disable, password reset.
	base := "/settings/accounts/" + strconv.FormatInt(teacherID, 10)
	if p := post(base+"/role", url.Values{"role": {"dsl"}}); p.location != "/settings" {
		t.Fatalf("set role: %d\n%s", p.status, p.body)
	}
	if got, _ := f.accounts.Get(ctx, teacherID); got.Role != auth.RoleDSL {
		t.Errorf("role now %s", got.Role)
	}
	for range 5 {
		f.accounts.Verify(ctx, "teacher", "wrong guess again")
	}
	if p := b.do("GET", "/settings", nil); !strings.Contains(p.body, base+"/unlock") {
		t.Fatal("no unlock for a locked account")
	}
	post(base+"/unlock", url.Values{})
	if _, err := f.accounts.Verify(ctx, "teacher", testPassword); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	post(base+"/disable", url.Values{})
	if _, err := f.accounts.Verify(ctx, "teacher", testPassword); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("after disable: %v", err)
	}
	post(base+"/enable", url.Values{})
	p = post(base+"/reset-password", url.Values{})
	if m := regexp.MustCompile(`<code class="secret">([a-z2-9-]{19})</code>`).FindStringSubmatch(p.body); m == nil {
		t.Fatalf("reset password:\n%s", p.body)
	} else if a, err := f.accounts.Verify(ctx, "teacher", m[1]); err != nil || !a.MustChange {
		t.Fatalf("reset password: %+v %v", a, err)
	}
	// Not one's own account; not for IT without the permission... staff
	// cannot reach it at all.
	if p := post("/settings/accounts/"+strconv.FormatInt(headID, 10)+"/disable", url.Values{}); p.status != http.StatusBadRequest {
		t.Errorf("disable oneself: %d", p.status)
	}
	if p := post(base+"/explode", url.Values{}); p.status != http.StatusNotFound {
		t.Errorf("unknown action: %d", p.status)
	}
	entries, _, _ := f.audit.List(ctx, audit.Filter{Action: audit.ActionAccountChanged, Limit: 100})
	if len(entries) < 5 {
		t.Errorf("account changes audited: %d", len(entries))
	}
	if entries, _, _ := f.audit.List(ctx, audit.Filter{Action: audit.ActionAccountCreated}); len(entries) != 1 {
		t.Errorf("account creations audited: %+v", entries)
	}
	_ = newbie
}
