package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/policy/policystore"
	"github.com/warden-schools/warden/internal/reviews"
	"github.com/warden-schools/warden/internal/store"
)

// ChangeControl proposes, decides and lists filtering changes (a
// *policystore.Store).
type ChangeControl interface {
	Propose(ctx context.Context, p policystore.Proposal) (policystore.Change, error)
	Approve(ctx context.Context, id int64, by policystore.Actor, note string) (policystore.Change, error)
	Reject(ctx context.Context, id int64, by policystore.Actor, note string) (policystore.Change, error)
	Revert(ctx context.Context, id int64, by policystore.Actor, reason, risk, riskLevel string) (policystore.Change, error)
	Changes(ctx context.Context, status string, limit int) ([]policystore.Change, error)
	Exceptions(ctx context.Context) ([]policystore.ExceptionRecord, error)
	Load(ctx context.Context) (policystore.Policy, error)
}

// ruleRow is a time and place rule as the page shows it.
type ruleRow struct {
	ID                              int64
	Group, Name, Action, What, When string
}

// changeRow is a change as the page shows it.
type changeRow struct {
	ID                               int64
	Summary, Diff, Reason, Risk      string
	RiskLevel, Status, ProposedBy    string
	ProposedAt, DecidedBy, DecidedAt string
	DecisionNote                     string
	Reverts                          int64
	CanDecide, Own, CanRevert        bool
}

type exceptionRow struct {
	ID                                     int64
	Group, Action, Pattern, Note, By, When string
}

// requestRow is an open review request as the page shows it.
type requestRow struct {
	ID                                           int64
	Ref, Site, Group, When, Who, Reason, Message string
}

// reportRow is an open site report as the page shows it.
type reportRow struct {
	ID                                   int64
	URL, Host, Group, When, Who, Message string
}

type filteringData struct {
	Zones      []directory.Zone
	Rules      []ruleRow
	Reports    []reportRow
	Lists      listsData
	Requests   []requestRow
	Waiting    []changeRow
	Log        []changeRow
	Exceptions []exceptionRow
	Groups     []policy.Group
	Categories []string
	CanPropose bool
}

func (c *Console) actor(st *state) policystore.Actor {
	return policystore.Actor{Name: actorOf(st.account), PersonID: st.account.Person.ID}
}

// getFiltering shows the changes waiting, the proposal form, the
// exceptions in force and the change log (PermViewFiltering).
func (c *Console) getFiltering(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermViewFiltering, "/filtering") {
		return
	}
	c.filteringPage(rw, r, st, http.StatusOK, "")
}

