package auth

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/warden-schools/warden/internal/store"
)

// Sealer encrypts secrets at rest (a *keyring.Ring).
type Sealer interface {
	Seal(purpose string, plaintext []byte) ([]byte, error)
	Open(purpose string, sealed []byte) ([]byte, error)
}

// totpPurpose binds sealed TOTP secrets to their use.
const totpPurpose = "totp-secret"

// TOTP parameters: RFC 6238's defaults, which every authenticator app
// reads (30-second steps, six digits, SHA-1), accepting the step before
// and after for clock drift.
const (
	totpPeriod = 30
	totpSkew   = 1
)

// ErrBadCode means a two-factor code is wrong, out of date or already
// used.
var ErrBadCode = errors.New("wrong or already used code")

// ErrNoSecret means the account has no two-factor secret to check
// against (enrolment has not begun).
var ErrNoSecret = errors.New("two-factor authentication is not set up")

// Enrolment is a new TOTP secret for a person to add to their
// authenticator app, by URL (as a QR code) or by typing the secret.
type Enrolment struct {
	// URL is the otpauth:// URL.
	URL string
	// Secret is the base32 secret, for typing in.
	Secret string
	// Key draws the QR code (Key.Image).
	Key *otp.Key
}

func (s *Accounts) sealer() (Sealer, error) {
	if s.opts.Sealer == nil {
		return nil, errors.New("no master key to seal two-factor secrets with")
	}
	return s.opts.Sealer, nil
}

// BeginTOTP makes a new TOTP secret for person personID's account and
// stores it, sealed, as pending: it replaces any earlier secret and takes
// effect when ConfirmTOTP sees a code from it. issuer names the school in
// the authenticator app.
func (s *Accounts) BeginTOTP(ctx context.Context, personID int64, issuer string) (Enrolment, error) {
	sealer, err := s.sealer()
	if err != nil {
		return Enrolment{}, err
	}
	p, err := s.people.Person(ctx, personID)
	if err != nil {
		return Enrolment{}, fmt.Errorf("set up two-factor: %w", err)
	}
	name := p.Username
	if name == "" {
		name = p.Email
	}
	if issuer = strings.TrimSpace(issuer); issuer == "" {
		issuer = "Warden"
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: name, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: s.opts.Rand})
	if err != nil {
		return Enrolment{}, fmt.Errorf("set up two-factor: %w", err)
	}
	sealed, err := sealer.Seal(totpPurpose, []byte(key.Secret()))
	if err != nil {
		return Enrolment{}, fmt.Errorf("set up two-factor: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE accounts SET totp_secret = ?, totp_enabled_at = NULL,
		totp_last_step = 0, updated_at = ? WHERE person_id = ?`), sealed, store.Millis(s.opts.Now()), personID)
	if err != nil {
		return Enrolment{}, fmt.Errorf("set up two-factor: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Enrolment{}, fmt.Errorf("%s has no account: %w", p.DisplayName(), store.ErrNotFound)
	}
	return Enrolment{URL: key.URL(), Secret: key.Secret(), Key: key}, nil
}

// ConfirmTOTP checks a code from the pending secret and, if right, turns
// two-factor authentication on for the account.
func (s *Accounts) ConfirmTOTP(ctx context.Context, personID int64, code string) error {
	return s.checkTOTP(ctx, personID, code, true)
}

// CheckTOTP checks a code at sign-in. Each time step's code is accepted
// once only.
func (s *Accounts) CheckTOTP(ctx context.Context, personID int64, code string) error {
	return s.checkTOTP(ctx, personID, code, false)
}

func (s *Accounts) checkTOTP(ctx context.Context, personID int64, code string, confirm bool) error {
	sealer, err := s.sealer()
	if err != nil {
		return err
	}
	code = strings.Join(strings.Fields(code), "")
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return ErrBadCode
	}
	var (
		sealed  []byte
		enabled sql.NullInt64
		last    int64
	)
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT totp_secret, totp_enabled_at, totp_last_step FROM accounts WHERE person_id = ?`),
		personID).Scan(&sealed, &enabled, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("person %d has no account: %w", personID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("check two-factor code: %w", err)
	}
	if sealed == nil || enabled.Valid == confirm {
		return ErrNoSecret
	}
	secret, err := sealer.Open(totpPurpose, sealed)
	if err != nil {
		return fmt.Errorf("check two-factor code: %w", err)
	}
	now := s.opts.Now()
	step := int64(-1)
	for d := -totpSkew; d <= totpSkew; d++ {
		at := now.Add(time.Duration(d*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(string(secret), at, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return fmt.Errorf("check two-factor code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step = at.Unix() / totpPeriod
		}
	}
	if step < 0 || step <= last {
		return ErrBadCode
	}
	// Record the step only if no other sign-in used it meanwhile.
	q := `UPDATE accounts SET totp_last_step = ? WHERE person_id = ? AND totp_last_step < ?`
	args := []any{step, personID, step}
	if confirm {
		q = `UPDATE accounts SET totp_last_step = ?, totp_enabled_at = ?, updated_at = ? WHERE person_id = ? AND totp_last_step < ?`
		at := store.Millis(now)
		args = []any{step, at, at, personID, step}
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("check two-factor code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrBadCode
	}
	return nil
}

// ResetTOTP turns two-factor authentication off for an account (a lost
// phone), so that the person enrols again at their next sign-in.
func (s *Accounts) ResetTOTP(ctx context.Context, actor string, personID int64) error {
	p, err := s.people.Person(ctx, personID)
	if err != nil {
		return fmt.Errorf("reset two-factor: %w", err)
	}
	return s.update(ctx, actor, p, "reset the two-factor authentication of %s (person %d)",
		`UPDATE accounts SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = ?, updated_at = ? WHERE person_id = ?`, 0)
}
