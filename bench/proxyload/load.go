package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// counts are one connection's (and, summed, the run's) figures.
type counts struct {
	requests int64 // responses read, whatever their status
	ok       int64 // 2xx responses
	bytes    int64 // response bytes read (head and body)
	connect  int64 // dial, CONNECT or handshake failures
	read     int64 // read errors
	write    int64 // write errors
	status   int64 // responses outside 2xx
	timeout  int64 // requests that took longer than the time limit
	firstErr error
}

func (c *counts) add(o *counts) {
	c.requests += o.requests
	c.ok += o.ok
	c.bytes += o.bytes
	c.connect += o.connect
	c.read += o.read
	c.write += o.write
	c.status += o.status
	c.timeout += o.timeout
	if c.firstErr == nil {
		c.firstErr = o.firstErr
	}
}

// result is a whole run.
type result struct {
	counts
	elapsed   time.Duration
	latencies []time.Duration // sorted
}

// errConnect marks a failure to open the tunnel or the TLS session.
var errConnect = errors.New("connect")

// load runs cfg.conns connections for cfg.duration and gathers what they
// measured.
func load(cfg *config) *result {
	start := time.Now()
	end := start.Add(cfg.duration)
	per := make([]counts, cfg.conns)
	lats := make([][]time.Duration, cfg.conns)
	var wg sync.WaitGroup
	for i := range cfg.conns {
		wg.Go(func() { lats[i] = worker(cfg, end, &per[i]) })
	}
	wg.Wait()
	r := &result{elapsed: time.Since(start)}
	n := 0
	for i := range per {
		r.add(&per[i])
		n += len(lats[i])
	}
	r.latencies = make([]time.Duration, 0, n)
	for _, l := range lats {
		r.latencies = append(r.latencies, l...)
	}
	slices.Sort(r.latencies)
	return r
}

// worker keeps one connection busy until end, opening it again after a
// failure, and returns the latencies of the responses it read.
func worker(cfg *config, end time.Time, c *counts) []time.Duration {
	var lats []time.Duration
	fail := func(kind *int64, err error) {
		*kind++
		if c.firstErr == nil {
			c.firstErr = err
		}
	}
	for time.Now().Before(end) {
		conn, br, err := open(cfg)
		if err != nil {
			fail(&c.connect, err)
			// Do not spin on a proxy that refuses: wait a little, as a
			// browser would, before the next attempt.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for time.Now().Before(end) {
			t0 := time.Now()
			if err := conn.SetDeadline(t0.Add(cfg.timeout)); err != nil {
				fail(&c.write, err)
				break
			}
			if _, err := conn.Write(cfg.requestLine); err != nil {
				if isTimeout(err) {
					fail(&c.timeout, err)
				} else {
					fail(&c.write, err)
				}
				break
			}
			resp, err := readResponse(br)
			if err != nil {
				if isTimeout(err) {
					fail(&c.timeout, err)
				} else {
					fail(&c.read, err)
				}
				break
			}
			lats = append(lats, time.Since(t0))
			c.requests++
			c.bytes += resp.size
			if resp.status >= 200 && resp.status < 300 {
				c.ok++
			} else {
				fail(&c.status, fmt.Errorf("status %d", resp.status))
			}
			if resp.close {
				break
			}
		}
		conn.Close()
	}
	return lats
}

// open dials the origin (directly or through the proxy's CONNECT tunnel)
// and does the TLS handshake when the target is https.
func open(cfg *config) (net.Conn, *bufio.Reader, error) {
	deadline := time.Now().Add(cfg.timeout)
	addr := cfg.origin
	if cfg.proxy != "" {
		addr = cfg.proxy
	}
	conn, err := net.DialTimeout("tcp", addr, cfg.timeout)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: dial %s: %w", errConnect, addr, err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: %w", errConnect, err)
	}
	if cfg.proxy != "" {
		if err := tunnel(conn, cfg.origin); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("%w: CONNECT %s via %s: %w", errConnect, cfg.origin, cfg.proxy, err)
		}
	}
	if cfg.tls != nil {
		tc := tls.Client(conn, cfg.tls)
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("%w: TLS handshake with %s: %w", errConnect, cfg.host, err)
		}
		conn = tc
	}
	return conn, bufio.NewReaderSize(conn, 32<<10), nil
}

// tunnel sends CONNECT for origin on conn and reads the proxy's answer,
// which must be 2xx with nothing after its head.
func tunnel(conn net.Conn, origin string) error {
	if _, err := fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: proxyload\r\n\r\n", origin, origin); err != nil {
		return err
	}
	// Read byte by byte up to the end of the head, so that nothing of
	// the TLS stream that follows is taken into a buffer (each fill of
	// the buffer takes one byte, and reading stops at the empty line).
	br := bufio.NewReaderSize(byteReader{conn}, 4096)
	resp, err := readHead(br)
	if err != nil {
		return err
	}
	if resp.status < 200 || resp.status > 299 {
		return fmt.Errorf("proxy answered %d", resp.status)
	}
	return nil
}

// byteReader reads one byte at a time from r.
type byteReader struct{ r io.Reader }

func (b byteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return b.r.Read(p)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// percentile is the nearest-rank p-th percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (r *result) print(w io.Writer) {
	var mean time.Duration
	if n := len(r.latencies); n > 0 {
		var sum time.Duration
		for _, l := range r.latencies {
			sum += l
		}
		mean = sum / time.Duration(n)
	}
	p50, p99 := percentile(r.latencies, 50), percentile(r.latencies, 99)
	secs := r.elapsed.Seconds()
	rps := 0.0
	if secs > 0 {
		rps = float64(r.requests) / secs
	}
	fmt.Fprintf(w, "  Latency: mean %v, 50%% %v, 99%% %v\n", mean.Round(time.Microsecond), p50.Round(time.Microsecond), p99.Round(time.Microsecond))
	fmt.Fprintf(w, "  %d requests in %.2fs, %.2fMB read\n", r.requests, secs, float64(r.bytes)/(1<<20))
	if r.connect+r.read+r.write+r.timeout > 0 {
		fmt.Fprintf(w, "  Socket errors: connect %d, read %d, write %d, timeout %d\n", r.connect, r.read, r.write, r.timeout)
	}
	if r.status > 0 {
		fmt.Fprintf(w, "  Non-2xx responses: %d\n", r.status)
	}
	if r.firstErr != nil {
		fmt.Fprintf(w, "  First error: %v\n", r.firstErr)
	}
	fmt.Fprintf(w, "Requests/sec: %.2f\n", rps)
	fmt.Fprintf(w, "RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d mean_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
		r.requests, r.elapsed.Microseconds(), r.bytes, p50.Microseconds(), p99.Microseconds(), mean.Microseconds(),
		r.connect, r.read, r.write, r.status, r.timeout)
}
