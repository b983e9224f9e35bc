package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/warden-schools/warden/internal/auth"
)

// step is how far through signing in a page needs the session to be.
type step int

const (
	// stepSecond: password given, second factor awaited.
	stepSecond step = iota
	// stepEnrol: password given, authenticator app not yet set up.
	stepEnrol
	// stepPassword: fully signed in; the password may be due a change.
	stepPassword
	// stepFull: fully signed in with a current password.
	stepFull
)

// state is the signed-in session a handler works for.
type state struct {
	secret  string
	session auth.Session
	account auth.Account
}

// signed returns who the page is for.
func (s *state) signed() *signedIn {
	return &signedIn{Name: s.account.Person.DisplayName(), Role: s.account.Role.Label()}
}

// withSession loads the session and sends the person to the step they
// are at: sign-in, the second factor, enrolment or a password change.
func (c *Console) withSession(need step, h func(http.ResponseWriter, *http.Request, *state)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		secret := c.readCookie(r, sessionCookie, hostSessionCookie)
		sess, acct, err := c.accounts.Session(r.Context(), secret)
		if err != nil {
			if !errors.Is(err, auth.ErrNoSession) {
				c.log.Error("session_failed", "err", err)
				c.message(rw, r, http.StatusServiceUnavailable, view{Title: "Warden is busy"}, "", "", "Please try again in a minute.")
				return
			}
			if secret != "" {
				c.setCookie(rw, sessionCookie, hostSessionCookie, "", -1)
			}
			next := ""
			if r.Method == http.MethodGet && r.URL.Path != "/" {
				next = "?" + url.Values{"next": {r.URL.RequestURI()}}.Encode()
			}
			redirect(rw, "/login"+next)
			return
		}
		st := &state{secret: secret, session: sess, account: acct}
		at := stepFull
		switch {
		case !sess.SecondFactor && acct.TOTPEnabled:
			at = stepSecond
		case !sess.SecondFactor:
			at = stepEnrol
		case acct.MustChange || acct.PasswordExpired(c.now()):
			at = stepPassword
		}
		if at != need && !(need == stepPassword && at == stepFull) {
			redirect(rw, stepPath(at))
			return
		}
		if r.Method == http.MethodPost && !c.checkPost(rw, r, secret) {
			return
		}
		h(rw, r, st)
	}
}

// stepPath is the page of a step.
func stepPath(s step) string {
	switch s {
	case stepSecond:
		return "/login/2fa"
	case stepEnrol:
		return "/account/2fa"
	case stepPassword:
		return "/account/password"
	}
	return "/"
}

// redirect answers 303 See Other to a path of the console.
func redirect(rw http.ResponseWriter, path string) {
	rw.Header().Set("Location", path)
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(http.StatusSeeOther)
}

// safeNext returns next if it is a path of this site (not //host or a
// scheme), else "/": sign-in must not redirect elsewhere.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// pathID reads the {id} of a console path, answering 404 when it is not
// a number.
func pathID(rw http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(rw, r)
		return 0, false
	}
	return id, true
}
