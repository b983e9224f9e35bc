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

// Pipeline queues events and writes them to a sink in batches.
type Pipeline struct {
	sink  Sink
	opts  Options
	log   *slog.Logger
	queue chan Event

	written, dropped, failures atomic.Uint64
}

// New returns a Pipeline; call Run to start writing.
func New(sink Sink, opts Options) *Pipeline {
	if opts.Queue <= 0 {
		// A channel's ring touches every slot as it turns, so the whole
		// queue becomes resident: keep it modest.
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
	return &Pipeline{sink: sink, opts: opts, log: opts.Logger.With("component", "events"), queue: make(chan Event, opts.Queue)}
}

// Emit queues an event without waiting. It reports false, and counts the
// event as dropped, only when the queue is full because the sink has
// fallen far behind.
func (p *Pipeline) Emit(e Event) bool {
	select {
	case p.queue <- e:
		return true
	default:
		if p.dropped.Add(1) == 1 {
			p.log.Error("event_queue_full", "queue", cap(p.queue))
		}
		return false
	}
}

// Stats returns the events written, dropped, and failed batch writes.
func (p *Pipeline) Stats() (written, dropped, failures uint64) {
	return p.written.Load(), p.dropped.Load(), p.failures.Load()
}

// Queued returns how many events wait to be written.
func (p *Pipeline) Queued() int { return len(p.queue) }

// Run writes queued events until ctx is cancelled, then writes what is
// still queued (for up to 10 seconds) and returns.
func (p *Pipeline) Run(ctx context.Context) error {
	batch := make([]Event, 0, p.opts.Batch)
	tick := time.NewTicker(p.opts.Flush)
	defer tick.Stop()
	for {
		select {
		case e := <-p.queue:
			batch = append(batch, e)
			if len(batch) >= p.opts.Batch {
				batch = p.write(ctx, batch)
			}
		case <-tick.C:
			if len(batch) > 0 {
				batch = p.write(ctx, batch)
			}
		case <-ctx.Done():
			return p.drain(batch)
		}
	}
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
		for len(batch) < p.opts.Batch {
			select {
			case e := <-p.queue:
				batch = append(batch, e)
				continue
			default:
			}
			break
		}
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
