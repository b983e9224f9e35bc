package web

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
)

// loginData is what the sign-in form shows again after a failure.
type loginData struct {
	Login, Next string
}

func (c *Console) getLogin(rw http.ResponseWriter, r *http.Request) {
	if c.needsHTTPS(rw, r) {
		return
	}
	if _, _, err := c.accounts.Session(r.Context(), c.readCookie(r, sessionCookie, hostSessionCookie)); err == nil {
		redirect(rw, "/")
		return
	}
	pre := c.preSession(rw, r)
	c.render(rw, r, http.StatusOK, "login", view{Title: "Sign in", CSRF: c.csrfFor(pre),
		Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// throttled answers 429 when the client has made too many sign-in
// attempts.
func (c *Console) throttled(rw http.ResponseWriter, r *http.Request) bool {
	ip, now := clientIP(r), c.now()
	if c.signIns.allow(ip, now) {
		return false
	}
	wait := c.signIns.retryAfter(ip, now)
	rw.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
	c.log.Warn("sign_in_throttled", "client", ip)
	c.message(rw, r, http.StatusTooManyRequests, view{Title: "Too many attempts"}, "", "",
		fmt.Sprintf("This device has tried to sign in too many times. Wait %d minutes and try again.", int(wait.Minutes())+1))
	return true
}

func (c *Console) postLogin(rw http.ResponseWriter, r *http.Request) {
	if c.needsHTTPS(rw, r) || c.throttled(rw, r) {
		return
	}
	pre := c.readCookie(r, preCookie, hostPreCookie)
	if !c.checkPost(rw, r, pre) {
		return
	}
	login := strings.TrimSpace(r.PostForm.Get("login"))
	next := safeNext(r.PostForm.Get("next"))
	acct, err := c.accounts.Verify(r.Context(), login, r.PostForm.Get("password"))
	if err != nil {
		v := view{Title: "Sign in", CSRF: c.csrfFor(pre), Data: loginData{Login: login, Next: next}}
		entry := audit.Entry{Actor: login, Action: audit.ActionSignIn, Outcome: audit.Failed, Detail: "wrong login or password"}
		var locked *auth.LockedError
		switch {
		case errors.Is(err, auth.ErrInvalidCredentials):
			c.log.Info("sign_in_failed", "login", login, "client", clientIP(r))
			v.Problem = "The username or password is wrong."
		case errors.As(err, &locked):
			c.log.Warn("sign_in_locked", "login", login, "client", clientIP(r))
			v.Problem = locked.Error() + ". Ask the IT technician if you need it sooner."
			entry.Outcome, entry.Detail = audit.Refused, "account locked until "+locked.Until.UTC().Format(time.RFC3339)
		default:
			c.log.Error("sign_in_error", "err", err)
			v.Problem = "Warden could not check your password just now. Please try again in a minute."
			entry.Detail = "error: " + err.Error()
		}
		if !c.record(rw, r, entry) {
			return
		}
		c.render(rw, r, http.StatusUnauthorized, "login", v)
		return
	}
	if acct.Role == auth.RoleNone {
		c.log.Info("sign_in_no_role", "login", login)
		if !c.record(rw, r, audit.Entry{PersonID: acct.Person.ID, Actor: actorOf(acct), Action: audit.ActionSignIn, Outcome: audit.Refused,
			Detail: "no console role"}) {
			return
		}
		c.render(rw, r, http.StatusForbidden, "login", view{Title: "Sign in", CSRF: c.csrfFor(pre), Data: loginData{Login: login, Next: next},
			Problem: "Your account is for the school's internet only, not for this console."})
		return
	}
	secret, sess, err := c.accounts.StartSession(r.Context(), acct, clientIP(r), r.UserAgent())
	if err != nil {
		c.log.Error("session_start_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, view{Title: "Warden is busy"}, "/login", "Try again", "Warden could not sign you in just now.")
		return
	}
	detail := "password; role " + acct.Role.String()
	if !sess.SecondFactor {
		detail += "; second factor due"
	}
	if !c.record(rw, r, audit.Entry{PersonID: acct.Person.ID, Actor: actorOf(acct), Action: audit.ActionSignIn, Detail: detail}) {
		c.accounts.EndSession(r.Context(), secret)
		return
	}
	c.log.Info("signed_in", "person", acct.Person.ID, "role", acct.Role, "client", clientIP(r), "second_factor_due", !sess.SecondFactor)
	c.setCookie(rw, sessionCookie, hostSessionCookie, secret, 0)
	switch {
	case !sess.SecondFactor && acct.TOTPEnabled:
		redirect(rw, "/login/2fa")
	case !sess.SecondFactor:
		redirect(rw, "/account/2fa")
	default:
		redirect(rw, next)
	}
}

func (c *Console) getSecond(rw http.ResponseWriter, r *http.Request, st *state) {
	c.render(rw, r, http.StatusOK, "totp", view{Title: "Two-factor authentication", Signed: st.signed(), CSRF: c.csrfFor(st.secret)})
}

func (c *Console) postSecond(rw http.ResponseWriter, r *http.Request, st *state) {
	if c.throttled(rw, r) {
		return
	}
	err := c.accounts.CheckTOTP(r.Context(), st.account.Person.ID, r.PostForm.Get("code"))
	if err != nil {
		status, problem := http.StatusUnauthorized, "That code is wrong or has been used. Wait for the next one and try again."
		if !errors.Is(err, auth.ErrBadCode) {
			c.log.Error("second_factor_error", "err", err)
			status, problem = http.StatusServiceUnavailable, "Warden could not check the code just now. Please try again in a minute."
		} else {
			c.log.Info("second_factor_failed", "person", st.account.Person.ID, "client", clientIP(r))
			if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionSecondFactor,
				Outcome: audit.Failed, Detail: "wrong or used code"}) {
				return
			}
		}
		c.render(rw, r, status, "totp", view{Title: "Two-factor authentication", Signed: st.signed(), CSRF: c.csrfFor(st.secret), Problem: problem})
		return
	}
	if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionSecondFactor}) {
		return
	}
	c.passed(rw, r, st)
}

