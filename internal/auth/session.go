package auth

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/store"
)

// Console sessions: how long one lasts unused, and at most.
const (
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 10 * time.Hour
)

// touchEvery is how often a session's last use is written: often enough
// for the idle timeout, rarely enough not to write on every page.
const touchEvery = time.Minute

// maxUserAgent bounds the user agent kept with a session.
const maxUserAgent = 200

// ErrNoSession means a session cookie is unknown, expired or ended.
var ErrNoSession = errors.New("not signed in, or the session has expired")

// Session is a signed-in console session.
type Session struct {
	// ID is the SHA-256 (hex) of the cookie value: safe to log.
	ID         string
	PersonID   int64
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	// SecondFactor says the session passed two-factor authentication (or
	// the role needs none); until then only the second step is open.
	SecondFactor bool
	ClientIP     netip.Addr
	UserAgent    string
}

// newSecret returns 32 random bytes as unpadded URL-safe base64.
func newSecret(rand io.Reader) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// StartSession opens a session for acct (just verified) from client ip
// with user agent ua, and returns the cookie value (shown to nobody
// else; only its hash is stored). The session has passed the second
// factor when the account's role needs none.
func (s *Accounts) StartSession(ctx context.Context, acct Account, ip netip.Addr, ua string) (string, Session, error) {
	secret, err := newSecret(s.opts.Rand)
	if err != nil {
		return "", Session{}, fmt.Errorf("start session: %w", err)
	}
	now := s.opts.Now()
	ua = strings.ToValidUTF8(ua, "?")
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	sess := Session{ID: hashSecret(secret), PersonID: acct.Person.ID, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(s.opts.SessionMax), SecondFactor: !acct.Role.RequiresTOTP(), ClientIP: ip, UserAgent: ua}
	ipText := ""
	if ip.IsValid() {
		ipText = ip.String()
	}
	_, err = s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO sessions (id_hash, person_id, created_at, last_seen_at, expires_at,
		second_factor, client_ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		sess.ID, sess.PersonID, store.Millis(now), store.Millis(now), store.Millis(sess.ExpiresAt), sess.SecondFactor, ipText, ua)
	if err != nil {
		return "", Session{}, fmt.Errorf("start session: %w", err)
	}
	// Old sessions go when someone signs in: the table stays small.
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?`),
		store.Millis(now), store.Millis(now.Add(-s.opts.SessionIdle))); err != nil {
		s.log.Warn("session_prune_failed", "err", err)
	}
	return secret, sess, nil
}

// Session returns the live session for cookie value secret and its
// account, or ErrNoSession. A session ends when unused for SessionIdle,
// after SessionMax, or when the account is disabled, locked, removed or
// the person marked as left.
func (s *Accounts) Session(ctx context.Context, secret string) (Session, Account, error) {
	if secret == "" || len(secret) > 100 {
		return Session{}, Account{}, ErrNoSession
	}
	id := hashSecret(secret)
	var (
		sess                   Session
		created, seen, expires int64
		ipText                 string
	)
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT person_id, created_at, last_seen_at, expires_at, second_factor,
		client_ip, user_agent FROM sessions WHERE id_hash = ?`), id).Scan(&sess.PersonID, &created, &seen, &expires,
		&sess.SecondFactor, &ipText, &sess.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, Account{}, ErrNoSession
	}
	if err != nil {
		return Session{}, Account{}, fmt.Errorf("read session: %w", err)
	}
	sess.ID = id
	sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt = store.FromMillis(created), store.FromMillis(seen), store.FromMillis(expires)
	sess.ClientIP, _ = netip.ParseAddr(ipText)
	now := s.opts.Now()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) >= s.opts.SessionIdle {
		s.EndSession(ctx, secret)
		return Session{}, Account{}, ErrNoSession
	}
	p, err := s.people.Person(ctx, sess.PersonID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Session{}, Account{}, ErrNoSession
		}
		return Session{}, Account{}, fmt.Errorf("read session: %w", err)
	}
	r, err := s.load(ctx, s.db, p)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, Account{}, ErrNoSession
	}
	if err != nil {
		return Session{}, Account{}, err
	}
	if r.Disabled || !p.Active || now.Before(r.LockedUntil) {
		s.EndSession(ctx, secret)
		return Session{}, Account{}, ErrNoSession
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`),
			store.Millis(now), id); err != nil {
			return Session{}, Account{}, fmt.Errorf("touch session: %w", err)
		}
		sess.LastSeenAt = now
	}
	return sess, r.Account, nil
}

// PassSecondFactor marks the session as having passed two-factor
// authentication.
func (s *Accounts) PassSecondFactor(ctx context.Context, sess Session) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE sessions SET second_factor = TRUE WHERE id_hash = ?`), sess.ID)
	if err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	return nil
}

