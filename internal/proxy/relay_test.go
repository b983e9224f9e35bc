package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/warden-schools/warden/internal/events"
)

// hashOrigin accepts connections and, on each, reads until the client's
// end of stream, then sends back the SHA-256 of what it read followed by
// reply bytes of the pattern, and closes. It is a TCP server, not HTTP,
// so that the tunnel's half-close and bulk paths are what is tested.
func hashOrigin(t *testing.T, reply int) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(tcpOrigin(t, func(c net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return
		}
		c.Write(h.Sum(nil))
		io.Copy(c, io.LimitReader(pattern(7), int64(reply)))
	}))
	return port
}

// pattern is an endless reader of pseudo-random bytes from seed.
func pattern(seed uint64) io.Reader {
	return &randReader{r: rand.New(rand.NewPCG(seed, seed))}
}

type randReader struct{ r *rand.Rand }

func (p *randReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.r.Uint32())
	}
	return len(b), nil
}

// openTunnel sends CONNECT through the proxy and reads the 200 head.
func openTunnel(t *testing.T, proxyAddr, target string) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 200 Connection established\r\n" {
		t.Fatalf("CONNECT answered %q (%v)", line, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("CONNECT head goes on: %q", blank)
	}
	return c.(*net.TCPConn), br
}

// TestTunnelBulkAndHalfClose sends 3 MiB one way and 8 MiB back through
// a tunnel, reading slowly at first so that the relay must hold bytes
// the client is not taking and stop reading from the origin meanwhile.
// The client's end of stream must reach the origin (which only answers
// after it) while the other direction stays open; every byte must arrive
// intact and in order; and the event must count the bytes sent to the
// client.
func TestTunnelBulkAndHalfClose(t *testing.T) {
	const sent, reply = 3 << 20, 8 << 20
	port := hashOrigin(t, reply)
	e := newEnv(t, func(o *Options) { o.ConnectPorts = []int{atoi(port)} })
	c, br := openTunnel(t, e.addr, "allowed.test:"+port)

	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(c, h), io.LimitReader(pattern(3), sent)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// Slow at first: the origin's 8 MiB overflow the socket buffers.
	time.Sleep(300 * time.Millisecond)
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, sum); err != nil {
		t.Fatalf("origin's hash: %v", err)
	}
	if !bytes.Equal(sum, h.Sum(nil)) {
		t.Fatal("the origin received other bytes than were sent")
	}
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	want, _ := io.ReadAll(io.LimitReader(pattern(7), reply))
	if !bytes.Equal(got, want) {
		t.Fatalf("reply: %d bytes, want %d, equal %v", len(got), len(want), bytes.Equal(got, want))
	}
	ev := e.events.waitFor(t, "CONNECT event", func(ev events.Event) bool { return ev.Method == "CONNECT" })
	if ev.Bytes != sha256.Size+reply {
		t.Errorf("event counts %d bytes to the client, want %d", ev.Bytes, sha256.Size+reply)
	}
}

// TestTunnelsAtOnce runs many tunnels at the same time, each exchanging
// several request and answer rounds, as browsers do.
func TestTunnelsAtOnce(t *testing.T) {
	_, port, _ := net.SplitHostPort(tcpOrigin(t, func(c net.Conn) {
		r := bufio.NewReader(c) // answers each line with the line reversed
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			line = line[:len(line)-1]
			for i, j := 0, len(line)-1; i < j; i, j = i+1, j-1 {
				line[i], line[j] = line[j], line[i]
			}
			c.Write(append(line, '\n'))
		}
	}))
	e := newEnv(t, func(o *Options) { o.ConnectPorts = []int{atoi(port)} })
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, br := openTunnel(t, e.addr, "allowed.test:"+port)
			for round := range 25 {
				msg := fmt.Sprintf("tunnel-%d-round-%d-%s", i, round, bytes.Repeat([]byte("x"), round*97))
				if _, err := io.WriteString(c, msg+"\n"); err != nil {
					errs <- err
					return
				}
				got, err := br.ReadString('\n')
				if err != nil {
					errs <- err
					return
				}
				rev := []byte(msg)
				for a, b := 0, len(rev)-1; a < b; a, b = a+1, b-1 {
					rev[a], rev[b] = rev[b], rev[a]
				}
				if got != string(rev)+"\n" {
					errs <- fmt.Errorf("tunnel %d round %d: got %q", i, round, got)
					return
				}
			}
			c.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestShutdownEndsTunnels: a tunnel both sides keep open ends when the
// shutdown grace is over, and Serve returns.
func TestShutdownEndsTunnels(t *testing.T) {
	_, port, _ := net.SplitHostPort(tcpOrigin(t, func(c net.Conn) { io.Copy(c, c) })) // echoes, never ends first
	addr, stop := shutdownProxy(t, port, atoi(port))
	c, br := openTunnel(t, addr, "allowed.test:"+port)
	io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo through the tunnel: %q %v", line, err)
	}
	stop()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("tunnel still open after shutdown")
	}
}

// TestTunnelClientReset: a client that half-closes and then resets its
// connection, while the origin stays silent, ends the tunnel at once
// (rather than leaving a socket in error that the relay would wake for
// again and again until the idle timeout).
func TestTunnelClientReset(t *testing.T) {
	_, port, _ := net.SplitHostPort(tcpOrigin(t, func(c net.Conn) {
		io.Copy(io.Discard, c)
		time.Sleep(time.Minute) // says nothing, keeps its side open
	}))
	e := newEnv(t, func(o *Options) { o.ConnectPorts = []int{atoi(port)} })
	c, _ := openTunnel(t, e.addr, "allowed.test:"+port)
	io.WriteString(c, "hello")
	c.CloseWrite()
	time.Sleep(50 * time.Millisecond) // the proxy reads the end of stream
	c.SetLinger(0)
	c.Close() // RST
	start := time.Now()
	e.events.waitFor(t, "CONNECT event", func(ev events.Event) bool { return ev.Method == "CONNECT" })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("tunnel ended %v after the reset", d)
	}
}
