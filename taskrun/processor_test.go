package taskrun_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/goleak"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		// This binary was started by a test as a helper process.
		os.Exit(runHelper(mode))
	}
	goleak.VerifyTestMain(m)
}

type in struct {
	otelop.Request
	N int `json:"n"`
}

type out struct {
	otelop.Receipt
}

// setup returns an observed operation whose spans go through a Processor
// writing to w.
func setup(t *testing.T, w taskrun.Writer, opts ...taskrun.ProcessorOption) (*otelop.Op[in, out], *taskrun.Processor, *sdktrace.TracerProvider) {
	t.Helper()
	p := taskrun.NewProcessor(w, opts...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	op := otelop.Define(otelop.Spec{Name: "op", Description: "d", Category: "test", Observed: true},
		func(context.Context, in) (out, error) { return out{}, nil },
		otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
	return op, p, tp
}

// gatedWriter blocks every Write until the gate opens, then writes to a
// memstore; it fails the first `failures` writes.
type gatedWriter struct {
	*memstore.Store
	gate     chan struct{}
	failures atomic.Int32
	calls    atomic.Int32
	mu       sync.Mutex
	batches  [][]taskrun.TaskRun
}

func newGated(open bool, failures int32) *gatedWriter {
	g := &gatedWriter{Store: memstore.New(), gate: make(chan struct{})}
	if open {
		close(g.gate)
	}
	g.failures.Store(failures)
	return g
}

func (g *gatedWriter) Write(ctx context.Context, runs []taskrun.TaskRun) error {
	g.calls.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	if g.failures.Add(-1) >= 0 {
		return errors.New("store unavailable")
	}
	g.mu.Lock()
	g.batches = append(g.batches, append([]taskrun.TaskRun(nil), runs...))
	g.mu.Unlock()
	return g.Store.Write(ctx, runs)
}

func TestRetriesUntilWritten(t *testing.T) {
	w := newGated(true, 3)
	var errs atomic.Int32
	op, p, tp := setup(t, w, taskrun.WithRetryBackoff(time.Millisecond, 4*time.Millisecond),
		taskrun.WithErrorHandler(func(error) { errs.Add(1) }))
	for i := range 10 {
		if _, err := op.Call(context.Background(), in{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Retried != 3 || errs.Load() != 3 || st.Written != 20 || st.Enqueued != 20 || st.Failed != 0 {
		t.Errorf("stats = %+v, errors reported %d", st, errs.Load())
	}
	runs := w.All()
	if len(runs) != 10 {
		t.Fatalf("%d runs", len(runs))
	}
	for _, r := range runs {
		if r.Status != taskrun.StatusSuccess {
			t.Errorf("run %s is %s", r.ID, r.Status)
		}
	}
}

func TestCoalescesAndNeverRegressesFinalState(t *testing.T) {
	w := newGated(true, 0)
	op, _, tp := setup(t, w, taskrun.WithBatchInterval(time.Hour))
	for i := range 5 {
		_, _ = op.Call(context.Background(), in{N: i})
	}
	_ = tp.ForceFlush(context.Background())
	if len(w.batches) != 1 || len(w.batches[0]) != 5 {
		t.Fatalf("batches = %d (want one batch of 5 coalesced runs)", len(w.batches))
	}
	for _, r := range w.batches[0] {
		if r.Status != taskrun.StatusSuccess {
			t.Errorf("coalesced run %s is %s", r.ID, r.Status)
		}
	}
}

func TestBlockPolicyLosesNothing(t *testing.T) {
	w := newGated(false, 0)
	op, p, tp := setup(t, w, taskrun.WithQueueSize(2), taskrun.WithBatchSize(1))
	const calls = 20
	var wg sync.WaitGroup
	var returned atomic.Int32
	for i := range calls {
		wg.Go(func() {
			_, _ = op.Call(context.Background(), in{N: i})
			returned.Add(1)
		})
	}
	time.Sleep(50 * time.Millisecond)
	if n := returned.Load(); n == calls {
		t.Errorf("all calls returned while the writer was blocked and the queue holds 2")
	}
	close(w.gate)
	wg.Wait()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Dropped != 0 || st.Enqueued != 2*calls || st.Written != st.Enqueued {
		t.Errorf("stats = %+v", st)
	}
	if n := w.Len(); n != calls {
		t.Errorf("%d runs stored, want %d", n, calls)
	}
}

func TestDropPolicyCountsEveryDrop(t *testing.T) {
	w := newGated(false, 0)
	op, p, tp := setup(t, w, taskrun.WithQueueSize(4), taskrun.WithBatchSize(1), taskrun.WithFullQueuePolicy(taskrun.Drop))
	const calls = 50
	for i := range calls {
		_, _ = op.Call(context.Background(), in{N: i}) // never blocks
	}
	close(w.gate)
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Dropped == 0 || st.Enqueued+st.Dropped != 2*calls || st.Written != st.Enqueued {
		t.Errorf("stats = %+v", st)
	}
}

func TestShutdownGivesUpWithinItsContext(t *testing.T) {
	w := newGated(true, 1<<30) // always fails
	var errs atomic.Int32
	op, p, tp := setup(t, w, taskrun.WithRetryBackoff(time.Millisecond, 2*time.Millisecond),
		taskrun.WithErrorHandler(func(error) { errs.Add(1) }))
	for i := range 3 {
		_, _ = op.Call(context.Background(), in{N: i})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := tp.Shutdown(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	st := p.Stats()
	if st.Failed != 6 || st.Written != 0 {
		t.Errorf("stats = %+v", st)
	}
	// After shutdown states are dropped, not queued.
	_, _ = op.Call(context.Background(), in{})
	if st := p.Stats(); st.Enqueued != 6 {
		t.Errorf("enqueued after shutdown: %+v", st)
	}
}

func TestForceFlushHonoursContext(t *testing.T) {
	w := newGated(false, 0)
	op, p, _ := setup(t, w)
	defer close(w.gate) // before setup's cleanup shuts the provider down
	_, _ = op.Call(context.Background(), in{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.ForceFlush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ForceFlush with a blocked writer = %v", err)
	}
}

func TestIgnoresOtherSpans(t *testing.T) {
	w := newGated(true, 0)
	_, p, tp := setup(t, w)
	_, s := tp.Tracer("someone.else").Start(context.Background(), "http")
	s.End()
	_ = tp.ForceFlush(context.Background())
	if st := p.Stats(); st.Enqueued != 0 || w.calls.Load() != 0 {
		t.Errorf("stats = %+v, writes %d", st, w.calls.Load())
	}
}

// rejectingWriter refuses, as a whole batch, any batch holding a run whose
// input names poison, like a store refusing one document.
type rejectingWriter struct{ *memstore.Store }

func (w rejectingWriter) Write(ctx context.Context, runs []taskrun.TaskRun) error {
	for _, r := range runs {
		if strings.Contains(string(r.InputDump), "poison") {
			return fmt.Errorf("document too large: %w", taskrun.ErrRejected)
		}
	}
	return w.Store.Write(ctx, runs)
}

type poisonIn struct {
	otelop.Request
	Note string `json:"note"`
}

func TestRejectedRunsAreIsolated(t *testing.T) {
	w := rejectingWriter{memstore.New()}
	var reported atomic.Int32
	p := taskrun.NewProcessor(w, taskrun.WithBatchInterval(time.Hour),
		taskrun.WithErrorHandler(func(err error) {
			if errors.Is(err, taskrun.ErrRejected) {
				reported.Add(1)
			}
		}))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	op := otelop.Define(otelop.Spec{Name: "maybe_poison", Description: "d", Category: "test", Observed: true},
		func(context.Context, poisonIn) (out, error) { return out{}, nil },
		otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
	for i := range 10 {
		note := "fine"
		if i == 3 || i == 7 {
			note = "poison"
		}
		_, _ = op.Call(context.Background(), poisonIn{Note: note})
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if w.Len() != 8 || st.Failed != 4 || st.Written != 16 || reported.Load() != 2 {
		t.Errorf("stored %d, stats %+v, reported %d", w.Len(), st, reported.Load())
	}
	// The processor is not wedged: later runs are written.
	_, _ = op.Call(context.Background(), poisonIn{Note: "after"})
	_ = tp.ForceFlush(context.Background())
	if w.Len() != 9 {
		t.Errorf("stored %d after the rejection", w.Len())
	}
}

// TestMergesStatesWhileTheStoreFails: while writes fail, the writer keeps
// taking the states that arrive and merging those of one run, so a queue of
// 50 entries takes 40 calls (80 states) without blocking any of them.
func TestMergesStatesWhileTheStoreFails(t *testing.T) {
	w := &switchWriter{Store: memstore.New()}
	w.down.Store(true)
	op, p, tp := setup(t, w, taskrun.WithQueueSize(50), taskrun.WithBatchInterval(time.Millisecond),
		taskrun.WithRetryBackoff(time.Millisecond, 5*time.Millisecond), taskrun.WithErrorHandler(func(error) {}))
	const calls = 40
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range calls {
			_, _ = op.Call(context.Background(), in{N: i})
			time.Sleep(100 * time.Microsecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		w.down.Store(false) // let the calls end before the test does
		<-done
		t.Fatalf("calls blocked on a queue of 50 entries while the store failed: %+v", p.Stats())
	}
	if st := p.Stats(); st.Written != 0 || st.Queued != 2*calls || st.Retried == 0 {
		t.Errorf("stats while the store fails: %+v", st)
	}
	w.down.Store(false)
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Written != 2*calls || st.Dropped != 0 || w.Len() != calls {
		t.Errorf("stats %+v, %d runs stored", st, w.Len())
	}
	for _, r := range w.All() {
		if r.Status != taskrun.StatusSuccess {
			t.Errorf("run %s is %s", r.ID, r.Status)
		}
	}
}