// EndSession ends the session of cookie value secret (signing out).
func (s *Accounts) EndSession(ctx context.Context, secret string) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM sessions WHERE id_hash = ?`), hashSecret(secret))
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// EndSessions ends every session of person personID (a password change,
// a lost phone, leaving).
func (s *Accounts) EndSessions(ctx context.Context, personID int64) error {
	return endSessions(ctx, s.db, personID)
}

// SetupTokenTTL is how long the first administrator's set-up link works.
const SetupTokenTTL = 24 * time.Hour

// NewSetupToken makes a one-time set-up link token for the first
// administrator, valid for SetupTokenTTL; earlier unused tokens stop
// working. It refuses once any account holds a console role.
func (s *Accounts) NewSetupToken(ctx context.Context) (string, error) {
	if _, console, err := s.Count(ctx); err != nil {
		return "", err
	} else if console > 0 {
		return "", fmt.Errorf("a console account exists already; sign in with it: %w", store.ErrConflict)
	}
	secret, err := newSecret(s.opts.Rand)
	if err != nil {
		return "", fmt.Errorf("new set-up link: %w", err)
	}
	now := s.opts.Now()
	err = s.db.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM setup_tokens WHERE used_at IS NULL`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)`),
			hashSecret(secret), store.Millis(now), store.Millis(now.Add(SetupTokenTTL)))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("new set-up link: %w", err)
	}
	return secret, nil
}

// ErrSetupToken means a set-up link is unknown, used or expired.
var ErrSetupToken = errors.New("this set-up link is not valid: it was used already, has expired, or was replaced by a newer one")

// CheckSetupToken reports whether token is a live set-up link (nil) or
// ErrSetupToken.
func (s *Accounts) CheckSetupToken(ctx context.Context, token string) error {
	return s.useSetupToken(ctx, s.db, token, false)
}

func (s *Accounts) useSetupToken(ctx context.Context, q store.Querier, token string, use bool) error {
	if token == "" || len(token) > 100 {
		return ErrSetupToken
	}
	now := store.Millis(s.opts.Now())
	if !use {
		var n int
		err := q.QueryRowContext(ctx, q.Rebind(`SELECT COUNT(*) FROM setup_tokens WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`),
			hashSecret(token), now).Scan(&n)
		if err != nil {
			return fmt.Errorf("check set-up link: %w", err)
		}
		if n == 0 {
			return ErrSetupToken
		}
		return nil
	}
	res, err := q.ExecContext(ctx, q.Rebind(`UPDATE setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`),
		now, hashSecret(token), now)
	if err != nil {
		return fmt.Errorf("use set-up link: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrSetupToken
	}
	return nil
}

// AdminRoles are the roles the first administrator may take: the ones
// that can run the school's filter and safeguarding.
func AdminRoles() []Role { return []Role{RoleIT, RoleHeadteacher, RoleDSL} }

// FirstAdmin is what the set-up page asks of the first administrator.
type FirstAdmin struct {
	// Person is the administrator as the directory should hold them
	// (staff); if a member of staff with the same username exists (from
	// an import), that person is used.
	Person   directory.Person
	Role     Role
	Password string
}

// SetUpFirstAdmin creates the first console account through a set-up
// link token, which it uses up. It refuses once a console account
// exists, and if the role is not one of AdminRoles.
func (s *Accounts) SetUpFirstAdmin(ctx context.Context, token string, fa FirstAdmin) (Account, error) {
	if !slices.Contains(AdminRoles(), fa.Role) {
		return Account{}, fmt.Errorf("the first administrator must be IT, the headteacher or the DSL, not %s: %w", fa.Role, store.ErrConflict)
	}
	if _, console, err := s.Count(ctx); err != nil {
		return Account{}, err
	} else if console > 0 {
		return Account{}, ErrSetupToken
	}
	if err := s.CheckSetupToken(ctx, token); err != nil {
		return Account{}, err
	}
	p := fa.Person
	p.Kind, p.Active = directory.KindStaff, true
	if err := s.CheckPassword(ctx, p, fa.Role, fa.Password); err != nil {
		return Account{}, err
	}
	// Use the link up first, so that two set-ups at once cannot both
	// succeed; give it back if the account cannot be made.
	if err := s.useSetupToken(ctx, s.db, token, true); err != nil {
		return Account{}, err
	}
	acct, err := s.createFirstAdmin(ctx, p, fa)
	if err != nil {
		if _, uerr := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE setup_tokens SET used_at = NULL WHERE token_hash = ?`), hashSecret(token)); uerr != nil {
			s.log.Error("setup_token_restore_failed", "err", uerr)
		}
		return Account{}, err
	}
	return acct, nil
}

func (s *Accounts) createFirstAdmin(ctx context.Context, p directory.Person, fa FirstAdmin) (Account, error) {
	const actor = "set-up link"
	existing, err := s.people.PersonByLogin(ctx, p.Username)
	switch {
	case err == nil && existing.Kind == directory.KindStaff:
		p = existing
	case err == nil:
		return Account{}, fmt.Errorf("the username %s belongs to someone who is not staff; choose another: %w", p.Username, store.ErrConflict)
	case errors.Is(err, store.ErrNotFound):
		p.Source = directory.SourceManual
		if p.ID, err = s.people.AddPerson(ctx, actor, p); err != nil {
			return Account{}, err
		}
	default:
		return Account{}, err
	}
	if err := s.Set(ctx, actor, p.ID, fa.Password, SetOptions{Role: fa.Role}); err != nil {
		return Account{}, err
	}
	return s.Get(ctx, p.ID)
}
