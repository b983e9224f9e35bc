package web

import (
	"net/netip"
	"sync"
	"time"
)

// maxLimiterClients bounds the addresses the limiter remembers. When it
// is full of addresses still inside their window, new addresses are
// refused (fail closed) until some expire.
const maxLimiterClients = 100_000

// limiter allows each client address at most limit events per sliding
// window. Addresses are keyed exactly, so clients behind one NAT address
// share a limit.
type limiter struct {
	mu        sync.Mutex
	limit     int
	window    time.Duration
	maxKeys   int
	hits      map[netip.Addr][]time.Time
	lastSweep time.Time
}

func newLimiter(limit int, window time.Duration, maxKeys int) *limiter {
	return &limiter{limit: limit, window: window, maxKeys: maxKeys, hits: map[netip.Addr][]time.Time{}}
}

// allow records an event for addr at now and reports whether it is
// within the limit. Refused events are not recorded.
func (l *limiter) allow(addr netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > l.window || len(l.hits) >= l.maxKeys {
		l.sweep(now)
	}
	ts := l.hits[addr]
	keep := ts[:0]
	for _, t := range ts {
		if now.Sub(t) < l.window {
			keep = append(keep, t)
		}
	}
	if len(keep) >= l.limit {
		l.hits[addr] = keep
		return false
	}
	if len(keep) == 0 && len(l.hits) >= l.maxKeys {
		if _, known := l.hits[addr]; !known {
			return false
		}
	}
	l.hits[addr] = append(keep, now)
	return true
}

// retryAfter returns how long until addr may send again.
func (l *limiter) retryAfter(addr netip.Addr, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.hits[addr]
	if len(ts) < l.limit {
		return l.window
	}
	return max(time.Second, l.window-now.Sub(ts[len(ts)-l.limit]))
}

// sweep forgets addresses with no event inside the window.
func (l *limiter) sweep(now time.Time) {
	for a, ts := range l.hits {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= l.window {
			delete(l.hits, a)
		}
	}
	l.lastSweep = now
}
