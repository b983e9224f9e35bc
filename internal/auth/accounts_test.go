package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/keyring"
	"github.com/warden-schools/warden/internal/store"
	"github.com/warden-schools/warden/internal/wardentest"
)

type fixture struct {
	db       *store.DB
	dir      *directory.Directory
	accounts *Accounts
	now      time.Time
	mu       sync.Mutex
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{db: wardentest.OpenStore(t), now: time.Date(2026, 9, 3, 8, 30, 0, 0, time.UTC)}
	f.dir = directory.New(f.db, f.clock)
	ring, err := keyring.New(bytes.Repeat([]byte{7}, 32), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(f.db, f.dir, Options{Now: f.clock, Rand: rand.Reader, Params: testParams, Sealer: ring,
		SchoolName: func(context.Context) string { return "Greenfield Primary" }})
	if err != nil {
		t.Fatal(err)
	}
	f.accounts = a
	return f
}

func (f *fixture) person(t *testing.T, p directory.Person) int64 {
	t.Helper()
	p.Active = true
	id, err := f.dir.AddPerson(context.Background(), "test", p)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSetAndVerify(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	head := f.person(t, directory.Person{Kind: directory.KindStaff, LegalForename: "Ada", Surname: "Lovelace",
		Username: "alovelace", Email: "ada.lovelace@greenfield.sch.uk", Role: "Headteacher"})
	rev := wardentest.Revision(t, f.db)
	if err := f.accounts.Set(ctx, "it@test", head, "paper lantern over the river", SetOptions{Role: RoleHeadteacher}); err != nil {
		t.Fatal(err)
	}
	if wardentest.Revision(t, f.db) == rev {
		t.Error("setting a password added no revision")
	}
	for _, login := range []string{"alovelace", "ALovelace", "ada.lovelace@greenfield.sch.uk"} {
		a, err := f.accounts.Verify(ctx, login, "paper lantern over the river")
		if err != nil {
			t.Fatalf("Verify(%s): %v", login, err)
		}
		if a.Person.ID != head || a.Role != RoleHeadteacher || a.LastLoginAt.IsZero() || !a.Role.RequiresTOTP() {
			t.Fatalf("Verify(%s) = %+v", login, a)
		}
	}
	for _, tc := range []struct{ login, pw string }{
		{"alovelace", "paper lantern over the rivers"},
		{"nobody", "paper lantern over the river"},
		{"", "paper lantern over the river"},
		{"alovelace", ""},
	} {
		if _, err := f.accounts.Verify(ctx, tc.login, tc.pw); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("Verify(%q, %q) = %v, want ErrInvalidCredentials", tc.login, tc.pw, err)
		}
	}
	got, err := f.accounts.Get(ctx, head)
	if err != nil || got.FailedLogins != 2 {
		t.Fatalf("after two wrong passwords: %+v, %v", got, err)
	}
	all, console, err := f.accounts.Count(ctx)
	if err != nil || all != 1 || console != 1 {
		t.Fatalf("Count = %d, %d, %v", all, console, err)
	}
}

func TestSetRefuses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	pupil := f.person(t, directory.Person{Kind: directory.KindPupil, LegalForename: "Sam", Surname: "Brown", Username: "sbrown", Year: 5, HasYear: true})
	noLogin := f.person(t, directory.Person{Kind: directory.KindStaff, LegalForename: "No", Surname: "Login"})
	parent := f.person(t, directory.Person{Kind: directory.KindParent, LegalForename: "Pat", Surname: "Brown", Email: "pat@example.org"})
	for _, tc := range []struct {
		name   string
		person int64
		pw     string
		role   Role
		want   string
	}{
		{"pupil with a console role", pupil, "a long enough pass phrase", RoleStaff, "for staff only"},
		{"pupil common password", pupil, "football", RoleNone, "commonly used"},
		{"pupil short password", pupil, "blue7", RoleNone, "at least 8"},
		{"pupil own name", pupil, "sbrown rules ok", RoleNone, "your name"},
		{"school name", parent, "greenfield forever and ever", RoleGovernor, "school's name"},
		{"parent as IT", parent, "a long enough pass phrase", RoleIT, "for staff only"},
		{"no login", noLogin, "a long enough pass phrase", RoleStaff, "no username or email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.accounts.Set(ctx, "test", tc.person, tc.pw, SetOptions{Role: tc.role})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Set = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if err := f.accounts.Set(ctx, "test", pupil, "purple otter 42", SetOptions{}); err != nil {
		t.Fatalf("a pupil's 8+ character password: %v", err)
	}
	if err := f.accounts.Set(ctx, "test", parent, "a long enough pass phrase", SetOptions{Role: RoleGovernor}); err != nil {
		t.Fatalf("parent governor: %v", err)
	}
	if _, err := f.accounts.Get(ctx, noLogin); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused account was stored: %v", err)
	}
}

