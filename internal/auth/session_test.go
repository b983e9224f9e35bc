package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/store"
)

func (f *fixture) account(t *testing.T, login string, role Role) Account {
	t.Helper()
	ctx := context.Background()
	id := f.person(t, directory.Person{Kind: directory.KindStaff, LegalForename: "Test", Surname: strings.ToUpper(login[:1]) + login[1:], Username: login})
	if err := f.accounts.Set(ctx, "test", id, "quiet harbour lantern", SetOptions{Role: role}); err != nil {
		t.Fatal(err)
	}
	a, err := f.accounts.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	staff := f.account(t, "teacher", RoleStaff)
	ip := netip.MustParseAddr("10.20.0.15")
	cookie, sess, err := f.accounts.StartSession(ctx, staff, ip, strings.Repeat("Mozilla/5.0 ", 40))
	if err != nil {
		t.Fatal(err)
	}
	if !sess.SecondFactor || len(sess.UserAgent) != maxUserAgent || strings.Contains(sess.ID, cookie) || len(cookie) < 40 {
		t.Fatalf("session %+v cookie %q", sess, cookie)
	}
	got, acct, err := f.accounts.Session(ctx, cookie)
	if err != nil || got.ID != sess.ID || acct.Person.ID != staff.Person.ID || got.ClientIP != ip {
		t.Fatalf("Session = %+v %+v %v", got, acct, err)
	}
	for _, bad := range []string{"", cookie + "x", strings.Repeat("a", 200)} {
		if _, _, err := f.accounts.Session(ctx, bad); !errors.Is(err, ErrNoSession) {
			t.Errorf("Session(%q) = %v", bad, err)
		}
	}
	// Used within the idle timeout, it lives on; unused for it, it ends.
	f.advance(DefaultSessionIdle - time.Minute)
	if _, _, err := f.accounts.Session(ctx, cookie); err != nil {
		t.Fatalf("used within the idle time: %v", err)
	}
	f.advance(DefaultSessionIdle - time.Second)
	if _, _, err := f.accounts.Session(ctx, cookie); err != nil {
		t.Fatalf("touched a minute ago: %v", err)
	}
	f.advance(DefaultSessionIdle)
	if _, _, err := f.accounts.Session(ctx, cookie); !errors.Is(err, ErrNoSession) {
		t.Fatalf("idle session still open: %v", err)
	}
	// The absolute limit holds however busy the session is.
	cookie, _, _ = f.accounts.StartSession(ctx, staff, ip, "")
	for range int(DefaultSessionMax/(20*time.Minute)) - 1 {
		f.advance(20 * time.Minute)
		if _, _, err := f.accounts.Session(ctx, cookie); err != nil {
			t.Fatalf("busy session ended early: %v", err)
		}
	}
	f.advance(20 * time.Minute)
	if _, _, err := f.accounts.Session(ctx, cookie); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session past its absolute limit: %v", err)
	}
	// Signing out, a new password, disabling and leaving all end sessions.
	for name, end := range map[string]func(cookie string){
		"sign out": func(c string) { f.accounts.EndSession(ctx, c) },
		"new password": func(string) {
			f.accounts.Set(ctx, "it", staff.Person.ID, "another quiet harbour", SetOptions{Role: RoleStaff})
		},
		"disabled":     func(string) { f.accounts.SetDisabled(ctx, "it", staff.Person.ID, true) },
		"role changed": func(string) { f.accounts.SetRole(ctx, "it", staff.Person.ID, RoleGovernor) },
		"left":         func(string) { f.dir.SetPersonActive(ctx, "it", staff.Person.ID, false) },
	} {
		f.accounts.SetDisabled(ctx, "it", staff.Person.ID, false)
		f.dir.SetPersonActive(ctx, "it", staff.Person.ID, true)
		c, _, err := f.accounts.StartSession(ctx, staff, ip, "")
		if err != nil {
			t.Fatal(err)
		}
		end(c)
		if _, _, err := f.accounts.Session(ctx, c); !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: session still open (%v)", name, err)
		}
	}
}

