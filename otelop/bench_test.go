package otelop_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
	"github.com/otelop/otelop/taskrun/sqlitestore"
)

// The benchmarks of this file measure what observing an operation costs,
// always against a baseline measured in the same run: a direct call for an
// unobserved Call, a bare SDK span with the same attributes for an
// observed one. Names carry their variables (impl=, input=) so that
// benchstat can set them side by side:
//
//	go test -run '^$' -bench . -count 6 ./otelop > bench.txt
//	benchstat -col /impl bench.txt
//
// scripts/bench.sh runs them all.

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

// benchInputs are the inputs measured: a small one (about 100 bytes of
// JSON), 1 KiB and 64 KiB (just under the default input limit, so
// recorded whole).
var benchInputs = []struct {
	name string
	in   benchIn
}{
	{"small", benchInput(0)},
	{"1KiB", benchInput(1 << 10)},
	{"64KiB", benchInput(64<<10 - 200)},
}

func benchInput(size int) benchIn {
	title := "a title"
	if size > 0 {
		title = strings.Repeat("t", size-100)
	}
	return benchIn{Request: otelop.Request{UserID: "u-1", Channel: "api"}, JobID: "job-1", Title: title}
}

var (
	sinkOut benchOut
	sinkInt int
)

type noopProcessor struct{}

func (noopProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (noopProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (noopProcessor) Shutdown(context.Context) error                  { return nil }
func (noopProcessor) ForceFlush(context.Context) error                { return nil }

// discardExporter is a SpanExporter that keeps nothing: with the SDK's
// BatchSpanProcessor, the cost of handing every span to an asynchronous
// pipeline, as any trace exporter does.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// discard is a Writer that keeps nothing: the Processor's own cost.
type discard struct{}

func (discard) Write(context.Context, []taskrun.TaskRun) error { return nil }

// CopiesRuns makes discard a taskrun.CopyingWriter, like the stores.
func (d discard) CopiesRuns() taskrun.Writer { return d }

// operationSpanAttrs returns the attributes (start and end) of one observed
// call's span, so the bare-span baseline carries exactly the same ones.
func operationSpanAttrs(b *testing.B, in benchIn) []attribute.KeyValue {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	op := benchOp(tp)
	if _, err := op.Call(context.Background(), in); err != nil {
		b.Fatal(err)
	}
	return exp.GetSpans()[0].Attributes
}

// BenchmarkUnobserved compares a direct call of a function with an
// unobserved Call of the same function, with a one-field input and a
// ~100-byte one passed from a variable and as a literal.
func BenchmarkUnobserved(b *testing.B) {
	ctx := context.Background()
	b.Run("input=small/impl=direct", func(b *testing.B) {
		in := smallIn{N: 1}
		b.ReportAllocs()
		for b.Loop() {
			sinkInt, _ = smallFn(ctx, in)
		}
	})
	b.Run("input=small/impl=unobserved", func(b *testing.B) {
		op := otelop.Define(otelop.Spec{Name: "small_op", Description: "d", Category: "bench"}, smallFn, otelop.WithRegistry(registry.New()))
		in := smallIn{N: 1}
		b.ReportAllocs()
		for b.Loop() {
			sinkInt, _ = op.Call(ctx, in)
		}
	})
	// A ~100-byte input, passed from a local variable and as a composite
	// literal: the compiler copies the two differently.
	b.Run("input=100B_var/impl=direct", func(b *testing.B) {
		in := benchInputs[0].in
		b.ReportAllocs()
		for b.Loop() {
			sinkOut, _ = benchFn(ctx, in)
		}
	})
	b.Run("input=100B_var/impl=unobserved", func(b *testing.B) {
		op := unobservedBenchOp()
		in := benchInputs[0].in
		b.ReportAllocs()
		for b.Loop() {
			sinkOut, _ = op.Call(ctx, in)
		}
	})
	b.Run("input=100B_literal/impl=direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkOut, _ = benchFn(ctx, benchIn{Request: otelop.Request{UserID: "u-1", Channel: "api"}, JobID: "job-1", Title: "a title"})
		}
	})
	b.Run("input=100B_literal/impl=unobserved", func(b *testing.B) {
		op := unobservedBenchOp()
		b.ReportAllocs()
		for b.Loop() {
			sinkOut, _ = op.Call(ctx, benchIn{Request: otelop.Request{UserID: "u-1", Channel: "api"}, JobID: "job-1", Title: "a title"})
		}
	})
}

