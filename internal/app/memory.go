package app

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Handing memory back after a burst.
//
// Under load the collector lets the heap grow to GOGC's goal above the
// live heap, and the runtime keeps about a tenth more than that as free
// pages, returning them only slowly. A school's filter is busy in bursts
// (the start of a lesson, a class opening the same site) and quiet for
// long stretches between them and overnight. Once the process has
// allocated a good deal and then almost nothing for a few seconds, the
// burst is over: a release collects twice (so that the buffers idle in
// sync.Pools go too) and hands every free page back, so that resident
// memory falls back to what is live. It costs two collections, once per
// burst, while the process has nothing else to do.
const (
	// releaseTick is how often the allocation counter is read.
	releaseTick = time.Second
	// quietRate is the allocation rate, in bytes a second, below which a
	// second counts as quiet: a trickle of queries allocates less.
	quietRate = 64 << 10
	// quietFor is how many quiet seconds in a row end a burst.
	quietFor = 5
	// releaseAfter is how much must have been allocated since the last
	// release for another to be worth its collections.
	releaseAfter = 4 << 20
)

// memoryRelease decides when to hand memory back, from readings of the
// process's cumulative allocation counter one tick apart.
type memoryRelease struct {
	last, atRelease uint64
	quiet           int
}

// observe takes the counter's reading for this tick and reports whether
// to release now.
func (m *memoryRelease) observe(allocs uint64) bool {
	rate := allocs - m.last
	m.last = allocs
	if rate >= quietRate {
		m.quiet = 0
		return false
	}
	if m.quiet++; m.quiet < quietFor || allocs-m.atRelease < releaseAfter {
		return false
	}
	m.atRelease, m.quiet = allocs, 0
	return true
}

// runMemoryRelease hands memory back after each burst until ctx ends.
func runMemoryRelease(ctx context.Context, log *slog.Logger) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	read := func() (allocs, released uint64) {
		metrics.Read(sample)
		return sample[0].Value.Uint64(), sample[1].Value.Uint64()
	}
	allocs, _ := read()
	m := memoryRelease{last: allocs, atRelease: allocs}
	tick := time.NewTicker(releaseTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		allocs, before := read()
		if !m.observe(allocs) {
			continue
		}
		start := time.Now()
		runtime.GC()
		debug.FreeOSMemory()
		_, after := read()
		log.Debug("memory_released", "bytes", int64(after)-int64(before), "took_ms", time.Since(start).Milliseconds())
	}
}
