package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-schools/warden/internal/dnsfilter"
	"github.com/warden-schools/warden/internal/web"
)

// ReloadInterval is how often a running server looks for changes in the
// store (a cheap query of the policy version).
const ReloadInterval = 2 * time.Second

// Listening says where a running server listens (actual addresses, also
// when the configuration asked for port 0).
type Listening struct {
	HTTP string
	// HTTPS says the web listener serves HTTPS (a certificate is
	// configured).
	HTTPS bool
	// DNS is the UDP and TCP address of the DNS filter, "" if off.
	DNS string
	// DoT is the DNS-over-TLS address, "" if off.
	DoT string
	// DoH says the web listener answers DNS-over-HTTPS at
	// /dns-query/{device-token}.
	DoH bool
	// Proxy is the web proxy's address, "" if off; Inspect says it
	// inspects TLS.
	Proxy   string
	Inspect bool
	// SetupLink is the first administrator's one-time link, "" once a
	// console account exists.
	SetupLink string
}

// Serve runs the listeners until ctx is cancelled, reloading the policy
// whenever the store changes. ready, if not nil, is called once every
// listener is bound.
func (a *App) Serve(ctx context.Context, ready func(Listening)) error {
	if a.Snapshot() == nil {
		if err := a.Reload(ctx); err != nil {
			return err
		}
	}
	// Everything is checked and bound before anything serves: a bad
	// certificate or a busy port stops the start with nothing half
	// running.
	var certs *certReloader
	if a.cfg.TLS.Enabled() {
		var err error
		if certs, err = newCertReloader(a.cfg.TLS, a.log, a.now); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", a.cfg.Listen.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen.HTTP, err)
	}
	ring, created, err := OpenKeyring(a.cfg)
	if err != nil {
		ln.Close()
		return err
	}
	if created {
		a.log.Warn("master_key_created", "path", MasterKeyPath(a.cfg), "advice", "back it up apart from the database: what it seals cannot be read without it")
	}
	if a.Accounts, err = a.newAccounts(ring); err != nil {
		ln.Close()
		return err
	}
	if a.audit, err = a.newAudit(ring); err != nil {
		ln.Close()
		return err
	}
	base := a.webBase(ln.Addr().String())
	page, webRoutes, err := a.buildWeb(ring, base)
	if err != nil {
		ln.Close()
		return err
	}
	console, err := a.buildConsole(ring, base, certs != nil)
	if err != nil {
		ln.Close()
		return err
	}
	setup, err := a.SetupLink(ctx, base)
	if err != nil {
		ln.Close()
		return fmt.Errorf("set-up link: %w", err)
	}
	prox, err := a.listenProxy(ring, page, base)
	if err != nil {
		ln.Close()
		return err
	}
	defer prox.close()
	var pac http.Handler
	if prox != nil {
		if pac, err = a.pacHandler(prox.addr, base); err != nil {
			ln.Close()
			prox.abandon()
			return err
		}
	}
	dnsl, err := a.listenDNS(certs)
	if err != nil {
		ln.Close()
		prox.abandon()
		return err
	}
	srv := &http.Server{
		Handler:           a.handler(dnsl.doh, pac, webRoutes, console),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	where := Listening{HTTP: ln.Addr().String(), HTTPS: certs != nil, DoH: dnsl.doh != nil, SetupLink: setup}
	errc := make(chan error, 3)
	// The access-log writer outlives the listeners: at shutdown they stop
	// first, then it writes what is still queued.
	eventsCtx, stopEvents := context.WithCancel(context.Background())
	eventsDone := make(chan error, 1)
	go func() { eventsDone <- a.RunEvents(eventsCtx) }()
	defer func() {
		stopEvents()
		if err := <-eventsDone; err != nil {
			a.log.Error("events_not_written", "err", err)
		}
	}()
	var dnsRunning sync.WaitGroup
	dnsCtx, stopDNS := context.WithCancel(ctx)
	defer func() {
		stopDNS()
		dnsRunning.Wait()
	}()
	if dnsl.plain != nil {
		where.DNS = dnsl.plain.UDPAddr.String()
		dnsRunning.Add(1)
		go func() {
			defer dnsRunning.Done()
			if err := dnsl.plain.Serve(dnsCtx); err != nil {
				errc <- err
			}
		}()
	}
	if dnsl.dot != nil {
		where.DoT = dnsl.dot.Addr.String()
		dnsRunning.Add(1)
		go func() {
			defer dnsRunning.Done()
			if err := dnsl.dot.Serve(dnsCtx); err != nil {
				errc <- err
			}
		}()
	}
	if prox != nil {
		where.Proxy, where.Inspect = prox.addr.String(), prox.inspector != nil
		dnsRunning.Add(1)
		go func() {
			defer dnsRunning.Done()
			if err := prox.proxy.Serve(dnsCtx); err != nil {
				errc <- err
			}
		}()
	}
	dnsRunning.Add(1)
	go func() {
		defer dnsRunning.Done()
		runMemoryRelease(dnsCtx, a.log)
	}()
	if a.cfg.Lists.UpdateEvery > 0 {
		dnsRunning.Add(1)
		go func() {
			defer dnsRunning.Done()
			a.runListUpdates(dnsCtx, a.cfg.Lists.UpdateEvery)
		}()
	}
	a.log.Info("listening", "http", where.HTTP, "https", where.HTTPS, "dns", where.DNS, "dot", where.DoT, "doh", where.DoH,
		"proxy", where.Proxy, "inspect", where.Inspect)
	if ready != nil {
		ready(where)
	}
	if certs != nil {
		// HTTP/2 too: ServeTLS offers it when the configuration does not
		// say otherwise.
		srv.TLSConfig = certs.tlsConfig()
		srv.TLSConfig.GetCertificate = a.blockedNameCerts(ring, srv.TLSConfig.GetCertificate)
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	tick := time.NewTicker(ReloadInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdown); err != nil {
				return fmt.Errorf("shut down web listener: %w", err)
			}
			a.log.Info("stopped")
			return nil
		case err := <-errc:
			return fmt.Errorf("listener: %w", err)
		case <-tick.C:
			if err := a.ReloadIfChanged(ctx); err != nil && ctx.Err() == nil {
				// The previous policy stays in force.
				a.log.Error("reload_failed", "err", err)
			}
		}
	}
}

