package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/warden-schools/warden/internal/app"
	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/directory"
)

func (c *cli) accountsCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("accounts: give list, set, role, disable, enable, unlock, reset-2fa, remove or setup-link")
	}
	switch args[0] {
	case "list":
		return c.accountsList(ctx, args[1:])
	case "set":
		return c.accountsSet(ctx, args[1:])
	case "role":
		return c.accountsRole(ctx, args[1:])
	case "disable", "enable", "unlock", "remove", "reset-2fa":
		return c.accountsChange(ctx, args[0], args[1:])
	case "setup-link":
		return c.accountsSetupLink(ctx, args[1:])
	}
	return usageErr("accounts: unknown subcommand %q (give list, set, role, disable, enable, unlock, reset-2fa, remove or setup-link)", args[0])
}

func (c *cli) accountsList(ctx context.Context, args []string) error {
	a, _, err := c.simple(ctx, "accounts list", args, noArgs, false)
	if err != nil {
		return err
	}
	defer a.Close()
	accts, err := a.Accounts.List(ctx)
	if err != nil {
		return err
	}
	if len(accts) == 0 {
		fmt.Fprintln(c.stdout, "No accounts yet. Give someone a password with: warden accounts set LOGIN --role ROLE")
		return nil
	}
	now := c.now()
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LOGIN\tNAME\tKIND\tROLE\tPASSWORD SET\tSTATUS\tLAST SIGN-IN")
	for _, ac := range accts {
		p := ac.Person
		login := p.Username
		if login == "" {
			login = p.Email
		}
		var status []string
		switch {
		case ac.Disabled:
			status = append(status, "disabled")
		case !p.Active:
			status = append(status, "left (person inactive)")
		case now.Before(ac.LockedUntil):
			status = append(status, "locked until "+ac.LockedUntil.Local().Format("2006-01-02 15:04"))
		default:
			status = append(status, "active")
		}
		if ac.PasswordExpired(now) {
			status = append(status, "password expired")
		} else if ac.MustChange {
			status = append(status, "must change password")
		}
		if ac.Role.RequiresTOTP() && !ac.TOTPEnabled {
			status = append(status, "two-factor not set up")
		}
		last := "never"
		if !ac.LastLoginAt.IsZero() {
			last = ac.LastLoginAt.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", login, p.DisplayName(), p.Kind, ac.Role,
			ac.PasswordSetAt.Local().Format("2006-01-02"), strings.Join(status, ", "), last)
	}
	return tw.Flush()
}

// person finds the person a command names by login.
func person(ctx context.Context, a *app.App, login string) (directory.Person, error) {
	p, err := a.Directory.PersonByLogin(ctx, login)
	if err != nil {
		return directory.Person{}, fmt.Errorf("%w (see `warden people list`; only active people are found)", err)
	}
	return p, nil
}

