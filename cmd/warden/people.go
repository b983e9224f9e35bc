package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/warden-schools/warden/internal/directory"
)

func (c *cli) peopleCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("people: give import or list")
	}
	switch args[0] {
	case "import":
		return c.peopleImport(ctx, args[1:])
	case "list":
		return c.peopleList(ctx, args[1:])
	}
	return usageErr("people: unknown subcommand %q", args[0])
}

func parseKind(s string) (directory.Kind, error) {
	switch strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "s")) {
	case "":
		return "", nil
	case "pupil", "student":
		return directory.KindPupil, nil
	case "staff":
		return directory.KindStaff, nil
	case "parent", "carer", "contact":
		return directory.KindParent, nil
	case "visitor":
		return directory.KindVisitor, nil
	}
	return "", usageErr("--kind %q: want pupil, staff, parent or visitor", s)
}

func (c *cli) peopleImport(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("people import", &co)
	kind := fs.String("kind", "", "pupil, staff, parent or visitor (default: detect from the headers)")
	deactivate := fs.Bool("deactivate-missing", false, "mark people of this kind who are not in the file as leavers (inactive)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("people import: give one CSV file")
	}
	k, err := parseKind(*kind)
	if err != nil {
		return err
	}
	f, err := os.Open(rest[0])
	if err != nil {
		return err
	}
	defer f.Close()
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.Directory.ImportCSV(ctx, f, rest[0], directory.ImportOptions{Kind: k, Actor: actor(), DeactivateMissing: *deactivate})
	if err != nil {
		return fmt.Errorf("%w\nNothing was imported", err)
	}
	fmt.Fprintf(c.stdout, "Imported %s (%s): %d rows; %d new, %d updated, %d unchanged",
		rest[0], res.Kind, res.Rows, res.Created, res.Updated, res.Unchanged)
	if res.Deactivated > 0 {
		fmt.Fprintf(c.stdout, ", %d marked as leavers", res.Deactivated)
	}
	if res.Linked > 0 {
		fmt.Fprintf(c.stdout, ", %d parent links", res.Linked)
	}
	fmt.Fprintln(c.stdout, ".")
	if len(res.Groups) > 0 {
		ids := make([]string, 0, len(res.Groups))
		for g := range res.Groups {
			ids = append(ids, g)
		}
		sort.Strings(ids)
		for _, g := range ids {
			name := g
			if name == "" {
				name = "(no group: no membership rule matches)"
			}
			fmt.Fprintf(c.stdout, "  %-40s %d\n", name, res.Groups[g])
		}
	}
	if len(res.Ignored) > 0 {
		fmt.Fprintf(c.stdout, "Columns not kept: %s\n", strings.Join(res.Ignored, ", "))
	}
	if len(res.Unknown) > 0 {
		fmt.Fprintf(c.stdout, "Columns not recognised (ignored): %s\n", strings.Join(res.Unknown, ", "))
	}
	return nil
}

func (c *cli) peopleList(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("people list", &co)
	kind := fs.String("kind", "", "pupil, staff, parent or visitor")
	group := fs.String("group", "", "only this group")
	search := fs.String("search", "", "words to find in names, logins, emails, classes and roles")
	all := fs.Bool("all", false, "include leavers (inactive)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("unexpected argument %q", rest[0])
	}
	k, err := parseKind(*kind)
	if err != nil {
		return err
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	people, total, err := a.Directory.People(ctx, directory.PeopleFilter{Kind: k, GroupID: *group, Search: *search, IncludeInactive: *all})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tKIND\tYEAR\tCLASS/ROLE\tLOGIN\tGROUP")
	for _, p := range people {
		year, class := "", p.Role
		if p.HasYear {
			year, class = directory.YearGroupName(p.Year), p.RegGroup
		}
		login := p.Username
		if login == "" {
			login = p.Email
		}
		g := p.GroupID
		if p.GroupManual {
			g += " (set by hand)"
		}
		if !p.Active {
			g += " [leaver]"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.DisplayName(), p.Kind, year, class, login, g)
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "%d people\n", total)
	return nil
}
