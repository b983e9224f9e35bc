package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/warden-schools/warden/internal/policy"
)

// youtubeCmd approves YouTube videos and channels for teaching: approve,
// revoke, list.
func (c *cli) youtubeCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("youtube: give approve, revoke or list")
	}
	switch args[0] {
	case "approve":
		return c.youtubeApprove(ctx, args[1:])
	case "revoke":
		return c.youtubeRevoke(ctx, args[1:])
	case "list":
		return c.youtubeList(ctx, args[1:])
	}
	return usageErr("youtube: unknown subcommand %q (give approve, revoke or list)", args[0])
}

// youtubeScope reads --group and --all-groups: exactly one is needed.
func youtubeScope(name, group string, all bool) (string, error) {
	switch {
	case group != "" && all:
		return "", usageErr("youtube %s: give --group ID or --all-groups, not both", name)
	case group == "" && !all:
		return "", usageErr("youtube %s: give the group with --group ID (or --all-groups for every group)", name)
	}
	return group, nil
}

// youtubeApprove approves a video or channel for a group.
func (c *cli) youtubeApprove(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("youtube approve", &co)
	group := fs.String("group", "", "the group the video or channel is approved for, e.g. key-stage-2")
	all := fs.Bool("all-groups", false, "approve it for every group")
	reason := fs.String("reason", "", "why, for the change record (e.g. \"Year 5 science: volcanoes\")")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("youtube approve: give one video or channel (a URL such as https://www.youtube.com/watch?v=..., or its id)")
	}
	g, err := youtubeScope("approve", *group, *all)
	if err != nil {
		return err
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	ap, err := a.ApproveYouTube(ctx, actor(), g, rest[0], *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Approved %s for %s (exception %d): %s\n", ap.Ref, scopeText(ap.Group), ap.ExceptionID, ap.Ref.URL())
	if ap.Ref.Kind == policy.YouTubeChannel {
		fmt.Fprintln(c.stdout, "YouTube's Restricted Mode is lifted for the channel's own pages; each of its videos still needs approving to play unrestricted.")
	} else {
		fmt.Fprintln(c.stdout, "YouTube's Restricted Mode is lifted for this video, and only it.")
	}
	fmt.Fprintln(c.stdout, "This works where the proxy inspects HTTPS (proxy.inspect); a running server applies the change within seconds.")
	fmt.Fprintf(c.stdout, "Undo with: warden youtube revoke %s %s\n", scopeFlag(ap.Group), ap.Ref.ID)
	return nil
}

// youtubeRevoke removes a group's approval of a video or channel.
func (c *cli) youtubeRevoke(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("youtube revoke", &co)
	group := fs.String("group", "", "the group whose approval to remove")
	all := fs.Bool("all-groups", false, "remove the approval for every group")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("youtube revoke: give one video or channel (its URL or id)")
	}
	g, err := youtubeScope("revoke", *group, *all)
	if err != nil {
		return err
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	removed, err := a.RevokeYouTube(ctx, actor(), g, rest[0])
	if err != nil {
		return err
	}
	for _, ap := range removed {
		fmt.Fprintf(c.stdout, "Revoked %s for %s (exception %d); Restricted Mode applies to it again.\n", ap.Ref, scopeText(ap.Group), ap.ExceptionID)
	}
	return nil
}

// youtubeList shows the approvals, for one group or all.
func (c *cli) youtubeList(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("youtube list", &co)
	group := fs.String("group", "", "show only what this group may see (its approvals and those for every group)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	list, err := a.YouTubeApprovals(ctx, *group)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(c.stdout, "No YouTube videos or channels are approved. Approve one with: warden youtube approve --group ID --reason TEXT URL")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tKIND\tID\tREASON\tBY\tWHEN\tEXCEPTION")
	for _, ap := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", scopeLabel(ap.Group), ap.Ref.Kind, ap.Ref.ID, orDash(ap.Reason), orDash(ap.By),
			ap.At.Local().Format("2006-01-02 15:04"), ap.ExceptionID)
	}
	return tw.Flush()
}

func scopeLabel(group string) string {
	if group == "" {
		return "(all groups)"
	}
	return group
}

func scopeText(group string) string {
	if group == "" {
		return "all groups"
	}
	return group
}

func scopeFlag(group string) string {
	if group == "" {
		return "--all-groups"
	}
	return "--group " + group
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
