package otelop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/sqlitestore"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

type chargeIn struct {
	otelop.Request
	Amount int `json:"amount"`
}

type chargeOut struct {
	otelop.Receipt
	ChargeID string `json:"charge_id" otelop:"ref=charges"`
	Amount   int    `json:"amount"`
	APIToken string `json:"api_token"`
}

// chargeOp defines a charge operation with idempotency over the harness's
// store; ran counts the calls of its function.
func chargeOp(t *testing.T, h *taskruntest.Harness, ran *atomic.Int64, fail *atomic.Bool, delay time.Duration) *otelop.Op[chargeIn, chargeOut] {
	t.Helper()
	return otelop.Define(otelop.Spec{Name: "charge", Description: "d", Category: "payments", Observed: true},
		func(_ context.Context, in chargeIn) (chargeOut, error) {
			n := ran.Add(1)
			time.Sleep(delay)
			if fail != nil && fail.Load() {
				return chargeOut{}, errors.New("card declined")
			}
			return chargeOut{ChargeID: fmt.Sprintf("ch-%d", n), Amount: in.Amount, APIToken: "tok-secret"}, nil
		}, append(h.Options(), otelop.WithIdempotency(h.Store, time.Hour))...)
}

func TestIdempotencySequential(t *testing.T) {
	h := taskruntest.New(t)
	var ran atomic.Int64
	op := chargeOp(t, h, &ran, nil, 0)
	ctx := context.Background()
	req := otelop.Request{UserID: "alice", IdempotencyKey: "order-1"}
	first, err := op.Call(ctx, chargeIn{Request: req, Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	again, err := op.Call(ctx, chargeIn{Request: req, Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	if ran.Load() != 1 || again.ChargeID != first.ChargeID || again.Amount != 5 || again.TaskRunID == first.TaskRunID {
		t.Errorf("ran %d times; first %+v, again %+v", ran.Load(), first, again)
	}
	if again.APIToken != otelop.Redacted {
		t.Errorf("a repeat returns the recorded (redacted) output, got token %q", again.APIToken)
	}
	// Other keys and calls without a key run.
	op.Call(ctx, chargeIn{Request: otelop.Request{IdempotencyKey: "order-2"}, Amount: 1})
	op.Call(ctx, chargeIn{Amount: 1})
	op.Call(ctx, chargeIn{Amount: 1})
	if ran.Load() != 4 {
		t.Errorf("ran %d times, want 4", ran.Load())
	}
	h.Flush()
	r1, r2 := h.Run(first.TaskRunID), h.Run(again.TaskRunID)
	if r2.Status != taskrun.StatusSuccess || r2.Metadata["deduplicated_from"] != first.TaskRunID || r1.Metadata["deduplicated_from"] != nil {
		t.Errorf("metadata: first %v, repeat %v", r1.Metadata, r2.Metadata)
	}
	var dump map[string]any
	if err := json.Unmarshal(r1.OutputDump, &dump); err != nil || dump["charge_id"] != first.ChargeID || dump["api_token"] != otelop.Redacted {
		t.Errorf("output_dump %s: %v", r1.OutputDump, err)
	}
	if string(r2.OutputDump) != string(r1.OutputDump) || len(r2.ResultRefs) != 1 {
		t.Errorf("repeat output_dump %s refs %v", r2.OutputDump, r2.ResultRefs)
	}
	for _, r := range h.Runs() {
		if r.IdempotencyKey == "" && r.OutputDump != nil {
			t.Errorf("run %s without a key recorded its output", r.ID)
		}
	}
}

func TestIdempotencyConcurrent(t *testing.T) {
	h := taskruntest.New(t)
	var ran atomic.Int64
	op := chargeOp(t, h, &ran, nil, 50*time.Millisecond)
	var wg sync.WaitGroup
	outs := make([]chargeOut, 20)
	errs := make([]error, 20)
	for i := range outs {
		wg.Go(func() {
			outs[i], errs[i] = op.Call(context.Background(), chargeIn{Request: otelop.Request{IdempotencyKey: "same"}, Amount: 9})
		})
	}
	wg.Wait()
	if ran.Load() != 1 {
		t.Fatalf("the function ran %d times for one key", ran.Load())
	}
	ids := map[string]bool{}
	for i := range outs {
		if errs[i] != nil || outs[i].ChargeID != "ch-1" {
			t.Errorf("call %d: %+v %v", i, outs[i], errs[i])
		}
		ids[outs[i].TaskRunID] = true
	}
	h.Flush()
	runs := h.Runs()
	original := 0
	for _, r := range runs {
		if r.Metadata["deduplicated_from"] == nil {
			original++
		}
	}
	if len(runs) != 20 || len(ids) != 20 || original != 1 {
		t.Errorf("%d runs, %d ids, %d originals", len(runs), len(ids), original)
	}
}

func TestIdempotencyFailureNotRemembered(t *testing.T) {
	h := taskruntest.New(t)
	var ran atomic.Int64
	var fail atomic.Bool
	fail.Store(true)
	op := chargeOp(t, h, &ran, &fail, 0)
	in := chargeIn{Request: otelop.Request{IdempotencyKey: "k"}, Amount: 1}
	if _, err := op.Call(context.Background(), in); err == nil {
		t.Fatal("no error")
	}
	fail.Store(false)
	if out, err := op.Call(context.Background(), in); err != nil || out.ChargeID != "ch-2" {
		t.Errorf("after a failure: %+v %v", out, err)
	}
	if ran.Load() != 2 {
		t.Errorf("ran %d times", ran.Load())
	}
}

// failingLookup is a store that cannot answer.
type failingLookup struct{}

func (failingLookup) LookupIdempotent(context.Context, string, string, time.Time) (otelop.PriorRun, bool, error) {
	return otelop.PriorRun{}, false, errors.New("store unreachable")
}

func TestIdempotencyLookupFailureFailsClosed(t *testing.T) {
	h := taskruntest.New(t)
	ran := false
	op := otelop.Define(otelop.Spec{Name: "charge", Description: "d", Category: "c", Observed: true},
		func(context.Context, chargeIn) (chargeOut, error) { ran = true; return chargeOut{}, nil },
		append(h.Options(), otelop.WithIdempotency(failingLookup{}, time.Minute))...)
	out, err := op.Call(context.Background(), chargeIn{Request: otelop.Request{IdempotencyKey: "k"}})
	if err == nil || ran {
		t.Fatalf("err %v, ran %v", err, ran)
	}
	h.Flush()
	if r := h.Run(out.TaskRunID); r.ErrorType != "idempotency_unavailable" {
		t.Errorf("error_type %q", r.ErrorType)
	}
	if _, err := op.Call(context.Background(), chargeIn{}); err != nil || !ran {
		t.Errorf("a call without a key: %v, ran %v", err, ran)
	}
}

// TestIdempotencyAcrossProcesses runs two processes in sequence over one
// SQLite file: the second's call with the same key does not run.
func TestIdempotencyAcrossProcesses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "runs.db")
	var results [2]idempotentResult
	for i := range results {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(cleanEnv(), "OTELOP_HELPER_PROCESS=idempotent", "OTELOP_HELPER_DB="+db)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("process %d: %v\n%s", i+1, err, out)
		}
		if err := json.Unmarshal([]byte(lastJSONLine(string(out))), &results[i]); err != nil {
			t.Fatalf("process %d output %q: %v", i+1, out, err)
		}
	}
	first, second := results[0], results[1]
	if !first.Ran || second.Ran || second.Out.ChargeID != first.Out.ChargeID ||
		second.Run.Metadata["deduplicated_from"] != first.Out.TaskRunID || second.Out.TaskRunID == first.Out.TaskRunID {
		t.Errorf("first %+v\nsecond %+v", first, second)
	}
}

type idempotentResult struct {
	Ran bool            `json:"ran"`
	Out chargeOut       `json:"out"`
	Run taskrun.TaskRun `json:"run"`
}

func runIdempotentProcess() int {
	ctx := context.Background()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	store, err := sqlitestore.Open(ctx, os.Getenv("OTELOP_HELPER_DB"))
	if err != nil {
		return fail(err)
	}
	defer store.Close(ctx)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(taskrun.NewProcessor(store)))
	var res idempotentResult
	op := otelop.Define(otelop.Spec{Name: "charge", Description: "d", Category: "payments", Observed: true},
		func(_ context.Context, in chargeIn) (chargeOut, error) {
			res.Ran = true
			return chargeOut{ChargeID: fmt.Sprintf("ch-%d", os.Getpid()), Amount: in.Amount}, nil
		}, otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp), otelop.WithIdempotency(store, time.Hour))
	if res.Out, err = op.Call(ctx, chargeIn{Request: otelop.Request{IdempotencyKey: "order-77"}, Amount: 3}); err != nil {
		return fail(err)
	}
	if err := tp.Shutdown(ctx); err != nil {
		return fail(err)
	}
	if res.Run, err = store.Get(ctx, res.Out.TaskRunID); err != nil {
		return fail(err)
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return 0
}
