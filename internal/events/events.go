// Package events carries what the filters saw — every DNS query and web
// request, with who asked and what was decided — from the hot path to the
// stores that keep it. Emit never blocks the filter: events queue in
// memory and a single writer hands them to the sink in batches, retrying
// a failed batch rather than dropping it. (A disk spool for long store
// outages comes with the full pipeline.)
package events

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one thing a filter saw and decided.
type Event struct {
	Time time.Time
	// Source is "dns", "doh", "dot" or "proxy".
	Source   string
	ClientIP netip.Addr
	DeviceID int64
	PersonID int64
	Group    string
	// Host is the name asked for; URL the full URL when known.
	Host string
	URL  string
	// QType is the DNS question type ("A", "HTTPS"...).
	QType string
	// Action is "allow" or "block"; Alert asks for the safeguarding team.
	Action        string
	Alert         bool
	Category      string
	List          string
	Rule          string
	PolicyVersion int64
	// Latency is how long the answer took.
	Latency time.Duration
	// Upstream answered ("cache" for a cached answer, "" if Warden did).
	Upstream string
	// Status is the DNS response code or HTTP status.
	Status string
	// Method is the HTTP method of a proxied request.
	Method string
	// Bytes is the size of a proxied response body sent to the client.
	Bytes int64
	// SearchTerm is what was searched for, when the proxy saw a search
	// (Google, Bing, YouTube, DuckDuckGo, Wikipedia) through inspection.
	SearchTerm string
}

// Sink stores batches of events. Write must store all of a batch or
// none of it.
type Sink interface {
	Write(ctx context.Context, batch []Event) error
}

// Trimmer is a Sink that keeps buffers from one batch to the next and can
// let them go. The pipeline calls Trim, between writes, while the load is
// light, so that the memory a burst needed is given back after it.
type Trimmer interface {
	Trim()
}

// Options tune a Pipeline.
type Options struct {
	// Queue is how many events may wait in memory (0: 16,384: at 100,000
	// queries a second, over 150 ms of a stalled store).
	Queue int
	// Batch is the most events written at once (0: 4,096).
	Batch int
	// Flush is the longest an event waits before its batch is written
	// (0: 250 ms).
	Flush  time.Duration
	Logger *slog.Logger
}

// chunkEvents is how many events one chunk of the queue holds.
const chunkEvents = 512

// Pipeline queues events and writes them to a sink in batches.
//
// The queue is a list of chunks taken as events arrive and recycled once
// written, so memory follows what is actually waiting rather than the
// queue's bound (a channel's ring would become resident whole as it
// turns).
type Pipeline struct {
	sink Sink
	opts Options
	log  *slog.Logger

	// mu guards the queue: full chunks oldest first, the chunk being
	// filled, spare chunks for reuse, and the count of waiting events.
	mu     sync.Mutex
	chunks [][]Event
	cur    []Event
	spare  [][]Event
	queued int
	// wake tells Run that a whole batch is waiting.
	wake chan struct{}

	written, dropped, failures atomic.Uint64
}

