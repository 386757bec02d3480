package otelop

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/baggage"
)

// BenchmarkDetect measures orchestration detection on every observed call:
// nothing to find (the common case), a built-in flow run in the context, and
// an orchestration received in the W3C baggage (with an unrelated member
// first).
func BenchmarkDetect(b *testing.B) {
	m1, _ := baggage.NewMemberRaw("tenant", "acme")
	m2, _ := baggage.NewMemberRaw(BaggageOrchestrator, "prefect")
	m3, _ := baggage.NewMemberRaw(BaggageFlowRunID, "flow-1")
	bag, _ := baggage.New(m1, m2, m3)
	cases := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"nothing", context.Background(), ""},
		{"flow_in_context", ContextWithOrchestration(context.Background(), Orchestration{Orchestrator: Orchestrator, FlowRunID: "f"}), Orchestrator},
		{"baggage", baggage.ContextWithBaggage(context.Background(), bag), "prefect"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if o := detect(c.ctx); o.Orchestrator != c.want {
					b.Fatalf("detected %q, want %q", o.Orchestrator, c.want)
				}
			}
		})
	}
}
