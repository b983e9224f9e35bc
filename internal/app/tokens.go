package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/warden-schools/warden/internal/identity"
)

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
	dev, err := a.Directory.DeviceByName(ctx, device)
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
	dev, err := a.Directory.DeviceByName(ctx, device)
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