// passed completes sign-in after the second factor.
func (c *Console) passed(rw http.ResponseWriter, r *http.Request, st *state) {
	if err := c.accounts.PassSecondFactor(r.Context(), st.session); err != nil {
		c.log.Error("session_update_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, view{Title: "Warden is busy"}, "/login", "Try again", "Warden could not sign you in just now.")
		return
	}
	c.log.Info("second_factor_passed", "person", st.account.Person.ID)
	redirect(rw, "/")
}

// enrolData is the enrolment page: the QR code as a data URL and the key.
type enrolData struct {
	// QR is a data: URL Warden made, so marked safe for the template.
	QR     template.URL
	Secret string
}

func (c *Console) getEnrol(rw http.ResponseWriter, r *http.Request, st *state) {
	issuer := "Warden"
	if c.school != nil {
		if s := c.school(r.Context()); s != "" {
			issuer = "Warden " + s
		}
	}
	enr, err := c.accounts.BeginTOTP(r.Context(), st.account.Person.ID, issuer)
	if err != nil {
		c.log.Error("totp_begin_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, view{Title: "Two-factor set-up is unavailable", Signed: st.signed(), CSRF: c.csrfFor(st.secret)},
			"", "", "Warden could not start setting up two-factor authentication. Ask the IT technician to check the server's log.")
		return
	}
	img, err := enr.Key.Image(200, 200)
	var qr template.URL
	if err == nil {
		var b bytes.Buffer
		if png.Encode(&b, img) == nil {
			qr = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))
		}
	}
	c.render(rw, r, http.StatusOK, "enrol", view{Title: "Set up two-factor authentication", Signed: st.signed(), CSRF: c.csrfFor(st.secret),
		Data: enrolData{QR: qr, Secret: enr.Secret}})
}

func (c *Console) postEnrol(rw http.ResponseWriter, r *http.Request, st *state) {
	if c.throttled(rw, r) {
		return
	}
	if err := c.accounts.ConfirmTOTP(r.Context(), st.account.Person.ID, r.PostForm.Get("code")); err != nil {
		c.log.Info("totp_confirm_failed", "person", st.account.Person.ID, "err", err)
		if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionTOTPEnrolled,
			Outcome: audit.Failed, Detail: "code did not match"}) {
			return
		}
		c.message(rw, r, http.StatusUnauthorized, view{Title: "That code did not match", Signed: st.signed(), CSRF: c.csrfFor(st.secret)},
			"/account/2fa", "Start the set-up again",
			"The code must come from the account you added by scanning the code on the last page. Check your phone's clock is right, then start again.")
		return
	}
	c.log.Info("totp_enabled", "person", st.account.Person.ID)
	if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionTOTPEnrolled}) {
		return
	}
	c.passed(rw, r, st)
}

