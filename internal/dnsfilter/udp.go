package dnsfilter

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBufSize is the largest question read; answers are packed into the
// same buffer and are never larger than serverUDPSize.
const udpBufSize = 4096

// udpServer answers DNS over one UDP socket. A few long-lived readers hand
// packets to a pool of long-lived workers (whose stacks, once grown, stay
// grown: starting a goroutine per packet spent a sixth of the CPU growing
// stacks). A packet that finds every worker busy, waiting on slow
// upstreams, gets a goroutine of its own, so the socket never stalls.
type udpServer struct {
	pc   *net.UDPConn
	s    *Server
	work chan *udpPacket
	// out holds answers ready to send; one writer sends what has queued
	// up in one system call (sendmmsg on Linux).
	out  chan *udpPacket
	bufs sync.Pool
}

type udpPacket struct {
	buf  []byte
	n    int
	from netip.AddrPort
	// answer is the packed answer, in buf.
	answer []byte
}

// batchConn is what golang.org/x/net's ipv4 and ipv6 PacketConns offer:
// several datagrams per system call (recvmmsg and sendmmsg on Linux).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func (u *udpServer) batchConn() batchConn {
	if la, ok := u.pc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		return ipv4.NewPacketConn(u.pc)
	}
	return ipv6.NewPacketConn(u.pc)
}

func newUDPServer(pc *net.UDPConn, s *Server) *udpServer {
	u := &udpServer{pc: pc, s: s, work: make(chan *udpPacket, 256), out: make(chan *udpPacket, 1024)}
	u.bufs.New = func() any { return &udpPacket{buf: make([]byte, udpBufSize)} }
	return u
}

// serve runs until ctx is cancelled or the socket fails.
func (u *udpServer) serve(ctx context.Context) error {
	procs := runtime.GOMAXPROCS(0)
	readers, workers := max(2, procs), max(32, 16*procs)
	// handlers counts workers and overflow goroutines, so that nothing
	// sends an answer after the writer has gone.
	var handlers, rwg sync.WaitGroup
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		u.write()
	}()
	for i := 0; i < workers; i++ {
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			for p := range u.work {
				u.handle(p)
			}
		}()
	}
	errc := make(chan error, readers)
	for i := 0; i < readers; i++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			errc <- u.read(&handlers)
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	u.pc.SetReadDeadline(time.Now())
	rwg.Wait()
	close(u.work)
	handlers.Wait()
	close(u.out)
	<-writerDone
	u.pc.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// readBatchSize is how many datagrams one system call may return.
const readBatchSize = 32

// read receives packets, many per system call where the platform
// allows. What the fast path can answer (fast.go) it answers at once and
// sends back in one system call per batch; the rest goes to the workers.
// It returns when the socket's read deadline is set to stop it, or the
// socket fails.
func (u *udpServer) read(handlers *sync.WaitGroup) error {
	bc := u.batchConn()
	msgs := make([]ipv4.Message, readBatchSize)
	pkts := make([]*udpPacket, readBatchSize)
	for i := range msgs {
		pkts[i] = u.bufs.Get().(*udpPacket)
		msgs[i].Buffers = [][]byte{pkts[i].buf}
	}
	defer func() {
		for _, p := range pkts {
			u.bufs.Put(p)
		}
	}()
	st := &fastState{}
	replies := make([]ipv4.Message, readBatchSize)
	replyBufs := make([][]byte, readBatchSize)
	for i := range replies {
		replyBufs[i] = make([]byte, 0, udpBufSize)
		replies[i].Buffers = make([][]byte, 1)
	}
	for {
		n, err := bc.ReadBatch(msgs, 0)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) {
				return nil // stopped
			}
			// Not supported here (or a one-off failure): read one at a time.
			return u.readOne(handlers)
		}
		nr := 0
		for i := 0; i < n; i++ {
			p := pkts[i]
			ua, ok := msgs[i].Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			from := ua.AddrPort()
			if out, ok := u.s.fastReply(p.buf[:msgs[i].N], from.Addr().Unmap(), st, replyBufs[nr][:0]); ok {
				replyBufs[nr] = out
				replies[nr].Buffers[0], replies[nr].Addr = out, ua
				nr++
				continue
			}
			p.n, p.from = msgs[i].N, from
			next := u.bufs.Get().(*udpPacket)
			pkts[i], msgs[i].Buffers[0] = next, next.buf
			u.dispatch(p, handlers)
		}
		if nr > 0 {
			u.send(bc, replies[:nr])
		}
	}
}