// New returns a Pipeline; call Run to start writing.
func New(sink Sink, opts Options) *Pipeline {
	if opts.Queue <= 0 {
		opts.Queue = 1 << 14
	}
	if opts.Batch <= 0 {
		opts.Batch = 4096
	}
	if opts.Flush <= 0 {
		opts.Flush = 250 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{sink: sink, opts: opts, log: opts.Logger.With("component", "events"), wake: make(chan struct{}, 1)}
}

// Emit queues an event without waiting. It reports false, and counts the
// event as dropped, only when the queue is full because the sink has
// fallen far behind.
func (p *Pipeline) Emit(e Event) bool {
	p.mu.Lock()
	if p.queued >= p.opts.Queue {
		p.mu.Unlock()
		if p.dropped.Add(1) == 1 {
			p.log.Error("event_queue_full", "queue", p.opts.Queue)
		}
		return false
	}
	if p.cur == nil {
		if n := len(p.spare); n > 0 {
			p.cur, p.spare = p.spare[n-1], p.spare[:n-1]
		} else {
			p.cur = make([]Event, 0, chunkEvents)
		}
	}
	p.cur = append(p.cur, e)
	p.queued++
	ready := p.queued == p.opts.Batch
	if len(p.cur) == cap(p.cur) {
		p.chunks = append(p.chunks, p.cur)
		p.cur = nil
	}
	p.mu.Unlock()
	if ready {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// Stats returns the events written, dropped, and failed batch writes.
func (p *Pipeline) Stats() (written, dropped, failures uint64) {
	return p.written.Load(), p.dropped.Load(), p.failures.Load()
}

// Queued returns how many events wait to be written.
func (p *Pipeline) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}

// take moves waiting events, oldest first, into batch until it holds
// Batch events or the queue is empty, and returns it.
func (p *Pipeline) take(batch []Event) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(batch) < p.opts.Batch && p.queued > 0 {
		var c []Event
		whole := len(p.chunks) > 0
		if whole {
			c = p.chunks[0]
		} else {
			c = p.cur
		}
		n := min(len(c), p.opts.Batch-len(batch))
		batch = append(batch, c[:n]...)
		p.queued -= n
		if n < len(c) {
			// The batch is full; the rest of the chunk waits.
			copy(c, c[n:])
			clear(c[len(c)-n:])
			c = c[:len(c)-n]
			if whole {
				p.chunks[0] = c
			} else {
				p.cur = c
			}
			break
		}
		clear(c) // drop the strings it refers to
		if len(p.spare) < p.opts.Batch/chunkEvents+1 {
			p.spare = append(p.spare, c[:0])
		}
		if whole {
			p.chunks[0] = nil
			p.chunks = p.chunks[1:]
		} else {
			p.cur = nil
		}
	}
	return batch
}

// Run writes queued events until ctx is cancelled, then writes what is
// still queued (for up to 10 seconds) and returns.
//
// Under load the batch and the queue's chunks are reused. A flush
// interval with a quarter of a batch or more written is busy, one with
// less is light. Run lets go of the batch, the spare chunks and (through
// Trimmer) the sink's buffers, once, when trimAfter intervals in a row
// are light or empty after a busy one (the burst is over), or empty after
// a light one (the trickle has stopped); a light load then grows them
// again only to its own size. (Letting go after every light interval
// instead made the light load allocate its buffers afresh each time, and
// the collector's extra work doubled the 99th percentile of DNS answers
// at 2,000 q/s.)
func (p *Pipeline) Run(ctx context.Context) error {
	var batch []Event
	tick := time.NewTicker(p.opts.Flush)
	defer tick.Stop()
	trimmer, _ := p.sink.(Trimmer)
	// held says what has grown the buffers since they were last let go:
	// nothing, a trickle or a burst; quiet counts the intervals in a row
	// since then that were light (after a burst) or empty.
	written, quiet, held := 0, 0, heldNone
	for {
		flush := false
		select {
		case <-p.wake:
		case <-tick.C:
			flush = true
		case <-ctx.Done():
			return p.drain(batch)
		}
		// Whole batches as long as there are any; on the tick, what
		// remains too.
		for {
			batch = p.take(batch)
			if len(batch) == 0 || (len(batch) < p.opts.Batch && !flush) {
				break
			}
			n := len(batch)
			if batch = p.write(ctx, batch); len(batch) > 0 {
				return p.drain(batch) // ctx ended while the store failed
			}
			written += n
		}
		if !flush {
			continue
		}
		switch {
		case written >= p.opts.Batch/4:
			held, quiet = heldBurst, 0
		case written > 0 && held != heldBurst:
			held, quiet = heldTrickle, 0
		case held != heldNone:
			quiet++
		}
		if held != heldNone && quiet >= trimAfter {
			batch = nil
			p.trimSpare()
			if trimmer != nil {
				trimmer.Trim()
			}
			held, quiet = heldNone, 0
		}
		written = 0
	}
}

// What the pipeline's buffers were grown by since they were last let go.
const (
	heldNone = iota
	heldTrickle
	heldBurst
)

// trimAfter is how many quiet flush intervals end a burst.
const trimAfter = 8

// trimSpare lets go of the spare chunks.
func (p *Pipeline) trimSpare() {
	p.mu.Lock()
	clear(p.spare)
	p.spare = p.spare[:0]
	p.mu.Unlock()
}

// write stores a batch, retrying with back-off while the store fails,
// and returns the emptied batch. It gives up only when ctx ends, keeping
// the batch for drain.
func (p *Pipeline) write(ctx context.Context, batch []Event) []Event {
	backoff := 100 * time.Millisecond
	for {
		err := p.sink.Write(ctx, batch)
		if err == nil {
			p.written.Add(uint64(len(batch)))
			clear(batch)
			return batch[:0]
		}
		p.failures.Add(1)
		if ctx.Err() != nil {
			return batch
		}
		p.log.Warn("event_write_failed", "events", len(batch), "retry_in", backoff.String(), "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return batch
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// drain writes the batch in hand and everything queued, with a fresh
// deadline, after the pipeline has been told to stop.
func (p *Pipeline) drain(batch []Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		batch = p.take(batch)
		if len(batch) == 0 {
			return nil
		}
		if err := p.sink.Write(ctx, batch); err != nil {
			p.failures.Add(1)
			return errors.Join(errors.New("events not written at shutdown"), err)
		}
		p.written.Add(uint64(len(batch)))
		batch = batch[:0]
	}
}
