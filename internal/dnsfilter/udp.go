package dnsfilter

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"

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
	bufs sync.Pool
}

type udpPacket struct {
	buf  []byte
	n    int
	from netip.AddrPort
}

func newUDPServer(pc *net.UDPConn, s *Server) *udpServer {
	u := &udpServer{pc: pc, s: s, work: make(chan *udpPacket, 256)}
	u.bufs.New = func() any { return &udpPacket{buf: make([]byte, udpBufSize)} }
	return u
}

// serve runs until ctx is cancelled or the socket fails.
func (u *udpServer) serve(ctx context.Context) error {
	procs := runtime.GOMAXPROCS(0)
	readers, workers := max(2, procs), max(32, 16*procs)
	var wg, rwg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
			errc <- u.read()
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	u.pc.Close()
	rwg.Wait()
	close(u.work)
	wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// batchReader is what golang.org/x/net's ipv4 and ipv6 PacketConns
// offer: several datagrams per system call (recvmmsg on Linux).
type batchReader interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
}

// readBatchSize is how many datagrams one system call may return.
const readBatchSize = 32

// read receives packets and hands them to workers, many per system call
// where the platform allows.
func (u *udpServer) read() error {
	var br batchReader
	if la, ok := u.pc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		br = ipv4.NewPacketConn(u.pc)
	} else {
		br = ipv6.NewPacketConn(u.pc)
	}
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
	for {
		n, err := br.ReadBatch(msgs, 0)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Not supported here (or a one-off failure): read one at a time.
			return u.readOne()
		}
		for i := 0; i < n; i++ {
			p := pkts[i]
			ua, ok := msgs[i].Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			p.n, p.from = msgs[i].N, ua.AddrPort()
			next := u.bufs.Get().(*udpPacket)
			pkts[i], msgs[i].Buffers[0] = next, next.buf
			select {
			case u.work <- p:
			default:
				go u.handle(p)
			}
		}
	}
}

// readOne receives one packet per system call.
func (u *udpServer) readOne() error {
	for {
		p := u.bufs.Get().(*udpPacket)
		n, from, err := u.pc.ReadFromUDPAddrPort(p.buf)
		if err != nil {
			u.bufs.Put(p)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		p.n, p.from = n, from
		select {
		case u.work <- p:
		default:
			go u.handle(p)
		}
	}
}

// handle answers one packet. Unparseable packets get no answer.
func (u *udpServer) handle(p *udpPacket) {
	defer u.bufs.Put(p)
	r := new(dns.Msg)
	if err := r.Unpack(p.buf[:p.n]); err != nil {
		return
	}
	resp := u.s.answer(p.from.Addr().Unmap(), "udp", r)
	if resp == nil {
		return
	}
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = min(int(opt.UDPSize()), serverUDPSize)
	}
	// Too big for the client's buffer: cut, set TC, and the client asks
	// again over TCP.
	resp.Truncate(size)
	out, err := resp.PackBuffer(p.buf)
	if err != nil {
		return
	}
	_, _ = u.pc.WriteToUDPAddrPort(out, p.from)
}
