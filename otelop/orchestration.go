package otelop

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelop/otelop/internal/attrs"
)

// Orchestration says which workflow run an operation call belongs to. The
// zero value means the call is not orchestrated.
type Orchestration struct {
	Orchestrator string // "otelop", "prefect", "temporal", ...
	FlowRunID    string
	TaskRunID    string
	// Attempt is the try number of the task run (1 for the first), 0 when
	// the orchestrator does not say; recorded as metadata.attempt.
	Attempt int
}

// Detector recognises that a call runs inside a workflow engine. Detect is
// called on every observed call, so it must be cheap when it finds nothing;
// it must be safe for concurrent use and must not block.
type Detector interface {
	Detect(ctx context.Context) (Orchestration, bool)
}

// DetectorFunc adapts a function to [Detector].
type DetectorFunc func(ctx context.Context) (Orchestration, bool)

// Detect calls f.
func (f DetectorFunc) Detect(ctx context.Context) (Orchestration, bool) { return f(ctx) }

var (
	detectorsMu sync.Mutex
	detectors   atomic.Pointer[[]Detector]
)

// RegisterDetector adds d to the detectors consulted on every observed call.
//
// Precedence, most local first: a built-in [Flow] or [Task] run (or
// [ContextWithOrchestration]) in the context; then the registered detectors,
// in registration order, the first that matches deciding; then the W3C
// baggage members an orchestrated upstream service sent along; last, the
// process's environment: PREFECT__FLOW_RUN_ID, which Prefect sets in the
// processes its workers start (orchestrator "prefect").
func RegisterDetector(d Detector) {
	if d == nil {
		return
	}
	detectorsMu.Lock()
	defer detectorsMu.Unlock()
	var next []Detector
	if cur := detectors.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, d)
	detectors.Store(&next)
}

type orchKey struct{}

// OrchestrationFrom returns the built-in flow or task run that ctx is in.
func OrchestrationFrom(ctx context.Context) (Orchestration, bool) {
	o, ok := ctx.Value(orchKey{}).(Orchestration)
	return o, ok
}

// W3C baggage members that carry an orchestration to downstream services.
const (
	BaggageOrchestrator = "otelop.orchestrator"
	BaggageFlowRunID    = "otelop.flow_run_id"
	BaggageTaskRunID    = "otelop.task_run_id"
)

// ContextWithOrchestration returns a context whose operation calls are
// recorded as part of o. Detectors and adapters for other engines use it.
// It also sets the W3C baggage members otelop.orchestrator,
// otelop.flow_run_id and otelop.task_run_id, so that a service called with
// this context (through a propagator that carries baggage, such as otelhttp
// with the global TraceContext+Baggage propagator) records its operation
// calls as part of the same run.
func ContextWithOrchestration(ctx context.Context, o Orchestration) context.Context {
	bag := baggage.FromContext(ctx)
	for _, m := range [][2]string{{BaggageOrchestrator, o.Orchestrator}, {BaggageFlowRunID, o.FlowRunID}, {BaggageTaskRunID, o.TaskRunID}} {
		if m[1] == "" {
			bag = bag.DeleteMember(m[0])
			continue
		}
		if member, err := baggage.NewMemberRaw(m[0], m[1]); err == nil {
			if b, err := bag.SetMember(member); err == nil {
				bag = b
			}
		}
	}
	ctx = baggage.ContextWithBaggage(ctx, bag)
	return context.WithValue(ctx, orchKey{}, o)
}

// fromBaggage reads an orchestration an upstream service put in the W3C
// baggage.
func fromBaggage(ctx context.Context) (Orchestration, bool) {
	bag := baggage.FromContext(ctx)
	if bag.Len() == 0 {
		return Orchestration{}, false
	}
	o := Orchestration{
		Orchestrator: bag.Member(BaggageOrchestrator).Value(),
		FlowRunID:    bag.Member(BaggageFlowRunID).Value(),
		TaskRunID:    bag.Member(BaggageTaskRunID).Value(),
	}
	return o, o.Orchestrator != ""
}

func detect(ctx context.Context) Orchestration {
	if o, ok := OrchestrationFrom(ctx); ok {
		return o
	}
	if ds := detectors.Load(); ds != nil {
		for _, d := range *ds {
			if o, ok := d.Detect(ctx); ok && o.Orchestrator != "" {
				return o
			}
		}
	}
	if o, ok := fromBaggage(ctx); ok {
		return o
	}
	return process().orch
}

// Orchestrator is the name recorded for built-in flow and task runs.
const Orchestrator = "otelop"

// Flow runs fn as a flow run: a span named "flow NAME" with a new flow run
// id, and a context in which every operation call is recorded as
// orchestrated by "otelop" with that flow run id. The error of fn is
// returned unchanged; a panic is recorded on the span and re-raised.
//
// The span comes from the tracer provider of the span in ctx when that span
// is recording, otherwise from otel.GetTracerProvider().
func Flow(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	id := newID()
	ctx = ContextWithOrchestration(ctx, Orchestration{Orchestrator: Orchestrator, FlowRunID: id})
	return runSpan(ctx, "flow "+name, fn,
		attrs.FlowName.String(name), attrs.FlowRunID.String(id),
		attrs.Orchestrator.String(Orchestrator))
}

// Task runs fn as a task run inside the current flow run: a span named
// "task NAME" with a new task run id; operation calls inside it carry both
// the flow run id and the task run id. Outside a flow, the task run stands
// alone (no flow run id).
func Task(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	o, ok := OrchestrationFrom(ctx)
	if !ok {
		o, _ = fromBaggage(ctx) // a task of a flow run upstream
	}
	o.Orchestrator = Orchestrator
	o.TaskRunID = newID()
	ctx = ContextWithOrchestration(ctx, o)
	kv := []attribute.KeyValue{attrs.TaskName.String(name), attrs.TaskRunIDOfTask.String(o.TaskRunID), attrs.Orchestrator.String(Orchestrator)}
	if o.FlowRunID != "" {
		kv = append(kv, attrs.FlowRunID.String(o.FlowRunID))
	}
	return runSpan(ctx, "task "+name, fn, kv...)
}

func flowTracer(ctx context.Context) trace.Tracer {
	if s := trace.SpanFromContext(ctx); s.IsRecording() {
		return s.TracerProvider().Tracer(attrs.FlowTracerName)
	}
	return otel.GetTracerProvider().Tracer(attrs.FlowTracerName)
}

func runSpan(ctx context.Context, name string, fn func(context.Context) error, kv ...attribute.KeyValue) (err error) {
	ctx, span := flowTracer(ctx).Start(withProcessParent(ctx), name, trace.WithAttributes(kv...))
	defer func() {
		if r := recover(); r != nil {
			span.SetStatus(codes.Error, recordPanic(span, r))
			span.End()
			panic(r)
		}
	}()
	err = fn(ctx)
	if err != nil {
		span.SetAttributes(attrs.ErrorType.String(errorType(err)))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetStatus(codes.Ok, "")
	}
	span.End()
	return err
}
