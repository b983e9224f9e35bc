package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/warden-schools/warden/internal/directory"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/store"
)

// AddDevice registers a device, owned by the person with ownerLogin
// (username or email) if it is not empty. Errors say what to look up.
func (a *App) AddDevice(ctx context.Context, actor string, dev directory.Device, ownerLogin string) (int64, error) {
	if ownerLogin != "" {
		p, err := a.Directory.PersonByLogin(ctx, ownerLogin)
		if errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("no person with the login %q (see `warden people list`)", ownerLogin)
		}
		if err != nil {
			return 0, err
		}
		dev.OwnerID = p.ID
	}
	if dev.GroupID != "" {
		if snap := a.Snapshot(); snap != nil && !snap.HasGroup(dev.GroupID) {
			return 0, fmt.Errorf("no group %q (see `warden groups list`)", dev.GroupID)
		}
	}
	return a.Directory.AddDevice(ctx, actor, dev)
}

// deviceByName finds a device for a command, with an error that says
// where to look when there is none.
func (a *App) deviceByName(ctx context.Context, name string) (directory.Device, error) {
	dev, err := a.Directory.DeviceByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return dev, fmt.Errorf("no device %q (see `warden devices list`, or add it with `warden devices add`)", name)
	}
	return dev, err
}

// IssuedToken is a new device token and what to set the device up with.
// The token is shown once: only its hash is stored.
type IssuedToken struct {
	Device string
	Token  string
	// Replaced says the device had a token, which no longer works.
	Replaced bool
	// DoHURL is the DNS-over-HTTPS URL for the device's settings.
	// DoHURLGuessed says it was built from the web listener's address for
	// want of public_url, and may not be what devices reach.
	DoHURL        string
	DoHURLGuessed bool
	// DoTName is the DNS-over-TLS host name carrying the token ("" unless
	// listen.dot and dns.dot_hostname are set); DoTAddr is listen.dot.
	DoTName string
	DoTAddr string
}

// IssueDeviceToken gives the named device a new token, replacing any
// earlier one. urlBase, if not empty, is the base of the DoH URL instead
// of public_url. A running server accepts the new token, and refuses the
// old one, from its next reload (within ReloadInterval).
func (a *App) IssueDeviceToken(ctx context.Context, actor, device, urlBase string) (IssuedToken, error) {
	dev, err := a.deviceByName(ctx, device)
	if err != nil {
		return IssuedToken{}, err
	}
	tok, err := identity.NewToken(rand.Reader)
	if err != nil {
		return IssuedToken{}, err
	}
	if err := a.Directory.SetDeviceToken(ctx, actor, dev.ID, identity.HashToken(tok)); err != nil {
		return IssuedToken{}, err
	}
	out := IssuedToken{Device: dev.Name, Token: tok, Replaced: dev.TokenHash != "", DoTAddr: a.cfg.Listen.DoT}
	out.DoHURL, out.DoHURLGuessed = a.dohURL(urlBase, tok)
	if a.cfg.Listen.DoT != "" && a.cfg.DNS.DoTHostname != "" {
		out.DoTName = tok + "." + a.cfg.DNS.DoTHostname
	}
	return out, nil
}

// RevokeDeviceToken takes the named device's token away and reports
// whether it had one. A running server refuses the token from its next
// reload.
func (a *App) RevokeDeviceToken(ctx context.Context, actor, device string) (string, bool, error) {
	dev, err := a.deviceByName(ctx, device)
	if err != nil {
		return "", false, err
	}
	if dev.TokenHash == "" {
		return dev.Name, false, nil
	}
	if err := a.Directory.SetDeviceToken(ctx, actor, dev.ID, ""); err != nil {
		return "", false, err
	}
	return dev.Name, true, nil
}

// dohURL is a device's DNS-over-HTTPS URL: under urlBase, else
// public_url, else the web listener's own address (a guess, with
// WARDEN-HOST standing in for an address that listens everywhere).
func (a *App) dohURL(urlBase, token string) (url string, guessed bool) {
	base := urlBase
	if base == "" {
		base = a.cfg.PublicURL
	}
	if base == "" {
		scheme, defPort := "http", "80"
		if a.cfg.TLS.Enabled() {
			scheme, defPort = "https", "443"
		}
		host, port, err := net.SplitHostPort(a.cfg.Listen.HTTP)
		if err != nil {
			host, port = a.cfg.Listen.HTTP, defPort
		}
		if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
			host = "WARDEN-HOST"
		}
		hostPort := net.JoinHostPort(host, port)
		if port == defPort {
			hostPort = host
			if strings.Contains(host, ":") {
				hostPort = "[" + host + "]"
			}
		}
		base, guessed = scheme+"://"+hostPort, true
	}
	return fmt.Sprintf("%s/dns-query/%s", strings.TrimRight(base, "/"), token), guessed
}
