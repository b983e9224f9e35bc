package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-schools/warden/internal/app"
)

// checkJSON is the `warden check --json` object. Its field names are
// relied on by scripts and documentation.
type checkJSON struct {
	Action        string       `json:"action"`
	Alert         bool         `json:"alert"`
	Mandatory     bool         `json:"mandatory"`
	Category      string       `json:"category"`
	List          string       `json:"list"`
	Source        string       `json:"source"`
	Rule          string       `json:"rule"`
	Matched       string       `json:"matched"`
	Reason        string       `json:"reason"`
	Group         string       `json:"group"`
	PolicyVersion int64        `json:"policy_version"`
	SafeSearch    string       `json:"safe_search"`
	Host          string       `json:"host"`
	URL           string       `json:"url,omitempty"`
	Time          string       `json:"time"`
	IdentifiedBy  string       `json:"identified_by"`
	Person        string       `json:"person,omitempty"`
	Device        string       `json:"device,omitempty"`
	Zone          string       `json:"zone,omitempty"`
	Listed        []listedJSON `json:"listed"`
}

type listedJSON struct {
	List       string   `json:"list"`
	Source     string   `json:"source"`
	Categories []string `json:"categories"`
	Entry      string   `json:"entry,omitempty"`
}

func (c *cli) checkCmd(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("check", &co)
	group := fs.String("group", "", "decide for this group")
	user := fs.String("user", "", "decide for this person (username or email)")
	ip := fs.String("ip", "", "client address: identifies the client, or with --group/--user sets the source for zone rules")
	at := fs.String("time", "", "decide as at this time (RFC 3339, e.g. 2026-03-04T12:30:00Z); default now")
	asJSON := fs.Bool("json", false, "print one JSON object")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("give one host name or URL to check")
	}
	if *group != "" && *user != "" {
		return usageErr("give --group or --user, not both")
	}
	req := app.CheckRequest{Target: rest[0], Group: *group, User: *user}
	if *ip != "" {
		addr, err := netip.ParseAddr(*ip)
		if err != nil {
			return usageErr("--ip %q is not an IP address", *ip)
		}
		req.IP = addr
	}
	if *group == "" && *user == "" && *ip == "" {
		return usageErr("say who is asking: --group ID, --user NAME or --ip IP")
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usageErr("--time %q is not RFC 3339 (e.g. 2026-03-04T12:30:00Z)", *at)
		}
		req.Time = t
	}
	a, err := c.openLoaded(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.Check(ctx, req)
	if err != nil {
		return err
	}
	d := res.Explanation.Decision
	out := checkJSON{
		Action: d.Action.String(), Alert: d.Alert, Mandatory: d.Mandatory, Category: d.Category, List: d.List, Source: d.Source,
		Rule: d.Rule, Matched: d.Matched, Reason: d.Reason, Group: d.Group, PolicyVersion: d.PolicyVersion,
		SafeSearch: d.SafeSearch.String(), Host: res.Host, URL: res.URL, Time: res.Explanation.LocalTime.Format(time.RFC3339),
		IdentifiedBy: res.Subject.Via, Person: res.Subject.Person, Device: res.Subject.Device, Zone: res.Subject.Zone,
		Listed: []listedJSON{},
	}
	for _, m := range res.Explanation.Matches {
		out.Listed = append(out.Listed, listedJSON{List: m.List, Source: m.Source, Categories: m.Categories, Entry: m.Entry})
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	target := res.Host
	if res.URL != "" {
		target = res.URL
	}
	verdict := strings.ToUpper(out.Action)
	if d.Alert {
		verdict += " + ALERT"
	}
	fmt.Fprintf(c.stdout, "%s  %s\n", verdict, target)
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "  %s\t%s\n", k, v)
		}
	}
	row("reason", d.Reason)
	row("group", fmt.Sprintf("%s (identified by %s)", d.Group, res.Subject.Via))
	row("person", res.Subject.Person)
	row("device", res.Subject.Device)
	row("zone", res.Subject.Zone)
	row("rule", d.Rule)
	row("category", d.Category)
	if d.List != "" {
		row("list", fmt.Sprintf("%s (%s)", d.List, d.Source))
	}
	row("matched", d.Matched)
	row("safe search", out.SafeSearch)
	row("policy version", fmt.Sprint(d.PolicyVersion))
	row("time", res.Explanation.LocalTime.Format("Mon 2 Jan 2006 15:04 MST"))
	for _, m := range res.Explanation.Matches {
		entry := m.Entry
		if m.Mandatory {
			entry = "(entry not shown)"
		}
		row("listed in", fmt.Sprintf("%s: %s, entry %s", m.List, strings.Join(m.Categories, "/"), entry))
	}
	return tw.Flush()
}
