package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/store"
)

type accountAction struct{ Path, Label string }

type accountRow struct {
	ID                                   int64
	Name, Login, Role, RoleValue, Status string
	Last                                 string
	Self                                 bool
	Actions                              []accountAction
}

type issuedPassword struct{ Name, Login, Password string }

type settingsData struct {
	Accounts []accountRow
	Roles    []roleChoice
	Issued   *issuedPassword
}

func allRoles() []roleChoice {
	out := []roleChoice{{Value: "none", Label: auth.RoleNone.Label() + " (web proxy only)"}}
	for _, r := range auth.Roles() {
		out = append(out, roleChoice{Value: string(r), Label: r.Label()})
	}
	return out
}

// getSettings lists accounts with their actions (PermManageAccounts).
func (c *Console) getSettings(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermManageAccounts, "/settings") {
		return
	}
	c.settingsPage(rw, r, st, http.StatusOK, "", nil)
}

func (c *Console) settingsPage(rw http.ResponseWriter, r *http.Request, st *state, status int, problem string, issued *issuedPassword) {
	v := view{Title: "Settings", Signed: st.signed(), Nav: nav(st.account.Role, "/settings"), CSRF: c.csrfFor(st.secret), Problem: problem}
	accts, err := c.accounts.List(r.Context())
	if err != nil {
		c.log.Error("accounts_read_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/", "Back to the start", "Warden could not read the accounts just now.")
		return
	}
	now := c.now()
	d := settingsData{Roles: allRoles(), Issued: issued}
	for _, a := range accts {
		row := accountRow{ID: a.Person.ID, Name: a.Person.DisplayName(), Login: actorOf(a), Role: a.Role.Label(), RoleValue: a.Role.String(),
			Self: a.Person.ID == st.account.Person.ID, Last: "never"}
		if !a.LastLoginAt.IsZero() {
			row.Last = a.LastLoginAt.In(c.loc).Format("2 Jan 2006 15:04")
		}
		var status []string
		base := "/settings/accounts/" + strconv.FormatInt(a.Person.ID, 10)
		switch {
		case a.Disabled:
			status = append(status, "disabled")
			row.Actions = append(row.Actions, accountAction{base + "/enable", "Enable"})
		case now.Before(a.LockedUntil):
			status = append(status, "locked until "+a.LockedUntil.In(c.loc).Format("15:04"))
			row.Actions = append(row.Actions, accountAction{base + "/unlock", "Unlock"})
		default:
			status = append(status, "active")
		}
		if !a.Disabled {
			row.Actions = append(row.Actions, accountAction{base + "/disable", "Disable"})
		}
		if a.Role.RequiresTOTP() && !a.TOTPEnabled {
			status = append(status, "two-factor not set up")
		}
		if a.TOTPEnabled {
			row.Actions = append(row.Actions, accountAction{base + "/reset-2fa", "Reset two-factor"})
		}
		if a.PasswordExpired(now) {
			status = append(status, "password expired")
		}
		row.Actions = append(row.Actions, accountAction{base + "/reset-password", "New password"})
		row.Status = strings.Join(status, ", ")
		d.Accounts = append(d.Accounts, row)
	}
	v.Data = d
	c.render(rw, r, status, "settings", v)
}

// newPassword makes up a first password that passes the rules.
func (c *Console) newPassword(r *http.Request, personID int64, role auth.Role) (string, error) {
	p, err := c.dir.Person(r.Context(), personID)
	if err != nil {
		return "", err
	}
	return c.accounts.GeneratePassword(r.Context(), p, role)
}

