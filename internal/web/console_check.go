package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
)

// SiteCheck is a question for "Why is this blocked?": an address, and
// who asks (a group, or a person's login, or a client address) and when.
type SiteCheck struct {
	Target string
	Group  string
	Login  string
	IP     netip.Addr
	Time   time.Time
}

// SiteAnswer is the decision with who it was for.
type SiteAnswer struct {
	Explanation policy.Explanation
	Subject     identity.Subject
	Host, URL   string
}

// SiteChecker decides as the filters would (the app, which warden check
// also uses). Errors wrapping store.ErrNotFound or ErrBadCheck are the
// asker's to correct.
type SiteChecker interface {
	CheckSite(ctx context.Context, q SiteCheck) (SiteAnswer, error)
	// Groups lists the policy groups to choose from.
	Groups() []policy.Group
}

// ErrBadCheck marks a question that cannot be answered as asked (an
// address that is not one, a group that does not exist).
var ErrBadCheck = errors.New("cannot check that")

// checkForm is the question as typed.
type checkForm struct {
	Target, Group, Person, IP, When string
}

// checkAnswer is the page's answer.
type checkAnswer struct {
	Verdict, Action, Target, Reason, Group, Via, Person, Device, Zone string
	Rule, Category, List, Matched, SafeSearch, When                   string
	Version                                                           int64
	Listed                                                            []string
}

// checkData is the page.
type checkData struct {
	F      checkForm
	Groups []policy.Group
	Answer *checkAnswer
}

// getCheck answers "Why is this blocked?" (PermCheckSite). Each question
// is audited, as it can be about a person.
func (c *Console) getCheck(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermCheckSite, "/check") {
		return
	}
	q := r.URL.Query()
	get := func(k string, max int) string {
		s := strings.ToValidUTF8(strings.TrimSpace(q.Get(k)), "")
		if len(s) > max {
			s = s[:max]
		}
		return s
	}
	f := checkForm{Target: get("target", 2048), Group: get("group", 64), Person: get("person", 254), IP: get("ip", 45), When: get("when", 20)}
	d := checkData{F: f, Groups: c.checker.Groups()}
	v := view{Title: "Why is this blocked?", Signed: st.signed(), Nav: nav(st.account.Role, "/check"), CSRF: c.csrfFor(st.secret), Data: &d}
	if f.Target == "" {
		c.render(rw, r, http.StatusOK, "check", v)
		return
	}
	sc := SiteCheck{Target: f.Target, Group: f.Group, Login: f.Person}
	var problem string
	switch {
	case f.Group != "" && f.Person != "":
		problem = "Give a group or a person, not both."
	case f.IP != "":
		ip, err := netip.ParseAddr(f.IP)
		if err != nil {
			problem = fmt.Sprintf("%q is not an IP address.", f.IP)
		}
		sc.IP = ip
	}
	if problem == "" && f.Group == "" && f.Person == "" && f.IP == "" {
		problem = "Say who is asking: choose a group, or give a person or a device's address."
	}
	if problem == "" && f.When != "" {
		t, err := time.ParseInLocation(localTimeLayout, f.When, c.loc)
		if err != nil {
			problem = "Give the time as a date and time, such as 2026-09-03T11:30."
		}
		sc.Time = t
	}
	if problem != "" {
		v.Problem = problem
		c.render(rw, r, http.StatusBadRequest, "check", v)
		return
	}
	if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionSiteChecked,
		Target: f.Target, Detail: "group=" + f.Group + " person=" + f.Person + " ip=" + f.IP + " when=" + f.When}) {
		return
	}
	ans, err := c.checker.CheckSite(r.Context(), sc)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrBadCheck):
		v.Problem = err.Error()
		c.render(rw, r, http.StatusBadRequest, "check", v)
		return
	default:
		c.log.Error("site_check_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/check", "Try again", "Warden could not check that just now.")
		return
	}
	dec := ans.Explanation.Decision
	a := &checkAnswer{Action: dec.Action.String(), Verdict: "Allowed", Target: ans.Host, Reason: dec.Reason, Group: dec.Group, Via: ans.Subject.Via,
		Person: ans.Subject.Person, Device: ans.Subject.Device, Zone: ans.Subject.Zone, Rule: dec.Rule, Category: dec.Category,
		Matched: dec.Matched, SafeSearch: dec.SafeSearch.String(), Version: dec.PolicyVersion,
		When: ans.Explanation.LocalTime.Format("Monday 2 January 2006 at 15:04 MST")}
	if ans.URL != "" {
		a.Target = ans.URL
	}
	if dec.Blocked() {
		a.Verdict = "Blocked"
	} else if dec.Alert {
		a.Verdict = "Allowed, and the safeguarding team is alerted"
	}
	if dec.List != "" {
		a.List = dec.List + " (" + dec.Source + ")"
	}
	for _, m := range ans.Explanation.Matches {
		entry := m.Entry
		if m.Mandatory {
			// Never the entry of a mandatory list.
			entry = "entry not shown"
		}
		a.Listed = append(a.Listed, m.List+": "+strings.Join(m.Categories, ", ")+" ("+entry+")")
	}
	d.Answer = a
	c.render(rw, r, http.StatusOK, "check", v)
}
