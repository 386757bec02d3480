package taskrun_test

import (
	"context"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

// collect returns the processor's metrics by name: the value of the one
// data point of each, and its unit.
func collect(t *testing.T, r *sdkmetric.ManualReader) (values map[string]int64, units map[string]string) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	values, units = map[string]int64{}, map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/otelop/otelop/taskrun" {
			continue
		}
		for _, m := range sm.Metrics {
			units[m.Name] = m.Unit
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality || len(d.DataPoints) != 1 {
					t.Errorf("%s: %+v", m.Name, d)
				}
				for _, dp := range d.DataPoints {
					values[m.Name] += dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					values[m.Name] += dp.Value
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return values, units
}

// slowWriter takes a while for every write.
type slowWriter struct {
	*memstore.Store
	delay time.Duration
}

func (w slowWriter) Write(ctx context.Context, runs []taskrun.TaskRun) error {
	time.Sleep(w.delay)
	return w.Store.Write(ctx, runs)
}

// TestBlockPolicyUnderPressure: many concurrent calls through a tiny queue
// to a slow store: the calls wait for room, and every run is written.
func TestBlockPolicyUnderPressure(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	w := slowWriter{Store: memstore.New(), delay: time.Millisecond}
	op, p, tp := setup(t, w, taskrun.WithQueueSize(8), taskrun.WithBatchSize(4), taskrun.WithMeterProvider(mp))
	const goroutines, each = 32, 40
	var (
		mu  sync.Mutex
		ids = map[string]bool{}
		wg  sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				o, err := op.Call(context.Background(), in{N: g*each + i})
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				ids[o.TaskRunID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	const calls = goroutines * each
	st := p.Stats()
	if st.Dropped != 0 || st.Enqueued != 2*calls || st.Written != st.Enqueued || st.Queued != 0 {
		t.Errorf("stats = %+v", st)
	}
	runs := w.All()
	if len(runs) != calls || len(ids) != calls {
		t.Fatalf("%d runs stored for %d calls (%d ids)", len(runs), calls, len(ids))
	}
	for _, r := range runs {
		if !ids[r.ID] || r.Status != taskrun.StatusSuccess {
			t.Errorf("run %s: %s", r.ID, r.Status)
		}
	}
	values, _ := collect(t, reader)
	if values["otelop.taskrun.dropped"] != 0 || values["otelop.taskrun.written"] != 2*calls || values["otelop.taskrun.queue.capacity"] != 8 {
		t.Errorf("metrics %v", values)
	}
}

// TestDropPolicyMetric: with the Drop policy and a store that does not
// write, calls never wait, and every dropped state is counted, in Stats
// and in the otelop.taskrun.dropped metric alike.
func TestDropPolicyMetric(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	w := newGated(false, 0)
	op, p, tp := setup(t, w, taskrun.WithQueueSize(6), taskrun.WithBatchSize(2),
		taskrun.WithFullQueuePolicy(taskrun.Drop), taskrun.WithMeterProvider(mp))
	const calls = 300
	var slowest time.Duration
	for i := range calls {
		start := time.Now()
		_, _ = op.Call(context.Background(), in{N: i})
		slowest = max(slowest, time.Since(start))
	}
	values, units := collect(t, reader)
	st := p.Stats()
	if values["otelop.taskrun.dropped"] != int64(st.Dropped) || st.Dropped == 0 {
		t.Errorf("while the store holds: dropped metric %d, stats %+v", values["otelop.taskrun.dropped"], st)
	}
	if values["otelop.taskrun.queue.size"] != 6 || st.Queued != int(st.Enqueued) {
		t.Errorf("queue size metric %d, stats %+v", values["otelop.taskrun.queue.size"], st)
	}
	close(w.gate)
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	values, _ = collect(t, reader)
	st = p.Stats()
	stored := w.Len()
	if int64(st.Dropped) != values["otelop.taskrun.dropped"] || st.Dropped != 2*calls-st.Written || st.Written != st.Enqueued ||
		stored > calls || uint64(2*stored) < st.Written {
		t.Errorf("dropped metric %d, stats %+v, %d runs stored for %d calls", values["otelop.taskrun.dropped"], st, stored, calls)
	}
	if values["otelop.taskrun.written"] != int64(st.Written) || values["otelop.taskrun.failed"] != 0 || values["otelop.taskrun.queue.size"] != 0 {
		t.Errorf("metrics %v", values)
	}
	for name, unit := range map[string]string{
		"otelop.taskrun.written": "{state}", "otelop.taskrun.failed": "{state}", "otelop.taskrun.dropped": "{state}",
		"otelop.taskrun.spilled": "{state}", "otelop.taskrun.retried": "{write}",
		"otelop.taskrun.queue.size": "{entry}", "otelop.taskrun.queue.capacity": "{entry}",
	} {
		if units[name] != unit {
			t.Errorf("%s: unit %q, want %q", name, units[name], unit)
		}
	}
	t.Logf("drop policy: %d calls, %d states dropped (metric %d), %d written, %d runs stored, slowest call %v",
		calls, st.Dropped, values["otelop.taskrun.dropped"], st.Written, stored, slowest)

	// After Shutdown the processor no longer reports.
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if values, _ := collect(t, reader); len(values) != 0 {
		t.Errorf("metrics after Shutdown: %v", values)
	}
}
