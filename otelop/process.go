package otelop

import (
	"context"
	"os"
	"sync"

	"go.opentelemetry.io/contrib/propagators/envcar"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelop/otelop/internal/attrs"
)

// Environment variables read once per process.
const (
	// PrefectFlowRunEnv is set by Prefect in the processes its workers start.
	PrefectFlowRunEnv = "PREFECT__FLOW_RUN_ID"
	// PrefectOrchestrator is the orchestrator recorded for such processes.
	PrefectOrchestrator = "prefect"
)

// processContext is what the process's environment says about the run it
// belongs to: a parent span (TRACEPARENT, TRACESTATE), baggage (BAGGAGE),
// and an orchestration (Prefect's PREFECT__FLOW_RUN_ID).
type processContext struct {
	parent trace.SpanContext
	bag    baggage.Baggage
	orch   Orchestration
	meta   []attribute.KeyValue // otelop.metadata.* of the process's flow run
}

// prefectRuntimeEnv maps the variables through which Prefect exposes its
// runtime context (prefect.runtime, PREFECT__RUNTIME__<MODULE>__<FIELD>) to
// the TaskRun metadata keys they fill when present.
var prefectRuntimeEnv = [][2]string{
	{"PREFECT__RUNTIME__FLOW_RUN__NAME", "prefect_flow_run_name"},
	{"PREFECT__RUNTIME__FLOW_RUN__FLOW_NAME", "prefect_flow_name"},
	{"PREFECT__RUNTIME__DEPLOYMENT__ID", "prefect_deployment_id"},
	{"PREFECT__RUNTIME__DEPLOYMENT__NAME", "prefect_deployment_name"},
}

var process = sync.OnceValue(func() processContext {
	var pc processContext
	carrier := &envcar.Carrier{}
	ctx := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}).
		Extract(context.Background(), carrier)
	pc.parent = trace.SpanContextFromContext(ctx)
	pc.bag = baggage.FromContext(ctx)
	if id := os.Getenv(PrefectFlowRunEnv); id != "" {
		pc.orch = Orchestration{Orchestrator: PrefectOrchestrator, FlowRunID: id}
		for _, kv := range prefectRuntimeEnv {
			if v := os.Getenv(kv[0]); v != "" {
				pc.meta = append(pc.meta, attribute.String(attrs.MetadataPrefix+kv[1], v))
			}
		}
	}
	return pc
})

// withProcessParent makes a call without a span in ctx a child of the span
// the process was started under (TRACEPARENT, the OTel environment carrier
// that Prefect and other launchers set), and gives it the process's BAGGAGE
// when ctx carries none.
func withProcessParent(ctx context.Context) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	pc := process()
	if pc.parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, pc.parent)
	}
	if pc.bag.Len() > 0 && baggage.FromContext(ctx).Len() == 0 {
		ctx = baggage.ContextWithBaggage(ctx, pc.bag)
	}
	return ctx
}
