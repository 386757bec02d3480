package taskrun_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
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

// BenchmarkFromSpan decodes the ended span of a real observed call: the
// Processor's work per run, on its own goroutine.
func BenchmarkFromSpan(b *testing.B) {
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
	span := exp.GetSpans().Snapshots()[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := taskrun.FromSpan(span); !ok {
			b.Fatal("not an operation span")
		}
	}
}
