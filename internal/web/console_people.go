package web

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
)

// IssuedDeviceToken is a new device token and the settings that carry it.
type IssuedDeviceToken struct {
	Device, Token, DoHURL, DoTName, PAC string
	Replaced                            bool
}

// DeviceTokens issues and revokes device tokens (the app, which the CLI
// uses too).
type DeviceTokens interface {
	IssueToken(ctx context.Context, actor, device string) (IssuedDeviceToken, error)
	RevokeToken(ctx context.Context, actor, device string) (bool, error)
}

// peoplePageSize is how many people a page lists.
const peoplePageSize = 50

type personRow struct {
	Name, Kind, Detail, Login, Group, Source string
}

type deviceRow struct {
	ID                                       int64
	Name, Kind, Address, Group, Owner, Token string
	HasToken                                 bool
}

type zoneRow struct {
	ID, Name, Group, Networks string
}

type peopleData struct {
	Zones              []zoneRow
	Q, Kind, Group     string
	Kinds              []directory.Kind
	Groups             []policy.Group
	People             []personRow
	Total, First, Last int
	Prev, Next         template.URL
	Devices            []deviceRow
	CanManage          bool
}

// getPeople lists people (searched, by kind and group, paged) and
// devices, with token actions for PermManagePeople. Looking people up is
// audited.
func (c *Console) getPeople(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermViewPeople, "/people") {
		return
	}
	q := r.URL.Query()
	d := peopleData{Q: strings.TrimSpace(q.Get("q")), Kind: q.Get("kind"), Group: q.Get("group"), Kinds: directory.Kinds,
		Groups: c.checker.Groups(), CanManage: st.account.Role.Can(auth.PermManagePeople)}
	if len(d.Q) > 100 {
		d.Q = d.Q[:100]
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	v := view{Title: "People & devices", Signed: st.signed(), Nav: nav(st.account.Role, "/people"), CSRF: c.csrfFor(st.secret), Data: &d}
	f := directory.PeopleFilter{Search: d.Q, GroupID: d.Group, Limit: peoplePageSize, Offset: (page - 1) * peoplePageSize}
	if d.Kind != "" {
		k, err := directory.ParseKind(d.Kind)
		if err != nil {
			v.Problem = err.Error()
			c.render(rw, r, http.StatusBadRequest, "people", v)
			return
		}
		f.Kind = k
	}
	if !c.record(rw, r, audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionPeopleViewed,
		Detail: "q=" + d.Q + " kind=" + d.Kind + " group=" + d.Group + " page=" + strconv.Itoa(page)}) {
		return
	}
	ctx := r.Context()
	people, total, err := c.dir.People(ctx, f)
	var devices []directory.Device
	if err == nil {
		devices, err = c.dir.Devices(ctx)
	}
	var zones []directory.Zone
	if err == nil {
		zones, err = c.dir.Zones(ctx)
	}
	if err != nil {
		c.log.Error("people_read_failed", "err", err)
		c.message(rw, r, http.StatusServiceUnavailable, v, "/", "Back to the start", "Warden could not read the directory just now.")
		return
	}
	for _, p := range people {
		detail := p.RegGroup
		if p.HasYear {
			detail = strings.TrimSpace(directory.YearGroupName(p.Year) + " " + detail)
		}
		if p.Role != "" {
			detail = strings.TrimSpace(detail + " " + p.Role)
		}
		login := p.Username
		if login == "" {
			login = p.Email
		}
		d.People = append(d.People, personRow{Name: p.DisplayName(), Kind: string(p.Kind), Detail: detail, Login: login, Group: p.GroupID, Source: p.Source})
	}
	d.Total = total
	if len(people) > 0 {
		d.First = f.Offset + 1
		d.Last = f.Offset + len(people)
	}
	link := func(p int) template.URL {
		u := url.Values{}
		for k, s := range map[string]string{"q": d.Q, "kind": d.Kind, "group": d.Group} {
			if s != "" {
				u.Set(k, s)
			}
		}
		u.Set("page", strconv.Itoa(p))
		return template.URL("/people?" + u.Encode())
	}
	if page > 1 {
		d.Prev = link(page - 1)
	}
	if page*peoplePageSize < total {
		d.Next = link(page + 1)
	}
	for _, z := range zones {
		var nets []string
		for _, p := range z.Networks {
			nets = append(nets, p.String())
		}
		d.Zones = append(d.Zones, zoneRow{ID: z.ID, Name: z.Name, Group: z.GroupID, Networks: strings.Join(nets, ", ")})
	}
	n := c.newNames(ctx)
	lq := strings.ToLower(d.Q)
	for _, dev := range devices {
		owner := n.person(dev.OwnerID)
		if lq != "" && !strings.Contains(strings.ToLower(dev.Name+" "+owner+" "+dev.Notes), lq) {
			continue
		}
		if d.Group != "" && dev.GroupID != d.Group {
			continue
		}
		row := deviceRow{ID: dev.ID, Name: dev.Name, Kind: dev.Kind, Group: dev.GroupID, Owner: owner, Token: "none", HasToken: dev.TokenHash != ""}
		if dev.IP.IsValid() {
			row.Address = dev.IP.String()
		}
		if row.HasToken {
			row.Token = "issued " + dev.TokenCreatedAt.In(c.loc).Format("2 Jan 2006")
		}
		d.Devices = append(d.Devices, row)
	}
	c.render(rw, r, http.StatusOK, "people", v)
}

// postDeviceToken issues (or replaces) or revokes a device's token
// (PermManagePeople). A new token is shown once.
func (c *Console) postDeviceToken(revoke bool) func(http.ResponseWriter, *http.Request, *state) {
	return func(rw http.ResponseWriter, r *http.Request, st *state) {
		if !c.permitted(rw, r, st, auth.PermManagePeople, r.URL.Path) {
			return
		}
		id, ok := pathID(rw, r)
		if !ok {
			return
		}
		ctx := r.Context()
		dev, err := c.dir.Device(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			http.NotFound(rw, r)
			return
		}
		v := view{Title: "People & devices", Signed: st.signed(), Nav: nav(st.account.Role, "/people"), CSRF: c.csrfFor(st.secret)}
		if err != nil {
			c.message(rw, r, http.StatusServiceUnavailable, v, "/people", "Back", "Warden could not read the device just now.")
			return
		}
		entry := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionDeviceTokenIssued, Target: dev.Name}
		if revoke {
			entry.Action = audit.ActionDeviceTokenRevoked
			_, err = c.tokens.RevokeToken(ctx, actorOf(st.account), dev.Name)
			if err != nil {
				entry.Outcome, entry.Detail = audit.Failed, err.Error()
			}
			if !c.record(rw, r, entry) {
				return
			}
			if err != nil {
				c.message(rw, r, http.StatusServiceUnavailable, v, "/people", "Back", "The token was not revoked: "+err.Error())
				return
			}
			redirect(rw, "/people")
			return
		}
		// Recorded before the token exists: it is never shown unaudited.
		if !c.record(rw, r, entry) {
			return
		}
		tok, err := c.tokens.IssueToken(ctx, actorOf(st.account), dev.Name)
		if err != nil {
			c.log.Error("token_issue_failed", "device", dev.Name, "err", err)
			c.message(rw, r, http.StatusServiceUnavailable, v, "/people", "Back", "The token was not issued: "+err.Error())
			return
		}
		v.Title, v.Data = "Token for "+dev.Name, tok
		c.render(rw, r, http.StatusOK, "token", v)
	}
}
