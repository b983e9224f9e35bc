package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/warden-schools/warden/internal/dnsfilter"
)

// ReloadInterval is how often a running server looks for changes in the
// store (a cheap query of the policy version).
const ReloadInterval = 2 * time.Second

// Listening says where a running server listens (actual addresses, also
// when the configuration asked for port 0).
type Listening struct {
	HTTP string
	// DNS is the UDP and TCP address of the DNS filter, "" if off.
	DNS string
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
	if a.cfg.Listen.Proxy != "" {
		return errors.New("--proxy-addr: the web proxy is not part of this build yet")
	}
	var dnsServer *dnsfilter.Server
	if a.cfg.Listen.DNS != "" {
		var err error
		if dnsServer, err = a.dnsServer(); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", a.cfg.Listen.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen.HTTP, err)
	}
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	where := Listening{HTTP: ln.Addr().String()}
	errc := make(chan error, 2)
	dnsCtx, stopDNS := context.WithCancel(ctx)
	defer stopDNS()
	if dnsServer != nil {
		where.DNS = dnsServer.UDPAddr.String()
		go func() {
			if err := dnsServer.Serve(dnsCtx); err != nil {
				errc <- err
			}
		}()
	}
	a.log.Info("listening", "http", where.HTTP, "dns", where.DNS)
	if ready != nil {
		ready(where)
	}
	go func() { errc <- srv.Serve(ln) }()
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

// dnsServer builds the DNS filter from the configuration and binds its
// sockets.
func (a *App) dnsServer() (*dnsfilter.Server, error) {
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
	var allowed []netip.Prefix
	for _, n := range c.AllowNetworks {
		allowed = append(allowed, netip.MustParsePrefix(n))
	}
	f, err := dnsfilter.New(dnsfilter.Options{
		Policy:       a.Snapshot,
		Identity:     a.Identity,
		Upstreams:    a.cfg.Upstreams,
		Conditional:  c.Conditional,
		Block:        block,
		CacheEntries: c.CacheEntries,
		Logger:       a.log,
		Now:          a.now,
	})
	if err != nil {
		return nil, err
	}
	return f.Listen(dnsfilter.ServerOptions{Addr: a.cfg.Listen.DNS, Allowed: allowed, RateLimit: c.RateLimit})
}

// handler serves the health check. The console, block page and API come
// with the web package.
func (a *App) handler() http.Handler {
	mux := http.NewServeMux()
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
	return mux
}
