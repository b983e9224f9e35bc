// Command proxyload is the HTTPS load generator of the web proxy
// benchmark (bench/proxy.sh), for what wrk cannot do: tunnel through a
// proxy with CONNECT.
//
// Each of -c connections dials the proxy, sends CONNECT for the target's
// host and port, does the TLS handshake with the origin through the
// tunnel (verifying its certificate against -cacert, or not at all with
// -insecure), and then sends keep-alive GET requests for the target's
// path one after another until -d has passed. With -direct it dials the
// origin itself, for the baseline. A connection that fails (refused
// CONNECT, reset, timeout) is counted and opened again, as wrk does.
//
// Usage:
//
//	proxyload -proxy 127.0.0.1:3128 -c 50 -d 10s -cacert origin.pem https://127.0.0.1:8443/2k.html
//	proxyload -direct -c 50 -d 10s -cacert origin.pem https://127.0.0.1:8443/2k.html
//
// It prints a short summary in wrk's manner and a last line that the
// benchmark script reads:
//
//	RESULT requests=N duration_us=N bytes=N p50_us=N p99_us=N mean_us=N connect=N read=N write=N status=N timeout=N
//
// requests counts every response, whatever its status (as wrk does);
// status counts those outside 2xx; connect, read, write and timeout count
// socket errors; latency runs from writing a request to reading the last
// byte of its response. It exits 1 when no request got a 2xx answer.
// Everything it dials is given on the command line: the benchmark only
// ever points it at 127.0.0.1.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "proxyload:", err)
		os.Exit(1)
	}
}

// config is what a run needs, from the command line.
type config struct {
	proxy       string        // proxy HOST:PORT; empty with direct
	origin      string        // the origin's HOST:PORT
	host        string        // the Host header and the TLS server name
	path        string        // request target (origin-form)
	conns       int           // concurrent connections
	duration    time.Duration // how long to send requests
	timeout     time.Duration // per request, and for dialling and CONNECT
	tls         *tls.Config   // nil for a plain http:// target
	userAgent   string
	requestLine []byte // the whole request, written as is each time
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("proxyload", flag.ContinueOnError)
	proxy := fs.String("proxy", "", "proxy HOST:PORT to tunnel through with CONNECT")
	direct := fs.Bool("direct", false, "dial the origin directly (the baseline), not through -proxy")
	conns := fs.Int("c", 10, "concurrent connections")
	duration := fs.Duration("d", 10*time.Second, "how long to send requests")
	timeout := fs.Duration("timeout", 2*time.Second, "time limit of one request (and of dialling, CONNECT and the handshake)")
	caFile := fs.String("cacert", "", "PEM file of the certificates to trust for the origin (default: the system roots)")
	insecure := fs.Bool("insecure", false, "do not verify the origin's certificate")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 {
		return nil, errors.New("give one target URL, such as https://127.0.0.1:8443/2k.html (see -h)")
	}
	if *direct == (*proxy != "") {
		return nil, errors.New("give either -proxy HOST:PORT or -direct")
	}
	if *proxy != "" {
		if _, _, err := net.SplitHostPort(*proxy); err != nil {
			return nil, fmt.Errorf("-proxy %q: %w", *proxy, err)
		}
	}
	if *conns < 1 || *duration <= 0 || *timeout <= 0 {
		return nil, errors.New("-c, -d and -timeout must be positive")
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("target %q: want https://HOST[:PORT]/PATH (or http://)", fs.Arg(0))
	}
	c := &config{proxy: *proxy, conns: *conns, duration: *duration, timeout: *timeout, userAgent: "proxyload"}
	c.host = u.Host
	c.origin = u.Host
	if u.Port() == "" {
		port := "443"
		if u.Scheme == "http" {
			port = "80"
		}
		c.origin = net.JoinHostPort(u.Hostname(), port)
	}
	c.path = u.RequestURI()
	if u.Scheme == "https" {
		c.tls = &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: *insecure, NextProtos: []string{"http/1.1"}}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return nil, fmt.Errorf("-cacert: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("-cacert %s: no PEM certificate in it", *caFile)
			}
			c.tls.RootCAs = pool
		}
	}
	c.requestLine = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\n\r\n", c.path, c.host, c.userAgent)
	return c, nil
}

func run(args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	via := "direct"
	if cfg.proxy != "" {
		via = "through " + cfg.proxy + " (CONNECT)"
	}
	scheme := "http"
	if cfg.tls != nil {
		scheme = "https"
	}
	fmt.Fprintf(out, "Running %s test @ %s://%s%s %s\n", cfg.duration, scheme, cfg.host, cfg.path, via)
	fmt.Fprintf(out, "  %d connections\n", cfg.conns)
	r := load(cfg)
	r.print(out)
	if r.ok == 0 {
		if r.firstErr != nil {
			return fmt.Errorf("no request succeeded; first error: %w", r.firstErr)
		}
		return errors.New("no request succeeded")
	}
	return nil
}