// send sends answers, as many per system call as the platform allows; a
// client that cannot be reached does not hold up the others.
func (u *udpServer) send(bc batchConn, ms []ipv4.Message) {
	for sent := 0; sent < len(ms); {
		n, err := bc.WriteBatch(ms[sent:], 0)
		if err != nil || n == 0 {
			for _, m := range ms[sent:] {
				if ua, ok := m.Addr.(*net.UDPAddr); ok {
					_, _ = u.pc.WriteToUDPAddrPort(m.Buffers[0], ua.AddrPort())
				}
			}
			return
		}
		sent += n
	}
}

// dispatch hands a packet to an idle worker, or to a goroutine of its own
// when every worker is busy.
func (u *udpServer) dispatch(p *udpPacket, handlers *sync.WaitGroup) {
	select {
	case u.work <- p:
	default:
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			u.handle(p)
		}()
	}
}

// readOne receives one packet per system call.
func (u *udpServer) readOne(handlers *sync.WaitGroup) error {
	for {
		p := u.bufs.Get().(*udpPacket)
		n, from, err := u.pc.ReadFromUDPAddrPort(p.buf)
		if err != nil {
			u.bufs.Put(p)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) {
				return nil // stopped
			}
			return err
		}
		p.n, p.from = n, from
		u.dispatch(p, handlers)
	}
}

// handle answers one packet through the full chain and queues the
// answer for the writer. Unparseable packets get no answer.
func (u *udpServer) handle(p *udpPacket) {
	out, ok := u.s.slowReply(p.buf[:p.n], p.from.Addr().Unmap(), p.buf[:0])
	if !ok {
		u.bufs.Put(p)
		return
	}
	p.answer = out
	u.out <- p
}

// slowReply answers the UDP query p through the full chain, packing the
// answer into out's storage (which may be p's own: the query is read
// before the answer is written), truncated to what the client takes. It
// reports false when the query gets no answer.
func (s *Server) slowReply(p []byte, client netip.Addr, out []byte) ([]byte, bool) {
	r := new(dns.Msg)
	if err := r.Unpack(p); err != nil {
		return nil, false
	}
	resp := s.answer(client, "udp", r)
	if resp == nil {
		return nil, false
	}
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = min(int(opt.UDPSize()), serverUDPSize)
	}
	// Too big for the client's buffer: cut, set TC, and the client asks
	// again over TCP.
	resp.Truncate(size)
	packed, err := resp.PackBuffer(out[:cap(out)])
	if err != nil {
		return nil, false
	}
	return packed, true
}

// writeBatchSize is the most answers one system call sends.
const writeBatchSize = 32

// write sends queued answers, as many per system call as have queued up,
// until the queue is closed.
func (u *udpServer) write() {
	bc := u.batchConn()
	msgs := make([]ipv4.Message, writeBatchSize)
	batch := make([]*udpPacket, 0, writeBatchSize)
	for p := range u.out {
		batch = append(batch[:0], p)
	drain:
		for len(batch) < writeBatchSize {
			select {
			case q, ok := <-u.out:
				if !ok {
					break drain
				}
				batch = append(batch, q)
			default:
				break drain
			}
		}
		for i, q := range batch {
			msgs[i].Buffers = [][]byte{q.answer}
			msgs[i].Addr = net.UDPAddrFromAddrPort(q.from)
		}
		u.send(bc, msgs[:len(batch)])
		for _, q := range batch {
			q.answer = nil
			u.bufs.Put(q)
		}
	}
}
