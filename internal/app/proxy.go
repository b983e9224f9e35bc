package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/warden-schools/warden/internal/auth"
	"github.com/warden-schools/warden/internal/blockpage"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/keyring"
	"github.com/warden-schools/warden/internal/proxy"
	"github.com/warden-schools/warden/internal/proxy/inspect"
)

// proxyListener is the web proxy, bound, with its TLS inspector (nil when
// inspection is off).
type proxyListener struct {
	proxy     *proxy.Proxy
	addr      net.Addr
	inspector *inspect.Inspector
}

// close releases what the inspector holds.
func (p *proxyListener) close() {
	if p != nil && p.inspector != nil {
		p.inspector.Close()
	}
}

// abandon closes the bound proxy when the start goes no further.
func (p *proxyListener) abandon() {
	if p == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = p.proxy.Serve(ctx) // returns at once, closing the listener
}

// listenProxy builds the web proxy from the configuration and binds it;
// nil when listen.proxy is empty. With proxy.inspect on, a school CA that
// cannot be loaded stops the start: Warden never quietly runs without
// the inspection it was told to do.
func (a *App) listenProxy(ring *keyring.Ring, page *blockpage.Page, webBase string) (*proxyListener, error) {
	if a.cfg.Listen.Proxy == "" {
		return nil, nil
	}
	c := a.cfg.Proxy
	var allowed []netip.Prefix
	for _, n := range c.AllowNetworks {
		allowed = append(allowed, netip.MustParsePrefix(n)) // checked by Validate
	}
	pl := &proxyListener{}
	// The inspector dials upstream through the proxy's guard (the
	// destination rules live there), and the proxy needs the inspector:
	// the dial is bound once both exist.
	var p *proxy.Proxy
	var inspector proxy.Inspector
	if c.Inspect {
		ca, err := LoadSchoolCA(a.cfg, ring)
		if err != nil {
			return nil, fmt.Errorf("proxy.inspect: %w (run warden ca init first)", err)
		}
		bypass := append([]string(nil), c.BypassHosts...)
		if u, err := url.Parse(webBase); err == nil && u.Hostname() != "" {
			if _, err := netip.ParseAddr(u.Hostname()); err != nil {
				bypass = append(bypass, u.Hostname())
			}
		}
		pl.inspector, err = inspect.New(inspect.Options{
			CA:     ca,
			Policy: a.Snapshot,
			Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
				return p.Dial(ctx, network, address)
			},
			BypassCategories: c.BypassCategories,
			BypassHosts:      bypass,
			Events:           a.events.Emit,
			BlockPage:        func(b inspect.Blocked) []byte { return page.HTML(blockpage.Info(b)) },
			Metrics:          a.Metrics,
			Logger:           a.log,
			Now:              a.now,
		})
		if err != nil {
			return nil, fmt.Errorf("TLS inspection: %w", err)
		}
		inspector = pl.inspector
	}
	p, err := proxy.New(proxy.Options{
		Policy:        a.Snapshot,
		Identity:      a.Identity,
		Allowed:       allowed,
		ConnectPorts:  c.ConnectPorts,
		AllowLoopback: a.cfg.ProxyAllowLoopback,
		Auth:          proxyAuth{identity: a.Identity, accounts: a.Accounts, log: a.log},
		RequireAuth:   c.RequireAuth,
		BlockPage:     func(dst []byte, b proxy.Blocked) []byte { return page.AppendHTML(dst, blockpage.Info(b)) },
		Inspector:     inspector,
		Events:        a.events.Emit,
		Metrics:       a.Metrics,
		Logger:        a.log,
		Now:           a.now,
		MaxBodyBytes:  c.MaxBodyBytes,
	})
	if err != nil {
		pl.close()
		return nil, fmt.Errorf("web proxy: %w", err)
	}
	pl.proxy = p
	if pl.addr, err = p.Listen(a.cfg.Listen.Proxy); err != nil {
		pl.close()
		return nil, err
	}
	return pl, nil
}

// proxyAuth checks the web proxy's Basic credentials: a device token as
// the password (the user name is free: the device's name, by custom), or
// a person's own login and Warden password. The proxy caches the answers.
type proxyAuth struct {
	identity func() *identity.Table
	accounts *auth.Accounts
	log      *slog.Logger
}

// proxyAuthTimeout bounds one password check, including the wait for a
// free argon2id slot.
const proxyAuthTimeout = 5 * time.Second

// Authenticate reports the device the token belongs to, or the person the
// credentials are for.
func (d proxyAuth) Authenticate(user, password string) (identity.Subject, bool) {
	table := d.identity()
	if table == nil {
		return identity.Subject{}, false
	}
	if identity.ValidToken(password) {
		if s, ok := table.ByToken(password, netip.Addr{}); ok {
			return s, true
		}
	}
	if d.accounts == nil || user == "" {
		return identity.Subject{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), proxyAuthTimeout)
	defer cancel()
	acct, err := d.accounts.Verify(ctx, user, password)
	if err != nil {
		var locked *auth.LockedError
		switch {
		case errors.As(err, &locked):
			d.log.Info("proxy_auth_locked", "login", user, "until", locked.Until)
		case !errors.Is(err, auth.ErrInvalidCredentials):
			d.log.Error("proxy_auth", "err", err)
		}
		return identity.Subject{}, false
	}
	p := acct.Person
	return table.ByPerson(identity.Person{ID: p.ID, Name: p.DisplayName(), GroupID: p.GroupID}), true
}

// pacHandler serves proxy.pac and wpad.dat for the proxy at proxyAddr
// (the bound address), or nil when the proxy is off.
func (a *App) pacHandler(proxyAddr net.Addr, webBase string) (http.Handler, error) {
	if proxyAddr == nil {
		return nil, nil
	}
	c := a.cfg.Proxy
	hostPort := c.Address
	webHost := ""
	if u, err := url.Parse(webBase); err == nil {
		webHost = u.Hostname()
	}
	if hostPort == "" {
		_, port, err := net.SplitHostPort(proxyAddr.String())
		if err != nil {
			return nil, fmt.Errorf("proxy address %s: %w", proxyAddr, err)
		}
		host, _, _ := net.SplitHostPort(a.cfg.Listen.Proxy)
		if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
			host = webHost
		}
		if host == "" {
			return nil, errors.New("proxy.address: set the HOST:PORT devices use for the proxy")
		}
		if _, err := strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("proxy address %s: bad port", proxyAddr)
		}
		hostPort = net.JoinHostPort(host, port)
	}
	var local []netip.Prefix
	nets := c.LocalNetworks
	if len(nets) == 0 {
		nets = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
	}
	for _, n := range nets {
		local = append(local, netip.MustParsePrefix(n)) // checked by Validate
	}
	var own []string
	if webHost != "" {
		own = append(own, webHost)
	}
	return proxy.PAC(proxy.PACOptions{ProxyHostPort: hostPort, Bypass: local, BypassHosts: own}), nil
}
