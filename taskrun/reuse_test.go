package taskrun_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

// copyingWriter is a CopyingWriter: it keeps the JSON of the last state
// written for each id, final states over RUNNING ones.
type copyingWriter struct {
	mu   sync.Mutex
	docs map[string][]byte
}

func (w *copyingWriter) CopiesRuns() taskrun.Writer { return w }

func (w *copyingWriter) Write(_ context.Context, runs []taskrun.TaskRun) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range runs {
		b, err := json.Marshal(&runs[i])
		if err != nil {
			return err
		}
		if _, had := w.docs[runs[i].ID]; !had || runs[i].Status.Final() {
			w.docs[runs[i].ID] = b
		}
	}
	return nil
}

// keepingWriter keeps the runs it is given, as a Writer may when it is not
// a CopyingWriter. It embeds one, whose CopiesRuns it inherits: the
// Processor must still not take it for one.
type keepingWriter struct {
	*memstore.Store
	mu   sync.Mutex
	runs map[string]taskrun.TaskRun
}

func (w *keepingWriter) Write(_ context.Context, runs []taskrun.TaskRun) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range runs {
		if _, had := w.runs[r.ID]; !had || r.Status.Final() {
			w.runs[r.ID] = r
		}
	}
	return nil
}

type reuseIn struct {
	otelop.Request
	N    int    `json:"n"`
	Text string `json:"text"`
}

type reuseOut struct {
	otelop.Receipt
	IDs []string `json:"ids" otelop:"ref=things"`
}

// TestCopyingWriterReuse checks that the memory the Processor reuses
// between the batches of a CopyingWriter never shows through: every run a
// CopyingWriter and a Writer that keeps its runs were given (batches of 7
// and 5, so that memory is reused many times over) equals the run decoded
// from the exported span, for operations with different tags, result
// references, inputs of different sizes, failures and log entries.
func TestCopyingWriterReuse(t *testing.T) {
	ctx := context.Background()
	cw := &copyingWriter{docs: map[string][]byte{}}
	kw := &keepingWriter{Store: memstore.New(), runs: map[string]taskrun.TaskRun{}}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(taskrun.NewProcessor(cw, taskrun.WithBatchSize(7))),
		sdktrace.WithSpanProcessor(taskrun.NewProcessor(kw, taskrun.WithBatchSize(5))),
		sdktrace.WithSyncer(exp),
	)
	reg := registry.New()
	fn := func(ctx context.Context, in reuseIn) (reuseOut, error) {
		if in.N%5 == 4 {
			return reuseOut{}, fmt.Errorf("call %d failed", in.N)
		}
		ids := make([]string, in.N%4)
		for i := range ids {
			ids[i] = fmt.Sprintf("thing-%d-%d", in.N, i)
		}
		return reuseOut{IDs: ids}, nil
	}
	ops := []*otelop.Op[reuseIn, reuseOut]{
		otelop.Define(otelop.Spec{Name: "reuse_a", Description: "d", Category: "test", Tags: []string{"a", "b"}, Observed: true}, fn,
			otelop.WithRegistry(reg), otelop.WithTracerProvider(tp)),
		otelop.Define(otelop.Spec{Name: "reuse_b", Description: "d", Category: "other", Tags: []string{"c"}, Observed: true}, fn,
			otelop.WithRegistry(reg), otelop.WithTracerProvider(tp)),
		otelop.Define(otelop.Spec{Name: "reuse_c", Description: "d", Category: "other", Observed: true}, fn,
			otelop.WithRegistry(reg), otelop.WithTracerProvider(tp)),
	}
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range 100 {
				n := g*100 + i
				in := reuseIn{N: n, Text: strings.Repeat("x", n*7%300)}
				in.UserID = fmt.Sprintf("user-%d", n%3)
				in.Verbose = n%7 == 0
				_, _ = ops[n%len(ops)].Call(ctx, in)
			}
		})
	}
	wg.Wait()
	spans := exp.GetSpans().Snapshots()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(spans) != 300 {
		t.Fatalf("%d spans, want 300", len(spans))
	}
	failed := 0
	for _, s := range spans {
		want, ok := taskrun.FromSpan(s)
		if !ok {
			t.Fatalf("span %s is not an operation span", s.Name())
		}
		if want.Status == taskrun.StatusFailed {
			failed++
		}
		wantJSON, err := json.Marshal(&want)
		if err != nil {
			t.Fatal(err)
		}
		if got := cw.docs[want.ID]; string(got) != string(wantJSON) {
			t.Errorf("CopyingWriter got\n%s\nwant\n%s", got, wantJSON)
		}
		kept, ok := kw.runs[want.ID]
		if !ok {
			t.Errorf("run %s not kept", want.ID)
			continue
		}
		keptJSON, err := json.Marshal(&kept)
		if err != nil {
			t.Fatal(err)
		}
		if string(keptJSON) != string(wantJSON) {
			t.Errorf("kept run changed after Write returned\n%s\nwant\n%s", keptJSON, wantJSON)
		}
	}
	if failed != 60 {
		t.Errorf("%d failed runs, want 60", failed)
	}
	if len(cw.docs) != 300 || len(kw.runs) != 300 {
		t.Errorf("%d and %d runs written, want 300", len(cw.docs), len(kw.runs))
	}
}
