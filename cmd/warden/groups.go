package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/policy/policystore"
)

func (c *cli) groupsCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("groups: give list, add, set or members")
	}
	switch args[0] {
	case "list":
		return c.groupsList(ctx, args[1:])
	case "add":
		return c.groupsAdd(ctx, args[1:])
	case "set":
		return c.groupsSet(ctx, args[1:])
	case "members":
		return c.groupsMembers(ctx, args[1:])
	}
	return usageErr("groups: unknown subcommand %q", args[0])
}

// groupsAdd creates a policy group, starting from another group's
// category actions or from the taxonomy's starting actions for pupils.
func (c *cli) groupsAdd(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("groups add", &co)
	name := fs.String("name", "", "display name")
	mode := fs.String("mode", "filter", "filter (by category) or approved (approved sites only)")
	safe := fs.String("safe-search", "strict", "off, moderate or strict")
	def := fs.String("default", "allow", "action for sites in no category: allow or block")
	edu := fs.Bool("education-first", false, "allow the education list ahead of broad categories (pupil groups)")
	like := fs.String("like", "", "copy the category actions of this group")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("groups add: give one group id, e.g. key-stage-3")
	}
	spec := policystore.GroupSpec{ID: rest[0], Name: *name, EducationFirst: *edu, Position: 100}
	if spec.Mode, err = policy.ParseMode(*mode); err != nil {
		return usageErr("%v", err)
	}
	if spec.SafeSearch, err = policy.ParseSafeSearch(*safe); err != nil {
		return usageErr("%v", err)
	}
	if spec.DefaultAction, err = policy.ParseAction(*def); err != nil {
		return usageErr("%v", err)
	}
	a, err := c.openLoaded(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	if a.Snapshot().HasGroup(spec.ID) {
		return fmt.Errorf("group %s already exists; change it with `warden groups set`", spec.ID)
	}
	spec.Categories = map[string]policy.Action{}
	if *like != "" {
		g, ok := a.Snapshot().Group(*like)
		if !ok {
			return fmt.Errorf("no group %q to copy", *like)
		}
		for k, v := range g.Categories {
			spec.Categories[k] = v
		}
	} else {
		for _, cat := range a.Taxonomy().Categories {
			act, err := policy.ParseAction(cat.Pupils)
			if err != nil {
				act = policy.Block
			}
			spec.Categories[cat.ID] = act
		}
	}
	if err := a.Policies.PutGroup(ctx, actor(), spec); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Created group %s. Place people in it with `warden groups members add %s --kind ...`.\n", spec.ID, spec.ID)
	return nil
}

// groupsSet changes category actions: CATEGORY=allow|alert|block.
func (c *cli) groupsSet(ctx context.Context, args []string) error {
	a, rest, err := c.simple(ctx, "groups set", args, func(rest []string) error {
		if len(rest) < 2 {
			return usageErr("groups set: give a group id and CATEGORY=ACTION pairs, e.g. games=allow")
		}
		return nil
	}, false)
	if err != nil {
		return err
	}
	defer a.Close()
	for _, kv := range rest[1:] {
		cat, act, ok := strings.Cut(kv, "=")
		if !ok {
			return usageErr("%q is not CATEGORY=ACTION", kv)
		}
		action, err := policy.ParseAction(act)
		if err != nil {
			return usageErr("%v", err)
		}
		if err := a.Policies.SetCategoryAction(ctx, actor(), rest[0], cat, action); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s: %s is now %s.\n", rest[0], cat, action)
	}
	return nil
}

// parseYears reads "R-2", "3-6", "7", "N-13" into a range.
func parseYears(s string) (*int, *int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := directory.ParseYearGroup(lo)
	if err != nil {
		return nil, nil, err
	}
	b := a
	if isRange {
		if b, err = directory.ParseYearGroup(hi); err != nil {
			return nil, nil, err
		}
	}
	if b < a {
		return nil, nil, fmt.Errorf("years %q run backwards", s)
	}
	return &a, &b, nil
}

func describeRule(r directory.MembershipRule) string {
	var parts []string
	parts = append(parts, string(r.Kind))
	switch {
	case r.MinYear != nil && r.MaxYear != nil && *r.MinYear == *r.MaxYear:
		parts = append(parts, directory.YearGroupName(*r.MinYear))
	case r.MinYear != nil && r.MaxYear != nil:
		parts = append(parts, directory.YearGroupName(*r.MinYear)+" to "+directory.YearGroupName(*r.MaxYear))
	case r.MinYear != nil:
		parts = append(parts, "from "+directory.YearGroupName(*r.MinYear))
	case r.MaxYear != nil:
		parts = append(parts, "up to "+directory.YearGroupName(*r.MaxYear))
	}
	if r.Role != "" {
		parts = append(parts, fmt.Sprintf("with role containing %q", r.Role))
	}
	return strings.Join(parts, " ")
}

// groupsMembers shows and edits the membership rules that place people
// in groups: list (default), add GROUP --kind K [--years R-2] [--role
// TEXT], remove N, clear.
func (c *cli) groupsMembers(ctx context.Context, args []string) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	var co common
	fs := c.flags("groups members "+sub, &co)
	kind := fs.String("kind", "", "pupil, staff, parent or visitor")
	years := fs.String("years", "", "pupils' year groups, e.g. R-2, 3-6, N-13, 7")
	role := fs.String("role", "", "staff whose role contains this text, e.g. Governor")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	rules, err := a.Directory.MembershipRules(ctx)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
	case "add":
		if len(rest) != 1 {
			return usageErr("groups members add: give one group id")
		}
		k, err := parseKind(*kind)
		if err != nil || k == "" {
			return usageErr("groups members add: --kind pupil, staff, parent or visitor")
		}
		r := directory.MembershipRule{GroupID: rest[0], Kind: k, Role: *role}
		if *years != "" {
			if r.MinYear, r.MaxYear, err = parseYears(*years); err != nil {
				return usageErr("--years: %v", err)
			}
		}
		rules = append(rules, r)
	case "remove":
		var n int
		if len(rest) != 1 {
			return usageErr("groups members remove: give the rule number from `warden groups members`")
		}
		if _, err := fmt.Sscanf(rest[0], "%d", &n); err != nil || n < 1 || n > len(rules) {
			return usageErr("groups members remove: no rule %q", rest[0])
		}
		rules = append(rules[:n-1], rules[n:]...)
	case "clear":
		rules = nil
	default:
		return usageErr("groups members: give list, add, remove or clear")
	}
	if sub != "list" {
		if err := a.Directory.SetMembershipRules(ctx, actor(), rules); err != nil {
			return err
		}
		if rules, err = a.Directory.MembershipRules(ctx); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tPEOPLE\tGROUP")
	for i, r := range rules {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", i+1, describeRule(r), r.GroupID)
	}
	tw.Flush()
	fmt.Fprintln(c.stdout, "The first rule that matches a person decides their group; people set by hand keep theirs.")
	return nil
}
