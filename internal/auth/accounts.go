// Package auth keeps Warden's sign-in credentials: an account for a
// person in the directory, with a console role (or none: credentials for
// the web proxy only), an argon2id password hash, the yearly password
// change, and a temporary lockout after repeated failures. The console's
// sessions, two-factor enrolment and permissions build on it.
package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/store"
)

// Lockout: every lockoutAfter consecutive failures lock an account for
// lockoutBase, doubling each time up to lockoutMax; a success resets the
// count.
const (
	lockoutAfter = 5
	lockoutBase  = 15 * time.Minute
	lockoutMax   = 4 * time.Hour
)

// PasswordMaxAge is how long a password lasts before it must be changed:
// the yearly change the schools' policies ask for.
const PasswordMaxAge = 365 * 24 * time.Hour

// ErrInvalidCredentials means the login or password is wrong, or the
// account is disabled or does not exist; callers must not say which.
var ErrInvalidCredentials = errors.New("wrong login or password")

// LockedError means the account is locked after repeated failures; the
// password was not checked.
type LockedError struct {
	Until time.Time
}

// Error says until when the account is locked.
func (e *LockedError) Error() string {
	return "too many failed sign-ins: the account is locked until " + e.Until.Format("15:04 MST")
}

// People finds people in the directory, and adds the first
// administrator to it (a *directory.Directory).
type People interface {
	Person(ctx context.Context, id int64) (directory.Person, error)
	PersonByLogin(ctx context.Context, login string) (directory.Person, error)
	AddPerson(ctx context.Context, actor string, p directory.Person) (int64, error)
}

