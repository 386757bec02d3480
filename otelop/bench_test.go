package otelop_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

type benchIn struct {
	otelop.Request
	JobID string `json:"job_id"`
	Title string `json:"title"`
}

type benchOut struct {
	otelop.Receipt
	JobID string `json:"job_id" otelop:"ref=jobs"`
}

//go:noinline
func benchFn(_ context.Context, in benchIn) (benchOut, error) {
	return benchOut{JobID: in.JobID}, nil
}

var benchSpec = otelop.Spec{Name: "bench_op", Description: "d", Category: "bench", Tags: []string{"a", "b"}, Observed: true}

var benchInput = benchIn{Request: otelop.Request{UserID: "u-1", Channel: "api"}, JobID: "job-1", Title: "a title"}

var sinkOut benchOut

// BenchmarkUnobserved compares a direct call of a function with an
// unobserved Call of the same function.
func BenchmarkUnobserved(b *testing.B) {
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkOut, _ = benchFn(ctx, benchInput)
		}
	})
	b.Run("unobserved", func(b *testing.B) {
		spec := benchSpec
		spec.Observed = false
		op := otelop.Define(spec, benchFn, otelop.WithRegistry(registry.New()))
		b.ReportAllocs()
		for b.Loop() {
			sinkOut, _ = op.Call(ctx, benchInput)
		}
	})
}

type noopProcessor struct{}

func (noopProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (noopProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (noopProcessor) Shutdown(context.Context) error                  { return nil }
func (noopProcessor) ForceFlush(context.Context) error                { return nil }

type discard struct{}

func (discard) Write(context.Context, []taskrun.TaskRun) error { return nil }

// operationSpanAttrs returns the attributes (start and end) of one observed
// call's span, so the bare-span baseline carries exactly the same ones.
func operationSpanAttrs(b *testing.B) []attribute.KeyValue {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	op := otelop.Define(benchSpec, benchFn, otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
	if _, err := op.Call(context.Background(), benchInput); err != nil {
		b.Fatal(err)
	}
	return exp.GetSpans()[0].Attributes
}

// BenchmarkObserved compares an observed Call, with the TaskRun processor
// writing to a discarding writer or to memstore, with a bare SDK span
// started and ended with the same attributes.
func BenchmarkObserved(b *testing.B) {
	ctx := context.Background()
	// The baselines: a bare span with the attributes of an operation span,
	// on a provider without processors, and on one with a processor that
	// does nothing (the SDK then snapshots each ended span, as it does for
	// any exporter).
	for _, c := range []struct {
		name string
		opts []sdktrace.TracerProviderOption
	}{
		{"bare_span", nil},
		{"bare_span_noop_processor", []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(noopProcessor{})}},
	} {
		b.Run(c.name, func(b *testing.B) {
			kv := operationSpanAttrs(b)
			tp := sdktrace.NewTracerProvider(c.opts...)
			tr := tp.Tracer("bench")
			b.ReportAllocs()
			for b.Loop() {
				_, s := tr.Start(ctx, "bench_op", trace.WithAttributes(kv...))
				s.End()
			}
		})
	}
	for _, c := range []struct {
		name string
		w    func() taskrun.Writer
	}{
		{"call_discard", func() taskrun.Writer { return discard{} }},
		{"call_memstore", func() taskrun.Writer { return memstore.New() }},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := taskrun.NewProcessor(c.w())
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
			defer func() { _ = tp.Shutdown(ctx) }()
			op := otelop.Define(benchSpec, benchFn, otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
			b.ReportAllocs()
			for b.Loop() {
				sinkOut, _ = op.Call(ctx, benchInput)
			}
			b.StopTimer()
			if err := tp.ForceFlush(ctx); err != nil {
				b.Fatal(err)
			}
			if st := p.Stats(); st.Dropped != 0 || st.Written != st.Enqueued {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}

type smallIn struct {
	otelop.Request
	N int `json:"n"`
}

//go:noinline
func smallFn(_ context.Context, in smallIn) (int, error) { return in.N + 1, nil }

var sinkInt int

// BenchmarkUnobservedSmall is BenchmarkUnobserved with a one-field input
// besides the Request.
func BenchmarkUnobservedSmall(b *testing.B) {
	ctx := context.Background()
	in := smallIn{N: 1}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			sinkInt, _ = smallFn(ctx, in)
		}
	})
	b.Run("unobserved", func(b *testing.B) {
		op := otelop.Define(otelop.Spec{Name: "small_op", Description: "d", Category: "bench"}, smallFn, otelop.WithRegistry(registry.New()))
		b.ReportAllocs()
		for b.Loop() {
			sinkInt, _ = op.Call(ctx, in)
		}
	})
}
