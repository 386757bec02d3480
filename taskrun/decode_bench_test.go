package taskrun

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
)

type decodeBenchIn struct {
	otelop.Request
	JobID string `json:"job_id"`
	Title string `json:"title"`
}

type decodeBenchOut struct {
	otelop.Receipt
	JobID string `json:"job_id" otelop:"ref=jobs"`
}

// benchSpan returns the ended span of a real observed call.
func benchSpan(b *testing.B) sdktrace.ReadOnlySpan {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	op := otelop.Define(otelop.Spec{Name: "bench_op", Description: "d", Category: "bench", Tags: []string{"a", "b"}, Observed: true},
		func(_ context.Context, in decodeBenchIn) (decodeBenchOut, error) {
			return decodeBenchOut{JobID: in.JobID}, nil
		},
		otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
	in := decodeBenchIn{Request: otelop.Request{UserID: "u-1", Channel: "api"}, JobID: "job-1", Title: "a title"}
	if _, err := op.Call(context.Background(), in); err != nil {
		b.Fatal(err)
	}
	return exp.GetSpans().Snapshots()[0]
}

// BenchmarkFromSpan decodes the ended span of a real observed call into new
// memory: the Processor's work per run, on its own goroutine, for a Writer
// that is not a CopyingWriter.
func BenchmarkFromSpan(b *testing.B) {
	span := benchSpan(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := FromSpan(span); !ok {
			b.Fatal("not an operation span")
		}
	}
}

// BenchmarkDecodeReused decodes the same span the way the Processor does
// for a CopyingWriter: into the run and scratch memory of the last batch.
func BenchmarkDecodeReused(b *testing.B) {
	span := benchSpan(b)
	sc := scratch{reuse: true}
	var run TaskRun
	b.ReportAllocs()
	for b.Loop() {
		sc.reset()
		resetRun(&run)
		if !decodeSpan(&run, span, &sc) {
			b.Fatal("not an operation span")
		}
	}
}
