package taskruntest

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

// Harness is a TracerProvider whose spans go to an in-memory exporter and,
// through a TaskRun Processor, to an in-memory store.
type Harness struct {
	TracerProvider *sdktrace.TracerProvider
	Store          *memstore.Store
	Processor      *taskrun.Processor
	// Registry is a fresh registry for the test's operations, so that tests
	// can define operations with the same names without clashing.
	Registry *registry.Registry

	t        testing.TB
	exporter *tracetest.InMemoryExporter
}

// New returns a Harness whose provider is shut down by t.Cleanup. The
// processor uses a 1ms batch interval so that RUNNING states show up fast.
func New(t testing.TB, opts ...taskrun.ProcessorOption) *Harness {
	t.Helper()
	h := &Harness{
		Store:    memstore.New(),
		Registry: registry.New(),
		exporter: tracetest.NewInMemoryExporter(),
		t:        t,
	}
	h.Processor = taskrun.NewProcessor(h.Store, append([]taskrun.ProcessorOption{taskrun.WithBatchInterval(time.Millisecond)}, opts...)...)
	h.TracerProvider = sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(h.exporter),
		sdktrace.WithSpanProcessor(h.Processor),
	)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.TracerProvider.Shutdown(ctx); err != nil {
			t.Errorf("taskruntest: shutting down the tracer provider: %v", err)
		}
		_ = h.Store.Close(ctx)
	})
	return h
}

// Options returns the otelop options that route an operation's spans to
// the harness and register it in the harness's registry.
func (h *Harness) Options() []otelop.Option {
	return []otelop.Option{otelop.WithTracerProvider(h.TracerProvider), otelop.WithRegistry(h.Registry)}
}

// Flush force-flushes the provider: every span ended so far is exported and
// every TaskRun state enqueued so far is written.
func (h *Harness) Flush() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.TracerProvider.ForceFlush(ctx); err != nil {
		h.t.Fatalf("taskruntest: flush: %v", err)
	}
}

// Spans returns the ended spans, in end order.
func (h *Harness) Spans() tracetest.SpanStubs { return h.exporter.GetSpans() }

// Runs flushes and returns every run in the store, newest first.
func (h *Harness) Runs() []taskrun.TaskRun {
	h.t.Helper()
	h.Flush()
	return h.Store.All()
}

// Run flushes and returns the run with the given id, failing the test when
// there is none.
func (h *Harness) Run(id string) taskrun.TaskRun {
	h.t.Helper()
	h.Flush()
	r, err := h.Store.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("taskruntest: run %s: %v", id, err)
	}
	return r
}