// accountsSet gives a person a password (a new account, or a new password
// and role for an existing one).
func (c *cli) accountsSet(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("accounts set", &co)
	roleFlag := fs.String("role", "none", "console role: "+roleNames()+", or none (web proxy sign-in only)")
	generate := fs.Bool("generate", false, "make up a strong password and print it once, instead of reading one")
	mustChange := fs.Bool("must-change", false, "ask for a new password at the next console sign-in (implied by --generate for console roles)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("accounts set: give one login (a person's username or email)")
	}
	role, err := auth.ParseRole(*roleFlag)
	if err != nil {
		return usageErr("--role: %v", err)
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := person(ctx, a, rest[0])
	if err != nil {
		return err
	}
	var password string
	if *generate {
		if password, err = a.Accounts.GeneratePassword(ctx, p, role); err != nil {
			return err
		}
		*mustChange = *mustChange || role != auth.RoleNone
	} else if password, err = c.readPassword(fmt.Sprintf("New password for %s (at least %d characters): ",
		p.DisplayName(), auth.MinPasswordLen(p.Kind, role))); err != nil {
		return err
	}
	if err := a.Accounts.Set(ctx, actor(), p.ID, password, auth.SetOptions{Role: role, MustChange: *mustChange}); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Set the password of %s (role %s).\n", p.DisplayName(), role)
	if *generate {
		fmt.Fprintf(c.stdout, "\n  password: %s\n\nIt is shown only this once: give it to %s in person.\n", password, p.DisplayName())
	}
	if role.RequiresTOTP() {
		fmt.Fprintln(c.stdout, "This role signs in to the console with two-factor authentication, set up at the first sign-in.")
	}
	return nil
}

func roleNames() string {
	var names []string
	for _, r := range auth.Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

// readPassword reads a password: from the terminal without echo, asked
// twice, or else the first line of standard input.
func (c *cli) readPassword(prompt string) (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, prompt)
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(c.stderr, "Again, to check: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(first) != string(again) {
			return "", errors.New("the two passwords differ; nothing was changed")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(io.LimitReader(c.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageErr("accounts set: give the password on standard input (one line), or use --generate")
	}
	return line, nil
}

func (c *cli) accountsRole(ctx context.Context, args []string) error {
	a, rest, err := c.simple(ctx, "accounts role", args, func(rest []string) error {
		if len(rest) != 2 {
			return usageErr("accounts role: give a login and a role (%s, or none)", roleNames())
		}
		if _, err := auth.ParseRole(rest[1]); err != nil {
			return usageErr("%v", err)
		}
		return nil
	}, false)
	if err != nil {
		return err
	}
	defer a.Close()
	role, _ := auth.ParseRole(rest[1])
	p, err := person(ctx, a, rest[0])
	if err != nil {
		return err
	}
	if err := a.Accounts.SetRole(ctx, actor(), p.ID, role); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s now has the role %s.\n", p.DisplayName(), role)
	return nil
}

// accountsChange disables, enables, unlocks or removes an account.
func (c *cli) accountsChange(ctx context.Context, verb string, args []string) error {
	a, rest, err := c.simple(ctx, "accounts "+verb, args, func(rest []string) error {
		if len(rest) != 1 {
			return usageErr("accounts %s: give one login", verb)
		}
		return nil
	}, false)
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := person(ctx, a, rest[0])
	if err != nil {
		return err
	}
	var done string
	switch verb {
	case "disable":
		err, done = a.Accounts.SetDisabled(ctx, actor(), p.ID, true), "Disabled the account of %s: it signs in nowhere until enabled again."
	case "enable":
		err, done = a.Accounts.SetDisabled(ctx, actor(), p.ID, false), "Enabled the account of %s."
	case "unlock":
		err, done = a.Accounts.Unlock(ctx, actor(), p.ID), "Unlocked the account of %s."
	case "remove":
		err, done = a.Accounts.Remove(ctx, actor(), p.ID), "Removed the account of %s (the person stays in the directory)."
	case "reset-2fa":
		err, done = a.Accounts.ResetTOTP(ctx, actor(), p.ID), "Reset the two-factor authentication of %s: they set it up again at their next sign-in."
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, done+"\n", p.DisplayName())
	return nil
}

// accountsSetupLink prints a new one-time link for the first
// administrator (while no console account exists).
func (c *cli) accountsSetupLink(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("accounts setup-link", &co)
	urlBase := fs.String("url-base", "", "the base URL of Warden's web listener, e.g. https://warden.school.example (default: public_url, else the listen address)")
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
	base := *urlBase
	if base == "" {
		base = a.WebBase()
	}
	link, err := a.SetupLink(ctx, base)
	if err != nil {
		return err
	}
	if link == "" {
		fmt.Fprintln(c.stdout, "Warden has a console administrator already: sign in at "+base+"/login. (Accounts are given in the console, or with warden accounts set.)")
		return nil
	}
	fmt.Fprintf(c.stdout, "Open this link within 24 hours to create the first administrator (it works once; earlier links stop working):\n  %s\n", link)
	return nil
}
