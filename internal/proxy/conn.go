package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warden-schools/warden/internal/events"
	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// maxDrain is the largest request body the proxy reads and drops to keep
// a connection open after answering without forwarding (block page,
// 407); a larger or chunked body closes the connection instead.
const maxDrain = 64 << 10

// maxInterim bounds the 1xx responses before a final one.
const maxInterim = 16

// clientConn is one client connection and the state reused across its
// requests.
type clientConn struct {
	p    *Proxy
	conn *net.TCPConn
	tc   timedConn
	ip   netip.Addr
	br   *bufio.Reader
	bw   *bufio.Writer
	// idle is set while the connection waits for a request, so that
	// shutdown may close it at once.
	idle atomic.Bool

	req       request
	resp      response
	reqChunk  chunkedReader
	respChunk chunkedReader
	dest      destination
}

// serveConn serves one client connection until it closes.
func (p *Proxy) serveConn(c *net.TCPConn) {
	defer p.wg.Done()
	ip := identity.ClientAddr(c.RemoteAddr())
	if !p.sourceAllowed(ip) {
		p.metrics.refusedConn()
		if p.refused.allow(ip, time.Now()) {
			p.log.Warn("proxy_client_refused", "client", ip.String(), "why", "not in the allowed networks")
		}
		c.Close()
		return
	}
	cc := &clientConn{p: p, conn: c, ip: ip}
	cc.tc = timedConn{c: c, writeIdle: p.opts.BodyTimeout}
	cc.idle.Store(true)
	p.mu.Lock()
	if p.shutting.Load() {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[cc] = struct{}{}
	p.mu.Unlock()
	cc.br, cc.bw = p.getReader(&cc.tc), p.getWriter(&cc.tc)
	p.metrics.connOpened()
	defer func() {
		if v := recover(); v != nil {
			// One broken request must not take the school offline.
			p.log.Error("proxy_panic", "panic", v, "stack", string(debug.Stack()))
		}
		p.mu.Lock()
		delete(p.conns, cc)
		p.mu.Unlock()
		c.Close()
		p.putReader(cc.br)
		p.putWriter(cc.bw)
		p.metrics.connClosed()
	}()
	cc.serve()
}

// serve reads and answers requests until the connection should close.
func (cc *clientConn) serve() {
	p := cc.p
	for {
		cc.idle.Store(true)
		if p.shutting.Load() {
			return
		}
		if cc.br.Buffered() == 0 {
			cc.tc.readDeadline(time.Now().Add(p.opts.IdleTimeout))
			if _, err := cc.br.Peek(1); err != nil {
				return
			}
		}
		cc.idle.Store(false)
		cc.tc.readDeadline(time.Now().Add(p.opts.ReadHeaderTimeout))
		start := p.now()
		if err := cc.req.read(cc.br, p.opts.MaxHeaderBytes); err != nil {
			if he, ok := err.(*httpError); ok {
				p.metrics.request(cc.req.method, oRefused, 0)
				p.log.Debug("proxy_bad_request", "client", cc.ip.String(), "err", he.msg)
				cc.writeText(he.status, he.msg, false, "")
			}
			return
		}
		if !cc.handle(start) {
			return
		}
	}
}

// result is how a request ended, for its event and metrics.
type result struct {
	status   int
	bytes    int64
	upstream string
	latency  time.Duration
	outcome  int
	// rule, when set, is why the proxy refused a request the policy
	// allowed ("destination", "connect-port"); the event says "block".
	rule string
}

// handle answers one request and reports whether to keep the connection.
func (cc *clientConn) handle(start time.Time) bool {
	p, r := cc.p, &cc.req
	who, ok := cc.identify()
	if !ok {
		return cc.challenge(start)
	}
	snap := p.opts.Policy()
	if snap == nil {
		// No policy yet: refuse rather than pass unfiltered.
		keep := cc.keep() && cc.discardBody()
		cc.writeText(http.StatusServiceUnavailable, "Warden's filter is starting: try again in a moment.", keep, "")
		p.metrics.request(r.method, oRefused, 0)
		return keep
	}
	var host, url string
	if r.connect {
		host = lowerString(r.host)
	} else {
		url = string(r.target)
		off := cap(r.target) - cap(r.host) // host lies inside the target
		host = lowerString2(url[off : off+len(r.host)])
	}
	d := snap.Decide(policy.Request{Host: host, URL: url, Group: who.Group, ClientIP: cc.ip, Time: start})
	switch {
	case r.connect:
		return cc.connect(start, host, &who, &d)
	case d.Blocked():
		return cc.block(start, host, url, &who, &d)
	}
	return cc.forward(start, host, url, &who, &d)
}

// lowerString returns b as a lower-case string.
func lowerString(b []byte) string {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return strings.ToLower(string(b))
		}
	}
	return string(b)
}

