package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/warden-schools/warden/internal/directory"
)

func listOnly(name string, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return usageErr("%s: give list", name)
	}
	return nil
}

func (c *cli) groupsList(ctx context.Context, args []string) error {
	a, _, err := c.simple(ctx, "groups list", args, noArgs, true)
	if err != nil {
		return err
	}
	defer a.Close()
	snap := a.Snapshot()
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tNAME\tMODE\tSAFE SEARCH\tEDUCATION FIRST\tBLOCKED CATEGORIES\tEXCEPTIONS\tRULES")
	for _, g := range snap.Groups() {
		var blocked []string
		for _, cat := range snap.Taxonomy().Categories {
			if a, ok := g.Categories[cat.ID]; ok && a.String() == "block" {
				blocked = append(blocked, cat.ID)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\t%d\t%d\n", g.ID, g.Name, g.Mode, g.SafeSearch, g.EducationFirst, len(blocked), len(g.Exceptions), len(g.Rules))
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "Unknown clients get %s. Policy version %d.\n", snap.UnknownGroup(), snap.Version())
	return nil
}

func (c *cli) zonesCmd(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "add":
			return c.zonesAdd(ctx, args[1:])
		case "delete":
			return c.zonesDelete(ctx, args[1:])
		}
	}
	if err := listOnly("zones", args); err != nil {
		return err
	}
	a, _, err := c.simple(ctx, "zones list", args[1:], noArgs, false)
	if err != nil {
		return err
	}
	defer a.Close()
	zones, err := a.Directory.Zones(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tNAME\tNETWORKS\tGROUP FOR UNIDENTIFIED CLIENTS")
	for _, z := range zones {
		var nets []string
		for _, n := range z.Networks {
			nets = append(nets, n.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", z.ID, z.Name, strings.Join(nets, " "), z.GroupID)
	}
	return tw.Flush()
}

// zonesAdd creates or replaces a network zone.
func (c *cli) zonesAdd(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("zones add", &co)
	name := fs.String("name", "", "display name")
	networks := fs.String("networks", "", "networks in the zone, e.g. 10.20.0.0/24,10.21.0.0/24")
	group := fs.String("group", "", "group for clients in the zone that nothing else identifies")
	desc := fs.String("description", "", "what the zone is")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || *networks == "" {
		return usageErr("zones add: give a zone id and --networks, e.g. zones add staff-room --networks 10.20.0.0/24")
	}
	nets, err := directory.ParseNetworks(*networks)
	if err != nil {
		return usageErr("--networks: %v", err)
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	z := directory.Zone{ID: rest[0], Name: *name, Description: *desc, GroupID: *group, Networks: nets}
	if err := a.Directory.PutZone(ctx, actor(), z); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Zone %s saved (%d networks).\n", z.ID, len(nets))
	return nil
}

// zonesDelete removes a zone no rule uses.
func (c *cli) zonesDelete(ctx context.Context, args []string) error {
	a, rest, err := c.simple(ctx, "zones delete", args, func(rest []string) error {
		if len(rest) != 1 {
			return usageErr("zones delete: give one zone id")
		}
		return nil
	}, false)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Directory.DeleteZone(ctx, actor(), rest[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Zone %s deleted.\n", rest[0])
	return nil
}
