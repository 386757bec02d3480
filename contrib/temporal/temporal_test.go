package temporal_test

import (
	"context"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"github.com/otelop/otelop/contrib/temporal"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

type chargeIn struct {
	otelop.Request
	Cents int `json:"cents"`
}

type chargeOut struct{ otelop.Receipt }

func TestActivityIsDetected(t *testing.T) {
	temporal.Register()
	temporal.Register() // idempotent
	h := taskruntest.New(t)
	charge := otelop.Define(otelop.Spec{Name: "charge_card", Description: "d", Category: "billing", Observed: true},
		func(context.Context, chargeIn) (chargeOut, error) { return chargeOut{}, nil }, h.Options()...)

	var info activity.Info
	chargeActivity := func(ctx context.Context, cents int) (string, error) {
		info = activity.GetInfo(ctx)
		out, err := charge.Call(ctx, chargeIn{Request: otelop.Request{UserID: "billing-worker"}, Cents: cents})
		return out.TaskRunID, err
	}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(chargeActivity)
	val, err := env.ExecuteActivity(chargeActivity, 500)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	if err := val.Get(&id); err != nil {
		t.Fatal(err)
	}
	r := h.Run(id)
	if !r.Orchestrated || r.Orchestrator != "temporal" || r.OrchestratorFlowRunID != info.WorkflowExecution.RunID ||
		r.OrchestratorTaskRunID != info.ActivityID || r.OrchestratorFlowRunID == "" || r.OrchestratorTaskRunID == "" {
		t.Errorf("run %+v, activity info %+v", r, info)
	}
	if r.Metadata["attempt"] != int64(info.Attempt) || info.Attempt < 1 {
		t.Errorf("metadata.attempt = %v, activity attempt %d", r.Metadata["attempt"], info.Attempt)
	}

	// Outside an activity nothing is detected (and nothing panics).
	out, err := charge.Call(context.Background(), chargeIn{Cents: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r := h.Run(out.TaskRunID); r.Orchestrated {
		t.Errorf("outside an activity: %+v", r)
	}
}

func BenchmarkDetectOutsideActivity(b *testing.B) {
	ctx := context.Background()
	var d temporal.Detector
	for b.Loop() {
		if _, ok := d.Detect(ctx); ok {
			b.Fatal("detected")
		}
	}
}
