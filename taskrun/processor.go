package taskrun

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
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
	// Drop discards the state and counts it in Stats().Dropped and in the
	// otelop.taskrun.dropped metric; the call never waits.
	Drop
)

// Stats counts TaskRun states: every operation call yields a RUNNING state
// at its start and a final state at its end; a run read back from the spill
// file is one state. Once the processor is flushed or shut down,
// Enqueued == Written + Failed + Spilled.
type Stats struct {
	Enqueued  uint64 `json:"enqueued"`  // states accepted into the queue, runs recovered from the spill file included
	Written   uint64 `json:"written"`   // states persisted (a state coalesced into a later one counts when that one is written)
	Retried   uint64 `json:"retried"`   // failed write attempts that were retried
	Failed    uint64 `json:"failed"`    // states given up: rejected by the store, or neither written nor spilled by the end of Shutdown
	Dropped   uint64 `json:"dropped"`   // states discarded: queue full under Drop, or after Shutdown
	Spilled   uint64 `json:"spilled"`   // states not written by the end of Shutdown and kept in the spill file instead
	Recovered uint64 `json:"recovered"` // runs read from the spill file when the processor started
	Queued    int    `json:"queued"`    // states accepted and not yet written, failed or spilled
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
	spillPath    string
	meters       metric.MeterProvider
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

// WithQueueSize bounds the queue of TaskRuns waiting for the store (default
// 8192 entries). A state waiting for the writer takes an entry, and so does
// a run the writer holds, however many of its states it has merged. While
// the store fails, the writer keeps merging the states that arrive, so the
// queue holds about one entry per call: with the default retry backoff, the
// default size holds a store outage of ten seconds at about 600 calls per
// second. Runs recovered from the spill file take no entry.
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

// WithSpillFile keeps the runs that Shutdown could not write in the file at
// path, and writes them on the next start of a Processor with the same path
// (default: no spill file; the runs not written by the end of Shutdown are
// lost and counted as failed).
//
// When Shutdown's context ends while runs are still unwritten (the store is
// down or slow), Shutdown appends the newest state of each of them to the
// file, one TaskRun JSON document per line, fsyncs it, and returns an error
// matching [ErrSpilled] that says how many runs went where. NewProcessor
// reads the file, queues its runs for writing ahead of new ones (writes are
// idempotent upserts, and a RUNNING state never replaces a final one, so a
// run written twice is stored once), and empties the file once every one is
// written; a Shutdown before that leaves them in the file. Shutdown removes
// the file when it is empty.
//
// The file is created (mode 0600) if missing; its directory must exist. A
// torn last line, left by a crash in the middle of a spill, and lines that
// are not TaskRuns are reported to the error handler and skipped; they never
// fail the start. One process at a time may use a spill file: on Linux,
// macOS and the BSDs the Processor holds an exclusive flock on it from
// NewProcessor to the end of Shutdown, and a second Processor on the same
// path reports the conflict to its error handler and runs without a spill
// file. Elsewhere the exclusion is up to the caller. A spill file that
// cannot be opened is reported the same way.
func WithSpillFile(path string) ProcessorOption {
	return func(c *procConfig) { c.spillPath = path }
}

// WithMeterProvider sets the MeterProvider of the processor's metrics
// (default otel.GetMeterProvider() when NewProcessor runs). The counters
// mirror [Stats]; all are reported until Shutdown:
//
//   - otelop.taskrun.written, otelop.taskrun.failed, otelop.taskrun.dropped,
//     otelop.taskrun.spilled (counters, {state}): as in Stats;
//   - otelop.taskrun.retried (counter, {write}): failed write attempts that
//     were retried;
//   - otelop.taskrun.queue.size (gauge, {entry}): the part of the queue in
//     use (see [WithQueueSize]);
//   - otelop.taskrun.queue.capacity (gauge, {entry}): the queue size.
func WithMeterProvider(mp metric.MeterProvider) ProcessorOption {
	return func(c *procConfig) {
		if mp != nil {
			c.meters = mp
		}
	}
}

// ErrSpilled is matched by the error of Shutdown when runs it could not
// write were kept in the spill file (see [WithSpillFile]).
var ErrSpilled = errors.New("taskrun: TaskRuns kept in the spill file")

// Processor is an sdktrace.SpanProcessor that writes a TaskRun for every
// operation span: RUNNING when the span starts, SUCCESS or FAILED when it
// ends. Spans of other instrumentation are ignored.
//
// OnStart and OnEnd only append the span to a bounded buffer. One writer
// goroutine takes the buffer when a batch is full or the batch interval has
// passed, decodes the spans, coalesces the states of each run (a run that
// ended before its RUNNING state was written is written once, final), and
// writes batches. A failed write is retried with backoff, keeping the batch;
// meanwhile the writer keeps taking the states that arrive and merging them
// into the runs it holds. A RUNNING state never replaces a final one.
type Processor struct {
	w       Writer
	cfg     procConfig
	trigger int // buffer length that wakes the writer at once

	mu      sync.Mutex
	notFull *sync.Cond
	buf     []sdktrace.ReadOnlySpan
	held    int         // under mu: runs the writer holds, recovered ones aside (they count against the queue size with buf)
	states  int         // under mu: states the writer holds and has not counted yet
	closed  atomic.Bool // set under mu: no more states are accepted
	gone    bool        // under mu: the writer has returned

	wake     chan struct{} // capacity 1: the buffer needs the writer
	flushReq chan chan struct{}
	stop     chan struct{} // closed when Shutdown starts
	dead     chan struct{} // closed when the writer goroutine has returned
	abortCtx context.Context
	abort    context.CancelFunc // cancels writes when Shutdown's context ends
	once     sync.Once

	enqueued, written, retried, failed, dropped, spilled, recovered atomic.Uint64

	metrics metric.Registration // nil without instruments

	// owned by the writer goroutine, then by Shutdown once it has returned
	pending   map[runKey]*pendingRun
	order     []runKey
	spare     []sdktrace.ReadOnlySpan
	free      []*pendingRun // cleared pendingRuns for reuse
	batch     []TaskRun
	sc        scratch         // memory the runs of a batch are decoded into
	rejected  map[string]bool // ids of the current batch the store rejected
	spill     *spillFile      // nil without a usable spill file
	unspilled int             // recovered runs not written yet
}

// runKey identifies a pending run: by its span, or for a run recovered from
// the spill file by its line there.
type runKey struct {
	span trace.SpanID
	line int // > 0 for a recovered run
}

// pendingRun is a run waiting to be written: the newest span of its states,
// decoded only when its batch is written, so each run is decoded once,
// usually from the ended span's snapshot (whose attributes the SDK hands
// out without copying). A run recovered from the spill file carries the run
// itself instead.
type pendingRun struct {
	span   sdktrace.ReadOnlySpan
	run    *TaskRun // recovered from the spill file; span is nil
	id     string
	states uint64 // states merged into this run and not counted yet

	// The state the batch being written carries, and how many states it
	// stands for. A state that arrives during the write replaces span: the
	// run is then written again.
	sentSpan   sdktrace.ReadOnlySpan
	sentStates uint64
}

var _ sdktrace.SpanProcessor = (*Processor)(nil)

// NewProcessor returns a Processor writing to w and starts its writer
// goroutine; Shutdown stops it. Defaults: batch size 256, batch interval
// 100ms, queue size 8192, policy Block, retry backoff 50ms doubling to 5s,
// write timeout 30s, errors to otel.Handle, no spill file, metrics to
// otel.GetMeterProvider(). Shutdown never closes w.
//
// With [WithSpillFile], NewProcessor reads the spill file before it returns
// and the writer writes its runs first; problems with the file go to the
// error handler.
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
	if cfg.meters == nil {
		cfg.meters = otel.GetMeterProvider()
	}
	p := &Processor{
		w:        w,
		cfg:      cfg,
		trigger:  min(cfg.batchSize, cfg.queueSize),
		wake:     make(chan struct{}, 1),
		flushReq: make(chan chan struct{}),
		stop:     make(chan struct{}),
		dead:     make(chan struct{}),
		pending:  make(map[runKey]*pendingRun),
		rejected: make(map[string]bool),
	}
	p.sc.reuse = copies(w)
	p.notFull = sync.NewCond(&p.mu)
	p.abortCtx, p.abort = context.WithCancel(context.Background())
	if cfg.spillPath != "" {
		p.openSpill()
	}
	p.registerMetrics()
	go p.run()
	return p
}

