package taskrun

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelop/otelop/internal/attrs"
)

// FullPolicy says what the Processor does with a TaskRun state when its
// queue is full.
type FullPolicy int

const (
	// Block makes OnStart and OnEnd wait for room in the queue, so that no
	// run is lost; the operation call waits with them. This is the default.
	Block FullPolicy = iota
	// Drop discards the state and counts it in Stats().Dropped; the call
	// never waits.
	Drop
)

// Stats counts TaskRun states: every operation call yields a RUNNING state
// at its start and a final state at its end. Once the processor is flushed,
// Enqueued == Written + Failed.
type Stats struct {
	Enqueued uint64 `json:"enqueued"` // states accepted into the queue
	Written  uint64 `json:"written"`  // states persisted (a state coalesced into a later one counts when that one is written)
	Retried  uint64 `json:"retried"`  // failed write attempts that were retried
	Failed   uint64 `json:"failed"`   // states given up: rejected by the store, or not written by the end of Shutdown
	Dropped  uint64 `json:"dropped"`  // states discarded: queue full under Drop, or after Shutdown
	Queued   int    `json:"queued"`   // states waiting in the queue now
}

// ProcessorOption configures a Processor.
type ProcessorOption func(*procConfig)

type procConfig struct {
	batchSize    int
	interval     time.Duration
	queueSize    int
	policy       FullPolicy
	backoffMin   time.Duration
	backoffMax   time.Duration
	writeTimeout time.Duration
	onError      func(error)
}

// WithBatchSize sets how many runs one Write carries at most (default 256).
func WithBatchSize(n int) ProcessorOption {
	return func(c *procConfig) {
		if n > 0 {
			c.batchSize = n
		}
	}
}

// WithBatchInterval sets how long the first state of a batch waits for
// others before the batch is written (default 100ms).
func WithBatchInterval(d time.Duration) ProcessorOption {
	return func(c *procConfig) {
		if d > 0 {
			c.interval = d
		}
	}
}

// WithQueueSize bounds the queue of states waiting for the writer (default
// 8192).
func WithQueueSize(n int) ProcessorOption {
	return func(c *procConfig) {
		if n > 0 {
			c.queueSize = n
		}
	}
}

// WithFullQueuePolicy sets what happens when the queue is full (default
// [Block]).
func WithFullQueuePolicy(p FullPolicy) ProcessorOption {
	return func(c *procConfig) { c.policy = p }
}

// WithRetryBackoff sets the wait after a failed write: it starts at min and
// doubles up to max (defaults 50ms and 5s). Failed writes are retried until
// they succeed or Shutdown gives up.
func WithRetryBackoff(min, max time.Duration) ProcessorOption {
	return func(c *procConfig) {
		if min > 0 {
			c.backoffMin = min
		}
		if max >= c.backoffMin {
			c.backoffMax = max
		}
	}
}

// WithWriteTimeout bounds each Write call (default 30s).
func WithWriteTimeout(d time.Duration) ProcessorOption {
	return func(c *procConfig) {
		if d > 0 {
			c.writeTimeout = d
		}
	}
}

// WithErrorHandler receives write errors (default otel.Handle).
func WithErrorHandler(f func(error)) ProcessorOption {
	return func(c *procConfig) {
		if f != nil {
			c.onError = f
		}
	}
}

// Processor is an sdktrace.SpanProcessor that writes a TaskRun for every
// operation span: RUNNING when the span starts, SUCCESS or FAILED when it
// ends. Spans of other instrumentation are ignored.
//
// OnStart and OnEnd only append the span to a bounded buffer. One writer
// goroutine takes the buffer when a batch is full or the batch interval has
// passed, decodes the spans, coalesces the states of each run (a run that
// ended before its RUNNING state was written is written once, final), and
// writes batches. A failed write is retried with backoff, keeping the batch;
// a RUNNING state never replaces a final one.
type Processor struct {
	w       Writer
	cfg     procConfig
	trigger int // buffer length that wakes the writer at once

	mu      sync.Mutex
	notFull *sync.Cond
	buf     []sdktrace.ReadOnlySpan
	closed  atomic.Bool // set under mu: no more states are accepted
	gone    bool        // under mu: the writer has returned

	wake     chan struct{} // capacity 1: the buffer needs the writer
	flushReq chan chan struct{}
	stop     chan struct{} // closed when Shutdown starts
	dead     chan struct{} // closed when the writer goroutine has returned
	abortCtx context.Context
	abort    context.CancelFunc // cancels writes when Shutdown's context ends
	once     sync.Once

	enqueued, written, retried, failed, dropped atomic.Uint64

	// owned by the writer goroutine
	pending  map[trace.SpanID]*pendingRun
	order    []trace.SpanID
	spare    []sdktrace.ReadOnlySpan
	batch    []TaskRun
	rejected map[string]bool // ids of the current batch the store rejected
}