// Account is a person's credentials and what they allow, with the person
// as the directory has them.
type Account struct {
	Person        directory.Person
	Role          Role
	PasswordSetAt time.Time
	// MustChange asks for a new password at the next console sign-in (a
	// password set by someone else, or a reset).
	MustChange   bool
	TOTPEnabled  bool
	FailedLogins int
	LockedUntil  time.Time
	LastLoginAt  time.Time
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// PasswordExpired reports whether the password is older than
// PasswordMaxAge at now.
func (a Account) PasswordExpired(now time.Time) bool {
	return now.Sub(a.PasswordSetAt) >= PasswordMaxAge
}

// Options tune Accounts.
type Options struct {
	// Now is the clock (time.Now).
	Now func() time.Time
	// Rand gives salts (crypto/rand.Reader); required.
	Rand io.Reader
	// Params are the argon2id costs for new hashes (DefaultParams).
	Params Params
	// MaxConcurrent bounds password hashes computed at once, each taking
	// Params.Memory (2).
	MaxConcurrent int
	// Sealer seals two-factor secrets at rest (the master key ring); nil
	// leaves two-factor authentication unavailable.
	Sealer Sealer
	// SessionIdle and SessionMax are how long a console session lasts
	// unused and at most (DefaultSessionIdle, DefaultSessionMax).
	SessionIdle, SessionMax time.Duration
	// SchoolName returns the school's name, whose words a password must
	// not contain (nil: none).
	SchoolName func(context.Context) string
	Logger     *slog.Logger
}

// Accounts stores and checks credentials.
type Accounts struct {
	db     *store.DB
	people People
	opts   Options
	log    *slog.Logger
	check  Checker
	// hashing bounds concurrent argon2id work (memory and CPU).
	hashing chan struct{}
	// dummy is a hash verified for unknown logins, so that they take as
	// long as wrong passwords and do not reveal who has an account.
	dummy string
}

// New returns Accounts over db, finding people through people.
func New(db *store.DB, people People, opts Options) (*Accounts, error) {
	if opts.Rand == nil {
		return nil, errors.New("auth: Options.Rand is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Params == (Params{}) {
		opts.Params = DefaultParams()
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = DefaultSessionIdle
	}
	if opts.SessionMax <= 0 {
		opts.SessionMax = DefaultSessionMax
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.Params.check(); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	// Checking a password against this costs what checking a real one
	// does, and no password matches it (its key is not a hash of
	// anything). It is not computed here: hashing at start-up would take
	// Params.Memory of resident memory for nothing.
	dummy := opts.Params.encode(make([]byte, opts.Params.SaltLen), make([]byte, opts.Params.KeyLen))
	return &Accounts{db: db, people: people, opts: opts, log: opts.Logger.With("component", "auth"),
		hashing: make(chan struct{}, opts.MaxConcurrent), dummy: dummy}, nil
}

// hash and verify run argon2id within the concurrency bound.
func (s *Accounts) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer func() { <-s.hashing }()
	return HashPassword(s.opts.Rand, s.opts.Params, password)
}

func (s *Accounts) verify(ctx context.Context, encoded, password string) (bool, Params, error) {
	if err := s.acquire(ctx); err != nil {
		return false, Params{}, err
	}
	defer func() { <-s.hashing }()
	return VerifyPassword(encoded, password)
}

func (s *Accounts) acquire(ctx context.Context) error {
	select {
	case s.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait to check a password: %w", ctx.Err())
	}
}

// CheckPassword reports, as a *WeakPasswordError, why password is not good
// enough for person p with role r, or nil.
func (s *Accounts) CheckPassword(ctx context.Context, p directory.Person, r Role, password string) error {
	school := ""
	if s.opts.SchoolName != nil {
		school = s.opts.SchoolName(ctx)
	}
	return s.check.Check(password, MinPasswordLen(p.Kind, r),
		p.LegalForename, p.PreferredForename, p.Surname, p.Username, localPart(p.Email), school)
}

func localPart(email string) string {
	l, _, _ := strings.Cut(email, "@")
	return l
}

// SetOptions say what Set changes besides the password.
type SetOptions struct {
	// Role is the account's role (RoleNone: proxy credentials only).
	Role Role
	// MustChange asks the person for a new password at their next console
	// sign-in: set it when someone else chose the password.
	MustChange bool
}

// Set gives person personID an account with password (replacing the
// password and role of an existing one, and clearing a lockout). The
// person must be active and have a username or email to sign in with; the
// role must suit their kind; the password must pass CheckPassword. The
// change is recorded as a revision by actor, so running filters pick it
// up.
func (s *Accounts) Set(ctx context.Context, actor string, personID int64, password string, o SetOptions) error {
	p, err := s.people.Person(ctx, personID)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if err := s.eligible(p, o.Role); err != nil {
		return err
	}
	if err := s.CheckPassword(ctx, p, o.Role, password); err != nil {
		return err
	}
	h, err := s.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("set password for %s: %w", p.DisplayName(), err)
	}
	now := s.opts.Now()
	at := store.Millis(now)
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO accounts (person_id, role, password_hash, password_set_at,
			must_change, failed_logins, locked_until, disabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 0, 0, FALSE, ?, ?)
			ON CONFLICT (person_id) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash,
			password_set_at = excluded.password_set_at, must_change = excluded.must_change,
			failed_logins = 0, locked_until = 0, updated_at = excluded.updated_at`),
			p.ID, string(o.Role), h, at, o.MustChange, at, at)
		if err != nil {
			return fmt.Errorf("set password for %s: %w", p.DisplayName(), err)
		}
		// A new password, perhaps set by someone else, ends every session.
		if err := endSessions(ctx, tx, p.ID); err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, now, actor, fmt.Sprintf("set the password of %s (person %d, role %s)", p.DisplayName(), p.ID, o.Role))
		return err
	})
}

// eligible reports why p cannot hold an account with role r, or nil.
func (s *Accounts) eligible(p directory.Person, r Role) error {
	switch {
	case !p.Active:
		return fmt.Errorf("%s is not active: %w", p.DisplayName(), store.ErrConflict)
	case p.Username == "" && p.Email == "":
		return fmt.Errorf("%s has no username or email to sign in with; add one first: %w", p.DisplayName(), store.ErrConflict)
	}
	if why := r.allowedFor(p.Kind); why != "" {
		return fmt.Errorf("%s: %s: %w", p.DisplayName(), why, store.ErrConflict)
	}
	return nil
}

// SetRole changes the role of person personID's account.
func (s *Accounts) SetRole(ctx context.Context, actor string, personID int64, r Role) error {
	p, err := s.people.Person(ctx, personID)
	if err != nil {
		return fmt.Errorf("set role: %w", err)
	}
	if err := s.eligible(p, r); err != nil {
		return err
	}
	return s.update(ctx, actor, p, "set the role of %s (person %d) to "+r.String(),
		`UPDATE accounts SET role = ?, updated_at = ? WHERE person_id = ?`, string(r))
}

// SetDisabled disables or re-enables person personID's account. A
// disabled account cannot sign in anywhere.
func (s *Accounts) SetDisabled(ctx context.Context, actor string, personID int64, disabled bool) error {
	p, err := s.people.Person(ctx, personID)
	if err != nil {
		return fmt.Errorf("disable account: %w", err)
	}
	what := "enabled the account of %s (person %d)"
	if disabled {
		what = "disabled the account of %s (person %d)"
	}
	return s.update(ctx, actor, p, what, `UPDATE accounts SET disabled = ?, updated_at = ? WHERE person_id = ?`, disabled)
}

// Unlock clears a lockout and the failure count.
func (s *Accounts) Unlock(ctx context.Context, actor string, personID int64) error {
	p, err := s.people.Person(ctx, personID)
	if err != nil {
		return fmt.Errorf("unlock account: %w", err)
	}
	return s.update(ctx, actor, p, "unlocked the account of %s (person %d)",
		`UPDATE accounts SET failed_logins = 0, locked_until = ?, updated_at = ? WHERE person_id = ?`, 0)
}

// Remove deletes person personID's account (the person stays).
func (s *Accounts) Remove(ctx context.Context, actor string, personID int64) error {
	p, err := s.people.Person(ctx, personID)
	if err != nil {
		return fmt.Errorf("remove account: %w", err)
	}
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM accounts WHERE person_id = ?`), p.ID)
		if err != nil {
			return fmt.Errorf("remove the account of %s: %w", p.DisplayName(), err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s has no account: %w", p.DisplayName(), store.ErrNotFound)
		}
		if err := endSessions(ctx, tx, p.ID); err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, s.opts.Now(), actor, fmt.Sprintf("removed the account of %s (person %d)", p.DisplayName(), p.ID))
		return err
	})
}

