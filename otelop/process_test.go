package otelop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

// TestLaunchedByPrefect starts this test binary as a subprocess with the
// environment a Prefect worker gives a Go program it launches: the flow run
// id and the W3C trace context of the Prefect task's span. The operation the
// child runs must be marked as orchestrated by Prefect and be a child of
// that span.
func TestLaunchedByPrefect(t *testing.T) {
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	tests := []struct {
		name       string
		env        []string
		wantOrch   string
		wantFlow   string
		wantTrace  string
		wantParent string
	}{
		{"prefect", []string{"PREFECT__FLOW_RUN_ID=8d1e2a7c-prefect-flow", "TRACEPARENT=00-" + traceID + "-" + spanID + "-01", "BAGGAGE=tenant=acme",
			"PREFECT__RUNTIME__FLOW_RUN__FLOW_NAME=nightly-etl", "PREFECT__RUNTIME__DEPLOYMENT__NAME=prod"},
			"prefect", "8d1e2a7c-prefect-flow", traceID, spanID},
		{"trace only", []string{"TRACEPARENT=00-" + traceID + "-" + spanID + "-01"}, "", "", traceID, spanID},
		{"nothing", nil, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(cleanEnv(), append([]string{"OTELOP_HELPER_PROCESS=1"}, tt.env...)...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("subprocess: %v\n%s", err, out)
			}
			line := lastJSONLine(string(out))
			var r taskrun.TaskRun
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("subprocess output %q: %v", out, err)
			}
			if r.Orchestrator != tt.wantOrch || r.OrchestratorFlowRunID != tt.wantFlow || r.Orchestrated != (tt.wantOrch != "") {
				t.Errorf("orchestration %q %q %v", r.Orchestrator, r.OrchestratorFlowRunID, r.Orchestrated)
			}
			if tt.wantOrch == "prefect" && (r.Metadata["prefect_flow_name"] != "nightly-etl" || r.Metadata["prefect_deployment_name"] != "prod") {
				t.Errorf("prefect metadata %v", r.Metadata)
			}
			if tt.wantOrch == "" && r.Metadata["prefect_flow_name"] != nil {
				t.Errorf("prefect metadata without a flow run: %v", r.Metadata)
			}
			if tt.wantTrace != "" && (r.TraceID != tt.wantTrace || r.ParentSpanID != tt.wantParent) {
				t.Errorf("trace %s parent %s, want %s %s", r.TraceID, r.ParentSpanID, tt.wantTrace, tt.wantParent)
			}
			if tt.wantTrace == "" && (r.ParentSpanID != "" || r.TraceID == traceID) {
				t.Errorf("joined a trace without TRACEPARENT: %s %s", r.TraceID, r.ParentSpanID)
			}
		})
	}
}

// cleanEnv is the environment without the variables the test sets itself.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PREFECT__FLOW_RUN_ID", "TRACEPARENT", "TRACESTATE", "BAGGAGE":
			continue
		}
		if strings.HasPrefix(k, "PREFECT__RUNTIME__") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func lastJSONLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			return lines[i]
		}
	}
	return ""
}

// runHelperProcess is the child of TestLaunchedByPrefect, entered from
// TestMain: it runs one operation and prints its TaskRun as JSON.
func runHelperProcess() int {
	ctx := context.Background()
	store := memstore.New()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(taskrun.NewProcessor(store)))
	op := otelop.Define(otelop.Spec{Name: "launched_op", Description: "d", Category: "test", Observed: true},
		func(context.Context, plainIn) (plainOut, error) { return plainOut{}, nil },
		otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
	out, err := op.Call(ctx, plainIn{})
	if err == nil {
		err = tp.Shutdown(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, err := store.Get(ctx, out.TaskRunID)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	return 0
}
