package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-schools/warden/internal/audit"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/lists/listsync"
)

// ListStore reads the stored lists and updates the UT1 set from a URL (a
// *listsync.Store).
type ListStore interface {
	Summaries(ctx context.Context) ([]listsync.Summary, error)
	FetchUT1(ctx context.Context, o listsync.FetchOptions) (listsync.FetchResult, error)
}

// listUpdateTimeout bounds an update started from the console.
const listUpdateTimeout = 15 * time.Minute

// listUpdates runs one list update at a time in the background (a
// download can take longer than a page may) and keeps the last outcome
// for the page.
type listUpdates struct {
	mu      sync.Mutex
	running bool
	last    string
	lastOK  bool
}

type listRow struct {
	ID, Categories, Source, Entries, Version, Updated, Origin string
	Mandatory                                                 bool
}

type listsData struct {
	Lists     []listRow
	Running   bool
	Last      string
	LastOK    bool
	CanUpdate bool
	URL       string
}

// listsData reads the lists for the Filtering page.
func (c *Console) listsData(ctx context.Context, role auth.Role) (listsData, error) {
	sums, err := c.lists.Summaries(ctx)
	if err != nil {
		return listsData{}, err
	}
	c.updates.mu.Lock()
	d := listsData{Running: c.updates.running, Last: c.updates.last, LastOK: c.updates.lastOK, CanUpdate: role.Can(auth.PermProposeChange), URL: c.ut1URL}
	c.updates.mu.Unlock()
	for _, s := range sums {
		row := listRow{ID: s.ID, Categories: strings.Join(s.Categories, ", "), Source: s.Source, Mandatory: s.Mandatory,
			Entries: strconv.Itoa(s.Entries()), Version: strconv.Itoa(s.Version), Origin: s.Origin,
			Updated: s.UpdatedAt.In(c.loc).Format("2 Jan 2006 15:04") + " by " + s.UpdatedBy}
		if !s.Enabled {
			row.Source += " (off)"
		}
		d.Lists = append(d.Lists, row)
	}
	return d, nil
}

// postListUpdate starts downloading the UT1 set from the given URL
// (PermProposeChange); the page shows the outcome when it is done, and
// the audit log records it. A bad download changes nothing.
func (c *Console) postListUpdate(rw http.ResponseWriter, r *http.Request, st *state) {
	if !c.permitted(rw, r, st, auth.PermProposeChange, r.URL.Path) {
		return
	}
	raw := strings.TrimSpace(r.PostForm.Get("url"))
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.filteringPage(rw, r, st, http.StatusBadRequest, "Give the UT1 archive's address, starting https://.")
		return
	}
	c.updates.mu.Lock()
	if c.updates.running {
		c.updates.mu.Unlock()
		c.filteringPage(rw, r, st, http.StatusConflict, "An update is running already; wait for it to finish.")
		return
	}
	c.updates.running = true
	c.updates.mu.Unlock()
	who := audit.Entry{PersonID: st.account.Person.ID, Actor: actorOf(st.account), Action: audit.ActionListsUpdated, Target: raw, ClientIP: clientIP(r)}
	if !c.record(rw, r, audit.Entry{PersonID: who.PersonID, Actor: who.Actor, Action: audit.ActionListsUpdated, Target: raw, Detail: "started"}) {
		c.updates.mu.Lock()
		c.updates.running = false
		c.updates.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), listUpdateTimeout)
	go func() {
		defer cancel()
		res, err := c.lists.FetchUT1(ctx, listsync.FetchOptions{URL: raw, Actor: who.Actor})
		var outcome string
		if err != nil {
			outcome = "The update from " + raw + " failed, and the lists in force were kept: " + err.Error()
			who.Outcome, who.Detail = audit.Failed, err.Error()
		} else {
			changed := 0
			for _, l := range res.Lists {
				if l.Changed {
					changed++
				}
			}
			outcome = fmt.Sprintf("Updated from %s at %s: %d lists read, %d changed (%d bytes).", raw,
				c.now().In(c.loc).Format("15:04"), len(res.Lists), changed, res.Bytes)
			who.Detail = fmt.Sprintf("%d lists, %d changed, SHA-256 %s", len(res.Lists), changed, res.SHA256)
		}
		if err := c.audit.Record(ctx, who); err != nil {
			c.log.Error("audit_failed", "action", who.Action, "err", err)
		}
		c.log.Info("lists_updated", "url", raw, "outcome", outcome)
		c.updates.mu.Lock()
		c.updates.running, c.updates.last, c.updates.lastOK = false, outcome, err == nil
		c.updates.mu.Unlock()
	}()
	redirect(rw, "/filtering?done=updating#lists-h")
}