// endSessions ends every console session of a person, inside a change to
// their account.
func endSessions(ctx context.Context, q store.Querier, personID int64) error {
	if _, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM sessions WHERE person_id = ?`), personID); err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	return nil
}

// update runs one UPDATE of p's account (args, then updated_at, then the
// person id), ends their sessions (a role, lockout or second factor that
// changed must be signed in with afresh) and records a revision.
func (s *Accounts) update(ctx context.Context, actor string, p directory.Person, summary, query string, arg any) error {
	now := s.opts.Now()
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, tx.Rebind(query), arg, store.Millis(now), p.ID)
		if err != nil {
			return fmt.Errorf("update the account of %s: %w", p.DisplayName(), err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s has no account: %w", p.DisplayName(), store.ErrNotFound)
		}
		if err := endSessions(ctx, tx, p.ID); err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, now, actor, fmt.Sprintf(summary, p.DisplayName(), p.ID))
		return err
	})
}

const accountColumns = `role, password_hash, password_set_at, must_change, totp_enabled_at, failed_logins,
	locked_until, last_login_at, disabled, created_at, updated_at`

// row is an account as stored, with its hash.
type row struct {
	Account
	hash string
}

func scanAccount(scan func(...any) error) (row, error) {
	var (
		r                          row
		role                       string
		setAt, locked, created, up int64
		totp, last                 sql.NullInt64
	)
	if err := scan(&role, &r.hash, &setAt, &r.MustChange, &totp, &r.FailedLogins, &locked, &last,
		&r.Disabled, &created, &up); err != nil {
		return row{}, err
	}
	r.Role = Role(role)
	r.PasswordSetAt = store.FromMillis(setAt)
	r.TOTPEnabled = totp.Valid
	if locked > 0 {
		r.LockedUntil = store.FromMillis(locked)
	}
	if last.Valid {
		r.LastLoginAt = store.FromMillis(last.Int64)
	}
	r.CreatedAt, r.UpdatedAt = store.FromMillis(created), store.FromMillis(up)
	return r, nil
}

func (s *Accounts) load(ctx context.Context, q store.Querier, p directory.Person) (row, error) {
	r, err := scanAccount(q.QueryRowContext(ctx, q.Rebind(`SELECT `+accountColumns+` FROM accounts WHERE person_id = ?`), p.ID).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, fmt.Errorf("%s has no account: %w", p.DisplayName(), store.ErrNotFound)
	}
	if err != nil {
		return row{}, fmt.Errorf("read the account of %s: %w", p.DisplayName(), err)
	}
	r.Person = p
	return r, nil
}

// Get returns person personID's account (a wrapped store.ErrNotFound if
// they have none).
func (s *Accounts) Get(ctx context.Context, personID int64) (Account, error) {
	p, err := s.people.Person(ctx, personID)
	if err != nil {
		return Account{}, fmt.Errorf("get account: %w", err)
	}
	r, err := s.load(ctx, s.db, p)
	return r.Account, err
}

// List returns every account, by person id.
func (s *Accounts) List(ctx context.Context) ([]Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT person_id, `+accountColumns+` FROM accounts ORDER BY person_id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	var ids []int64
	var out []Account
	for rows.Next() {
		var id int64
		r, err := scanAccount(func(dst ...any) error { return rows.Scan(append([]any{&id}, dst...)...) })
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		ids = append(ids, id)
		out = append(out, r.Account)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	for i, id := range ids {
		p, err := s.people.Person(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out[i].Person = p
	}
	return out, nil
}

// Count returns how many accounts there are, and how many hold a console
// role.
func (s *Accounts) Count(ctx context.Context) (all, console int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN role <> '' THEN 1 ELSE 0 END), 0) FROM accounts`).Scan(&all, &console)
	if err != nil {
		return 0, 0, fmt.Errorf("count accounts: %w", err)
	}
	return all, console, nil
}