// openSpill opens the spill file and queues the runs it holds.
func (p *Processor) openSpill() {
	sp, runs, err := openSpillFile(p.cfg.spillPath, p.cfg.onError)
	if err != nil {
		p.cfg.onError(fmt.Errorf("taskrun: running without a spill file: %w", err))
		return
	}
	p.spill = sp
	for i := range runs {
		key := runKey{line: i + 1}
		p.pending[key] = &pendingRun{run: &runs[i], id: runs[i].ID, states: 1}
		p.order = append(p.order, key)
	}
	n := len(runs)
	p.unspilled = n
	p.states = n
	p.enqueued.Add(uint64(n))
	p.recovered.Add(uint64(n))
	if n == 0 && !sp.empty {
		// Only lines that were reported as unreadable: nothing to keep.
		p.clearSpill()
	}
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
	for len(p.buf)+p.held >= p.cfg.queueSize && p.cfg.policy == Block && !p.closed.Load() && !p.gone {
		p.notFull.Wait()
	}
	if p.closed.Load() || p.gone || len(p.buf)+p.held >= p.cfg.queueSize {
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
	queued := len(p.buf) + p.states
	p.mu.Unlock()
	return Stats{
		Enqueued:  p.enqueued.Load(),
		Written:   p.written.Load(),
		Retried:   p.retried.Load(),
		Failed:    p.failed.Load(),
		Dropped:   p.dropped.Load(),
		Spilled:   p.spilled.Load(),
		Recovered: p.recovered.Load(),
		Queued:    queued,
	}
}

// ForceFlush returns once every state enqueued before the call (and every
// run recovered from the spill file) is written, or with ctx's error when
// ctx ends first (the writer keeps trying).
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
// writer. When ctx ends first, the writes under way are cancelled; with a
// spill file (see [WithSpillFile]) the runs not written are appended to it
// and the error matches [ErrSpilled], saying how many runs went where;
// without one, the states not written are counted as failed and the error
// says how many. Either way the error also matches ctx's error. Shutdown
// does not close the Writer. Calls after the first return nil.
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
		err = errors.Join(err, p.finish())
		if n := p.failed.Load(); n > 0 {
			err = errors.Join(err, fmt.Errorf("taskrun: %d TaskRun states were not written", n))
		}
		if p.metrics != nil {
			if uerr := p.metrics.Unregister(); uerr != nil {
				p.cfg.onError(fmt.Errorf("taskrun: unregistering the processor's metrics: %w", uerr))
			}
		}
	})
	return err
}