func (c *Console) filteringPage(rw http.ResponseWriter, r *http.Request, st *state, status int, problem string) {
	v := view{Title: "Filtering", Signed: st.signed(), Nav: nav(st.account.Role, "/filtering"), CSRF: c.csrfFor(st.secret), Problem: problem}
	if msg := r.URL.Query().Get("done"); problem == "" {
		v.Flash = map[string]string{
			"applied":  "The change is applied: filters use it within seconds.",
			"proposed": "The change is proposed: it takes effect when a member of leadership other than you approves it.",
			"approved": "The change is approved and applied.",
			"declined": "The change is declined.",
			"handled":  "The report is handled.",
			"updating": "The lists are being downloaded and checked: reload this page in a minute to see the outcome.",
		}[msg]
	}
	ctx := r.Context()
	changes, err := c.changes.Changes(ctx, "", 100)
	var exceptions []policystore.ExceptionRecord
	if err == nil {
		exceptions, err = c.changes.Exceptions(ctx)
	}
	if err != nil {
		c.log.Error("filtering_read_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/", "Back to the start", "Warden could not read the filtering changes just now.")
		return
	}
	role := st.account.Role
	me := c.actor(st)
	d := filteringData{Groups: c.checker.Groups(), Categories: c.categories, CanPropose: role.Can(auth.PermProposeChange)}
	for _, ch := range changes {
		own := (me.PersonID != 0 && ch.ProposedBy.PersonID == me.PersonID) || strings.EqualFold(ch.ProposedBy.Name, me.Name)
		row := changeRow{ID: ch.ID, Summary: ch.Summary, Diff: ch.Diff, Reason: ch.Reason, Risk: ch.Risk, RiskLevel: ch.RiskLevel,
			Status: ch.Status, ProposedBy: ch.ProposedBy.Name, ProposedAt: ch.ProposedAt.In(c.loc).Format("2 Jan 2006 15:04"),
			DecidedBy: ch.DecidedBy.Name, DecisionNote: ch.DecisionNote, Reverts: ch.Reverts, Own: own,
			CanDecide: ch.Status == policystore.StatusProposed && !own && role.Can(auth.PermApproveChange),
			CanRevert: ch.Status == policystore.StatusApplied && role.Can(auth.PermProposeChange)}
		if !ch.DecidedAt.IsZero() {
			row.DecidedAt = ch.DecidedAt.In(c.loc).Format("2 Jan 2006 15:04")
		}
		if ch.Status == policystore.StatusProposed {
			d.Waiting = append(d.Waiting, row)
		}
		d.Log = append(d.Log, row)
	}
	if d.CanPropose {
		reqs, err := c.reviews.ListRequests(ctx, reviews.Filter{Status: reviews.StatusOpen, Limit: 50})
		if err != nil {
			c.log.Error("review_requests_read_failed", "err", err)
			c.message(rw, r, http.StatusServiceUnavailable, v, "/", "Back to the start", "Warden could not read the review requests just now.")
			return
		}
		n := c.newNames(ctx)
		reps, err := c.reviews.ListReports(ctx, reviews.Filter{Status: reviews.StatusOpen, Limit: 50})
		if err != nil {
			c.log.Error("site_reports_read_failed", "err", err)
			c.message(rw, r, http.StatusServiceUnavailable, v, "/", "Back to the start", "Warden could not read the site reports just now.")
			return
		}
		for _, rp := range reps {
			d.Reports = append(d.Reports, reportRow{ID: rp.ID, URL: rp.URL, Host: rp.Host, Group: rp.GroupID,
				When: rp.CreatedAt.In(c.loc).Format("2 Jan 2006 15:04"), Who: n.person(rp.PersonID), Message: rp.Message})
		}
		for _, q := range reqs {
			site := q.Host
			if q.URL != "" {
				site = q.URL
			}
			d.Requests = append(d.Requests, requestRow{ID: q.ID, Ref: blockpage.FormatRef(q.Ref), Site: site, Group: q.GroupID,
				When: q.CreatedAt.In(c.loc).Format("2 Jan 2006 15:04"), Who: n.person(q.PersonID), Reason: q.Reason, Message: q.Message})
		}
	}
	if d.Lists, err = c.listsData(ctx, role); err != nil {
		c.log.Error("lists_read_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/", "Back to the start", "Warden could not read the lists just now.")
		return
	}
	if d.Zones, err = c.dir.Zones(ctx); err != nil {
		c.log.Error("zones_read_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/", "Back to the start", "Warden could not read the zones just now.")
		return
	}
	pol, err := c.changes.Load(ctx)
	if err != nil {
		c.log.Error("policy_read_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/", "Back to the start", "Warden could not read the policy just now.")
		return
	}
	for _, g := range pol.Groups {
		for _, ru := range g.Rules {
			what := strings.TrimSpace(strings.Join(ru.Categories, " ") + " " + strings.Join(ru.Domains, " "))
			when := "always"
			if !ru.Schedule.Always() {
				when = policy.FormatDays(ru.Schedule.Days) + " " + policy.FormatClock(ru.Schedule.Start) + "-" + policy.FormatClock(ru.Schedule.End)
			}
			if len(ru.Zones) > 0 {
				when += " in " + strings.Join(ru.Zones, ", ")
			}
			d.Rules = append(d.Rules, ruleRow{ID: ru.ID, Group: g.ID, Name: ru.Name, Action: ru.Action.String(), What: what, When: when})
		}
	}
	for _, e := range exceptions {
		d.Exceptions = append(d.Exceptions, exceptionRow{ID: e.ID, Group: e.Group, Action: e.Action.String(), Pattern: e.Pattern, Note: e.Note,
			By: e.CreatedBy, When: e.CreatedAt.In(c.loc).Format("2 Jan 2006")})
	}
	v.Data = d
	c.render(rw, r, status, "filtering", v)
}

