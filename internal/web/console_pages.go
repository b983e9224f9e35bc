package web

import (
	"net/http"

	"github.com/warden-schools/warden/internal/auth"
)

// navItem is one job in the navigation.
type navItem struct {
	Path, Label, Summary string
	Current              bool
}

// sectionInfo is one of the console's jobs: who may open it, what it is
// for, and what it will hold (a page says plainly what is still to come).
type sectionInfo struct {
	Path, Label string
	Perm        auth.Permission
	Summary     string
	Coming      string
	Meanwhile   string
	// Built says the page is served by its own handler, not as a
	// placeholder.
	Built bool
}

// sections are the console's jobs, in the navigation's order.
func sections() []sectionInfo {
	return []sectionInfo{
		{Path: "/check", Label: "Why is this blocked?", Perm: auth.PermCheckSite, Built: true,
			Summary: "What the filter does with an address for a group, a person or a device, and why."},
		{Path: "/filtering", Label: "Filtering", Perm: auth.PermViewFiltering, Built: true,
			Summary: "Exceptions and category actions, with every change proposed, risk assessed, approved when it loosens protection for pupils, and logged."},
		{Path: "/people", Label: "People & devices", Perm: auth.PermViewPeople, Built: true,
			Summary: "Pupils, staff, visitors and devices; device tokens for filtering off site."},
		{Path: "/monitoring", Label: "Monitoring", Perm: auth.PermViewAccessLog, Built: true,
			Summary: "The access log: every DNS query and web request, with who asked and what was decided."},
		{Path: "/safeguarding", Label: "Safeguarding", Perm: auth.PermViewSafeguarding,
			Summary: "Concerns, alerts and chronologies for the safeguarding team.",
			Coming:  "The DSL's inbox of alerts, concern records with actions and chronologies, encrypted at rest, with every read audited."},
		{Path: "/reports", Label: "Reports", Perm: auth.PermViewReports,
			Summary: "Reports for leadership and governors on filtering, monitoring and online-safety concerns.",
			Coming:  "Termly reports for governors, and the figures the school's online-safety review asks for."},
		{Path: "/audit", Label: "Audit log", Perm: auth.PermViewAudit, Built: true,
			Summary: "Every sign-in and console action, in a tamper-evident log."},
		{Path: "/settings", Label: "Settings", Perm: auth.PermManageAccounts, Built: true,
			Summary: "Accounts and roles: give accounts, reset passwords and two-factor authentication, unlock."},
	}
}

// nav is the navigation for a role: home and the jobs it may open.
func nav(r auth.Role, current string) []navItem {
	items := []navItem{{Path: "/", Label: "Home", Current: current == "/"}}
	for _, s := range sections() {
		if r.Can(s.Perm) {
			items = append(items, navItem{Path: s.Path, Label: s.Label, Summary: s.Summary, Current: current == s.Path})
		}
	}
	return items
}

func (c *Console) home(rw http.ResponseWriter, r *http.Request, st *state) {
	c.render(rw, r, http.StatusOK, "home", view{Title: "Home", Signed: st.signed(), Nav: nav(st.account.Role, "/"), CSRF: c.csrfFor(st.secret)})
}

// section serves one job's page to the roles allowed it, and 403 to the
// rest.
func (c *Console) section(s sectionInfo) func(http.ResponseWriter, *http.Request, *state) {
	return func(rw http.ResponseWriter, r *http.Request, st *state) {
		if !c.permitted(rw, r, st, s.Perm, s.Path) {
			return
		}
		v := view{Title: s.Label, Signed: st.signed(), Nav: nav(st.account.Role, s.Path), CSRF: c.csrfFor(st.secret), Data: s}
		c.render(rw, r, http.StatusOK, "section", v)
	}
}
