package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/listsync"
)

func (c *cli) listsCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("lists: give import, update, categories, show, add, remove or delete")
	}
	switch args[0] {
	case "import":
		return c.listsImport(ctx, args[1:])
	case "update":
		return c.listsUpdate(ctx, args[1:])
	case "categories":
		return c.listsCategories(args[1:])
	case "show":
		return c.listsShow(ctx, args[1:])
	case "add", "remove":
		return c.listsEdit(ctx, args[0], args[1:])
	case "delete":
		return c.listsDelete(ctx, args[1:])
	}
	return usageErr("lists: unknown subcommand %q", args[0])
}

func (c *cli) listsImport(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("lists import", &co)
	format := fs.String("format", "", "ut1, plain, hosts, adblock or sha256 (default: detect)")
	category := fs.String("category", "", "Warden category of a single list (see `warden lists categories`)")
	name := fs.String("name", "", "list id for a single list (default local/FILENAME)")
	mandatory := fs.String("mandatory", "", "import as the mandatory iwf or ctiru list (never overridable, entries never shown)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("lists import: give one file, folder or .tar.gz")
	}
	opts := listsync.ImportOptions{Path: rest[0], ID: *name, Category: *category, Mandatory: *mandatory, Actor: actor()}
	if *format != "" {
		if opts.Format, err = lists.ParseFormat(*format); err != nil {
			return usageErr("%v", err)
		}
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.Init(ctx, false, false); err != nil {
		return err
	}
	res, err := a.Lists.Import(ctx, opts)
	return c.printImport(res, err)
}

// listsUpdate downloads the UT1 set from a URL and stores it if it is
// sound; a bad download changes nothing.
func (c *cli) listsUpdate(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("lists update", &co)
	minShare := fs.Float64("min-share", listsync.DefaultMinShare, "refuse a set holding less than this share of the UT1 entries in force (a broken download); -1 turns the check off")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("lists update: give the UT1 archive's address, e.g. https://dsi.ut-capitole.fr/blacklists/download/blacklists.tar.gz")
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.Init(ctx, false, false); err != nil {
		return err
	}
	res, err := a.Lists.FetchUT1(ctx, listsync.FetchOptions{URL: rest[0], Actor: actor(), MinShare: *minShare})
	if err == nil {
		fmt.Fprintf(c.stdout, "Downloaded %d bytes (SHA-256 %s).\n", res.Bytes, res.SHA256)
	}
	return c.printImport(res.ImportResult, err)
}

// printImport reports what an import or update did, or why it changed
// nothing.
func (c *cli) printImport(res listsync.ImportResult, err error) error {
	if s := res.Report.Summary(); s != "" {
		fmt.Fprintln(c.stderr, s)
	}
	if err != nil {
		return fmt.Errorf("%w\nNothing was changed; the lists in force stay as they were", err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LIST\tCATEGORIES\tDOMAINS\tURLS\tHASHES\tVERSION\t")
	for _, l := range res.Lists {
		state := "updated"
		if !l.Changed {
			state = "unchanged"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", l.ID, strings.Join(l.Categories, " "), l.Domains, l.URLs, l.Hashes, l.Version, state)
	}
	tw.Flush()
	for _, s := range res.Skipped {
		fmt.Fprintf(c.stdout, "skipped %s\n", s)
	}
	if res.Report.Unsupported > 0 {
		fmt.Fprintf(c.stdout, "%d rules of kinds Warden does not apply were ignored\n", res.Report.Unsupported)
	}
	if res.PolicyVersion > 0 {
		fmt.Fprintf(c.stdout, "Policy version %d. A running warden picks this up within seconds.\n", res.PolicyVersion)
	} else {
		fmt.Fprintln(c.stdout, "Nothing changed.")
	}
	return nil
}

func (c *cli) listsCategories(args []string) error {
	fs := c.flags("lists categories", &common{})
	if _, err := parse(fs, args); err != nil {
		return err
	}
	tax := lists.DefaultTaxonomy()
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CATEGORY\tKIND\tPUPILS\tEDUCATION FIRST\tTITLE")
	for _, cat := range tax.Categories {
		edu := "overrides"
		if !cat.EducationOverrides {
			edu = "never"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cat.ID, cat.Kind, cat.Pupils, edu, cat.Title)
	}
	tw.Flush()
	fmt.Fprintln(c.stdout, "\nSource categories and where they map:")
	tw = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSOURCE CATEGORY\tWARDEN CATEGORIES")
	for _, m := range tax.Mappings() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Source, m.SourceCategory, strings.Join(m.Categories, ", "))
	}
	return tw.Flush()
}

func (c *cli) listsShow(ctx context.Context, args []string) error {
	a, rest, err := c.simple(ctx, "lists show", args, func(rest []string) error {
		if len(rest) > 1 {
			return usageErr("lists show: give at most one list id")
		}
		return nil
	}, false)
	if err != nil {
		return err
	}
	defer a.Close()
	if len(rest) == 1 {
		l, err := a.Lists.List(ctx, rest[0])
		if errors.Is(err, listsync.ErrMandatory) {
			sm, serr := a.Lists.Summary(ctx, rest[0])
			if serr == nil {
				fmt.Fprintf(c.stdout, "%s: mandatory list, %d entries, version %d, updated %s by %s. Its entries are never shown.\n",
					sm.ID, sm.Entries(), sm.Version, sm.UpdatedAt.Format("2 Jan 2006 15:04 MST"), sm.UpdatedBy)
				return nil
			}
		}
		if err != nil {
			return err
		}
		for _, d := range l.Domains {
			fmt.Fprintln(c.stdout, d)
		}
		for _, u := range l.URLs {
			fmt.Fprintln(c.stdout, u)
		}
		return nil
	}
	ss, err := a.Lists.Summaries(ctx)
	if err != nil {
		return err
	}
	listsync.SortSummaries(ss)
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LIST\tCATEGORIES\tDOMAINS\tURLS\tHASHES\tMALFORMED\tVERSION\tUPDATED\tFLAGS")
	for _, s := range ss {
		var flags []string
		if s.Mandatory {
			flags = append(flags, "mandatory")
		}
		if !s.Enabled {
			flags = append(flags, "disabled")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.ID, strings.Join(s.Categories, " "), s.Domains, s.URLs, s.Hashes,
			s.Malformed, s.Version, s.UpdatedAt.Format("2006-01-02 15:04"), strings.Join(flags, " "))
	}
	return tw.Flush()
}

func (c *cli) listsEdit(ctx context.Context, verb string, args []string) error {
	a, rest, err := c.simple(ctx, "lists "+verb, args, func(rest []string) error {
		if len(rest) < 2 {
			return usageErr("lists %s: give a list id and at least one entry", verb)
		}
		return nil
	}, false)
	if err != nil {
		return err
	}
	defer a.Close()
	var add, remove []string
	if verb == "add" {
		add = rest[1:]
	} else {
		remove = rest[1:]
	}
	res, err := a.Lists.Edit(ctx, actor(), rest[0], add, remove)
	if err != nil {
		return err
	}
	if !res.Changed {
		fmt.Fprintf(c.stdout, "%s already held that; nothing changed.\n", res.ID)
		return nil
	}
	fmt.Fprintf(c.stdout, "%s is now version %d (%d domains, %d URLs).\n", res.ID, res.Version, res.Domains, res.URLs)
	return nil
}

func (c *cli) listsDelete(ctx context.Context, args []string) error {
	a, rest, err := c.simple(ctx, "lists delete", args, func(rest []string) error {
		if len(rest) != 1 {
			return usageErr("lists delete: give one list id")
		}
		return nil
	}, false)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Lists.Delete(ctx, actor(), rest[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Deleted %s.\n", rest[0])
	return nil
}
