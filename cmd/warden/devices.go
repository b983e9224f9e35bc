package main

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/warden-schools/warden/internal/app"
	"github.com/warden-schools/warden/internal/directory"
)

func (c *cli) devicesCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("devices: give list, add or token")
	}
	switch args[0] {
	case "list":
		return c.devicesList(ctx, args[1:])
	case "add":
		return c.devicesAdd(ctx, args[1:])
	case "token":
		if len(args) < 2 {
			return usageErr("devices token: give issue or revoke, and a device name")
		}
		switch args[1] {
		case "issue":
			return c.devicesTokenIssue(ctx, args[2:])
		case "revoke":
			return c.devicesTokenRevoke(ctx, args[2:])
		}
		return usageErr("devices token: unknown subcommand %q (give issue or revoke)", args[1])
	}
	return usageErr("devices: unknown subcommand %q", args[0])
}

func (c *cli) devicesList(ctx context.Context, args []string) error {
	a, _, err := c.simple(ctx, "devices list", args, noArgs, false)
	if err != nil {
		return err
	}
	defer a.Close()
	devs, err := a.Directory.Devices(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tKIND\tIP\tMAC\tGROUP\tOWNER\tTOKEN")
	for _, d := range devs {
		ip := ""
		if d.IP.IsValid() {
			ip = d.IP.String()
		}
		owner := ""
		if d.OwnerID != 0 {
			if p, err := a.Directory.Person(ctx, d.OwnerID); err == nil {
				owner = p.DisplayName()
			}
		}
		token := "no"
		if d.TokenHash != "" {
			token = "issued " + d.TokenCreatedAt.Local().Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Name, d.Kind, ip, d.MAC, d.GroupID, owner, token)
	}
	return tw.Flush()
}

// devicesAdd registers a school or personal device.
func (c *cli) devicesAdd(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("devices add", &co)
	kind := fs.String("kind", directory.DeviceSchool, "school or personal")
	ip := fs.String("ip", "", "the device's fixed IP address, if it has one")
	mac := fs.String("mac", "", "the device's MAC address")
	group := fs.String("group", "", "the device's policy group (default: its owner's)")
	owner := fs.String("owner", "", "the login (username or email) of the person the device belongs to or is lent to")
	notes := fs.String("notes", "", "free text, such as where the device lives")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("devices add: give one device name, e.g. loan-laptop-07")
	}
	dev := directory.Device{Name: rest[0], Kind: strings.ToLower(*kind), MAC: *mac, GroupID: *group, Notes: *notes}
	if dev.Kind != directory.DeviceSchool && dev.Kind != directory.DevicePersonal {
		return usageErr("--kind %q: want school or personal", *kind)
	}
	if *ip != "" {
		if dev.IP, err = netip.ParseAddr(*ip); err != nil {
			return usageErr("--ip %q is not an IP address", *ip)
		}
	}
	if *mac != "" {
		if _, err := directory.NormalizeMAC(*mac); err != nil {
			return usageErr("--mac: %v", err)
		}
	}
	a, err := c.openLoaded(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.AddDevice(ctx, actor(), dev, *owner); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Added device %s.", dev.Name)
	if dev.GroupID == "" && dev.OwnerID == 0 && !dev.IP.IsValid() {
		fmt.Fprint(c.stdout, " It has no group, owner or address yet: until it has, it gets the unknown-client policy.")
	}
	fmt.Fprintf(c.stdout, "\nTo filter it off site, issue it a token: warden devices token issue %s\n", quoteArg(dev.Name))
	return nil
}

// devicesTokenIssue gives a device a new token and prints how to set the
// device up with it.
func (c *cli) devicesTokenIssue(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("devices token issue", &co)
	urlBase := fs.String("url-base", "", "the base URL devices reach Warden's web listener at, e.g. https://warden.school.example (default: public_url in the configuration)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("devices token issue: give one device name (see `warden devices list`)")
	}
	if *urlBase != "" {
		u, err := url.Parse(*urlBase)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
			return usageErr("--url-base %q: give a URL such as https://warden.school.example", *urlBase)
		}
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	tok, err := a.IssueDeviceToken(ctx, actor(), rest[0], *urlBase)
	if err != nil {
		return err
	}
	w := c.stdout
	fmt.Fprintf(w, "Issued a new token to %s", tok.Device)
	if tok.Replaced {
		fmt.Fprint(w, "; its earlier token no longer works")
	}
	fmt.Fprintf(w, ".\nIt is shown only this once (Warden keeps only its hash): set the device up now.\n\n")
	fmt.Fprintf(w, "  token:                %s\n", tok.Token)
	fmt.Fprintf(w, "  DNS-over-HTTPS URL:   %s\n", tok.DoHURL)
	if tok.DoTName != "" {
		fmt.Fprintf(w, "  DNS-over-TLS name:    %s\n", tok.DoTName)
	}
	fmt.Fprintln(w)
	if tok.DoHURLGuessed {
		fmt.Fprintln(w, "The URL is built from the web listener's address; set public_url in the configuration (or --url-base) to the name devices reach Warden at.")
	}
	if strings.HasPrefix(tok.DoHURL, "http://") {
		fmt.Fprintln(w, "Devices need HTTPS: give the web listener a certificate (tls.cert_file and tls.key_file; see the README).")
	}
	if tok.DoTAddr != "" && tok.DoTName == "" {
		fmt.Fprintf(w, "DNS-over-TLS (%s) knows devices only by address; set dns.dot_hostname for a per-device name.\n", tok.DoTAddr)
	}
	fmt.Fprintf(w, "A running warden serve accepts the token within %s.\n", app.ReloadInterval)
	return nil
}

func (c *cli) devicesTokenRevoke(ctx context.Context, args []string) error {
	a, rest, err := c.simple(ctx, "devices token revoke", args, func(rest []string) error {
		if len(rest) != 1 {
			return usageErr("devices token revoke: give one device name")
		}
		return nil
	}, false)
	if err != nil {
		return err
	}
	defer a.Close()
	name, had, err := a.RevokeDeviceToken(ctx, actor(), rest[0])
	if err != nil {
		return err
	}
	if !had {
		fmt.Fprintf(c.stdout, "%s has no token; nothing was changed.\n", name)
		return nil
	}
	fmt.Fprintf(c.stdout, "Revoked the token of %s. A running warden serve refuses it within %s.\n", name, app.ReloadInterval)
	return nil
}

// quoteArg quotes a device name for a shell command line when it needs it.
func quoteArg(s string) string {
	if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