// passwordData is the password page.
type passwordData struct {
	Why string
	Min int
}

func (c *Console) passwordView(st *state) view {
	why := ""
	switch {
	case st.account.PasswordExpired(c.now()):
		why = "Your password is over a year old: the school's policy asks for a new one every year."
	case st.account.MustChange:
		why = "Someone else set your password, so please choose your own."
	}
	return view{Title: "Change your password", Signed: st.signed(), CSRF: c.csrfFor(st.secret),
		Data: passwordData{Why: why, Min: auth.MinPasswordLen(st.account.Person.Kind, st.account.Role)}}
}

func (c *Console) getPassword(rw http.ResponseWriter, r *http.Request, st *state) {
	c.render(rw, r, http.StatusOK, "password", c.passwordView(st))
}

func (c *Console) postPassword(rw http.ResponseWriter, r *http.Request, st *state) {
	if c.throttled(rw, r) {
		return
	}
	f := r.PostForm
	v := c.passwordView(st)
	if f.Get("new") != f.Get("again") {
		v.Problem = "The two new passwords differ."
		c.render(rw, r, http.StatusBadRequest, "password", v)
		return
	}
	err := c.accounts.ChangePassword(r.Context(), st.account.Person.ID, f.Get("current"), f.Get("new"))
	entry := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionPasswordChanged}
	if err != nil {
		entry.Outcome, entry.Detail = audit.Failed, err.Error()
	}
	if !c.record(rw, r, entry) {
		return
	}
	var weak *auth.WeakPasswordError
	switch {
	case err == nil:
	case errors.As(err, &weak):
		v.Problem = "That new password cannot be used: " + weak.Reason + "."
		c.render(rw, r, http.StatusBadRequest, "password", v)
		return
	case errors.Is(err, auth.ErrInvalidCredentials):
		v.Problem = "Your current password is wrong."
		c.render(rw, r, http.StatusUnauthorized, "password", v)
		return
	default:
		c.log.Error("password_change_failed", "err", err)
		v.Problem = "Warden could not change your password just now. Please try again in a minute."
		c.render(rw, r, http.StatusServiceUnavailable, "password", v)
		return
	}
	c.log.Info("password_changed", "person", st.account.Person.ID)
	// The change ended every session, this one too: start a new one,
	// which has passed the second factor already.
	acct, err := c.accounts.Get(r.Context(), st.account.Person.ID)
	if err == nil {
		var secret string
		var sess auth.Session
		if secret, sess, err = c.accounts.StartSession(r.Context(), acct, clientIP(r), r.UserAgent()); err == nil {
			if err = c.accounts.PassSecondFactor(r.Context(), sess); err == nil {
				c.setCookie(rw, sessionCookie, hostSessionCookie, secret, 0)
				redirect(rw, "/")
				return
			}
		}
	}
	c.log.Error("session_after_password_failed", "err", err)
	c.setCookie(rw, sessionCookie, hostSessionCookie, "", -1)
	redirect(rw, "/login")
}

func (c *Console) postLogout(rw http.ResponseWriter, r *http.Request) {
	secret := c.readCookie(r, sessionCookie, hostSessionCookie)
	_, acct, err := c.accounts.Session(r.Context(), secret)
	if err != nil {
		// Not signed in (any more): nothing to end.
		c.setCookie(rw, sessionCookie, hostSessionCookie, "", -1)
		redirect(rw, "/login")
		return
	}
	if !c.checkPost(rw, r, secret) || !c.record(rw, r, audit.Entry{PersonID: acct.Person.ID, Actor: actorOf(acct), Action: audit.ActionSignOut}) {
		return
	}
	if err := c.accounts.EndSession(r.Context(), secret); err != nil {
		c.log.Error("sign_out_failed", "err", err)
	}
	c.setCookie(rw, sessionCookie, hostSessionCookie, "", -1)
	redirect(rw, "/login")
}
