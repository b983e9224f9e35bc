//go:build !linux

package proxy

import (
	"net"
	"time"
)

// relayer relays tunnels with event loops on Linux (relay_linux.go);
// elsewhere Proxy.relay copies them with two goroutines each.
type relayer struct{ idle time.Duration }

// relay reports false: the caller copies the tunnel itself.
func (r *relayer) relay(client, up *net.TCPConn, abort <-chan struct{}) (int64, bool) {
	return 0, false
}

// stop does nothing.
func (r *relayer) stop() {}