func TestLockout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.person(t, directory.Person{Kind: directory.KindStaff, LegalForename: "Ian", Surname: "Tech", Username: "itech"})
	if err := f.accounts.Set(ctx, "test", id, "violet tractor sandwich", SetOptions{Role: RoleIT}); err != nil {
		t.Fatal(err)
	}
	for i := range lockoutAfter {
		if _, err := f.accounts.Verify(ctx, "itech", "wrong guess"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, err := f.accounts.Verify(ctx, "itech", "violet tractor sandwich")
	var locked *LockedError
	if !errors.As(err, &locked) || !locked.Until.Equal(f.clock().Add(lockoutBase)) {
		t.Fatalf("right password while locked: %v, want locked for %v", err, lockoutBase)
	}
	f.advance(lockoutBase)
	for range lockoutAfter {
		f.accounts.Verify(ctx, "itech", "wrong again")
	}
	if _, err := f.accounts.Verify(ctx, "itech", "violet tractor sandwich"); !errors.As(err, &locked) || !locked.Until.Equal(f.clock().Add(2*lockoutBase)) {
		t.Fatalf("second lockout: %v, want twice as long", err)
	}
	if err := f.accounts.Unlock(ctx, "test", id); err != nil {
		t.Fatal(err)
	}
	a, err := f.accounts.Verify(ctx, "itech", "violet tractor sandwich")
	if err != nil || a.FailedLogins != 0 {
		t.Fatalf("after unlock: %+v, %v", a, err)
	}
}

func TestDisableRemoveRole(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.person(t, directory.Person{Kind: directory.KindStaff, LegalForename: "Dee", Surname: "Esel", Username: "desel"})
	pw := "marmalade telescope window"
	if err := f.accounts.Set(ctx, "test", id, pw, SetOptions{Role: RoleStaff, MustChange: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.accounts.SetDisabled(ctx, "test", id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.accounts.Verify(ctx, "desel", pw); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("disabled account signed in: %v", err)
	}
	if err := f.accounts.SetDisabled(ctx, "test", id, false); err != nil {
		t.Fatal(err)
	}
	if err := f.accounts.SetRole(ctx, "test", id, RoleDSL); err != nil {
		t.Fatal(err)
	}
	a, err := f.accounts.Verify(ctx, "desel", pw)
	if err != nil || a.Role != RoleDSL || !a.MustChange {
		t.Fatalf("after enable and role change: %+v, %v", a, err)
	}
	if err := f.dir.SetPersonActive(ctx, "test", id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.accounts.Verify(ctx, "desel", pw); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("a person who left signed in: %v", err)
	}
	if err := f.accounts.Remove(ctx, "test", id); err != nil {
		t.Fatal(err)
	}
	if err := f.accounts.Remove(ctx, "test", id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	list, err := f.accounts.List(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("List = %v, %v", list, err)
	}
}

func TestPasswordExpiryAndRehash(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.person(t, directory.Person{Kind: directory.KindStaff, LegalForename: "Rea", Surname: "Hash", Username: "rhash"})
	pw := "orange kettle mountain"
	if err := f.accounts.Set(ctx, "test", id, pw, SetOptions{Role: RoleStaff}); err != nil {
		t.Fatal(err)
	}
	a, _ := f.accounts.Get(ctx, id)
	if a.PasswordExpired(f.clock()) || !a.PasswordExpired(f.clock().Add(PasswordMaxAge)) {
		t.Fatal("PasswordExpired wrong")
	}
	// Costs raised: the next sign-in rehashes.
	f.accounts.opts.Params = Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	if _, err := f.accounts.Verify(ctx, "rhash", pw); err != nil {
		t.Fatal(err)
	}
	var h string
	if err := f.db.QueryRow(`SELECT password_hash FROM accounts WHERE person_id = ?`, id).Scan(&h); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h, "m=128,") {
		t.Fatalf("not rehashed under the new costs: %s", h)
	}
	if _, err := f.accounts.Verify(ctx, "rhash", pw); err != nil {
		t.Fatalf("after rehash: %v", err)
	}
}

func TestConcurrentFailuresCount(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.person(t, directory.Person{Kind: directory.KindStaff, LegalForename: "Con", Surname: "Current", Username: "ccurrent"})
	if err := f.accounts.Set(ctx, "test", id, "yellow submarine garden", SetOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { f.accounts.Verify(ctx, "ccurrent", "nope nope nope") })
	}
	wg.Wait()
	a, err := f.accounts.Get(ctx, id)
	if err != nil || a.FailedLogins != 4 {
		t.Fatalf("4 concurrent failures counted as %d (%v)", a.FailedLogins, err)
	}
}

// New must not hash anything: an argon2id hash at start-up would leave
// its 19 MiB in the filter's resident memory.
func TestNewIsCheap(t *testing.T) {
	f := newFixture(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := New(f.db, f.dir, Options{Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("New allocated %d bytes", grew)
	}
	// Unknown logins still cost a full check: the dummy hash is a real
	// argon2id string at the configured costs.
	if p, _, _, err := parseHash(f.accounts.dummy); err != nil || p != testParams {
		t.Fatalf("dummy hash %q: %+v %v", f.accounts.dummy, p, err)
	}
}
