//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A CONNECT tunnel carries TLS the proxy cannot read, so all it does is
// move bytes. On Linux the tunnels are relayed by a few event loops, as
// nginx and HAProxy relay theirs, rather than by two goroutines each: a
// loop asks its own epoll instance which sockets are ready, reads each
// once and writes what came straight on. That is two system calls for
// each burst of bytes where a goroutine copying needs three (its last
// read finds nothing and parks), and under load one epoll_wait serves
// many tunnels. The loops are ordinary goroutines: each one's epoll
// instance is itself registered with Go's poller, so a loop with nothing
// ready parks as any goroutine waiting on a socket does, without holding
// a thread in a system call.
//
// Bytes are read into the loop's own buffer. A tunnel holds a buffer only
// while the side it writes to is not taking bytes; reading from the other
// side stops until they are written (backpressure).
//
// The tunnel's sockets are duplicated out of the net.TCPConns, which are
// then closed: that takes them off Go's poller without closing the
// connections, which end when the loop closes the duplicates.

// relayEvents is how many ready sockets one epoll_wait returns at most.
const relayEvents = 128

// relayBufSize is the size of a loop's read buffer: the most one read
// moves.
const relayBufSize = 32 << 10

// relayer runs the event loops; they start with the first tunnel.
type relayer struct {
	idle  time.Duration
	once  sync.Once
	err   error
	loops []*relayLoop
	next  atomic.Uint32
}

// relayLoop is one event loop: an epoll instance and the tunnels'
// sockets registered in it.
type relayLoop struct {
	ep   *os.File // the epoll instance, registered with Go's poller
	raw  syscall.RawConn
	epfd int
	idle time.Duration
	buf  []byte

	mu     sync.Mutex // guards ends and stop (relay adds, the loop removes)
	ends   map[int32]*relayEnd
	stop   bool
	closed chan struct{}
}

// relayTunnel is one tunnel's state, owned by its loop.
type relayTunnel struct {
	client, up relayEnd
	last       int64 // Unix nanoseconds of the last byte moved
	down       int64 // bytes written to the client

	// mu and closed let abort shut the sockets down from outside the
	// loop without touching a descriptor the loop has closed.
	mu     sync.Mutex
	closed bool
	done   chan int64
}

// relayEnd is one side of a tunnel: its socket, the bytes waiting to be
// written to it, and whether it has sent its end of stream.
type relayEnd struct {
	fd      int
	t       *relayTunnel
	peer    *relayEnd
	pending []byte // read from peer, not yet written here
	eof     bool   // this side will send nothing more
	shut    bool   // this side's write half is shut down
	events  uint32 // the events registered for fd
}

// start makes the loops: one for every two processors Go may use. One
// loop keeps a core busy only at some hundred thousand bursts a second;
// on a small server a second loop costs more in wake-ups than it gains,
// and the proxy's other work needs the cores too.
func (r *relayer) start() error {
	r.once.Do(func() {
		for range max(1, runtime.GOMAXPROCS(0)/2) {
			l, err := newRelayLoop(r.idle)
			if err != nil {
				r.err = err
				r.stop()
				r.loops = nil
				return
			}
			r.loops = append(r.loops, l)
			go l.run()
		}
	})
	return r.err
}

// stop ends the loops, closing the tunnels still open.
func (r *relayer) stop() {
	for _, l := range r.loops {
		l.mu.Lock()
		l.stop = true
		l.mu.Unlock()
		l.ep.SetReadDeadline(time.Now()) // wakes the loop
		<-l.closed
	}
}

func newRelayLoop(idle time.Duration) (*relayLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll instance: %w", err)
	}
	// A non-blocking descriptor given to os.NewFile joins Go's poller,
	// which reports the epoll instance readable when any of its
	// sockets is ready.
	ep := os.NewFile(uintptr(epfd), "relay-epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("epoll instance: %w", err)
	}
	return &relayLoop{ep: ep, raw: raw, epfd: epfd, idle: idle, buf: make([]byte, relayBufSize),
		ends: map[int32]*relayEnd{}, closed: make(chan struct{})}, nil
}