// changeProblem writes the page for a change refused as asked, or logs
// and reports any other failure; it returns false when there was none.
func (c *Console) changeProblem(rw http.ResponseWriter, r *http.Request, st *state, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, policystore.ErrInvalidChange) || errors.Is(err, store.ErrConflict) || errors.Is(err, policystore.ErrSelfApproval) ||
		errors.Is(err, policystore.ErrNotProposed) || errors.Is(err, store.ErrNotFound):
		c.filteringPage(rw, r, st, http.StatusBadRequest, "The change was not made: "+err.Error()+".")
	default:
		c.log.Error("change_failed", "err", err)
		c.filteringPage(rw, r, st, http.StatusServiceUnavailable, "The change was not made: "+err.Error()+".")
	}
	return true
}

// postPropose records a proposal (PermProposeChange); it is applied at
// once unless it loosens protection for pupils.
func (c *Console) postPropose(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermProposeChange, "/filtering/propose") {
		return
	}
	f := r.PostForm
	spec := policystore.ChangeSpec{Group: f.Get("group")}
	switch f.Get("kind") {
	case "allow-site", "block-site":
		spec.Kind, spec.Pattern, spec.Action = policystore.AddException, strings.TrimSpace(f.Get("site")), strings.TrimSuffix(f.Get("kind"), "-site")
		spec.Note = strings.TrimSpace(f.Get("reason"))
	case "remove-exception":
		id, err := strconv.ParseInt(f.Get("exception"), 10, 64)
		if err != nil {
			c.filteringPage(rw, r, st, http.StatusBadRequest, "Choose the exception to remove.")
			return
		}
		spec.Kind, spec.ExceptionID = policystore.RemoveException, id
	case "set-category":
		spec.Kind, spec.Category, spec.Action = policystore.SetCategory, f.Get("category"), f.Get("category_action")
	case "add-rule":
		spec.Kind = policystore.AddRule
		spec.Rule = &policystore.RuleSpec{Name: strings.TrimSpace(f.Get("rule_name")), Action: f.Get("rule_action"),
			Categories: f.Get("rule_categories"), Domains: f.Get("rule_domains"), Days: f.Get("rule_days"),
			Start: strings.TrimSpace(f.Get("rule_start")), End: strings.TrimSpace(f.Get("rule_end")), Zones: f.Get("rule_zones")}
	case "remove-rule":
		id, err := strconv.ParseInt(f.Get("rule"), 10, 64)
		if err != nil {
			c.filteringPage(rw, r, st, http.StatusBadRequest, "Choose the rule to remove.")
			return
		}
		spec.Kind, spec.RuleID = policystore.RemoveRule, id
	case "set-safe-search", "set-mode", "set-default-action", "set-education-first":
		kinds := map[string]struct {
			kind   policystore.ChangeKind
			prefix string
		}{"set-safe-search": {policystore.SetSafeSearch, "ss:"}, "set-mode": {policystore.SetMode, "mode:"},
			"set-default-action": {policystore.SetDefault, "default:"}, "set-education-first": {policystore.SetEducationFirst, "edu:"}}
		k := kinds[f.Get("kind")]
		v, ok := strings.CutPrefix(f.Get("setting"), k.prefix)
		if !ok {
			c.filteringPage(rw, r, st, http.StatusBadRequest, "Choose a group setting of the kind the change names.")
			return
		}
		spec.Kind, spec.Action = k.kind, v
	case "put-zone":
		spec.Kind = policystore.PutZone
		spec.Zone = &policystore.ZoneSpec{ID: strings.TrimSpace(f.Get("zone_id")), Name: strings.TrimSpace(f.Get("zone_name")), Group: f.Get("group"),
			Networks: strings.FieldsFunc(f.Get("zone_networks"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })}
		spec.Group = ""
	case "delete-zone":
		spec.Kind, spec.Zone = policystore.DeleteZone, &policystore.ZoneSpec{ID: f.Get("zone")}
	default:
		c.filteringPage(rw, r, st, http.StatusBadRequest, "Choose what kind of change to propose.")
		return
	}
	p := policystore.Proposal{Spec: spec, Reason: f.Get("reason"), Risk: f.Get("risk"), RiskLevel: f.Get("risk_level"), By: c.actor(st)}
	ch, err := c.changes.Propose(r.Context(), p)
	entry := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionChangeProposed}
	if err != nil {
		entry.Outcome, entry.Detail = audit.Failed, err.Error()
	} else {
		entry.Target, entry.Detail = "change "+strconv.FormatInt(ch.ID, 10), ch.Summary+" ("+ch.Status+")"
	}
	if !c.record(rw, r, entry) || c.changeProblem(rw, r, st, err) {
		return
	}
	redirectAfterChange(rw, ch)
}