func unobservedBenchOp() *otelop.Op[benchIn, benchOut] {
	spec := benchSpec
	spec.Observed = false
	return otelop.Define(spec, benchFn, otelop.WithRegistry(registry.New()))
}

type smallIn struct {
	otelop.Request
	N int `json:"n"`
}

//go:noinline
func smallFn(_ context.Context, in smallIn) (int, error) { return in.N + 1, nil }

// benchOp defines the benchmark operation, observed, on tp.
func benchOp(tp *sdktrace.TracerProvider) *otelop.Op[benchIn, benchOut] {
	return otelop.Define(benchSpec, benchFn, otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
}

// observedOp defines the benchmark operation on a provider whose Processor
// writes to w, and returns a check to run after the loop: every run
// written, none dropped.
func observedOp(b *testing.B, w taskrun.Writer) (*otelop.Op[benchIn, benchOut], func()) {
	b.Helper()
	ctx := context.Background()
	p := taskrun.NewProcessor(w)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	op := benchOp(tp)
	return op, func() {
		b.StopTimer()
		if err := tp.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		if st := p.Stats(); st.Dropped != 0 || st.Failed != 0 || st.Written != st.Enqueued {
			b.Fatalf("processor stats %+v", st)
		}
	}
}

func sqliteWriter(b *testing.B) taskrun.Writer {
	st, err := sqlitestore.Open(context.Background(), b.TempDir()+"/bench.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// BenchmarkOverhead compares an observed Call with the bare SDK span it
// opens. Baselines: bare_span, the span with the same attributes on a
// provider without processors; bare_span_processor, the same on a provider
// with a processor that does nothing (the SDK then snapshots every ended
// span, as it does for any exporter: the fair baseline); bare_span_batch,
// the same with the SDK's BatchSpanProcessor and an exporter that discards
// (spans handed to another goroutine, as by any trace exporter). Then the
// observed Call: with a processor that does nothing instead of the TaskRun
// Processor (wrapper_only: otelop's own work on the caller's goroutine,
// small input), and with the TaskRun Processor writing to a discarding
// writer, memstore and an SQLite file, and with Verbose (three log entries
// per call).
func BenchmarkOverhead(b *testing.B) {
	ctx := context.Background()
	for _, input := range benchInputs {
		for _, base := range bareSpanBaselines {
			b.Run(fmt.Sprintf("input=%s/impl=%s", input.name, base.name), func(b *testing.B) {
				benchBareSpan(b, input.in, base.opts())
			})
		}
		if input.name == "small" {
			b.Run("input=small/impl=wrapper_only", func(b *testing.B) { benchWrapperOnly(b, input.in) })
		}
		for _, c := range []struct {
			name    string
			w       func(*testing.B) taskrun.Writer
			verbose bool
			all     bool // measured with every input, not only the small one
		}{
			{"discard", func(*testing.B) taskrun.Writer { return discard{} }, false, true},
			{"discard_verbose", func(*testing.B) taskrun.Writer { return discard{} }, true, false},
			{"memstore", func(*testing.B) taskrun.Writer { return memstore.New() }, false, false},
			{"sqlite", sqliteWriter, false, true},
		} {
			if !c.all && input.name != "small" {
				continue
			}
			b.Run(fmt.Sprintf("input=%s/impl=%s", input.name, c.name), func(b *testing.B) {
				op, check := observedOp(b, c.w(b))
				in := input.in
				in.Verbose = c.verbose
				b.ReportAllocs()
				for b.Loop() {
					sinkOut, _ = op.Call(ctx, in)
				}
				check()
			})
		}
	}
}

// bareSpanBaselines are the providers of the bare-span baselines; each
// returns new options, since a BatchSpanProcessor starts its goroutine
// when made.
var bareSpanBaselines = []struct {
	name string
	opts func() []sdktrace.TracerProviderOption
}{
	{"bare_span_processor", func() []sdktrace.TracerProviderOption {
		return []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(noopProcessor{})}
	}},
	{"bare_span", func() []sdktrace.TracerProviderOption { return nil }},
	{"bare_span_batch", func() []sdktrace.TracerProviderOption {
		return []sdktrace.TracerProviderOption{sdktrace.WithBatcher(discardExporter{})}
	}},
}

// benchBareSpan measures a span with the attributes of an operation span
// of input in, on a provider made with opts.
func benchBareSpan(b *testing.B, in benchIn, opts []sdktrace.TracerProviderOption) {
	ctx := context.Background()
	kv := operationSpanAttrs(b, in)
	tp := sdktrace.NewTracerProvider(opts...)
	defer func() { _ = tp.Shutdown(ctx) }()
	tr := tp.Tracer("bench")
	b.ReportAllocs()
	for b.Loop() {
		_, s := tr.Start(ctx, "bench_op", trace.WithAttributes(kv...))
		s.End()
	}
}

// benchWrapperOnly measures the observed call on a provider whose only
// processor does nothing: otelop's own work on the caller's goroutine,
// without the TaskRun Processor.
func benchWrapperOnly(b *testing.B, in benchIn) {
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(noopProcessor{}))
	defer func() { _ = tp.Shutdown(ctx) }()
	op := benchOp(tp)
	b.ReportAllocs()
	for b.Loop() {
		sinkOut, _ = op.Call(ctx, in)
	}
}

// BenchmarkLiveHeap is the small-input part of BenchmarkOverhead in a
// process that holds 64 MiB of live heap, as a service does: the collector
// then runs about as often per call as it would there, rather than every
// few hundred calls as in a test binary whose heap is a few megabytes.
func BenchmarkLiveHeap(b *testing.B) {
	heap := make([]byte, 64<<20)
	for i := range heap {
		heap[i] = 1 // resident, not only reserved
	}
	defer runtime.KeepAlive(heap)
	ctx := context.Background()
	in := benchInputs[0].in
	for _, base := range bareSpanBaselines {
		if base.name == "bare_span" {
			continue
		}
		b.Run("heap=64MiB/impl="+base.name, func(b *testing.B) {
			benchBareSpan(b, in, base.opts())
		})
	}
	b.Run("heap=64MiB/impl=wrapper_only", func(b *testing.B) { benchWrapperOnly(b, in) })
	for _, c := range []struct {
		name string
		w    taskrun.Writer
	}{
		{"discard", discard{}},
		{"memstore", memstore.New()},
	} {
		b.Run("heap=64MiB/impl="+c.name, func(b *testing.B) {
			op, check := observedOp(b, c.w)
			b.ReportAllocs()
			for b.Loop() {
				sinkOut, _ = op.Call(ctx, in)
			}
			check()
		})
	}
}

// BenchmarkParallel is BenchmarkOverhead with calls from every core at once.
func BenchmarkParallel(b *testing.B) {
	ctx := context.Background()
	in := benchInputs[0].in
	b.Run("impl=bare_span_processor", func(b *testing.B) {
		kv := operationSpanAttrs(b, in)
		tr := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(noopProcessor{})).Tracer("bench")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, s := tr.Start(ctx, "bench_op", trace.WithAttributes(kv...))
				s.End()
			}
		})
	})
	b.Run("impl=discard", func(b *testing.B) {
		op, check := observedOp(b, discard{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = op.Call(ctx, in)
			}
		})
		check()
	})
}

