package exporters_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otelop/otelop/exporters"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

// downStore is a store whose writes fail.
type downStore struct{ *memstore.Store }

func (downStore) Write(context.Context, []taskrun.TaskRun) error {
	return errors.New("store unavailable")
}

// TestSetupSpillFileFromEnv: with OTELOP_SPILL_FILE set, the TaskRuns that
// shutdown cannot write go to that file, and the next Setup writes them.
func TestSetupSpillFileFromEnv(t *testing.T) {
	clearOTelEnv(t)
	spill := filepath.Join(t.TempDir(), "otelop.spill")
	t.Setenv(exporters.SpillFileEnv, spill)

	tp, shutdown, err := exporters.Setup(context.Background(), exporters.WithoutGlobal(),
		exporters.WithStore(downStore{memstore.New()}), exporters.WithSpanExporter(tracetest.NewInMemoryExporter()),
		exporters.WithProcessorOptions(taskrun.WithErrorHandler(func(error) {}), taskrun.WithRetryBackoff(time.Millisecond, time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := pingOp(t, tp).Call(context.Background(), pingIn{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := shutdown(ctx); !errors.Is(err, taskrun.ErrSpilled) {
		t.Fatalf("shutdown = %v, want ErrSpilled", err)
	}
	if data, err := os.ReadFile(spill); err != nil || bytes.Count(data, []byte("\n")) != 1 || !bytes.Contains(data, []byte(out.TaskRunID)) {
		t.Fatalf("spill file %q, %v", data, err)
	}

	store := memstore.New()
	_, shutdown, err = exporters.Setup(context.Background(), exporters.WithoutGlobal(),
		exporters.WithStore(store), exporters.WithSpanExporter(tracetest.NewInMemoryExporter()))
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, err := store.Get(context.Background(), out.TaskRunID); err != nil || r.Status != taskrun.StatusSuccess {
		t.Errorf("run after the second Setup: %v, %v", r.Status, err)
	}
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spill file left: %v", err)
	}

	// An option wins over the variable.
	_, shutdown, err = exporters.Setup(context.Background(), exporters.WithoutGlobal(),
		exporters.WithStore(memstore.New()), exporters.WithSpanExporter(tracetest.NewInMemoryExporter()),
		exporters.WithProcessorOptions(taskrun.WithSpillFile("")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WithSpillFile(\"\") still opened the spill file: %v", err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