// postDecide approves or declines a change (PermApproveChange; never
// one's own).
func (c *Console) postDecide(approve bool) func(http.ResponseWriter, *http.Request, *state) {
	return func(rw http.ResponseWriter, r *http.Request, st *state) {
		if !c.permitted(rw, r, st, auth.PermApproveChange, r.URL.Path) {
			return
		}
		id, ok := pathID(rw, r)
		if !ok {
			return
		}
		var err error
		note := r.PostForm.Get("note")
		var ch policystore.Change
		action, done := audit.ActionChangeRejected, "declined"
		if approve {
			action, done = audit.ActionChangeApproved, "approved"
			ch, err = c.changes.Approve(r.Context(), id, c.actor(st), note)
		} else {
			ch, err = c.changes.Reject(r.Context(), id, c.actor(st), note)
		}
		entry := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: action,
			Target: "change " + strconv.FormatInt(id, 10), Detail: ch.Summary}
		if err != nil {
			entry.Outcome, entry.Detail = audit.Failed, err.Error()
		}
		if !c.record(rw, r, entry) || c.changeProblem(rw, r, st, err) {
			return
		}
		redirect(rw, "/filtering?done="+done)
	}
}

// postRevert proposes the inverse of an applied change.
func (c *Console) postRevert(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermProposeChange, r.URL.Path) {
		return
	}
	id, ok := pathID(rw, r)
	if !ok {
		return
	}
	f := r.PostForm
	ch, err := c.changes.Revert(r.Context(), id, c.actor(st), f.Get("reason"), f.Get("risk"), f.Get("risk_level"))
	entry := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionChangeProposed,
		Target: "revert of change " + strconv.FormatInt(id, 10), Detail: ch.Summary + " (" + ch.Status + ")"}
	if err != nil {
		entry.Outcome, entry.Detail = audit.Failed, err.Error()
	}
	if !c.record(rw, r, entry) || c.changeProblem(rw, r, st, err) {
		return
	}
	redirectAfterChange(rw, ch)
}

// queueItem loads the review request or site report a post to the
// Filtering page's queues names, for someone with PermProposeChange: it
// answers 403 or 404 (an unknown or malformed id) itself and then
// reports false.
func queueItem[T any](c *Console, rw http.ResponseWriter, r *http.Request, st *state,
	get func(context.Context, int64) (T, error)) (int64, T, bool) {
	var zero T
	if !c.permitted(rw, r, st, auth.PermProposeChange, r.URL.Path) {
		return 0, zero, false
	}
	id, ok := pathID(rw, r)
	if !ok {
		return 0, zero, false
	}
	v, err := get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(rw, r)
		return 0, zero, false
	}
	if err != nil {
		c.changeProblem(rw, r, st, err)
		return 0, zero, false
	}
	return id, v, true
}

