package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
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
