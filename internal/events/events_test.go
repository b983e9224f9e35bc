package events

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memSink keeps what it is given; it can be told to fail.
type memSink struct {
	mu      sync.Mutex
	got     []Event
	batches int
	fail    int // fail this many writes first
	block   chan struct{}
}

func (s *memSink) Write(ctx context.Context, batch []Event) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("store unavailable")
	}
	s.got = append(s.got, batch...)
	s.batches++
	return nil
}

func (s *memSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBatchesAndFlush(t *testing.T) {
	sink := &memSink{}
	p := New(sink, Options{Batch: 10, Flush: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	for i := 0; i < 25; i++ {
		if !p.Emit(Event{Host: "example.org", PolicyVersion: int64(i)}) {
			t.Fatal("emit refused")
		}
	}
	waitFor(t, func() bool { return sink.count() == 25 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, e := range sink.got {
		if e.PolicyVersion != int64(i) {
			t.Fatalf("event %d out of order: %d", i, e.PolicyVersion)
		}
	}
	if w, d, _ := p.Stats(); w != 25 || d != 0 {
		t.Errorf("written=%d dropped=%d", w, d)
	}
}

func TestRetriesWithoutLoss(t *testing.T) {
	sink := &memSink{fail: 3}
	p := New(sink, Options{Batch: 5, Flush: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	for i := 0; i < 12; i++ {
		p.Emit(Event{Host: "x.example"})
	}
	waitFor(t, func() bool { return sink.count() == 12 })
	if _, _, failures := p.Stats(); failures != 3 {
		t.Errorf("failures = %d", failures)
	}
}

func TestDrainOnStop(t *testing.T) {
	sink := &memSink{}
	p := New(sink, Options{Batch: 1000, Flush: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	for i := 0; i < 2500; i++ {
		p.Emit(Event{Host: "x.example"})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sink.count() != 2500 {
		t.Fatalf("written at stop: %d of 2500", sink.count())
	}
}

func TestEmitNeverBlocks(t *testing.T) {
	sink := &memSink{block: make(chan struct{})}
	p := New(sink, Options{Queue: 8, Batch: 4, Flush: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	start := time.Now()
	accepted := 0
	for i := 0; i < 100; i++ {
		if p.Emit(Event{}) {
			accepted++
		}
	}
	if time.Since(start) > time.Second {
		t.Fatal("Emit waited for the sink")
	}
	if _, dropped, _ := p.Stats(); dropped == 0 || accepted+int(dropped) != 100 {
		t.Errorf("accepted=%d dropped=%d", accepted, dropped)
	}
	close(sink.block)
}

// TestChunkBoundaries holds order and batch sizes when batches and the
// queue's chunks do not line up, with the writer slower than the emitters.
func TestChunkBoundaries(t *testing.T) {
	sink := &memSink{block: make(chan struct{})}
	const queue = 5000
	p := New(sink, Options{Batch: 700, Queue: queue, Flush: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	// The queue takes Queue events, beyond the batch the writer may
	// already hold.
	total := 0
	for p.Emit(Event{PolicyVersion: int64(total)}) {
		total++
		if total > queue+700 {
			t.Fatal("the queue's bound is not kept")
		}
	}
	if total < queue {
		t.Fatalf("refused after %d events, want at least %d", total, queue)
	}
	close(sink.block)
	// Whole batches go without waiting for the (hour-long) flush tick.
	waitFor(t, func() bool { return sink.count() == total/700*700 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sink.count() != total {
		t.Fatalf("written %d of %d", sink.count(), total)
	}
	for i, e := range sink.got {
		if e.PolicyVersion != int64(i) {
			t.Fatalf("event %d out of order: %d", i, e.PolicyVersion)
		}
	}
	if _, d, _ := p.Stats(); d != 1 { // the refused one
		t.Errorf("dropped %d, want 1", d)
	}
	if q := p.Queued(); q != 0 {
		t.Errorf("queued %d after drain", q)
	}
}

// BenchmarkEmit is the cost the filters pay per event, from several
// goroutines at once, with a writer draining the queue.
func BenchmarkEmit(b *testing.B) {
	p := New(discard{}, Options{Queue: 1 << 20})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	e := Event{Source: "dns", Host: "www.example.org", Action: "allow"}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Emit(e)
		}
	})
	cancel()
	<-done
}

// discard is a sink that keeps nothing.
type discard struct{}

func (discard) Write(context.Context, []Event) error { return nil }

// trimSink is a memSink that counts Trim calls.
type trimSink struct {
	memSink
	trims atomic.Int32
}

func (s *trimSink) Trim() { s.trims.Add(1) }

// TestTrimWhenLight: after a burst, once the load has been light for a
// while, the buffers are released, once; a steady trickle does not
// release them again, but its end does, and so does a new burst's.
func TestTrimWhenLight(t *testing.T) {
	sink := &trimSink{}
	p := New(sink, Options{Batch: 400, Flush: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	burst := func(want int) {
		t.Helper()
		for i := 0; i < 2000; i++ {
			p.Emit(Event{Host: "burst.example"})
		}
		waitFor(t, func() bool { return sink.count() == want })
	}
	burst(2000)
	waitFor(t, func() bool { return sink.trims.Load() == 1 })
	p.mu.Lock()
	spare := len(p.spare)
	p.mu.Unlock()
	if spare != 0 {
		t.Errorf("%d spare chunks kept after the trim", spare)
	}
	for i := 0; i < 20; i++ { // a trickle: an event every half interval
		p.Emit(Event{Host: "trickle.example"})
		time.Sleep(5 * time.Millisecond)
	}
	if n := sink.trims.Load(); n != 1 {
		t.Fatalf("%d trims during a trickle after a burst, want 1", n)
	}
	waitFor(t, func() bool { return sink.count() == 2020 })
	waitFor(t, func() bool { return sink.trims.Load() == 2 }) // the trickle has stopped
	time.Sleep(20 * trimAfter * time.Millisecond)
	if n := sink.trims.Load(); n != 2 {
		t.Fatalf("%d trims while nothing was written, want 2", n)
	}
	burst(4020)
	waitFor(t, func() bool { return sink.trims.Load() == 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