// relay hands a tunnel between client and up to a loop and waits until
// it ends (both sides closed, an error, idle for the idle timeout, or
// abort closed). It returns the bytes sent to the client. ok is false,
// with client and up untouched, when the tunnel could not be handed over.
func (r *relayer) relay(client, up *net.TCPConn, abort <-chan struct{}) (down int64, ok bool) {
	if r.start() != nil {
		return 0, false
	}
	cfd, err := dupFD(client)
	if err != nil {
		return 0, false
	}
	ufd, err := dupFD(up)
	if err != nil {
		unix.Close(cfd)
		return 0, false
	}
	t := &relayTunnel{last: time.Now().UnixNano(), done: make(chan int64, 1)}
	t.client = relayEnd{fd: cfd, t: t}
	t.up = relayEnd{fd: ufd, t: t}
	t.client.peer, t.up.peer = &t.up, &t.client
	l := r.loops[int(r.next.Add(1))%len(r.loops)]
	if err := l.add(t); err != nil {
		unix.Close(cfd)
		unix.Close(ufd)
		return 0, false
	}
	// Off Go's poller: the duplicates keep the connections open.
	client.Close()
	up.Close()
	select {
	case down = <-t.done:
	case <-abort:
		t.abort()
		down = <-t.done
	}
	return down, true
}

// dupFD duplicates c's socket (close-on-exec).
func dupFD(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}

// add registers a tunnel's sockets, reading from both.
func (l *relayLoop) add(t *relayTunnel) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stop {
		return errors.New("relay stopped")
	}
	for i, e := range []*relayEnd{&t.client, &t.up} {
		e.events = unix.EPOLLIN | unix.EPOLLRDHUP
		ev := unix.EpollEvent{Events: e.events, Fd: int32(e.fd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, e.fd, &ev); err != nil {
			if i == 1 {
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, t.client.fd, nil)
			}
			return fmt.Errorf("epoll_ctl add: %w", err)
		}
	}
	l.ends[int32(t.client.fd)] = &t.client
	l.ends[int32(t.up.fd)] = &t.up
	return nil
}

// abort shuts both sockets down, which the loop sees as the end of both
// directions.
func (t *relayTunnel) abort() {
	t.mu.Lock()
	if !t.closed {
		unix.Shutdown(t.client.fd, unix.SHUT_RDWR)
		unix.Shutdown(t.up.fd, unix.SHUT_RDWR)
	}
	t.mu.Unlock()
}

// run is the loop: take the ready sockets, move their bytes, park when
// none is ready, and every so often close the tunnels idle too long.
func (l *relayLoop) run() {
	defer close(l.closed)
	events := make([]unix.EpollEvent, relayEvents)
	ready := make([]*relayEnd, 0, relayEvents)
	sweepEvery := max(l.idle/4, 10*time.Millisecond)
	nextSweep := time.Now().Add(sweepEvery)
	for {
		l.ep.SetReadDeadline(nextSweep)
		l.mu.Lock()
		stop := l.stop // checked after the deadline is set: stop sets it to wake the loop
		l.mu.Unlock()
		if stop {
			l.closeAll()
			l.ep.Close()
			return
		}
		n := 0
		err := l.raw.Read(func(fd uintptr) bool {
			var err error
			n, err = unix.EpollWait(int(fd), events, 0)
			return err != nil || n > 0
		})
		now := time.Now()
		ready = ready[:0]
		l.mu.Lock()
		for i := range n {
			ready = append(ready, l.ends[events[i].Fd])
		}
		l.mu.Unlock()
		for i, e := range ready {
			if e != nil && !e.t.closed {
				l.handle(e, events[i].Events, now.UnixNano())
			}
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			time.Sleep(time.Millisecond) // cannot happen; do not spin
		}
		if !now.Before(nextSweep) {
			l.sweep(now)
			nextSweep = now.Add(sweepEvery)
		}
	}
}

// handle moves bytes for one ready socket. A socket in error, or hung
// up after its end of stream was read, can take no more bytes: the
// tunnel ends (epoll reports both whatever was asked for, so leaving
// them would wake the loop again at once).
func (l *relayLoop) handle(e *relayEnd, ev uint32, now int64) {
	t := e.t
	if ev&unix.EPOLLERR != 0 || ev&unix.EPOLLHUP != 0 && e.eof && e.pending == nil {
		l.finish(t)
		return
	}
	if e.pending != nil && ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		if !l.flush(e) {
			return
		}
	}
	if !e.eof && e.peer.pending == nil && ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		if !l.pump(e, now) {
			return
		}
	}
	if t.client.eof && t.up.eof && t.client.pending == nil && t.up.pending == nil {
		l.finish(t)
		return
	}
	l.update(&t.client)
	l.update(&t.up)
}

