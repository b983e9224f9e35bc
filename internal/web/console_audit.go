package web

import (
	"net/http"
	"strconv"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
)

// auditPageSize is how many entries a page of the audit log shows.
const auditPageSize = 50

// auditRow is one entry as the page shows it.
type auditRow struct {
	When, ISO, Actor, Action, Target, Outcome, From, Detail string
}

// auditData is the audit page.
type auditData struct {
	Rows               []auditRow
	Total, First, Last int
	Newer, Older       int
	Check              *audit.Report
}

// getAudit shows a page of the audit log (PermViewAudit). Reading the
// audit log is itself recorded.
func (c *Console) getAudit(rw http.ResponseWriter, r *http.Request, st *state) {
	c.auditPage(rw, r, st, nil)
}

// postAuditVerify checks the whole chain and shows the result above the
// newest entries.
func (c *Console) postAuditVerify(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermViewAudit, "/audit") {
		return
	}
	rep, err := c.audit.Verify(r.Context())
	if err != nil {
		c.log.Error("audit_verify_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, view{Title: "Audit log", Signed: st.signed(), Nav: nav(st.account.Role, "/audit"),
			CSRF: c.csrfFor(st.secret)}, "/audit", "Back to the audit log", "Warden could not read the audit log just now.")
		return
	}
	outcome := audit.OK
	if !rep.Intact() {
		outcome = audit.Failed
		c.log.Error("audit_chain_broken", "problems", len(rep.Problems))
	}
	if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionAuditVerified,
		Outcome: outcome, Detail: strconv.FormatInt(rep.Rows, 10) + " rows, " + strconv.Itoa(len(rep.Problems)) + " problems"}) {
		return
	}
	r.URL.RawQuery = ""
	c.auditPage(rw, r, st, &rep)
}

// permitted checks a permission for a page, recording and answering 403
// when the role lacks it.
func (c *Console) permitted(rw http.ResponseWriter, r *http.Request, st *state, p auth.Permission, path string) bool {
	if st.account.Role.Can(p) {
		return true
	}
	c.log.Info("console_forbidden", "person", st.account.Person.ID, "role", st.account.Role, "path", path)
	if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionPermissionRefused,
		Target: path, Outcome: audit.Refused, Detail: "role " + st.account.Role.String()}) {
		return false
	}
	c.message(rw, r, http.StatusForbidden, view{Title: "Not allowed", Signed: st.signed(), Nav: nav(st.account.Role, path), CSRF: c.csrfFor(st.secret)},
		"/", "Back to the start", "Your role ("+st.account.Role.Label()+") does not include this page. If you need it, ask the headteacher.")
	return false
}

func (c *Console) auditPage(rw http.ResponseWriter, r *http.Request, st *state, check *audit.Report) {
	if !c.permitted(rw, r, st, auth.PermViewAudit, "/audit") {
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	entries, total, err := c.audit.List(r.Context(), audit.Filter{Limit: auditPageSize, Offset: (page - 1) * auditPageSize})
	v := view{Title: "Audit log", Signed: st.signed(), Nav: nav(st.account.Role, "/audit"), CSRF: c.csrfFor(st.secret)}
	if err != nil {
		c.log.Error("audit_list_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/", "Back to the start", "Warden could not read the audit log just now.")
		return
	}
	if check == nil && !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionAuditViewed,
		Detail: "page " + strconv.Itoa(page)}) {
		return
	}
	d := auditData{Total: total, Check: check}
	for _, e := range entries {
		from := ""
		if e.ClientIP.IsValid() {
			from = e.ClientIP.String()
		}
		d.Rows = append(d.Rows, auditRow{When: e.At.In(c.loc).Format("2 Jan 2006 15:04:05"), ISO: e.At.Format("2006-01-02T15:04:05.000Z07:00"),
			Actor: e.Actor, Action: e.Action, Target: e.Target, Outcome: e.Outcome, From: from, Detail: e.Detail})
	}
	if len(entries) > 0 {
		d.First = (page-1)*auditPageSize + 1
		d.Last = d.First + len(entries) - 1
	}
	if page > 1 {
		d.Newer = page - 1
	}
	if page*auditPageSize < total {
		d.Older = page + 1
	}
	v.Data = d
	c.render(rw, r, http.StatusOK, "audit", v)
}
