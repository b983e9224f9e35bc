package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/warden-schools/warden/internal/audit"
)

func (c *cli) auditCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("audit: give verify or list")
	}
	switch args[0] {
	case "verify":
		return c.auditVerify(ctx, args[1:])
	case "list":
		return c.auditList(ctx, args[1:])
	}
	return usageErr("audit: unknown subcommand %q (give verify or list)", args[0])
}

// auditVerify checks the audit log's chain; a broken chain is a failure
// (exit status 1), so scripts and monitoring can run it.
func (c *cli) auditVerify(ctx context.Context, args []string) error {
	a, _, err := c.simple(ctx, "audit verify", args, noArgs, false)
	if err != nil {
		return err
	}
	defer a.Close()
	log, err := a.AuditLog()
	if err != nil {
		return err
	}
	rep, err := log.Verify(ctx)
	if err != nil {
		return err
	}
	if rep.Intact() {
		fmt.Fprintf(c.stdout, "The audit log is intact: %d rows, each as it was written.\n", rep.Rows)
		return nil
	}
	fmt.Fprintf(c.stdout, "The audit log has been tampered with (%d rows read):\n", rep.Rows)
	for _, p := range rep.Problems {
		if p.ID == 0 {
			fmt.Fprintf(c.stdout, "  end of the log: %s\n", p.Reason)
		} else {
			fmt.Fprintf(c.stdout, "  row %d: %s\n", p.ID, p.Reason)
		}
	}
	fmt.Fprintln(c.stdout, "Tell the headteacher and the DSL, and keep a copy of the data folder as it is.")
	return errors.New("the audit log's chain is broken")
}

func (c *cli) auditList(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("audit list", &co)
	limit := fs.Int("limit", 50, "how many entries, newest first (at most 500)")
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
	log, err := a.AuditLog()
	if err != nil {
		return err
	}
	entries, total, err := log.List(ctx, audit.Filter{Limit: *limit})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHEN (UTC)\tWHO\tACTION\tWHAT\tOUTCOME\tFROM\tDETAIL")
	for _, e := range entries {
		from := ""
		if e.ClientIP.IsValid() {
			from = e.ClientIP.String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format("2006-01-02 15:04:05"), e.Actor, e.Action, e.Target, e.Outcome, from, e.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%d of %d entries.\n", len(entries), total)
	return nil
}