// finish runs in Shutdown once the writer has returned: it spills (or
// counts as failed) what was not written, and closes the spill file.
func (p *Processor) finish() error {
	p.absorb() // states accepted before closed that the writer never took
	var live []*pendingRun
	for _, k := range p.order {
		if e := p.pending[k]; e.run == nil {
			live = append(live, e)
		}
	}
	var err error
	appended := 0
	if len(live) > 0 {
		runs := make([]TaskRun, 0, len(live))
		var states uint64
		for _, e := range live {
			states += e.states
			if run, ok := FromSpan(e.span); ok {
				runs = append(runs, run)
			}
		}
		switch {
		case p.spill == nil:
			p.failed.Add(states)
		case len(runs) == 0:
			p.written.Add(states) // nothing that decodes to a run
		default:
			if serr := p.spill.append(runs); serr != nil {
				p.failed.Add(states)
				err = fmt.Errorf("taskrun: %d TaskRuns not written to the store could not be kept in the spill file: %w", len(runs), serr)
			} else {
				p.spilled.Add(states)
				appended = len(runs)
			}
		}
	}
	if p.spill != nil {
		// Recovered runs not written are still in the file.
		p.spilled.Add(uint64(p.unspilled))
		if kept := p.unspilled + appended; kept > 0 {
			err = errors.Join(err, fmt.Errorf("%w: %d TaskRuns not written to the store are in %s; a Processor started with this spill file writes them", ErrSpilled, kept, p.spill.path))
		}
		if cerr := p.spill.close(); cerr != nil {
			p.cfg.onError(cerr)
		}
		p.spill = nil
	}
	clear(p.pending)
	p.order = nil
	p.mu.Lock()
	p.held, p.states = 0, 0
	p.mu.Unlock()
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
	if len(p.order) > 0 && !p.writeAll() { // runs from the spill file
		return
	}
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

// takeAndWrite takes the buffer and writes everything pending. It returns
// false when Shutdown aborted.
func (p *Processor) takeAndWrite() bool {
	p.absorb()
	return p.writeAll()
}

// absorb swaps the buffer out and merges its spans into the pending runs.
func (p *Processor) absorb() {
	p.mu.Lock()
	spans := p.buf
	if len(spans) == 0 {
		p.mu.Unlock()
		return
	}
	p.buf = p.spare[:0]
	// Until the spans are merged, count each as a run of its own: the
	// queue never looks emptier than it is.
	p.held += len(spans)
	p.states += len(spans)
	p.mu.Unlock()
	merged := 0
	for _, s := range spans {
		if !p.add(s) {
			merged++
		}
	}
	clear(spans)
	p.spare = spans[:0]
	if merged > 0 {
		p.mu.Lock()
		p.held -= merged
		p.notFull.Broadcast()
		p.mu.Unlock()
	}
}

// add merges s into the pending runs and reports whether it is a new run.
func (p *Processor) add(s sdktrace.ReadOnlySpan) bool {
	key := runKey{span: s.SpanContext().SpanID()}
	if e, found := p.pending[key]; found {
		// A later state of the same run: keep the newest span. States
		// arrive in order, so an ended span (the OnEnd snapshot) replaces
		// the live one.
		e.states++
		e.span = s
		return false
	}
	e := p.newPending()
	e.span, e.states = s, 1
	p.pending[key] = e
	p.order = append(p.order, key)
	return true
}

// newPending returns a cleared pendingRun, reused when one is free: the
// writer handles one per run, and reuse spares the collector.
func (p *Processor) newPending() *pendingRun {
	if n := len(p.free); n > 0 {
		e := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return e
	}
	return new(pendingRun)
}

// freePending keeps e for reuse; e is no longer in pending.
func (p *Processor) freePending(e *pendingRun) {
	if len(p.free) < maxFreePending {
		*e = pendingRun{}
		p.free = append(p.free, e)
	}
}

// maxFreePending bounds the pendingRuns kept for reuse.
const maxFreePending = 1024

// writeAll writes pending in batches, retrying each until it is written. It
// returns false when Shutdown aborted, leaving pending to Shutdown.
func (p *Processor) writeAll() bool {
	for len(p.order) > 0 {
		n := min(len(p.order), p.cfg.batchSize)
		keys := p.order[:n]
		// With a CopyingWriter the runs of the last batch are reused as
		// they are, metadata maps included, and so is the scratch memory;
		// otherwise each run is decoded into memory of its own, as
		// FromSpan does (per-batch memory that is not reused saves
		// nothing: it grows by doubling).
		batch := p.batch[:0]
		sc := &p.sc
		if sc.reuse {
			sc.reset()
		} else {
			sc = nil
		}
		for _, k := range keys {
			e := p.pending[k]
			e.sentSpan, e.sentStates = e.span, e.states
			if e.run != nil {
				batch = append(batch, *e.run)
				continue
			}
			if len(batch) < cap(batch) && p.sc.reuse {
				batch = batch[:len(batch)+1]
				resetRun(&batch[len(batch)-1])
			} else {
				batch = append(batch, TaskRun{})
			}
			run := &batch[len(batch)-1]
			if !decodeSpan(run, e.span, sc) {
				batch = batch[:len(batch)-1] // not an operation span: nothing to write
				continue
			}
			e.id = run.ID
		}
		p.batch = batch
		ok := len(batch) == 0 || p.writeBatch(batch)
		if !ok {
			return false
		}
		// Let go of what the runs point to; a reused run keeps only its
		// emptied metadata map.
		if p.sc.reuse {
			for i := range batch {
				resetRun(&batch[i])
			}
		} else {
			clear(batch)
		}
		var written, failed uint64
		freed, recovered := 0, 0
		for _, k := range keys {
			e := p.pending[k]
			if e.id != "" && p.rejected[e.id] {
				failed += e.sentStates
			} else {
				written += e.sentStates
			}
			if e.span != e.sentSpan {
				// A newer state arrived while the batch was written.
				e.states -= e.sentStates
				p.order = append(p.order, k)
				continue
			}
			if e.run != nil {
				recovered++
			} else {
				freed++
			}
			delete(p.pending, k)
			p.freePending(e)
		}
		clear(p.rejected)
		// Move what is left to the front rather than slicing it off, so
		// that the queue's backing array serves every batch.
		p.order = p.order[:copy(p.order, p.order[n:])]
		p.written.Add(written)
		p.failed.Add(failed)
		p.mu.Lock()
		p.held -= freed
		p.states -= int(written + failed)
		p.notFull.Broadcast()
		p.mu.Unlock()
		if recovered > 0 {
			p.unspilled -= recovered
			if p.unspilled == 0 {
				p.clearSpill()
			}
		}
	}
	p.order = p.order[:0]
	return true
}

// clearSpill empties the spill file once its runs are all written.
func (p *Processor) clearSpill() {
	if p.spill == nil {
		return
	}
	if err := p.spill.clear(); err != nil {
		// The runs stay in the file and are written again on the next
		// start, which is harmless.
		p.cfg.onError(err)
	}
}

// writeBatch writes batch, retrying with backoff while the store fails. A
// batch the store rejects (ErrRejected) is split in halves until the
// rejected runs stand alone; those are counted as failed and reported, the
// others written. It returns false when Shutdown aborted.
//
// While the store fails, the states that arrive are merged into the
// pending runs (see absorb), so that the queue does not fill with states
// that a later one replaces.
func (p *Processor) writeBatch(batch []TaskRun) bool {
	backoff := p.cfg.backoffMin
	for attempt := 0; ; attempt++ {
		err := p.write(batch, attempt > 0)
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
		if !p.sleep(backoff) {
			return false
		}
		backoff = min(backoff*2, p.cfg.backoffMax)
	}
}

// write calls the Writer once. A retry runs the Write on its own goroutine
// so that the writer keeps merging the states that arrive while a failing
// store makes it wait.
func (p *Processor) write(batch []TaskRun, retry bool) error {
	ctx, cancel := context.WithTimeout(p.abortCtx, p.cfg.writeTimeout)
	defer cancel()
	if !retry {
		return p.w.Write(ctx, batch)
	}
	done := make(chan error, 1)
	go func() { done <- p.w.Write(ctx, batch) }()
	for {
		select {
		case err := <-done:
			return err
		case <-p.wake:
			p.absorb()
		}
	}
}

// sleep waits d, merging the states that arrive. It returns false when
// Shutdown aborted.
func (p *Processor) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-p.wake:
			p.absorb()
		case <-p.abortCtx.Done():
			return false
		}
	}
}