// pendingRun is a run waiting to be written: the newest span of its states,
// decoded only when its batch is written, so each run is decoded once,
// usually from the ended span's snapshot (whose attributes the SDK hands
// out without copying).
type pendingRun struct {
	span   sdktrace.ReadOnlySpan
	id     string
	states uint64
}

var _ sdktrace.SpanProcessor = (*Processor)(nil)

// NewProcessor returns a Processor writing to w and starts its writer
// goroutine; Shutdown stops it. Defaults: batch size 256, batch interval
// 100ms, queue size 8192, policy Block, retry backoff 50ms doubling to 5s,
// write timeout 30s, errors to otel.Handle. Shutdown never closes w.
func NewProcessor(w Writer, opts ...ProcessorOption) *Processor {
	cfg := procConfig{
		batchSize:    256,
		interval:     100 * time.Millisecond,
		queueSize:    8192,
		backoffMin:   50 * time.Millisecond,
		backoffMax:   5 * time.Second,
		writeTimeout: 30 * time.Second,
		onError:      otel.Handle,
	}
	for _, o := range opts {
		o(&cfg)
	}
	p := &Processor{
		w:        w,
		cfg:      cfg,
		trigger:  min(cfg.batchSize, cfg.queueSize),
		wake:     make(chan struct{}, 1),
		flushReq: make(chan chan struct{}),
		stop:     make(chan struct{}),
		dead:     make(chan struct{}),
		pending:  make(map[trace.SpanID]*pendingRun),
		rejected: make(map[string]bool),
	}
	p.notFull = sync.NewCond(&p.mu)
	p.abortCtx, p.abort = context.WithCancel(context.Background())
	go p.run()
	return p
}

// OnStart enqueues the RUNNING state of an operation span.
func (p *Processor) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	if s.InstrumentationScope().Name == attrs.TracerName {
		p.enqueue(s)
	}
}

// OnEnd enqueues the final state of an operation span.
func (p *Processor) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.InstrumentationScope().Name == attrs.TracerName {
		p.enqueue(s)
	}
}

