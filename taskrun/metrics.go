package taskrun

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// meterName is the instrumentation scope of the processor's metrics.
const meterName = "github.com/otelop/otelop/taskrun"

// registerMetrics creates the processor's instruments (see
// WithMeterProvider) and the callback that observes them.
func (p *Processor) registerMetrics() {
	m := p.cfg.meters.Meter(meterName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	written := counter("otelop.taskrun.written", "{state}", "TaskRun states written to the store (a state merged into a later one counts when that one is written)")
	failed := counter("otelop.taskrun.failed", "{state}", "TaskRun states given up: rejected by the store, or neither written nor spilled by the end of shutdown")
	dropped := counter("otelop.taskrun.dropped", "{state}", "TaskRun states discarded because the queue was full (drop policy) or the processor was shut down")
	spilled := counter("otelop.taskrun.spilled", "{state}", "TaskRun states not written by the end of shutdown and kept in the spill file")
	retried := counter("otelop.taskrun.retried", "{write}", "Failed TaskRun writes that were retried")
	size := gauge("otelop.taskrun.queue.size", "{entry}", "Entries of the TaskRun queue in use: states waiting for the writer, and runs it holds")
	capacity := gauge("otelop.taskrun.queue.capacity", "{entry}", "Size of the TaskRun queue")
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := p.Stats()
		p.mu.Lock()
		used := len(p.buf) + p.held
		p.mu.Unlock()
		o.ObserveInt64(written, int64(st.Written))
		o.ObserveInt64(failed, int64(st.Failed))
		o.ObserveInt64(dropped, int64(st.Dropped))
		o.ObserveInt64(spilled, int64(st.Spilled))
		o.ObserveInt64(retried, int64(st.Retried))
		o.ObserveInt64(size, int64(used))
		o.ObserveInt64(capacity, int64(p.cfg.queueSize))
		return nil
	}, written, failed, dropped, spilled, retried, size, capacity)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		p.cfg.onError(fmt.Errorf("taskrun: the processor's metrics: %w", err))
	}
	p.metrics = reg
}
