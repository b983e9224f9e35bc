package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/store"
)

// setupData is the set-up form.
type setupData struct {
	Done                               bool
	Token                              string
	Forename, Surname, Username, Email string
	Roles                              []roleChoice
}

type roleChoice struct {
	Value, Label string
	Checked      bool
}

func setupRoles(chosen string) []roleChoice {
	var out []roleChoice
	for _, r := range auth.AdminRoles() {
		out = append(out, roleChoice{Value: string(r), Label: r.Label(), Checked: string(r) == chosen})
	}
	return out
}

// getSetup shows the first administrator's form for a live set-up link.
func (c *Console) getSetup(rw http.ResponseWriter, r *http.Request) {
	if c.needsHTTPS(rw, r) {
		return
	}
	token := r.PathValue("token")
	if _, console, err := c.accounts.Count(r.Context()); err == nil && console > 0 {
		c.render(rw, r, http.StatusOK, "setup", view{Title: "Set up Warden", Data: setupData{Done: true}})
		return
	}
	if err := c.accounts.CheckSetupToken(r.Context(), token); err != nil {
		c.message(rw, r, http.StatusNotFound, view{Title: "This set-up link does not work"}, "", "",
			auth.ErrSetupToken.Error()+".", "Run `warden accounts setup-link` on the server for a new one.")
		return
	}
	pre := c.preSession(rw, r)
	c.render(rw, r, http.StatusOK, "setup", view{Title: "Set up Warden", CSRF: c.csrfFor(pre),
		Data: setupData{Token: token, Roles: setupRoles(string(auth.RoleIT))}})
}

func (c *Console) postSetup(rw http.ResponseWriter, r *http.Request) {
	if c.needsHTTPS(rw, r) || c.throttled(rw, r) {
		return
	}
	pre := c.readCookie(r, preCookie, hostPreCookie)
	if !c.checkPost(rw, r, pre) {
		return
	}
	token := r.PathValue("token")
	f := r.PostForm
	d := setupData{Token: token, Forename: strings.TrimSpace(f.Get("forename")), Surname: strings.TrimSpace(f.Get("surname")),
		Username: strings.ToLower(strings.TrimSpace(f.Get("username"))), Email: strings.ToLower(strings.TrimSpace(f.Get("email"))),
		Roles: setupRoles(f.Get("role"))}
	v := view{Title: "Set up Warden", CSRF: c.csrfFor(pre), Data: d}
	role, err := auth.ParseRole(f.Get("role"))
	switch {
	case d.Forename == "" || d.Surname == "" || d.Username == "":
		v.Problem = "Please give your first name, last name and a username."
	case err != nil || role == auth.RoleNone:
		v.Problem = "Please choose your role."
	case f.Get("password") != f.Get("again"):
		v.Problem = "The two passwords differ."
	}
	if v.Problem != "" {
		c.render(rw, r, http.StatusBadRequest, "setup", v)
		return
	}
	acct, err := c.accounts.SetUpFirstAdmin(r.Context(), token, auth.FirstAdmin{
		Person: directory.Person{LegalForename: d.Forename, Surname: d.Surname, Username: d.Username, Email: d.Email, Role: string(role)},
		Role:   role, Password: f.Get("password")})
	var weak *auth.WeakPasswordError
	switch {
	case err == nil:
	case errors.Is(err, auth.ErrSetupToken):
		c.message(rw, r, http.StatusNotFound, view{Title: "This set-up link does not work"}, "/login", "Sign in", err.Error()+".")
		return
	case errors.As(err, &weak):
		v.Problem = "That password cannot be used: " + weak.Reason + "."
		c.render(rw, r, http.StatusBadRequest, "setup", v)
		return
	case errors.Is(err, store.ErrConflict) || errors.Is(err, directory.ErrInvalid):
		v.Problem = err.Error()
		c.render(rw, r, http.StatusBadRequest, "setup", v)
		return
	default:
		c.log.Error("setup_failed", "err", err)
		v.Problem = "Warden could not create the account just now. Please try again in a minute."
		c.render(rw, r, http.StatusServiceUnavailable, "setup", v)
		return
	}
	c.log.Info("first_admin_created", "person", acct.Person.ID, "role", acct.Role)
	if !c.record(rw, r, audit.Entry{PersonID: acct.Person.ID, Actor: actorOf(acct), Action: audit.ActionFirstAdmin,
		Target: acct.Person.DisplayName(), Detail: "role " + acct.Role.String() + " by the set-up link"}) {
		return
	}
	secret, _, err := c.accounts.StartSession(r.Context(), acct, clientIP(r), r.UserAgent())
	if err != nil {
		redirect(rw, "/login")
		return
	}
	c.setCookie(rw, sessionCookie, hostSessionCookie, secret, 0)
	redirect(rw, "/account/2fa")
}
