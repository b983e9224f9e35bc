package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ReloadInterval is how often a running server looks for changes in the
// store (a cheap query of the policy version).
const ReloadInterval = 2 * time.Second

// Serve runs the listeners until ctx is cancelled, reloading the policy
// whenever the store changes. ready, if not nil, is called with the web
// listener's address once it is listening.
func (a *App) Serve(ctx context.Context, ready func(httpAddr string)) error {
	if a.Snapshot() == nil {
		if err := a.Reload(ctx); err != nil {
			return err
		}
	}
	if a.cfg.Listen.DNS != "" {
		return errors.New("--dns-addr: the DNS filter is not part of this build yet")
	}
	if a.cfg.Listen.Proxy != "" {
		return errors.New("--proxy-addr: the web proxy is not part of this build yet")
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
	a.log.Info("listening", "http", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
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
			return fmt.Errorf("web listener: %w", err)
		case <-tick.C:
			if err := a.ReloadIfChanged(ctx); err != nil && ctx.Err() == nil {
				// The previous policy stays in force.
				a.log.Error("reload_failed", "err", err)
			}
		}
	}
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