// Verify checks a login (username or email) and password. It returns the
// account, or ErrInvalidCredentials (whatever was wrong), or a
// *LockedError without checking the password. Every failure counts
// towards a lockout; a success resets the count, records the sign-in and
// rehashes the password when the costs have changed.
func (s *Accounts) Verify(ctx context.Context, login, password string) (Account, error) {
	if strings.TrimSpace(login) == "" || len(password) > maxPasswordBytes {
		return Account{}, ErrInvalidCredentials
	}
	p, err := s.people.PersonByLogin(ctx, login)
	if errors.Is(err, store.ErrNotFound) {
		return Account{}, s.fail(ctx, nil)
	}
	if err != nil {
		return Account{}, fmt.Errorf("verify sign-in: %w", err)
	}
	r, err := s.load(ctx, s.db, p)
	if errors.Is(err, store.ErrNotFound) {
		return Account{}, s.fail(ctx, nil)
	}
	if err != nil {
		return Account{}, fmt.Errorf("verify sign-in: %w", err)
	}
	now := s.opts.Now()
	if now.Before(r.LockedUntil) {
		return Account{}, &LockedError{Until: r.LockedUntil}
	}
	if r.Disabled {
		return Account{}, s.fail(ctx, nil)
	}
	ok, params, err := s.verify(ctx, r.hash, password)
	if err != nil {
		if errors.Is(err, ErrBadHash) {
			s.log.Error("bad_password_hash", "person", p.ID, "err", err)
			return Account{}, ErrInvalidCredentials
		}
		return Account{}, fmt.Errorf("verify sign-in: %w", err)
	}
	if !ok {
		return Account{}, s.fail(ctx, &r)
	}
	newHash := ""
	if params != s.opts.Params {
		if h, err := s.hash(ctx, password); err == nil {
			newHash = h
		}
	}
	at := store.Millis(now)
	_, err = s.db.ExecContext(ctx, s.db.Rebind(`UPDATE accounts SET failed_logins = 0, locked_until = 0, last_login_at = ?,
		password_hash = CASE WHEN ? = '' THEN password_hash ELSE ? END WHERE person_id = ?`), at, newHash, newHash, p.ID)
	if err != nil {
		return Account{}, fmt.Errorf("verify sign-in: record it: %w", err)
	}
	r.FailedLogins, r.LockedUntil, r.LastLoginAt = 0, time.Time{}, store.FromMillis(at)
	return r.Account, nil
}

