package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/warden-schools/warden/internal/identity"
	"github.com/warden-schools/warden/internal/policy"
)

// connect answers a CONNECT: refused ports get a 403 text; hosts the
// Inspector takes (allowed or blocked: inside, each request gets its own
// decision and a blocked one the block page) go to it; other blocked
// hosts get a 403 text; the rest get a tunnel. The client connection
// ends with the tunnel.
func (cc *clientConn) connect(start time.Time, host string, who *identity.Subject, d *policy.Decision) bool {
	p, r := cc.p, &cc.req
	if !p.ports[r.port] {
		cc.refuse(start, host, "", who, d, http.StatusForbidden,
			"Warden allows CONNECT only to the configured ports (normally 443).", oRefused, "connect-port")
		return false
	}
	insp := p.opts.Inspector
	inspect := insp != nil && insp.Inspect(host, *d, *who)
	if d.Blocked() && !inspect {
		body := connectBlockedText(host, d.Reason)
		cc.writeResponse(http.StatusForbidden, "text/plain; charset=utf-8", body, false, "")
		cc.record(start, host, "", who, d, result{status: http.StatusForbidden, bytes: int64(len(body)), latency: p.now().Sub(start), outcome: oBlock})
		return false
	}
	if inspect {
		target := string(r.target)
		if err := cc.established(); err != nil {
			return false
		}
		outcome := oAllow
		if d.Blocked() {
			outcome = oBlock
		}
		cc.record(start, host, "", who, d, result{status: http.StatusOK, latency: p.now().Sub(start), outcome: outcome, upstream: "inspect"})
		cc.conn.SetDeadline(time.Time{})
		insp.ServeTLS(p.hardCtx, &handoffConn{c: cc.conn, br: cc.br}, target, *who, cc.ip)
		return false
	}
	if err := p.resolve(p.hardCtx, r.host, r.ip, r.port, &cc.dest); err != nil {
		cc.destError(start, host, "", who, d, err)
		return false
	}
	up, ap, err := p.dial(p.hardCtx, &cc.dest)
	if err != nil {
		cc.destError(start, host, "", who, d, err)
		return false
	}
	if err := cc.established(); err != nil {
		up.Close()
		return false
	}
	latency := p.now().Sub(start)
	down := p.relay(cc.conn, cc.br, up)
	cc.record(start, host, "", who, d, result{status: http.StatusOK, bytes: down, upstream: ap.String(), latency: latency, outcome: oAllow})
	return false
}

// established sends the 200 that opens a tunnel.
func (cc *clientConn) established() error {
	cc.bw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
	return cc.bw.Flush()
}

// relay copies bytes both ways between client and up until both sides
// have closed, either fails, or nothing has moved for the tunnel idle
// timeout; it returns the bytes sent to the client. Bytes the client
// sent after the CONNECT head, already buffered in br, go first. On
// Linux the tunnel goes to the event loops (relay_linux.go); elsewhere,
// or if they cannot take it, two goroutines copy it, io.Copy splicing in
// the kernel where it can.
func (p *Proxy) relay(client *net.TCPConn, br *bufio.Reader, up *net.TCPConn) int64 {
	defer up.Close()
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		up.SetWriteDeadline(time.Now().Add(p.opts.BodyTimeout))
		if _, err := up.Write(b); err != nil {
			return 0
		}
		br.Discard(n)
	}
	if down, ok := p.relays.relay(client, up, p.hardCtx.Done()); ok {
		return down
	}
	idle := p.opts.TunnelIdleTimeout
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		pipe(up, client, idle, &last)
		close(done)
	}()
	down := pipe(client, up, idle, &last)
	<-done
	return down
}

// pipe copies src to dst in windows of a quarter of the idle timeout:
// each window ends with a deadline, and the tunnel closes once neither
// direction has moved a byte for the whole idle timeout. When src ends
// cleanly, dst's write side is closed (half-close) and the other
// direction carries on.
func pipe(dst, src *net.TCPConn, idle time.Duration, last *atomic.Int64) int64 {
	window := idle / 4
	var total int64
	for {
		deadline := time.Now().Add(window)
		src.SetReadDeadline(deadline)
		dst.SetWriteDeadline(deadline)
		n, err := io.Copy(dst, src)
		total += n
		now := time.Now()
		if n > 0 {
			last.Store(now.UnixNano())
		}
		if err == nil {
			dst.CloseWrite()
			return total
		}
		if isTimeout(err) && now.Sub(time.Unix(0, last.Load())) < idle {
			continue
		}
		// Failed, or idle too long: end both directions.
		src.Close()
		dst.Close()
		return total
	}
}

// handoffConn is the client connection given to the Inspector: reads
// come first from what the proxy had already buffered. It wraps rather
// than embeds the TCP connection so that no promoted ReadFrom or WriteTo
// can skip the buffered bytes.
type handoffConn struct {
	c  *net.TCPConn
	br *bufio.Reader
}

func (h *handoffConn) Read(p []byte) (int, error) {
	if h.br != nil {
		if h.br.Buffered() > 0 {
			return h.br.Read(p)
		}
		h.br = nil
	}
	return h.c.Read(p)
}

func (h *handoffConn) Write(p []byte) (int, error)        { return h.c.Write(p) }
func (h *handoffConn) Close() error                       { return h.c.Close() }
func (h *handoffConn) LocalAddr() net.Addr                { return h.c.LocalAddr() }
func (h *handoffConn) RemoteAddr() net.Addr               { return h.c.RemoteAddr() }
func (h *handoffConn) SetDeadline(t time.Time) error      { return h.c.SetDeadline(t) }
func (h *handoffConn) SetReadDeadline(t time.Time) error  { return h.c.SetReadDeadline(t) }
func (h *handoffConn) SetWriteDeadline(t time.Time) error { return h.c.SetWriteDeadline(t) }

// CloseWrite half-closes the connection.
func (h *handoffConn) CloseWrite() error { return h.c.CloseWrite() }
