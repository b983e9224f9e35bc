package web

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warden-schools/warden/internal/accesslog"
	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/store"
)

// Directory finds people and devices for the console (a
// *directory.Directory).
type Directory interface {
	People(ctx context.Context, f directory.PeopleFilter) ([]directory.Person, int, error)
	Devices(ctx context.Context) ([]directory.Device, error)
	Zones(ctx context.Context) ([]directory.Zone, error)
	Person(ctx context.Context, id int64) (directory.Person, error)
	PersonByLogin(ctx context.Context, login string) (directory.Person, error)
	Device(ctx context.Context, id int64) (directory.Device, error)
	DeviceByName(ctx context.Context, name string) (directory.Device, error)
}

// monitoringPageSize is how many access-log entries a page shows.
const monitoringPageSize = 100

// maxExportRows bounds one CSV export.
const maxExportRows = 1_000_000

// monitoringForm is the viewer's filter as typed.
type monitoringForm struct {
	Person, Device, Group, Category, Action, Site, From, To string
	Before                                                  int64
}

// values returns the form as query parameters (without Before).
func (f monitoringForm) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"person": f.Person, "device": f.Device, "group": f.Group, "category": f.Category,
		"action": f.Action, "site": f.Site, "from": f.From, "to": f.To} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// describe is the filter in words, for the audit log.
func (f monitoringForm) describe() string {
	q := f.values().Encode()
	if q == "" {
		return "everything"
	}
	return q
}

// localTimeLayout is how datetime-local inputs send times.
const localTimeLayout = "2006-01-02T15:04"

// filter turns the form into an access-log filter, finding the person and
// device by name; a problem is written for the person.
func (c *Console) filter(ctx context.Context, f monitoringForm) (accesslog.Filter, string, error) {
	af := accesslog.Filter{Group: f.Group, Category: f.Category, Host: f.Site, Before: f.Before, Limit: monitoringPageSize}
	switch f.Action {
	case "", "allow", "block":
		af.Action = f.Action
	default:
		return af, "Choose Blocked, Allowed or Any for the decision.", nil
	}
	if f.Person != "" {
		p, err := c.dir.PersonByLogin(ctx, f.Person)
		if errors.Is(err, store.ErrNotFound) {
			return af, fmt.Sprintf("Nobody active has the username or email %q.", f.Person), nil
		}
		if err != nil {
			return af, "", err
		}
		af.PersonID = p.ID
	}
	if f.Device != "" {
		d, err := c.dir.DeviceByName(ctx, f.Device)
		if errors.Is(err, store.ErrNotFound) {
			return af, fmt.Sprintf("There is no device called %q.", f.Device), nil
		}
		if err != nil {
			return af, "", err
		}
		af.DeviceID = d.ID
	}
	for _, t := range []struct {
		s     string
		dst   *time.Time
		field string
	}{{f.From, &af.From, "From"}, {f.To, &af.To, "Until"}} {
		if t.s == "" {
			continue
		}
		v, err := time.ParseInLocation(localTimeLayout, t.s, c.loc)
		if err != nil {
			return af, fmt.Sprintf("%s: give a date and time such as 2026-09-03T09:00.", t.field), nil
		}
		*t.dst = v
	}
	return af, "", nil
}

func readMonitoringForm(r *http.Request) monitoringForm {
	q := r.URL.Query()
	trim := func(k string, max int) string {
		s := strings.TrimSpace(q.Get(k))
		if len(s) > max {
			s = s[:max]
		}
		return strings.ToValidUTF8(s, "")
	}
	f := monitoringForm{Person: trim("person", 254), Device: trim("device", 100), Group: trim("group", 64),
		Category: trim("category", 64), Action: trim("action", 10), Site: strings.ToLower(trim("site", 253)),
		From: trim("from", 20), To: trim("to", 20)}
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	return f
}

// monitoringRow is one entry as the page shows it.
type monitoringRow struct {
	When, ISO, Person, Device, Address, Group, Site, Search, Action, Category, Source string
	Alert                                                                             bool
}

// names looks people and devices up once per page.
type names struct {
	c       *Console
	ctx     context.Context
	people  map[int64]string
	devices map[int64]string
}

func (c *Console) newNames(ctx context.Context) *names {
	return &names{c: c, ctx: ctx, people: map[int64]string{}, devices: map[int64]string{}}
}

func (n *names) person(id int64) string {
	if id == 0 {
		return ""
	}
	if s, ok := n.people[id]; ok {
		return s
	}
	s := "person " + strconv.FormatInt(id, 10)
	if p, err := n.c.dir.Person(n.ctx, id); err == nil {
		s = p.DisplayName()
	}
	n.people[id] = s
	return s
}

func (n *names) device(id int64) string {
	if id == 0 {
		return ""
	}
	if s, ok := n.devices[id]; ok {
		return s
	}
	s := "device " + strconv.FormatInt(id, 10)
	if d, err := n.c.dir.Device(n.ctx, id); err == nil {
		s = d.Name
	}
	n.devices[id] = s
	return s
}