// postRequest answers a review request from the block page
// (PermProposeChange): approving proposes an allow exception for the
// request's site and group through change control (so it applies at once
// or waits for leadership like any change); declining needs a reply.
func (c *Console) postRequest(approve bool) func(http.ResponseWriter, *http.Request, *state) {
	return func(rw http.ResponseWriter, r *http.Request, st *state) {
		id, q, ok := queueItem(c, rw, r, st, c.reviews.GetRequest)
		if !ok {
			return
		}
		ctx, f := r.Context(), r.PostForm
		var err error
		reply := strings.TrimSpace(f.Get("reply"))
		entry := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionReviewDeclined,
			Target: "review request " + blockpage.FormatRef(q.Ref), Detail: q.Host + " for " + q.GroupID}
		if !approve {
			if reply == "" {
				c.filteringPage(rw, r, st, http.StatusBadRequest, "Say why the request is declined: the reply is for the person who asked.")
				return
			}
			_, err = c.reviews.DecideRequest(ctx, id, reviews.Decision{By: actorOf(st.account), Reply: reply})
			if err != nil {
				entry.Outcome, entry.Detail = audit.Failed, err.Error()
			}
			if !c.record(rw, r, entry) || c.changeProblem(rw, r, st, err) {
				return
			}
			redirect(rw, "/filtering?done=declined")
			return
		}
		pattern := q.Host
		if q.URL != "" {
			pattern = q.URL
		}
		ch, err := c.changes.Propose(ctx, policystore.Proposal{
			Spec:   policystore.ChangeSpec{Kind: policystore.AddException, Group: q.GroupID, Action: "allow", Pattern: pattern, Note: "review request " + blockpage.FormatRef(q.Ref)},
			Reason: f.Get("reason"), Risk: f.Get("risk"), RiskLevel: f.Get("risk_level"), By: c.actor(st), ReviewRequestID: id})
		entry.Action = audit.ActionReviewApproved
		if err == nil {
			if reply == "" {
				reply = "Approved."
			}
			if ch.Status == policystore.StatusProposed {
				reply += " It takes effect when leadership approves the change."
			}
			_, err = c.reviews.DecideRequest(ctx, id, reviews.Decision{Approve: true, By: actorOf(st.account), Reply: reply})
			entry.Detail += "; change " + strconv.FormatInt(ch.ID, 10) + " " + ch.Status
		}
		if err != nil {
			entry.Outcome, entry.Detail = audit.Failed, err.Error()
		}
		if !c.record(rw, r, entry) || c.changeProblem(rw, r, st, err) {
			return
		}
		redirectAfterChange(rw, ch)
	}
}

// postReport handles an unsuitable-site report (PermProposeChange):
// "block" proposes a block exception for its host (a tightening change,
// so it applies at once) and marks the report actioned; "dismiss" needs
// a note.
func (c *Console) postReport(block bool) func(http.ResponseWriter, *http.Request, *state) {
	return func(rw http.ResponseWriter, r *http.Request, st *state) {
		id, rp, ok := queueItem(c, rw, r, st, c.reviews.GetReport)
		if !ok {
			return
		}
		ctx, f := r.Context(), r.PostForm
		var err error
		entry := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionReportHandled,
			Target: "site report " + strconv.FormatInt(id, 10), Detail: rp.Host}
		note := strings.TrimSpace(f.Get("note"))
		h := reviews.Handling{By: actorOf(st.account), Note: note}
		if block {
			group := f.Get("group")
			if group != "" && group != rp.GroupID {
				c.filteringPage(rw, r, st, http.StatusBadRequest, "Block it for the reporter's group or for all groups.")
				return
			}
			var ch policystore.Change
			ch, err = c.changes.Propose(ctx, policystore.Proposal{
				Spec:   policystore.ChangeSpec{Kind: policystore.AddException, Group: group, Action: "block", Pattern: rp.Host, Note: "site report " + strconv.FormatInt(id, 10)},
				Reason: "Reported as unsuitable: " + firstNonEmpty(rp.Message, rp.URL), Risk: "Blocking reduces access only; reviewed on request.",
				RiskLevel: policystore.RiskLow, By: c.actor(st)})
			if err == nil {
				h.Actioned, h.Note = true, "blocked (change "+strconv.FormatInt(ch.ID, 10)+")"
				_, err = c.reviews.HandleReport(ctx, id, h)
			}
		} else {
			if note == "" {
				c.filteringPage(rw, r, st, http.StatusBadRequest, "Say why no action is taken.")
				return
			}
			_, err = c.reviews.HandleReport(ctx, id, h)
		}
		if err != nil {
			entry.Outcome, entry.Detail = audit.Failed, err.Error()
		} else {
			entry.Detail += ": " + h.Note
		}
		if !c.record(rw, r, entry) || c.changeProblem(rw, r, st, err) {
			return
		}
		redirect(rw, "/filtering?done=handled")
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// redirectAfterChange returns to the Filtering page saying whether the
// change applied or waits for approval.
func redirectAfterChange(rw http.ResponseWriter, ch policystore.Change) {
	done := "applied"
	if ch.Status == policystore.StatusProposed {
		done = "proposed"
	}
	redirect(rw, "/filtering?done="+done)
}
