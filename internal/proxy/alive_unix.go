//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// alive reports whether a pooled connection still looks open: the web
// server has neither closed it nor sent anything unasked. It peeks
// without blocking, so it costs one system call.
func alive(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && ok
}