// fail counts a failed sign-in against r (nil: no account, when a dummy
// hash is checked so that the answer takes as long) and locks the account
// at every lockoutAfter-th failure in a row. It returns
// ErrInvalidCredentials, or the error of recording the failure.
func (s *Accounts) fail(ctx context.Context, r *row) error {
	if r == nil {
		if _, _, err := s.verify(ctx, s.dummy, "x"); err != nil {
			return fmt.Errorf("verify sign-in: %w", err)
		}
		return ErrInvalidCredentials
	}
	var n int
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`UPDATE accounts SET failed_logins = failed_logins + 1
		WHERE person_id = ? RETURNING failed_logins`), r.Person.ID).Scan(&n)
	if err != nil {
		return fmt.Errorf("verify sign-in: count the failure: %w", err)
	}
	if n%lockoutAfter == 0 {
		d := lockoutBase << min(n/lockoutAfter-1, 8)
		d = min(d, lockoutMax)
		until := s.opts.Now().Add(d)
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE accounts SET locked_until = ? WHERE person_id = ?`),
			store.Millis(until), r.Person.ID); err != nil {
			return fmt.Errorf("verify sign-in: lock the account: %w", err)
		}
		s.log.Warn("account_locked", "person", r.Person.ID, "failures", n, "until", until)
	}
	return ErrInvalidCredentials
}

// ChangePassword sets a new password for person personID, who proves who
// they are with their current one (at the yearly change, or when someone
// else set it). It ends their sessions, as Set does.
func (s *Accounts) ChangePassword(ctx context.Context, personID int64, current, next string) error {
	acct, err := s.Get(ctx, personID)
	if err != nil {
		return err
	}
	var r row
	if r, err = s.load(ctx, s.db, acct.Person); err != nil {
		return err
	}
	ok, _, err := s.verify(ctx, r.hash, current)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if !ok {
		return s.fail(ctx, &r)
	}
	if current == next {
		return &WeakPasswordError{Reason: "the new password must differ from the current one"}
	}
	login := acct.Person.Username
	if login == "" {
		login = acct.Person.Email
	}
	return s.Set(ctx, login, personID, next, SetOptions{Role: acct.Role})
}

// GeneratePassword makes up a first password for person p with role r:
// three or four groups of four characters that cannot be mistaken for one
// another (59 or 79 bits), passing CheckPassword.
func (s *Accounts) GeneratePassword(ctx context.Context, p directory.Person, r Role) (string, error) {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	groups := 3
	if r != RoleNone {
		groups = 4
	}
	for range 100 {
		b := make([]byte, 4*groups)
		if _, err := io.ReadFull(s.opts.Rand, b); err != nil {
			return "", fmt.Errorf("make up a password: %w", err)
		}
		var sb strings.Builder
		for i, v := range b {
			if i > 0 && i%4 == 0 {
				sb.WriteByte('-')
			}
			// 256 is not a multiple of 31; the bias is under 0.5%.
			sb.WriteByte(alphabet[int(v)%len(alphabet)])
		}
		if s.CheckPassword(ctx, p, r, sb.String()) == nil {
			return sb.String(), nil
		}
	}
	return "", errors.New("make up a password: none passed the rules")
}