func (c *Console) row(n *names, e accesslog.Entry) monitoringRow {
	site := e.Host
	if e.URL != "" {
		site = e.URL
	}
	if len(site) > 300 {
		site = site[:300] + "…"
	}
	addr := ""
	if e.ClientIP.IsValid() {
		addr = e.ClientIP.String()
	}
	return monitoringRow{When: e.Time.In(c.loc).Format("2 Jan 2006 15:04:05"), ISO: e.Time.UTC().Format(time.RFC3339),
		Person: n.person(e.PersonID), Device: n.device(e.DeviceID), Address: addr, Group: e.Group, Site: site, Search: e.SearchTerm,
		Action: e.Action, Alert: e.Alert, Category: e.Category, Source: e.Source}
}

// monitoringData is the viewer page.
type monitoringData struct {
	F    monitoringForm
	Rows []monitoringRow
	// Export, Newest and Older are links Warden built from the filter
	// (already query-escaped), so marked safe for the template.
	Export, Newest, Older template.URL
	Filtered              bool
	Categories            []string
}

// getMonitoring shows a page of the access log (PermViewAccessLog); every
// search is audited, as it reads people's browsing.
func (c *Console) getMonitoring(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermViewAccessLog, "/monitoring") {
		return
	}
	f := readMonitoringForm(r)
	v := view{Title: "Monitoring", Signed: st.signed(), Nav: nav(st.account.Role, "/monitoring"), CSRF: c.csrfFor(st.secret)}
	query := f.values().Encode()
	d := monitoringData{F: f, Export: template.URL("/monitoring/export.csv?" + query), Filtered: query != "", Categories: c.categories}
	af, problem, err := c.filter(r.Context(), f)
	if err != nil {
		c.log.Error("access_log_filter_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/monitoring", "Try again", "Warden could not search the access log just now.")
		return
	}
	if problem != "" {
		v.Problem, v.Data = problem, d
		c.render(rw, r, http.StatusBadRequest, "monitoring", v)
		return
	}
	if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionAccessLogViewed,
		Detail: f.describe()}) {
		return
	}
	entries, err := c.access.Recent(r.Context(), af)
	if err != nil {
		c.log.Error("access_log_read_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/monitoring", "Try again", "Warden could not read the access log just now.")
		return
	}
	n := c.newNames(r.Context())
	for _, e := range entries {
		d.Rows = append(d.Rows, c.row(n, e))
	}
	if f.Before != 0 {
		d.Newest = template.URL("/monitoring?" + query)
	}
	if len(entries) == monitoringPageSize {
		q := f.values()
		q.Set("before", strconv.FormatInt(entries[len(entries)-1].ID, 10))
		d.Older = template.URL("/monitoring?" + q.Encode())
	}
	v.Data = d
	c.render(rw, r, http.StatusOK, "monitoring", v)
}

// csvSafe stops a cell being read as a formula by spreadsheet programs
// (CSV injection): a leading =, +, -, @, tab or carriage return gets a
// quote in front.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// getExport streams every entry the filter matches as CSV (at most
// maxExportRows), newest first. The export is audited.
func (c *Console) getExport(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermViewAccessLog, "/monitoring/export.csv") {
		return
	}
	f := readMonitoringForm(r)
	f.Before = 0
	af, problem, err := c.filter(r.Context(), f)
	v := view{Title: "Monitoring", Signed: st.signed(), Nav: nav(st.account.Role, "/monitoring"), CSRF: c.csrfFor(st.secret)}
	if err != nil || problem != "" {
		if problem == "" {
			problem = "Warden could not search the access log just now."
		}
		c.message(rw, r, http.StatusBadRequest, v, "/monitoring", "Back to the access log", problem)
		return
	}
	if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionAccessLogExported,
		Detail: f.describe()}) {
		return
	}
	name := "access-log-" + c.now().In(c.loc).Format("2006-01-02-1504") + ".csv"
	rw.Header().Set("Content-Type", "text/csv; charset=utf-8")
	rw.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	rw.Header().Set("Cache-Control", "no-store")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	w := csv.NewWriter(rw)
	w.Write([]string{"time", "person", "device", "client_ip", "group", "source", "host", "url", "type", "method", "decision", "alert",
		"category", "list", "rule", "status", "bytes", "search_term", "latency_ms", "upstream", "policy_version"})
	n := c.newNames(r.Context())
	rows := 0
	errStop := errors.New("export limit reached")
	err = c.access.Scan(r.Context(), af, func(e accesslog.Entry) error {
		if rows >= maxExportRows {
			return errStop
		}
		rows++
		addr := ""
		if e.ClientIP.IsValid() {
			addr = e.ClientIP.String()
		}
		rec := []string{e.Time.In(c.loc).Format(time.RFC3339), n.person(e.PersonID), n.device(e.DeviceID), addr, e.Group, e.Source,
			e.Host, e.URL, e.QType, e.Method, e.Action, strconv.FormatBool(e.Alert), e.Category, e.List, e.Rule, e.Status,
			strconv.FormatInt(e.Bytes, 10), e.SearchTerm, strconv.FormatFloat(float64(e.Latency.Microseconds())/1000, 'f', 3, 64),
			e.Upstream, strconv.FormatInt(e.PolicyVersion, 10)}
		for i := range rec {
			rec[i] = csvSafe(rec[i])
		}
		return w.Write(rec)
	})
	w.Flush()
	if err != nil && !errors.Is(err, errStop) {
		// The headers are sent: the file ends short, and the log says why.
		c.log.Error("access_log_export_failed", "rows", rows, "err", err)
	}
}