func TestTOTP(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	it := f.account(t, "itech", RoleIT)
	_, sess, err := f.accounts.StartSession(ctx, it, netip.Addr{}, "")
	if err != nil || sess.SecondFactor {
		t.Fatalf("an IT session must wait for the second factor: %+v %v", sess, err)
	}
	if err := f.accounts.CheckTOTP(ctx, it.Person.ID, "123456"); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("check before enrolment: %v", err)
	}
	enr, err := f.accounts.BeginTOTP(ctx, it.Person.ID, "Greenfield Primary")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enr.URL, "otpauth://totp/Greenfield%20Primary:itech?") || len(enr.Secret) < 16 {
		t.Fatalf("enrolment %+v", enr)
	}
	var stored []byte
	f.db.QueryRow(`SELECT totp_secret FROM accounts WHERE person_id = ?`, it.Person.ID).Scan(&stored)
	if strings.Contains(string(stored), enr.Secret) {
		t.Fatal("the TOTP secret is stored in clear")
	}
	code := func(at time.Time) string {
		c, err := totp.GenerateCodeCustom(enr.Secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := f.accounts.CheckTOTP(ctx, it.Person.ID, code(f.clock())); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("sign-in with a pending secret: %v", err)
	}
	if err := f.accounts.ConfirmTOTP(ctx, it.Person.ID, "000000"); !errors.Is(err, ErrBadCode) {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	if err := f.accounts.ConfirmTOTP(ctx, it.Person.ID, code(f.clock())); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.accounts.Get(ctx, it.Person.ID); !a.TOTPEnabled {
		t.Fatal("not enabled after confirmation")
	}
	// The code just used cannot be used again.
	if err := f.accounts.CheckTOTP(ctx, it.Person.ID, code(f.clock())); !errors.Is(err, ErrBadCode) {
		t.Fatalf("replayed code: %v", err)
	}
	f.advance(30 * time.Second)
	for _, tc := range []struct {
		name string
		code string
		want error
	}{
		{"letters", "12a456", ErrBadCode},
		{"short", "12345", ErrBadCode},
		{"two steps old", code(f.clock().Add(-60 * time.Second)), ErrBadCode},
		{"current, with a space", code(f.clock())[:3] + " " + code(f.clock())[3:], nil},
		{"current again", code(f.clock()), ErrBadCode},
		{"next step (clock drift)", code(f.clock().Add(30 * time.Second)), nil},
	} {
		if err := f.accounts.CheckTOTP(ctx, it.Person.ID, tc.code); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := f.accounts.PassSecondFactor(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := f.accounts.ResetTOTP(ctx, "test", it.Person.ID); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.accounts.Get(ctx, it.Person.ID); a.TOTPEnabled {
		t.Fatal("still enabled after reset")
	}
}

func TestSetUpFirstAdmin(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	token, err := f.accounts.NewSetupToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := FirstAdmin{Person: directory.Person{LegalForename: "Priya", Surname: "Shah", Username: "pshah", Email: "pshah@school.example"},
		Role: RoleIT, Password: "copper kettle on the hill"}
	for _, tc := range []struct {
		name  string
		token string
		edit  func(*FirstAdmin)
		want  string
	}{
		{"bad token", "nope", nil, "not valid"},
		{"staff role", token, func(a *FirstAdmin) { a.Role = RoleStaff }, "must be IT, the headteacher or the DSL"},
		{"weak password", token, func(a *FirstAdmin) { a.Password = "password12345" }, "commonly used"},
		{"own name", token, func(a *FirstAdmin) { a.Password = "priya shah rules ok" }, "your name"},
	} {
		a := admin
		if tc.edit != nil {
			tc.edit(&a)
		}
		if _, err := f.accounts.SetUpFirstAdmin(ctx, tc.token, a); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	acct, err := f.accounts.SetUpFirstAdmin(ctx, token, admin)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Role != RoleIT || acct.Person.Kind != directory.KindStaff || acct.Person.Username != "pshah" {
		t.Fatalf("first admin %+v", acct)
	}
	if _, err := f.accounts.Verify(ctx, "pshah@school.example", "copper kettle on the hill"); err != nil {
		t.Fatalf("first admin cannot sign in: %v", err)
	}
	// The link is used up, and no new one is made once an admin exists.
	if _, err := f.accounts.SetUpFirstAdmin(ctx, token, admin); !errors.Is(err, ErrSetupToken) {
		t.Fatalf("link used twice: %v", err)
	}
	if _, err := f.accounts.NewSetupToken(ctx); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("new link with an admin: %v", err)
	}
}

func TestSetupTokenExpiresAndIsReplaced(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	first, _ := f.accounts.NewSetupToken(ctx)
	second, _ := f.accounts.NewSetupToken(ctx)
	if err := f.accounts.CheckSetupToken(ctx, first); !errors.Is(err, ErrSetupToken) {
		t.Errorf("replaced link still works: %v", err)
	}
	if err := f.accounts.CheckSetupToken(ctx, second); err != nil {
		t.Errorf("new link: %v", err)
	}
	f.advance(SetupTokenTTL)
	if err := f.accounts.CheckSetupToken(ctx, second); !errors.Is(err, ErrSetupToken) {
		t.Errorf("expired link: %v", err)
	}
}
