package proxy

import (
	"bufio"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// copyBufSize is the size of the pooled buffers bodies are copied with.
const copyBufSize = 32 << 10

// bufioSize is the size of the buffered readers and writers on every
// connection: a request or response head and a small page fit in one.
const bufioSize = 4 << 10

// timedConn is a TCP connection whose reads and writes push their own
// deadline out as they go, so that a stalled peer is dropped after an
// idle timeout however long a healthy transfer takes. It deliberately
// has only Read and Write: bufio must not bypass it through ReadFrom.
type timedConn struct {
	c *net.TCPConn
	// readIdle, if set, is the read deadline each Read renews;
	// otherwise the caller sets absolute deadlines.
	readIdle, writeIdle time.Duration
	lastRead, lastWrite time.Time
	aborted             atomic.Bool
}

func (t *timedConn) Read(p []byte) (int, error) {
	if t.readIdle > 0 {
		// Renewing a deadline costs a timer update; once per eighth of
		// the timeout is plenty.
		if now := time.Now(); now.Sub(t.lastRead) > t.readIdle/8 {
			t.c.SetReadDeadline(now.Add(t.readIdle))
			t.lastRead = now
			if t.aborted.Load() {
				// abortRead ran before the renewal: keep its deadline.
				t.c.SetReadDeadline(aLongTimeAgo)
			}
		}
	}
	return t.c.Read(p)
}

// aLongTimeAgo is a deadline in the past, which stops reads at once.
var aLongTimeAgo = time.Unix(1, 0)

// abortRead stops a read in progress on another goroutine for good,
// even one about to renew its deadline.
func (t *timedConn) abortRead() {
	t.aborted.Store(true)
	t.c.SetReadDeadline(aLongTimeAgo)
}

func (t *timedConn) Write(p []byte) (int, error) {
	if t.writeIdle > 0 {
		if now := time.Now(); now.Sub(t.lastWrite) > t.writeIdle/8 {
			t.c.SetWriteDeadline(now.Add(t.writeIdle))
			t.lastWrite = now
		}
	}
	return t.c.Write(p)
}

// readDeadline sets an absolute read deadline and stops renewing.
func (t *timedConn) readDeadline(d time.Time) {
	t.readIdle = 0
	t.c.SetReadDeadline(d)
}

// readIdleMode renews the read deadline at every read from now on.
func (t *timedConn) readIdleMode(idle time.Duration) {
	t.readIdle, t.lastRead = idle, time.Time{}
}

// upConn is a connection to a web server, pooled between requests.
type upConn struct {
	tc   timedConn
	br   *bufio.Reader
	bw   *bufio.Writer
	addr netip.AddrPort
	// name is addr as text, for events, made once per connection.
	name   string
	idleAt time.Time
}

func (p *Proxy) newUpConn(c *net.TCPConn, addr netip.AddrPort) *upConn {
	u := &upConn{addr: addr, name: addr.String()}
	u.tc = timedConn{c: c, writeIdle: p.opts.BodyTimeout}
	u.br = p.getReader(&u.tc)
	u.bw = p.getWriter(&u.tc)
	return u
}

// close closes the connection and recycles its buffers.
func (p *Proxy) closeUp(u *upConn) {
	u.tc.c.Close()
	p.putReader(u.br)
	p.putWriter(u.bw)
	u.br, u.bw = nil, nil
}

// pool keeps idle keep-alive connections to web servers, keyed by the
// dialled address, most recently used first.
type pool struct {
	mu      sync.Mutex
	idle    map[netip.AddrPort][]*upConn
	total   int
	perHost int
	max     int
	timeout time.Duration
	// closeFn closes evicted connections (Proxy.closeUp).
	closeFn func(*upConn)
}

func newPool(perHost, max int, timeout time.Duration) *pool {
	return &pool{idle: map[netip.AddrPort][]*upConn{}, perHost: perHost, max: max, timeout: timeout}
}

// get returns an idle connection to addr, or nil.
func (pl *pool) get(addr netip.AddrPort, now time.Time) *upConn {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for {
		list := pl.idle[addr]
		n := len(list)
		if n == 0 {
			return nil
		}
		u := list[n-1]
		list[n-1] = nil
		// An emptied list stays in the map, so that putting the
		// connection back does not allocate; sweep removes it.
		pl.idle[addr] = list[:n-1]
		pl.total--
		if now.Sub(u.idleAt) < pl.timeout {
			return u
		}
		pl.closeFn(u)
	}
}

// put keeps u for reuse, or closes it when the pool is full or closed.
func (pl *pool) put(u *upConn, now time.Time) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	list := pl.idle[u.addr]
	if pl.idle == nil || len(list) >= pl.perHost || pl.total >= pl.max {
		pl.closeFn(u)
		return
	}
	u.idleAt = now
	pl.idle[u.addr] = append(list, u)
	pl.total++
}

// sweep closes connections idle longer than the timeout.
func (pl *pool) sweep(now time.Time) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for k, list := range pl.idle {
		keep := list[:0]
		for _, u := range list {
			if now.Sub(u.idleAt) < pl.timeout {
				keep = append(keep, u)
			} else {
				pl.closeFn(u)
				pl.total--
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(pl.idle, k)
		} else {
			pl.idle[k] = keep
		}
	}
}

// closeAll closes every idle connection; the pool stays usable.
func (pl *pool) closeAll() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for k, list := range pl.idle {
		for _, u := range list {
			pl.closeFn(u)
		}
		delete(pl.idle, k)
	}
	pl.total = 0
}

// idleCount returns the number of pooled connections.
func (pl *pool) idleCount() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.total
}

func (p *Proxy) getReader(r *timedConn) *bufio.Reader {
	if v, ok := p.readers.Get().(*bufio.Reader); ok {
		v.Reset(r)
		return v
	}
	return bufio.NewReaderSize(r, bufioSize)
}

func (p *Proxy) putReader(br *bufio.Reader) {
	if br != nil {
		br.Reset(nil)
		p.readers.Put(br)
	}
}

func (p *Proxy) getWriter(w *timedConn) *bufio.Writer {
	if v, ok := p.writers.Get().(*bufio.Writer); ok {
		v.Reset(w)
		return v
	}
	return bufio.NewWriterSize(w, bufioSize)
}

func (p *Proxy) putWriter(bw *bufio.Writer) {
	if bw != nil {
		bw.Reset(nil)
		p.writers.Put(bw)
	}
}

func (p *Proxy) getBuf() *[]byte  { return p.bufs.Get().(*[]byte) }
func (p *Proxy) putBuf(b *[]byte) { p.bufs.Put(b) }
