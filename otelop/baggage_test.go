package otelop_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

// An operation in a downstream service, called over HTTP from inside a flow
// run, is recorded as part of that flow run and joins its trace.
func TestOrchestrationCrossesHTTP(t *testing.T) {
	up, down := taskruntest.New(t), taskruntest.New(t)
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

	remote := otelop.Define(otelop.Spec{Name: "remote_op", Description: "d", Category: "test", Observed: true},
		func(context.Context, plainIn) (plainOut, error) { return plainOut{}, nil }, down.Options()...)
	var downstreamID string
	srv := httptest.NewServer(otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := remote.Call(r.Context(), plainIn{})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		downstreamID = out.TaskRunID
	}), "server", otelhttp.WithTracerProvider(down.TracerProvider), otelhttp.WithPropagators(prop)))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(up.TracerProvider), otelhttp.WithPropagators(prop))}

	local := otelop.Define(otelop.Spec{Name: "local_op", Description: "d", Category: "test", Observed: true},
		func(ctx context.Context, _ plainIn) (plainOut, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				return plainOut{}, err
			}
			return plainOut{}, resp.Body.Close()
		}, up.Options()...)

	root, rootSpan := up.TracerProvider.Tracer("test").Start(context.Background(), "root")
	var localOut plainOut
	err := otelop.Flow(root, "nightly", func(ctx context.Context) error {
		return otelop.Task(ctx, "sync", func(ctx context.Context) error {
			var err error
			localOut, err = local.Call(ctx, plainIn{})
			return err
		})
	})
	rootSpan.End()
	if err != nil {
		t.Fatal(err)
	}
	l, r := up.Run(localOut.TaskRunID), down.Run(downstreamID)
	if !r.Orchestrated || r.Orchestrator != "otelop" || r.OrchestratorFlowRunID != l.OrchestratorFlowRunID ||
		r.OrchestratorTaskRunID != l.OrchestratorTaskRunID || r.OrchestratorFlowRunID == "" {
		t.Errorf("downstream run %+v\nupstream run %+v", r, l)
	}
	if r.TraceID != l.TraceID {
		t.Errorf("downstream trace %s, upstream %s", r.TraceID, l.TraceID)
	}
	// Without baggage nothing is detected.
	plain, _ := remote.Call(context.Background(), plainIn{})
	if run := down.Run(plain.TaskRunID); run.Orchestrated {
		t.Errorf("a call without baggage is orchestrated: %+v", run)
	}
}
