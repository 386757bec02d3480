package taskrun

import (
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelop/otelop/internal/attrs"
)

// RecordOperations wraps root so that operation spans are always recorded:
// where root drops an operation span, the span is recorded but not sampled,
// so the TaskRun processor still sees it (no audit record is lost to
// sampling) while exporters, which only take sampled spans, do not. Other
// spans keep root's decision. Operation spans are recognised by the
// otelop.taskrun.id attribute the wrapper sets at start.
//
// It is sdktrace.AlwaysRecord narrowed to operation spans, so sampling still
// saves the cost of recording everything else.
func RecordOperations(root sdktrace.Sampler) sdktrace.Sampler {
	return recordOperations{root}
}

type recordOperations struct{ root sdktrace.Sampler }

func (s recordOperations) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	res := s.root.ShouldSample(p)
	if res.Decision != sdktrace.Drop {
		return res
	}
	for _, kv := range p.Attributes {
		if kv.Key == attrs.TaskRunID {
			return sdktrace.SamplingResult{
				Decision:   sdktrace.RecordOnly,
				Attributes: res.Attributes,
				Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState(),
			}
		}
	}
	return res
}

func (s recordOperations) Description() string {
	return "RecordOperations{" + s.root.Description() + "}"
}