// pump reads once from src and writes what came to its peer, keeping
// what the peer does not take. It reports false if the tunnel ended.
func (l *relayLoop) pump(src *relayEnd, now int64) bool {
	dst := src.peer
	n, err := unix.Read(src.fd, l.buf)
	switch {
	case n > 0:
		src.t.last = now
		w, err := writeSome(dst.fd, l.buf[:n])
		if dst == &src.t.client {
			src.t.down += int64(w)
		}
		if err != nil {
			l.finish(src.t)
			return false
		}
		if w < n {
			dst.pending = append(make([]byte, 0, n-w), l.buf[w:n]...)
		}
	case n == 0 && err == nil:
		// End of stream: pass it on once the peer has everything.
		src.eof = true
		if dst.pending == nil && !dst.shut {
			unix.Shutdown(dst.fd, unix.SHUT_WR)
			dst.shut = true
		}
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
	default:
		l.finish(src.t)
		return false
	}
	return true
}

// flush writes what waits for dst. It reports false if the tunnel ended.
func (l *relayLoop) flush(dst *relayEnd) bool {
	w, err := writeSome(dst.fd, dst.pending)
	if dst == &dst.t.client {
		dst.t.down += int64(w)
	}
	if err != nil {
		l.finish(dst.t)
		return false
	}
	if w < len(dst.pending) {
		dst.pending = dst.pending[w:]
		return true
	}
	dst.pending = nil
	if dst.peer.eof && !dst.shut {
		unix.Shutdown(dst.fd, unix.SHUT_WR)
		dst.shut = true
	}
	return true
}

// writeSome writes b to fd until it is written or the socket takes no
// more (EAGAIN, not an error); it returns what was written.
func writeSome(fd int, b []byte) (int, error) {
	done := 0
	for done < len(b) {
		w, err := unix.Write(fd, b[done:])
		if w > 0 {
			done += w
		}
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return done, nil
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return done, err
		}
	}
	return done, nil
}

// update registers the events e now waits for: readable unless it has
// ended or its peer is still writing out what e sent; writable while
// bytes wait for it.
func (l *relayLoop) update(e *relayEnd) {
	var want uint32
	if !e.eof && e.peer.pending == nil {
		want |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if e.pending != nil {
		want |= unix.EPOLLOUT
	}
	if want == e.events {
		return
	}
	e.events = want
	ev := unix.EpollEvent{Events: want, Fd: int32(e.fd)}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, e.fd, &ev)
}

// finish closes a tunnel's sockets and reports its bytes.
func (l *relayLoop) finish(t *relayTunnel) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	l.mu.Lock()
	delete(l.ends, int32(t.client.fd))
	delete(l.ends, int32(t.up.fd))
	l.mu.Unlock()
	unix.Close(t.client.fd) // closing takes them out of epoll
	unix.Close(t.up.fd)
	t.mu.Unlock()
	t.client.pending, t.up.pending = nil, nil
	t.done <- t.down
}

// sweep closes the tunnels that have moved nothing for the idle timeout.
func (l *relayLoop) sweep(now time.Time) {
	cutoff := now.Add(-l.idle).UnixNano()
	var idle []*relayTunnel
	l.mu.Lock()
	for _, e := range l.ends {
		if e == &e.t.client && e.t.last < cutoff {
			idle = append(idle, e.t)
		}
	}
	l.mu.Unlock()
	for _, t := range idle {
		l.finish(t)
	}
}

// closeAll closes every tunnel (the loop is stopping).
func (l *relayLoop) closeAll() {
	var all []*relayTunnel
	l.mu.Lock()
	for _, e := range l.ends {
		if e == &e.t.client {
			all = append(all, e.t)
		}
	}
	l.mu.Unlock()
	for _, t := range all {
		l.finish(t)
	}
}