// postAccount gives a person an account with a made-up first password,
// shown once, to be changed at the first sign-in.
func (c *Console) postAccount(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermManageAccounts, r.URL.Path) {
		return
	}
	login := strings.TrimSpace(r.PostForm.Get("login"))
	role, err := auth.ParseRole(r.PostForm.Get("role"))
	if err != nil {
		c.settingsPage(rw, r, st, http.StatusBadRequest, err.Error(), nil)
		return
	}
	p, err := c.dir.PersonByLogin(r.Context(), login)
	if errors.Is(err, store.ErrNotFound) {
		c.settingsPage(rw, r, st, http.StatusBadRequest, "Nobody active has the username or email "+strconv.Quote(login)+": add them in the directory first.", nil)
		return
	}
	var pw string
	if err == nil {
		pw, err = c.newPassword(r, p.ID, role)
	}
	if err == nil {
		err = c.accounts.Set(r.Context(), actorOf(st.account), p.ID, pw, auth.SetOptions{Role: role, MustChange: true})
	}
	c.afterAccountChange(rw, r, st, p.ID, audit.ActionAccountCreated, login+" as "+role.String(), err,
		&issuedPassword{Name: p.DisplayName(), Login: login, Password: pw})
}

// postAccountAction changes another person's account: role, unlock,
// enable or disable, two-factor reset or a new password.
func (c *Console) postAccountAction(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermManageAccounts, r.URL.Path) {
		return
	}
	id, ok := pathID(rw, r)
	if !ok {
		return
	}
	if id == st.account.Person.ID {
		// Nobody changes their own role or locks themselves out here: a
		// second administrator does.
		c.settingsPage(rw, r, st, http.StatusBadRequest, "Your own account is changed by another administrator (or with warden accounts on the server).", nil)
		return
	}
	ctx, actor := r.Context(), actorOf(st.account)
	acct, err := c.accounts.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(rw, r)
		return
	}
	target := actorOf(acct)
	var issued *issuedPassword
	switch act := r.PathValue("action"); act {
	case "role":
		role, perr := auth.ParseRole(r.PostForm.Get("role"))
		if perr != nil {
			c.settingsPage(rw, r, st, http.StatusBadRequest, perr.Error(), nil)
			return
		}
		if err == nil {
			err = c.accounts.SetRole(ctx, actor, id, role)
		}
		c.afterAccountChange(rw, r, st, id, audit.ActionAccountChanged, target+": role "+r.PostForm.Get("role"), err, nil)
		return
	case "unlock":
		err = errors.Join(err, c.accounts.Unlock(ctx, actor, id))
	case "disable", "enable":
		err = errors.Join(err, c.accounts.SetDisabled(ctx, actor, id, act == "disable"))
	case "reset-2fa":
		err = errors.Join(err, c.accounts.ResetTOTP(ctx, actor, id))
	case "reset-password":
		var pw string
		if err == nil {
			if pw, err = c.newPassword(r, id, acct.Role); err == nil {
				err = c.accounts.Set(ctx, actor, id, pw, auth.SetOptions{Role: acct.Role, MustChange: true})
			}
		}
		issued = &issuedPassword{Name: acct.Person.DisplayName(), Login: target, Password: pw}
	default:
		http.NotFound(rw, r)
		return
	}
	c.afterAccountChange(rw, r, st, id, audit.ActionAccountChanged, target+": "+r.PathValue("action"), err, issued)
}

// afterAccountChange audits an account change and shows the page with
// its outcome (and a new password, once).
func (c *Console) afterAccountChange(rw http.ResponseWriter, r *http.Request, st *state, id int64, action, what string, err error, issued *issuedPassword) {
	entry := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: action, Target: "person " + strconv.FormatInt(id, 10), Detail: what}
	if err != nil {
		entry.Outcome, entry.Detail = audit.Failed, what+": "+err.Error()
	}
	if !c.record(rw, r, entry) {
		return
	}
	if err != nil {
		var weak *auth.WeakPasswordError
		if errors.As(err, &weak) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			c.settingsPage(rw, r, st, http.StatusBadRequest, "Not changed: "+err.Error()+".", nil)
			return
		}
		c.log.Error("account_change_failed", "err", err)
		c.settingsPage(rw, r, st, http.StatusServiceUnavailable, "Not changed: Warden could not save it just now.", nil)
		return
	}
	if issued == nil || issued.Password == "" {
		redirect(rw, "/settings")
		return
	}
	c.settingsPage(rw, r, st, http.StatusOK, "", issued)
}