// dnsListeners are the DNS filter's transports, all answering through
// one Filter (one cache, one set of upstreams): UDP and TCP, DNS-over-TLS,
// and DNS-over-HTTPS, which the web listener serves. Each is nil when
// off.
type dnsListeners struct {
	plain *dnsfilter.Server
	dot   *dnsfilter.DoTServer
	doh   http.Handler
}

// listenDNS builds the DNS filter when DNS or DNS-over-TLS is configured,
// and binds its sockets. DNS-over-HTTPS comes with the filter.
func (a *App) listenDNS(certs *certReloader) (dnsListeners, error) {
	var l dnsListeners
	if a.cfg.Listen.DNS == "" && a.cfg.Listen.DoT == "" {
		return l, nil
	}
	f, err := a.dnsFilter()
	if err != nil {
		return l, err
	}
	c := a.cfg.DNS
	var allowed []netip.Prefix
	for _, n := range c.AllowNetworks {
		allowed = append(allowed, netip.MustParsePrefix(n)) // checked by Validate
	}
	if a.cfg.Listen.DoT != "" {
		if certs == nil {
			return l, errors.New("listen.dot: DNS-over-TLS needs a certificate (tls.cert_file and tls.key_file)")
		}
		if l.dot, err = f.ListenDoT(dnsfilter.DoTOptions{Addr: a.cfg.Listen.DoT, TLS: certs.tlsConfig(), Allowed: allowed, RateLimit: c.RateLimit}); err != nil {
			return l, err
		}
	}
	// UDP and TCP last: that server cannot be closed without serving.
	if a.cfg.Listen.DNS != "" {
		if l.plain, err = f.Listen(dnsfilter.ServerOptions{Addr: a.cfg.Listen.DNS, Allowed: allowed, RateLimit: c.RateLimit}); err != nil {
			if l.dot != nil {
				l.dot.Close()
			}
			return dnsListeners{}, err
		}
	}
	l.doh = f.DoH(dnsfilter.DoHOptions{RateLimit: c.RateLimit})
	return l, nil
}

// dnsFilter builds the DNS filter from the configuration.
func (a *App) dnsFilter() (*dnsfilter.Filter, error) {
	c := a.cfg.DNS
	block := dnsfilter.BlockResponse{Mode: c.BlockMode}
	if c.BlockIPv4 != "" {
		block.IPv4 = netip.MustParseAddr(c.BlockIPv4) // checked by Validate
	} else if host, _, err := net.SplitHostPort(a.cfg.Listen.HTTP); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() && !ip.IsUnspecified() {
			block.IPv4 = ip
		}
	}
	if c.BlockIPv6 != "" {
		block.IPv6 = netip.MustParseAddr(c.BlockIPv6)
	}
	if (block.Mode == "" || block.Mode == dnsfilter.BlockPage) && !block.IPv4.IsValid() {
		return nil, errors.New("dns.block_ipv4: set the address clients reach the block page at (the web listener does not listen on one IPv4 address)")
	}
	return dnsfilter.New(dnsfilter.Options{
		Policy:       a.Snapshot,
		Identity:     a.Identity,
		Upstreams:    a.cfg.Upstreams,
		Conditional:  c.Conditional,
		Block:        block,
		CacheEntries: c.CacheEntries,
		Events:       a.QueryEvents(),
		Metrics:      a.Metrics,
		Logger:       a.log,
		Now:          a.now,
	})
}

// handler serves the health check, metrics, DNS-over-HTTPS (doh, when
// the DNS filter is on) and the web routes; a request for any host but
// Warden's own gets the block page, because only the DNS filter's answer
// for a blocked name sends a browser there. The console (sign-in and the
// jobs' pages) is on the same listener.
func (a *App) handler(doh, pac http.Handler, webRoutes *web.Web, console *web.Console) http.Handler {
	mux := http.NewServeMux()
	webRoutes.Register(mux)
	console.Register(mux)
	if doh != nil {
		mux.Handle(dnsfilter.DoHPattern, doh)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Metrics, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		snap := a.Snapshot()
		body := struct {
			Status        string `json:"status"`
			PolicyVersion int64  `json:"policy_version"`
			Domains       int    `json:"domains"`
		}{Status: "ok", PolicyVersion: snap.Version(), Domains: snap.Lists().Domains()}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(body)
	})
	if pac == nil {
		return webRoutes.BlockForeignHosts(mux)
	}
	// Browsers fetch wpad.dat by a name of the school's own ("wpad" in its
	// DNS domain), so the PAC file is served whatever the host.
	outer := http.NewServeMux()
	outer.Handle("GET /proxy.pac", pac)
	outer.Handle("GET /wpad.dat", pac)
	outer.Handle("/", webRoutes.BlockForeignHosts(mux))
	return outer
}