func (p *Processor) enqueue(s sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	for len(p.buf) >= p.cfg.queueSize && p.cfg.policy == Block && !p.closed.Load() && !p.gone {
		p.notFull.Wait()
	}
	if p.closed.Load() || p.gone || len(p.buf) >= p.cfg.queueSize {
		p.mu.Unlock()
		p.dropped.Add(1)
		return
	}
	p.buf = append(p.buf, s)
	n := len(p.buf)
	p.enqueued.Add(1)
	p.mu.Unlock()
	if n == 1 || n == p.trigger {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Stats returns the processor's counters.
func (p *Processor) Stats() Stats {
	p.mu.Lock()
	queued := len(p.buf)
	p.mu.Unlock()
	return Stats{
		Enqueued: p.enqueued.Load(),
		Written:  p.written.Load(),
		Retried:  p.retried.Load(),
		Failed:   p.failed.Load(),
		Dropped:  p.dropped.Load(),
		Queued:   queued,
	}
}

// ForceFlush returns once every state enqueued before the call is written,
// or with ctx's error when ctx ends first (the writer keeps trying).
func (p *Processor) ForceFlush(ctx context.Context) error {
	if p.closed.Load() {
		return nil
	}
	done := make(chan struct{})
	select {
	case p.flushReq <- done:
	case <-p.dead:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-p.dead:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops accepting states, writes everything queued and stops the
// writer. When ctx ends first, the writes under way are cancelled, the
// states not written are counted as failed, and the error says how many.
// Shutdown does not close the Writer. Calls after the first return nil.
func (p *Processor) Shutdown(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.mu.Lock()
		p.closed.Store(true)
		p.notFull.Broadcast()
		p.mu.Unlock()
		close(p.stop)
		select {
		case <-p.dead:
		case <-ctx.Done():
			p.abort()
			<-p.dead
			err = ctx.Err()
		}
		p.abort()
		if n := p.failed.Load(); n > 0 {
			err = errors.Join(err, fmt.Errorf("taskrun: %d TaskRun states were not written", n))
		}
	})
	return err
}

func (p *Processor) run() {
	defer func() {
		p.mu.Lock()
		p.gone = true
		p.notFull.Broadcast()
		p.mu.Unlock()
		close(p.dead)
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		select {
		case <-p.wake:
			p.mu.Lock()
			n := len(p.buf)
			p.mu.Unlock()
			if n >= p.trigger {
				if !p.takeAndWrite() {
					return
				}
			} else if n > 0 && !armed {
				timer.Reset(p.cfg.interval)
				armed = true
			}
		case <-timer.C:
			armed = false
			if !p.takeAndWrite() {
				return
			}
		case done := <-p.flushReq:
			ok := p.takeAndWrite()
			close(done)
			if !ok {
				return
			}
		case <-p.stop:
			timer.Stop()
			// closed was set under mu before stop was closed: the buffer
			// holds every state that will ever be accepted.
			p.takeAndWrite()
			return
		}
	}
}

// takeAndWrite swaps the buffer out, decodes and coalesces its spans, and
// writes everything pending. It returns false when Shutdown aborted.
func (p *Processor) takeAndWrite() bool {
	p.mu.Lock()
	spans := p.buf
	p.buf = p.spare[:0]
	p.notFull.Broadcast()
	p.mu.Unlock()
	for _, s := range spans {
		p.add(s)
	}
	clear(spans)
	p.spare = spans[:0]
	return p.writeAll()
}

func (p *Processor) add(s sdktrace.ReadOnlySpan) {
	key := s.SpanContext().SpanID()
	if e, found := p.pending[key]; found {
		// A later state of the same run: keep the newest span. States
		// arrive in order, so an ended span (the OnEnd snapshot) replaces
		// the live one.
		e.states++
		e.span = s
		return
	}
	p.pending[key] = &pendingRun{span: s, states: 1}
	p.order = append(p.order, key)
}

// writeAll writes pending in batches, retrying each until it is written. It
// returns false when Shutdown aborted, after counting what was not written
// as failed.
func (p *Processor) writeAll() bool {
	for len(p.order) > 0 {
		n := min(len(p.order), p.cfg.batchSize)
		keys := p.order[:n]
		batch := p.batch[:0]
		var states uint64
		for _, k := range keys {
			e := p.pending[k]
			states += e.states
			run, ok := FromSpan(e.span)
			if !ok {
				continue // not an operation span: nothing to write
			}
			e.id = run.ID
			batch = append(batch, run)
		}
		p.batch = batch
		ok := len(batch) == 0 || p.writeBatch(batch)
		clear(batch)
		if !ok {
			for _, e := range p.pending {
				p.failed.Add(e.states)
			}
			clear(p.pending)
			p.order = p.order[:0]
			return false
		}
		for _, k := range keys {
			if e := p.pending[k]; e.id != "" && p.rejected[e.id] {
				states -= e.states
				p.failed.Add(e.states)
			}
			delete(p.pending, k)
		}
		clear(p.rejected)
		p.order = p.order[n:]
		p.written.Add(states)
	}
	p.order = p.order[:0]
	return true
}

// writeBatch writes batch, retrying with backoff while the store fails. A
// batch the store rejects (ErrRejected) is split in halves until the
// rejected runs stand alone; those are counted as failed and reported, the
// others written. It returns false when Shutdown aborted.
func (p *Processor) writeBatch(batch []TaskRun) bool {
	backoff := p.cfg.backoffMin
	for {
		ctx, cancel := context.WithTimeout(p.abortCtx, p.cfg.writeTimeout)
		err := p.w.Write(ctx, batch)
		cancel()
		if err == nil {
			return true
		}
		if p.abortCtx.Err() != nil {
			return false
		}
		if errors.Is(err, ErrRejected) {
			if len(batch) == 1 {
				p.rejected[batch[0].ID] = true
				p.cfg.onError(fmt.Errorf("taskrun: dropping TaskRun %s (%s) the store rejects: %w", batch[0].ID, batch[0].OperationName, err))
				return true
			}
			half := len(batch) / 2
			return p.writeBatch(batch[:half]) && p.writeBatch(batch[half:])
		}
		p.retried.Add(1)
		p.cfg.onError(fmt.Errorf("taskrun: writing %d TaskRuns (retrying in %s): %w", len(batch), backoff, err))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-p.abortCtx.Done():
			t.Stop()
			return false
		}
		backoff = min(backoff*2, p.cfg.backoffMax)
	}
}
