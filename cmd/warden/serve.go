package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"

	"github.com/warden-schools/warden/internal/app"
)

// stringsFlag collects a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func (c *cli) initCmd(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("init", &co)
	demo := fs.Bool("demo", false, "seed the demonstration school (the data folder must be empty)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("unexpected argument %q", rest[0])
	}
	a, err := c.openApp(ctx, &co)
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.Init(ctx, *demo, true)
	if err != nil {
		return err
	}
	if err := a.Reload(ctx); err != nil {
		return err
	}
	cfg, _ := co.loadConfig()
	snap := a.Snapshot()
	switch {
	case res.Seeded:
		fmt.Fprintf(c.stdout, "Created %s with the demonstration school (policy version %d, %d groups, %d listed domains).\n",
			cfg.DataDir, snap.Version(), len(snap.Groups()), snap.Lists().Domains())
	case res.Fresh:
		fmt.Fprintf(c.stdout, "Created %s (policy version %d).\n", cfg.DataDir, snap.Version())
	default:
		fmt.Fprintf(c.stdout, "%s is up to date (policy version %d).\n", cfg.DataDir, snap.Version())
	}
	for _, d := range res.Defaults {
		fmt.Fprintf(c.stdout, "  added %s\n", d)
	}
	fmt.Fprintf(c.stdout, "Next: warden serve --data %s\n", cfg.DataDir)
	if _, console, err := a.Accounts.Count(ctx); err == nil && console == 0 {
		fmt.Fprintln(c.stdout, "There is no administrator yet, and no default password: warden serve prints a one-time link to create the first one.")
	}
	return nil
}

func (c *cli) serveCmd(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("serve", &co)
	demo := fs.Bool("demo", false, "seed the demonstration school when the data folder is empty")
	httpAddr := fs.String("http-addr", "", "web listener HOST:PORT (block page, console, health); default 127.0.0.1:8080")
	dnsAddr := fs.String("dns-addr", "", "DNS listener HOST:PORT")
	proxyAddr := fs.String("proxy-addr", "", "web proxy listener HOST:PORT")
	allowLoopback := fs.Bool("proxy-allow-loopback", false, "let the proxy reach loopback destinations (tests and benchmarks only)")
	tlsCert := fs.String("tls-cert", "", "certificate PEM file for HTTPS and DNS-over-TLS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "private key PEM file of --tls-cert")
	dotAddr := fs.String("dot-addr", "", "DNS-over-TLS listener HOST:PORT, e.g. 0.0.0.0:853 (needs a certificate)")
	var upstreams stringsFlag
	fs.Var(&upstreams, "upstream", "upstream DNS resolver HOST:PORT (repeatable; overrides the configuration)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("unexpected argument %q", rest[0])
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	if *httpAddr != "" {
		cfg.Listen.HTTP = *httpAddr
	}
	if *dnsAddr != "" {
		cfg.Listen.DNS = *dnsAddr
	}
	if *proxyAddr != "" {
		cfg.Listen.Proxy = *proxyAddr
	}
	if *tlsCert != "" || *tlsKey != "" {
		cfg.TLS.CertFile, cfg.TLS.KeyFile = *tlsCert, *tlsKey
	}
	if *dotAddr != "" {
		cfg.Listen.DoT = *dotAddr
	}
	if len(upstreams) > 0 {
		cfg.Upstreams = upstreams
	}
	cfg.ProxyAllowLoopback = cfg.ProxyAllowLoopback || *allowLoopback
	cfg.Demo = cfg.Demo || *demo
	if cfg.Demo {
		// The demo answers DNS at once, on a port that needs no
		// privileges, through a public resolver unless told otherwise.
		if cfg.Listen.DNS == "" {
			cfg.Listen.DNS = app.DemoDNSAddr
		}
		if len(cfg.Upstreams) == 0 {
			cfg.Upstreams = app.DemoUpstreams()
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// The list index is large and holds no pointers, and answering
		// allocates little, so collecting often costs little CPU (under
		// 1% at 100,000 queries a second) and keeps resident memory near
		// the live heap. An explicit GOGC still wins.
		debug.SetGCPercent(20)
	}
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	hopts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	if cfg.Log.Format == "json" {
		log = slog.New(slog.NewJSONHandler(c.stderr, hopts))
	} else {
		log = slog.New(slog.NewTextHandler(c.stderr, hopts))
	}
	a, err := app.Open(ctx, cfg, app.Options{Logger: log, Now: c.now})
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.Init(ctx, cfg.Demo, false)
	if err != nil {
		return err
	}
	if res.Seeded {
		log.Info("demo_school_seeded", "data", cfg.DataDir)
	}
	if err := a.Reload(ctx); err != nil {
		return err
	}
	return a.Serve(ctx, func(l app.Listening) {
		scheme := "http"
		if l.HTTPS {
			scheme = "https"
		}
		fmt.Fprintf(c.stdout, "Warden is running: %s://%s/healthz (data %s, pid %d). Stop with Ctrl-C.\n", scheme, l.HTTP, cfg.DataDir, os.Getpid())
		if l.DNS != "" {
			host, port, _ := net.SplitHostPort(l.DNS)
			fmt.Fprintf(c.stdout, "DNS filter on %s (UDP and TCP): try  dig @%s -p %s www.bet365.com\n", l.DNS, host, port)
		}
		if l.DoT != "" {
			fmt.Fprintf(c.stdout, "DNS-over-TLS on %s\n", l.DoT)
		}
		if l.DoH {
			note := ""
			if !l.HTTPS {
				note = " (plain HTTP: loopback only until the web listener has a certificate)"
			}
			fmt.Fprintf(c.stdout, "DNS-over-HTTPS at %s://%s/dns-query/{device-token}%s\n", scheme, l.HTTP, note)
		}
		if l.Proxy != "" {
			inspect := "TLS inspection off"
			if l.Inspect {
				inspect = "TLS inspection on"
			}
			fmt.Fprintf(c.stdout, "Web proxy on %s (%s): try  curl -x %s http://www.bet365.com/; PAC file at %s://%s/proxy.pac\n",
				l.Proxy, inspect, l.Proxy, scheme, l.HTTP)
		}
		if l.SetupLink != "" {
			fmt.Fprintf(c.stdout, "Console: no administrator yet. Open this one-time link within 24 hours to create the first account:\n  %s\n", l.SetupLink)
		} else {
			fmt.Fprintf(c.stdout, "Console at %s://%s/\n", scheme, l.HTTP)
		}
	})
}