// lowerString2 lower-cases s, allocating only when it has upper case.
func lowerString2(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// identify finds who sends the request: proxy credentials if sent (or
// required), else the client address through the identity table. It
// reports false when the client must authenticate (407).
func (cc *clientConn) identify() (identity.Subject, bool) {
	p, r := cc.p, &cc.req
	table := p.opts.Identity()
	if p.opts.Auth != nil && r.authz != nil {
		who, ok := p.authenticate(r.authz, table)
		if !ok {
			return who, false
		}
		if who.Zone == "" && table != nil {
			who.Zone = table.ZoneOf(cc.ip)
		}
		return who, true
	}
	if p.opts.RequireAuth {
		return identity.Subject{}, false
	}
	if table == nil {
		return identity.Subject{Via: identity.Unknown}, true
	}
	return table.ByAddr(cc.ip), true
}

// challenge answers 407, asking for proxy credentials.
func (cc *clientConn) challenge(start time.Time) bool {
	keep := cc.keep() && cc.discardBody()
	cc.writeText(http.StatusProxyAuthRequired, "Warden needs your user name and password, or your device token as the password.", keep,
		"Proxy-Authenticate: Basic realm=\"Warden\", charset=\"UTF-8\"\r\n")
	cc.p.metrics.request(cc.req.method, oRefused, cc.p.now().Sub(start))
	return keep
}

// block serves the block page for a blocked plain HTTP request, keeping
// the connection open when the request's body allows it.
func (cc *clientConn) block(start time.Time, host, url string, who *identity.Subject, d *policy.Decision) bool {
	p := cc.p
	b := Blocked{Time: start, Host: host, URL: url, Decision: *d, Subject: *who, ClientIP: cc.ip, URLFiltered: url != ""}
	var page []byte
	if p.opts.BlockPage != nil {
		// Rendered into a pooled buffer: blocked requests come fast
		// (adverts, trackers, apps retrying), and a page each would
		// keep the collector busy.
		bp := p.pages.Get().(*[]byte)
		page = p.opts.BlockPage((*bp)[:0], b)
		defer func() {
			if cap(page) <= maxPooledPage {
				*bp = page[:0]
				p.pages.Put(bp)
			}
		}()
	}
	if len(page) == 0 {
		page = builtinBlockPage(b)
	}
	keep := cc.keep() && cc.discardBody()
	err := cc.writeResponse(http.StatusForbidden, "text/html; charset=utf-8", page, keep, "")
	cc.record(start, host, url, who, d, result{status: http.StatusForbidden, bytes: int64(len(page)), latency: p.now().Sub(start), outcome: oBlock})
	return keep && err == nil
}

// refuse answers a request the proxy will not forward although the
// policy allowed it (forbidden destination, port, size, unreachable
// server), and records it.
func (cc *clientConn) refuse(start time.Time, host, url string, who *identity.Subject, d *policy.Decision, status int, msg string, outcome int, rule string) bool {
	keep := !cc.req.connect && cc.keep() && cc.discardBody()
	err := cc.writeText(status, msg, keep, "")
	cc.record(start, host, url, who, d, result{status: status, latency: cc.p.now().Sub(start), outcome: outcome, rule: rule})
	return keep && err == nil
}

// discardBody reads and drops a small request body that will not be
// forwarded, and reports whether the connection can carry on.
func (cc *clientConn) discardBody() bool {
	r := &cc.req
	if !r.hasBody() {
		return true
	}
	if r.expect100 || r.fr.chunked || r.fr.length > maxDrain {
		return false // the client may or may not send it: close
	}
	cc.tc.readIdleMode(cc.p.opts.BodyTimeout)
	_, err := cc.br.Discard(int(r.fr.length))
	return err == nil
}

// writeText answers with a short text/plain body.
func (cc *clientConn) writeText(status int, msg string, keep bool, extra string) error {
	var buf [256]byte
	body := append(buf[:0], msg...)
	body = append(body, '\n')
	return cc.writeResponse(status, "text/plain; charset=utf-8", body, keep, extra)
}

// writeResponse writes a complete response of the proxy's own.
func (cc *clientConn) writeResponse(status int, ctype string, body []byte, keep bool, extra string) error {
	w := cc.bw
	writeStatus(w, status, http.StatusText(status))
	w.WriteString("Content-Type: ")
	w.WriteString(ctype)
	w.WriteString("\r\nContent-Length: ")
	writeInt(w, int64(len(body)))
	w.WriteString("\r\nCache-Control: no-store\r\n")
	writeConnection(w, keep, cc.req.minor)
	w.WriteString(extra)
	w.WriteString("\r\n")
	if cc.req.method != "HEAD" {
		w.Write(body)
	}
	return w.Flush()
}

func writeStatus(w *bufio.Writer, status int, reason string) {
	writeStatusCode(w, status)
	w.WriteString(reason)
	w.WriteString("\r\n")
}

// writeStatusCode writes "HTTP/1.1 NNN " (the reason phrase follows).
func writeStatusCode(w *bufio.Writer, status int) {
	s := append(w.AvailableBuffer(), "HTTP/1.1 "...)
	s = strconv.AppendInt(s, int64(status), 10)
	s = append(s, ' ')
	w.Write(s)
}

// writeInt writes n in decimal, in the writer's own buffer (no
// allocation).
func writeInt(w *bufio.Writer, n int64) {
	w.Write(strconv.AppendInt(w.AvailableBuffer(), n, 10))
}

// writeConnection writes the Connection field a response needs: close,
// or keep-alive for an HTTP/1.0 client that asked for it.
func writeConnection(w *bufio.Writer, keep bool, minor int) {
	switch {
	case !keep:
		w.WriteString("Connection: close\r\n")
	case minor == 0:
		w.WriteString("Connection: keep-alive\r\n")
	}
}

// Body framings.
const (
	bodyNone = iota
	bodyLength
	bodyChunked
	bodyClose // until the connection closes
)

// forward sends an allowed plain HTTP request to the web server and
// streams the response back.
func (cc *clientConn) forward(start time.Time, host, url string, who *identity.Subject, d *policy.Decision) bool {
	p, r := cc.p, &cc.req
	if p.opts.MaxBodyBytes > 0 && r.fr.length > p.opts.MaxBodyBytes {
		return cc.refuse(start, host, url, who, d, http.StatusRequestEntityTooLarge, "The request body is larger than Warden allows.", oRefused, "")
	}
	ctx := p.hardCtx
	if err := p.resolve(ctx, r.host, r.ip, r.port, &cc.dest); err != nil {
		return cc.destError(start, host, url, who, d, err)
	}
	hasBody := r.hasBody()
	// A request that cannot be retried gets a connection checked alive.
	u, reused, err := cc.upstream(ctx, false, hasBody || !idempotent(r.method))
	if err != nil {
		return cc.destError(start, host, url, who, d, err)
	}
	var bodyDone chan error
	for attempt := 0; ; attempt++ {
		cc.resp.block = cc.resp.block[:0]
		if hasBody {
			// The response-header timeout starts once the body is sent
			// (sendBody sets it); the body has its own idle timeouts.
			u.tc.readDeadline(time.Time{})
		} else {
			u.tc.readDeadline(time.Now().Add(p.opts.ResponseHeaderTimeout))
		}
		cc.writeRequestHead(u.bw)
		if hasBody {
			if r.expect100 {
				// The proxy has decided: the client may send its body.
				// (Expect is not forwarded; the proxy streams the body.)
				cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
				err = cc.bw.Flush()
			}
			if err == nil {
				cc.tc.readIdleMode(p.opts.BodyTimeout)
				bodyDone = make(chan error, 1)
				go cc.sendBody(u, bodyDone)
			}
		} else {
			err = u.bw.Flush()
		}
		if err == nil {
			err = cc.readResponseHead(u)
		}
		if err == nil {
			break
		}
		if attempt == 0 && reused && !hasBody && idempotent(r.method) && len(cc.resp.block) == 0 && !isTimeout(err) {
			// A pooled connection the server had closed: try once more on
			// a new one.
			p.closeUp(u)
			if u, reused, err = cc.upstream(ctx, true, false); err != nil {
				return cc.destError(start, host, url, who, d, err)
			}
			continue
		}
		// No response: stop the body, then say what went wrong.
		u.tc.c.Close()
		var clientErr *httpError
		if bodyDone != nil {
			if berr := <-bodyDone; berr != nil {
				clientErr, _ = berr.(*httpError) // a bad or oversized body
			}
		}
		p.closeUp(u)
		if clientErr != nil {
			return cc.refuse(start, host, url, who, d, clientErr.status, bodyMessage(clientErr), oRefused, "")
		}
		return cc.upstreamError(start, host, url, who, d, err)
	}
	return cc.relayResponse(start, host, url, who, d, u, bodyDone)
}

func idempotent(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// upstream returns a pooled connection to the destination, or a new one
// (always new when fresh is set). With check, a pooled connection is
// used only if it is still open.
func (cc *clientConn) upstream(ctx context.Context, fresh, check bool) (*upConn, bool, error) {
	p, d := cc.p, &cc.dest
	for !fresh {
		u := p.pool.get(netip.AddrPortFrom(d.addrs[d.first()], d.port), time.Now())
		if u == nil {
			break
		}
		if u.br.Buffered() > 0 || check && !alive(u.tc.c) {
			p.closeUp(u) // closed by the server, or sent something unasked
			continue
		}
		p.metrics.reusedConn()
		return u, true, nil
	}
	c, ap, err := p.dial(ctx, d)
	if err != nil {
		return nil, false, err
	}
	return p.newUpConn(c, ap), false, nil
}

// destError answers a request whose destination was refused or could
// not be reached.
func (cc *clientConn) destError(start time.Time, host, url string, who *identity.Subject, d *policy.Decision, err error) bool {
	switch {
	case errors.Is(err, ErrForbiddenDestination):
		return cc.refuse(start, host, url, who, d, http.StatusForbidden,
			"Warden does not connect to this address (local, link-local or the filter server itself).", oRefused, "destination")
	case isDNSError(err):
		cc.p.log.Debug("proxy_resolve_failed", "host", host, "err", err)
		return cc.refuse(start, host, url, who, d, http.StatusBadGateway, "Warden could not find this site's address.", oError, "")
	case isTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return cc.refuse(start, host, url, who, d, http.StatusGatewayTimeout, "The web server did not answer in time.", oError, "")
	}
	cc.p.log.Debug("proxy_connect_failed", "host", host, "err", err)
	return cc.refuse(start, host, url, who, d, http.StatusBadGateway, "Warden could not connect to the web server.", oError, "")
}

func isDNSError(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) || errors.Is(err, errNoAddress)
}

// upstreamError answers a request that got no usable response head. The
// client connection closes unless the request had no body.
func (cc *clientConn) upstreamError(start time.Time, host, url string, who *identity.Subject, d *policy.Decision, err error) bool {
	cc.p.log.Debug("proxy_upstream_failed", "host", host, "err", err)
	status, msg := http.StatusBadGateway, "The web server's answer was broken or cut off."
	if he, ok := err.(*httpError); ok && he.status == http.StatusBadGateway {
		msg = he.msg
	} else if isTimeout(err) {
		status, msg = http.StatusGatewayTimeout, "The web server did not answer in time."
	}
	keep := cc.keep() && !cc.req.hasBody()
	werr := cc.writeText(status, msg, keep, "")
	cc.record(start, host, url, who, d, result{status: status, latency: cc.p.now().Sub(start), outcome: oError})
	return keep && werr == nil
}

// bodyMessage says what was wrong with a request body.
func bodyMessage(he *httpError) string {
	if he == errBodyTooLarge {
		return "The request body is larger than Warden allows."
	}
	return "Bad request body: " + he.msg + "."
}

// keep reports whether the connection may carry another request after
// this one, as far as the request and the proxy's state go.
func (cc *clientConn) keep() bool {
	return cc.req.keepAlive() && !cc.p.shutting.Load()
}

// writeRequestHead writes the request head for the web server: origin
// form, Host from the URL, hop-by-hop fields removed, Via added, the
// body framed by the proxy.
func (cc *clientConn) writeRequestHead(w *bufio.Writer) {
	r := &cc.req
	w.WriteString(r.method)
	w.WriteByte(' ')
	if len(r.path) == 0 || r.path[0] == '?' {
		w.WriteByte('/')
	}
	w.Write(r.path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.Write(r.authority)
	w.WriteString("\r\n")
	for i := range r.fields {
		if f := &r.fields[i]; !f.drop {
			w.Write(f.name)
			w.WriteString(": ")
			w.Write(f.value)
			w.WriteString("\r\n")
		}
	}
	if r.minor == 0 {
		w.WriteString("Via: 1.0 warden\r\n")
	} else {
		w.WriteString("Via: 1.1 warden\r\n")
	}
	switch {
	case r.fr.chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case r.fr.length > 0 || r.fr.length == 0 && methodHasBody(r.method):
		w.WriteString("Content-Length: ")
		writeInt(w, r.fr.length)
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

// methodHasBody reports methods whose empty body is still worth a
// "Content-Length: 0" (servers may want one for POST).
func methodHasBody(m string) bool {
	return m == "POST" || m == "PUT" || m == "PATCH"
}

// errBodyTooLarge is a chunked body that grew past MaxBodyBytes.
var errBodyTooLarge = &httpError{413, "request body too large"}

// sendBody streams the request body to the web server, framed as the
// head said, and reports how it ended. On failure it closes the upstream
// connection so that the response read stops too.
func (cc *clientConn) sendBody(u *upConn, done chan<- error) {
	err := cc.copyRequestBody(u)
	if err == nil {
		err = u.bw.Flush()
	}
	if err != nil {
		u.tc.c.Close()
	} else {
		// Safe from this goroutine: the reader is in absolute-deadline
		// mode and only the socket's deadline changes.
		u.tc.c.SetReadDeadline(time.Now().Add(cc.p.opts.ResponseHeaderTimeout))
	}
	done <- err
}

func (cc *clientConn) copyRequestBody(u *upConn) error {
	p, r := cc.p, &cc.req
	bp := p.getBuf()
	defer p.putBuf(bp)
	buf := *bp
	if !r.fr.chunked {
		_, rerr, werr := copyN(u.bw, cc.br, r.fr.length, buf)
		if rerr != nil {
			return rerr
		}
		return werr
	}
	cc.reqChunk.reset(cc.br)
	var total int64
	for {
		n, err := cc.reqChunk.Read(buf)
		if n > 0 {
			if total += int64(n); p.opts.MaxBodyBytes > 0 && total > p.opts.MaxBodyBytes {
				return errBodyTooLarge
			}
			if werr := writeChunk(u.bw, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return lastChunk(u.bw)
		}
		if err != nil {
			return err
		}
	}
}

// copyN copies exactly n bytes from src to dst, taking what src has
// buffered without an extra copy. It reports read and write errors
// apart: a read error is the sender's fault, a write error the
// receiver's.
func copyN(dst *bufio.Writer, src *bufio.Reader, n int64, buf []byte) (written int64, rerr, werr error) {
	for written < n {
		if b := src.Buffered(); b > 0 {
			k := int(min(int64(b), n-written))
			chunk, _ := src.Peek(k)
			if _, werr = dst.Write(chunk); werr != nil {
				return written, nil, werr
			}
			src.Discard(k)
			written += int64(k)
			continue
		}
		k := int(min(int64(len(buf)), n-written))
		m, err := src.Read(buf[:k])
		if m > 0 {
			if _, werr = dst.Write(buf[:m]); werr != nil {
				return written, nil, werr
			}
			written += int64(m)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return written, err, nil
		}
	}
	return written, nil, nil
}

// readResponseHead reads the web server's response head, passing
// interim 1xx responses on to HTTP/1.1 clients.
func (cc *clientConn) readResponseHead(u *upConn) error {
	resp := &cc.resp
	for i := 0; ; i++ {
		if err := resp.read(u.br, cc.p.opts.MaxHeaderBytes); err != nil {
			return err
		}
		if resp.status >= 200 {
			return nil
		}
		if resp.status == 101 || i == maxInterim {
			return errBadUpgrade // the proxy never asks for an upgrade
		}
		if resp.status == 100 || cc.req.minor == 0 {
			continue // 100 was the proxy's to send; HTTP/1.0 has no 1xx
		}
		cc.writeResponseHead(resp, bodyNone, true)
		if err := cc.bw.Flush(); err != nil {
			return err
		}
	}
}

// writeResponseHead writes the response head for the client with the
// proxy's framing.
func (cc *clientConn) writeResponseHead(resp *response, mode int, keep bool) {
	w := cc.bw
	writeStatusCode(w, resp.status)
	w.Write(resp.reason)
	w.WriteString("\r\n")
	for i := range resp.fields {
		if f := &resp.fields[i]; !f.drop {
			w.Write(f.name)
			w.WriteString(": ")
			w.Write(f.value)
			w.WriteString("\r\n")
		}
	}
	if resp.status < 200 {
		w.WriteString("\r\n")
		return
	}
	if resp.minor == 0 {
		w.WriteString("Via: 1.0 warden\r\n")
	} else {
		w.WriteString("Via: 1.1 warden\r\n")
	}
	switch mode {
	case bodyNone:
		// HEAD and 304 responses carry the length of what a GET would
		// have returned.
		if resp.fr.length >= 0 && resp.status != 204 {
			w.WriteString("Content-Length: ")
			writeInt(w, resp.fr.length)
			w.WriteString("\r\n")
		}
	case bodyLength:
		w.WriteString("Content-Length: ")
		writeInt(w, resp.fr.length)
		w.WriteString("\r\n")
	case bodyChunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	writeConnection(w, keep, cc.req.minor)
	w.WriteString("\r\n")
}

// relayResponse passes the response head and body to the client, then
// returns the upstream connection to the pool if it is clean.
func (cc *clientConn) relayResponse(start time.Time, host, url string, who *identity.Subject, d *policy.Decision, u *upConn, bodyDone chan error) bool {
	p, r, resp := cc.p, &cc.req, &cc.resp
	keep := cc.keep()
	bodySent := bodyDone == nil
	if !bodySent {
		select {
		case err := <-bodyDone:
			bodySent, bodyDone = err == nil, nil
		default:
			// The server answered before the whole body arrived: answer,
			// then close (what is left of the body cannot be parsed as a
			// next request).
			keep = false
		}
		if !bodySent {
			keep = false
		}
	}
	upMode, cliMode := bodyNone, bodyNone
	switch {
	case resp.bodyless(r.method):
	case resp.fr.chunked:
		upMode, cliMode = bodyChunked, bodyChunked
	case resp.fr.length >= 0:
		upMode, cliMode = bodyLength, bodyLength
	default:
		upMode, cliMode = bodyClose, bodyChunked
	}
	if cliMode == bodyChunked && r.minor == 0 {
		cliMode, keep = bodyClose, false // HTTP/1.0 knows no chunks
	}
	cc.writeResponseHead(resp, cliMode, keep)
	latency := p.now().Sub(start)

	u.tc.readIdleMode(p.opts.BodyTimeout)
	var written int64
	var rerr, werr error
	bp := p.getBuf()
	buf := *bp
	switch upMode {
	case bodyLength:
		written, rerr, werr = copyN(cc.bw, u.br, resp.fr.length, buf)
	case bodyChunked:
		cc.respChunk.reset(u.br)
		written, rerr, werr = copyChunks(cc.bw, &cc.respChunk, cliMode, buf)
	case bodyClose:
		written, rerr, werr = copyChunks(cc.bw, u.br, cliMode, buf)
	}
	p.putBuf(bp)
	if rerr == nil && werr == nil && cliMode == bodyChunked {
		werr = lastChunk(cc.bw)
	}
	if werr == nil && rerr == nil {
		werr = cc.bw.Flush()
	} else if rerr != nil {
		// The server broke off: send what was read, then close without
		// ending the body, so that the client sees the truncation.
		cc.bw.Flush()
		keep = false
	}
	if werr != nil {
		keep = false
	}

	if bodyDone != nil {
		// Stop a request body still on its way, and wait for it.
		cc.tc.abortRead()
		u.tc.c.Close()
		<-bodyDone
		keep = false
	}
	reusable := rerr == nil && werr == nil && upMode != bodyClose && resp.keepAlive() && bodySent && !p.shutting.Load()
	if reusable {
		p.pool.put(u, time.Now())
	} else {
		p.closeUp(u)
	}
	outcome := oAllow
	if rerr != nil {
		outcome = oError
	}
	cc.record(start, host, url, who, d, result{status: resp.status, bytes: written, upstream: u.name, latency: latency, outcome: outcome})
	return keep
}

// copyChunks copies a body read from src (a chunked decoder, or the
// connection until it closes) to the client, as chunks or raw.
func copyChunks(dst *bufio.Writer, src io.Reader, mode int, buf []byte) (written int64, rerr, werr error) {
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if mode == bodyChunked {
				werr = writeChunk(dst, buf[:n])
			} else {
				_, werr = dst.Write(buf[:n])
			}
			if werr != nil {
				return written, nil, werr
			}
			written += int64(n)
		}
		if err == io.EOF {
			return written, nil, nil
		}
		if err != nil {
			return written, err, nil
		}
	}
}

// record counts a request and emits its event.
func (cc *clientConn) record(start time.Time, host, url string, who *identity.Subject, d *policy.Decision, res result) {
	p := cc.p
	p.metrics.request(cc.req.method, res.outcome, res.latency)
	if res.outcome == oBlock {
		p.metrics.blockedBy(d.Category)
	}
	if p.opts.Events == nil {
		return
	}
	action, rule := d.Action.String(), d.Rule
	if res.rule != "" {
		action, rule = "block", res.rule
	}
	p.opts.Events(events.Event{
		Time: start, Source: "proxy", ClientIP: cc.ip,
		DeviceID: who.DeviceID, PersonID: who.PersonID, Group: d.Group,
		Host: host, URL: url, Method: cc.req.method,
		Action: action, Alert: d.Alert, Category: d.Category, List: d.List, Rule: rule,
		PolicyVersion: d.PolicyVersion, Latency: res.latency, Upstream: res.upstream,
		Status: statusText(res.status), Bytes: res.bytes,
	})
}

// statusText returns an HTTP status as text, without allocating for the
// common ones.
func statusText(s int) string {
	switch s {
	case 200:
		return "200"
	case 204:
		return "204"
	case 206:
		return "206"
	case 301:
		return "301"
	case 302:
		return "302"
	case 304:
		return "304"
	case 400:
		return "400"
	case 403:
		return "403"
	case 404:
		return "404"
	case 407:
		return "407"
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return strconv.Itoa(s)
}
