package main

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-schools/warden/internal/app"
)

func (c *cli) caCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("ca: give init or show")
	}
	switch args[0] {
	case "init":
		return c.caInit(ctx, args[1:])
	case "show":
		return c.caShow(ctx, args[1:])
	}
	return usageErr("ca: unknown subcommand %q (give init or show)", args[0])
}

// caInit creates the school root CA for TLS inspection and says how to
// install it.
func (c *cli) caInit(_ context.Context, args []string) error {
	var co common
	fs := c.flags("ca init", &co)
	force := fs.Bool("force", false, "replace an existing CA (every device then needs the new root)")
	name := fs.String("name", "", "the school's name, shown in the root's name (default: the school name in the store)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	info, err := app.InitCA(cfg, *name, *force, c.now)
	if err != nil {
		return err
	}
	w := c.stdout
	fmt.Fprintf(w, "Created the school root CA %q.\n\n", info.Subject)
	fmt.Fprintf(w, "  certificate (PEM):  %s\n", info.CertFile)
	fmt.Fprintf(w, "  certificate (DER):  %s   (for Windows and iOS)\n", info.DERFile)
	fmt.Fprintf(w, "  SHA-256:            %s\n", info.Fingerprint)
	fmt.Fprintf(w, "  valid until:        %s\n", info.NotAfter.Local().Format(time.DateOnly))
	fmt.Fprintf(w, "  private key:        %s (encrypted with %s)\n\n", info.KeyFile, info.MasterKey)
	if info.MasterKeyCreated {
		fmt.Fprintf(w, "Created the master key %s. Back it up now, somewhere other than the\n"+
			"database backups: without it the CA key and encrypted records cannot be opened.\n\n", info.MasterKey)
	}
	fmt.Fprint(w, `Install the root certificate (not the key) on every school device as a trusted root:
  Windows:          Group Policy > Computer Configuration > Windows Settings > Security Settings >
                    Public Key Policies > Trusted Root Certification Authorities > Import root.cer;
                    or Intune: a "Trusted certificate" profile with root.cer.
  macOS, iPadOS:    an MDM configuration profile with a Certificate payload (root.cer); on iPadOS
                    enable full trust under Settings > General > About > Certificate Trust Settings
                    if it is installed by hand.
  ChromeOS:         Google Admin console > Devices > Networks > Certificates: add root.crt and tick
                    "Chromebook" under "Use this certificate as an HTTPS certificate authority".
  Android:          your MDM's certificate policy (user-installed roots are not trusted by most apps).
Check the fingerprint above against what the device shows.

TLS inspection stays off until the proxy configuration switches it on:
  proxy:
    inspect: true
then restart warden serve. Banking sites and hosts that pin their certificates are never inspected.
`)
	return nil
}

// caShow prints the school root CA's name, fingerprint and validity.
func (c *cli) caShow(_ context.Context, args []string) error {
	var co common
	fs := c.flags("ca show", &co)
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	info, err := app.ShowCA(cfg)
	if err != nil {
		return err
	}
	w := c.stdout
	now := c.now()
	fmt.Fprintf(w, "subject:      %s\n", info.Subject)
	fmt.Fprintf(w, "SHA-256:      %s\n", info.Fingerprint)
	fmt.Fprintf(w, "valid from:   %s\n", info.NotBefore.Local().Format(time.DateOnly))
	expiry := info.NotAfter.Local().Format(time.DateOnly)
	if left := info.NotAfter.Sub(now); left <= 0 {
		expiry += " (EXPIRED: run warden ca init --force and install the new root)"
	} else {
		expiry += fmt.Sprintf(" (%d days left)", int(left.Hours()/24))
	}
	fmt.Fprintf(w, "expires:      %s\n", expiry)
	fmt.Fprintf(w, "certificate:  %s\n", info.CertFile)
	fmt.Fprintf(w, "              %s (DER)\n", info.DERFile)
	if info.KeyProblem != "" {
		fmt.Fprintf(w, "key:          UNUSABLE: %s\n", info.KeyProblem)
		return fmt.Errorf("the CA key cannot be used: %s", info.KeyProblem)
	}
	fmt.Fprintf(w, "key:          %s (opens with %s)\n", info.KeyFile, info.MasterKey)
	return nil
}