// BenchmarkSustained measures end-to-end throughput: b.N observed calls from
// 2×GOMAXPROCS goroutines through the Processor (default options: blocking
// when full) into a store, timed until the last TaskRun is written. It
// reports calls/s and fails on any dropped or failed run.
func BenchmarkSustained(b *testing.B) {
	for _, c := range []struct {
		name string
		w    func(*testing.B) taskrun.Writer
	}{
		{"memstore", func(*testing.B) taskrun.Writer { return memstore.New() }},
		{"sqlite", sqliteWriter},
	} {
		b.Run("store="+c.name, func(b *testing.B) {
			ctx := context.Background()
			p := taskrun.NewProcessor(c.w(b))
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
			defer func() { _ = tp.Shutdown(ctx) }()
			op := benchOp(tp)
			in := benchInputs[0].in
			workers := 2 * runtime.GOMAXPROCS(0)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range workers {
				n := b.N / workers
				if w < b.N%workers {
					n++
				}
				wg.Go(func() {
					for range n {
						_, _ = op.Call(ctx, in)
					}
				})
			}
			wg.Wait()
			if err := tp.ForceFlush(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
			if st := p.Stats(); st.Dropped != 0 || st.Failed != 0 || st.Written != st.Enqueued {
				b.Fatalf("processor stats %+v", st)
			}
		})
	}
}
