package otelop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

func TestMain(m *testing.M) {
	switch os.Getenv("OTELOP_HELPER_PROCESS") {
	case "1":
		os.Exit(runHelperProcess())
	case "idempotent":
		os.Exit(runIdempotentProcess())
	}
	goleak.VerifyTestMain(m)
}

type createIn struct {
	otelop.Request
	Titles []string `json:"titles" validate:"required,min=1,dive,required"`
}

type createOut struct {
	otelop.Receipt
	JobIDs []string `json:"job_ids" otelop:"ref=jobs"`
	Owner  string   `json:"owner" otelop:"ref=users"`
}

func (o createOut) ResultRefs() []otelop.Ref {
	return []otelop.Ref{{Collection: "batches", DocumentID: "b1"}}
}

func createJobs(_ context.Context, in createIn) (createOut, error) {
	out := createOut{Owner: in.UserID}
	for i := range in.Titles {
		out.JobIDs = append(out.JobIDs, fmt.Sprintf("job-%d", i+1))
	}
	return out, nil
}

var spec = otelop.Spec{Name: "create_jobs", Description: "Create jobs", Category: "jobs", Stage: "ingest", Tags: []string{"batch", "jobs"}, Observed: true}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestObservedCallSpanAndTaskRun(t *testing.T) {
	h := taskruntest.New(t)
	op := otelop.Define(spec, createJobs, h.Options()...)

	out, err := op.Call(context.Background(), createIn{
		Request: otelop.Request{UserID: "u-42", DryRun: true, IdempotencyKey: "k1"},
		Titles:  []string{"a", "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.TaskRunID == "" {
		t.Fatal("Receipt.TaskRunID not filled")
	}
	run := h.Run(out.TaskRunID)
	spans := h.Spans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	s := spans[0]
	a := attrMap(s.Attributes)
	checks := []struct {
		name      string
		got, want any
	}{
		{"span name", s.Name, "create_jobs"},
		{"span status", s.Status.Code, codes.Ok},
		{"otelop.taskrun.id", a["otelop.taskrun.id"].AsString(), out.TaskRunID},
		{"enduser.id", a["enduser.id"].AsString(), "u-42"},
		{"otelop.actor.channel", a["otelop.actor.channel"].AsString(), "api"},
		{"otelop.dry_run", a["otelop.dry_run"].AsBool(), true},
		{"otelop.idempotency_key", a["otelop.idempotency_key"].AsString(), "k1"},
		{"otelop.operation.category", a["otelop.operation.category"].AsString(), "jobs"},
		{"otelop.operation.stage", a["otelop.operation.stage"].AsString(), "ingest"},
		{"otelop.operation.tags", fmt.Sprint(a["otelop.operation.tags"].AsStringSlice()), "[batch jobs]"},
		{"otelop.result_refs", fmt.Sprint(a["otelop.result_refs"].AsStringSlice()), "[jobs/job-1 jobs/job-2 users/u-42 batches/b1]"},
		{"code.function.name", a["code.function.name"].AsString(), "github.com/otelop/otelop/otelop_test.createJobs"},
		{"run status", run.Status, taskrun.StatusSuccess},
		{"run operation", run.OperationName, "create_jobs"},
		{"run actor", run.Actor, taskrun.Actor{UserID: "u-42", Channel: "api"}},
		{"run idempotency key", run.IdempotencyKey, "k1"},
		{"run refs", fmt.Sprint(run.ResultRefs), "[jobs/job-1 jobs/job-2 users/u-42 batches/b1]"},
		{"run dry_run", run.Metadata["dry_run"], true},
		{"run test_mode", run.Metadata["test_mode"], false},
		{"run trace id", run.TraceID, s.SpanContext.TraceID().String()},
		{"run span id", run.SpanID, s.SpanContext.SpanID().String()},
		{"run parent", run.ParentSpanID, ""},
		{"run tags", fmt.Sprint(run.Tags), "[batch jobs]"},
		{"run orchestrated", run.Orchestrated, false},
		{"run finished", run.FinishedAt != nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	var input map[string]any
	if err := json.Unmarshal(run.InputDump, &input); err != nil {
		t.Fatalf("input_dump %s: %v", run.InputDump, err)
	}
	if input["user_id"] != "u-42" || fmt.Sprint(input["titles"]) != "[a b]" {
		t.Errorf("input_dump = %s", run.InputDump)
	}
	if _, ok := run.Metadata["execution_time"].(float64); !ok {
		t.Errorf("metadata.execution_time missing: %v", run.Metadata)
	}
	if run.DurationMS < 0 || run.FinishedAt.Before(run.StartedAt) {
		t.Errorf("bad times: %v %v %v", run.StartedAt, run.FinishedAt, run.DurationMS)
	}
}

var errBoom = errors.New("boom")

type plainIn struct {
	otelop.Request
	N int `json:"n"`
}

type plainOut struct {
	otelop.Receipt
	N int `json:"n"`
}

func TestErrorIsReturnedUnchangedAndRecorded(t *testing.T) {
	h := taskruntest.New(t)
	op := otelop.Define(otelop.Spec{Name: "fail_op", Description: "fails", Category: "test", Observed: true},
		func(context.Context, plainIn) (plainOut, error) { return plainOut{}, fmt.Errorf("step 2: %w", errBoom) },
		h.Options()...)
	out, err := op.Call(context.Background(), plainIn{N: 1})
	if !errors.Is(err, errBoom) || err.Error() != "step 2: boom" {
		t.Fatalf("err = %v", err)
	}
	run := h.Run(out.TaskRunID)
	if run.Status != taskrun.StatusFailed || run.ErrorMessage != "step 2: boom" || run.ErrorType != "*errors.errorString" {
		t.Errorf("run = %s %q %q", run.Status, run.ErrorMessage, run.ErrorType)
	}
	if !strings.Contains(run.ErrorTraceback, "otelop_test.TestErrorIsReturnedUnchangedAndRecorded") {
		t.Errorf("traceback lacks the caller:\n%s", run.ErrorTraceback)
	}
	s := h.Spans()[0]
	if s.Status.Code != codes.Error || s.Status.Description != "step 2: boom" {
		t.Errorf("span status = %+v", s.Status)
	}
	if attrMap(s.Attributes)["error.type"].AsString() != "*errors.errorString" {
		t.Errorf("error.type = %v", attrMap(s.Attributes)["error.type"])
	}
	var exc bool
	for _, e := range s.Events {
		if e.Name == "exception" && attrMap(e.Attributes)["exception.stacktrace"].AsString() != "" {
			exc = true
		}
	}
	if !exc {
		t.Error("no exception event with a stack trace")
	}
}

type typedErr struct{}

func (typedErr) Error() string     { return "quota exceeded" }
func (typedErr) ErrorType() string { return "quota_exceeded" }

func TestErrorTypes(t *testing.T) {
	h := taskruntest.New(t)
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		err  error
		want string
	}{
		{"canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, nil, "canceled"},
		{"deadline", func() (context.Context, context.CancelFunc) { return context.WithTimeout(context.Background(), 0) }, nil, "deadline_exceeded"},
		{"typed", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, fmt.Errorf("wrap: %w", typedErr{}), "quota_exceeded"},
		{"struct type", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, &json.SyntaxError{}, "*json.SyntaxError"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := otelop.Define(otelop.Spec{Name: fmt.Sprintf("err_op_%d", i), Description: "d", Category: "test", Observed: true},
				func(ctx context.Context, _ plainIn) (plainOut, error) {
					if tt.err != nil {
						return plainOut{}, tt.err
					}
					<-ctx.Done()
					return plainOut{}, ctx.Err()
				}, h.Options()...)
			ctx, cancel := tt.ctx()
			defer cancel()
			out, err := op.Call(ctx, plainIn{})
			if err == nil {
				t.Fatal("no error")
			}
			if got := h.Run(out.TaskRunID).ErrorType; got != tt.want {
				t.Errorf("error_type = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPanicIsRecordedThenRepanics(t *testing.T) {
	h := taskruntest.New(t)
	op := otelop.Define(otelop.Spec{Name: "panic_op", Description: "panics", Category: "test", Observed: true},
		func(context.Context, plainIn) (plainOut, error) { explode(); return plainOut{}, nil }, h.Options()...)
	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Errorf("recovered %v, want kaboom", r)
			}
		}()
		_, _ = op.Call(context.Background(), plainIn{})
		t.Error("Call returned instead of panicking")
	}()
	runs := h.Runs()
	if len(runs) != 1 {
		t.Fatalf("got %d runs", len(runs))
	}
	r := runs[0]
	if r.Status != taskrun.StatusFailed || r.ErrorType != "panic" || r.ErrorMessage != "panic: kaboom" {
		t.Errorf("run = %s %q %q", r.Status, r.ErrorType, r.ErrorMessage)
	}
	if !strings.Contains(r.ErrorTraceback, "otelop_test.explode") {
		t.Errorf("traceback lacks the panicking function:\n%s", r.ErrorTraceback)
	}
}

func explode() { panic("kaboom") }

type unserializable struct {
	otelop.Request
	C chan int `json:"c"`
}

func TestUnserializableInputStillRuns(t *testing.T) {
	h := taskruntest.New(t)
	called := false
	op := otelop.Define(otelop.Spec{Name: "chan_op", Description: "d", Category: "test", Observed: true},
		func(context.Context, unserializable) (plainOut, error) { called = true; return plainOut{}, nil }, h.Options()...)
	out, err := op.Call(context.Background(), unserializable{C: make(chan int)})
	if err != nil || !called {
		t.Fatalf("err=%v called=%v", err, called)
	}
	if got := string(h.Run(out.TaskRunID).InputDump); got != `{"error":"Failed to serialize input"}` {
		t.Errorf("input_dump = %s", got)
	}
}

type methodValidated struct {
	otelop.Request
	From, To int
}

func (m methodValidated) Validate() error {
	if m.From > m.To {
		return errors.New("from must not be after to")
	}
	return nil
}

func TestValidation(t *testing.T) {
	h := taskruntest.New(t)
	calls := 0
	tagged := otelop.Define(otelop.Spec{Name: "tagged_op", Description: "d", Category: "test", Observed: true},
		func(ctx context.Context, in createIn) (createOut, error) { calls++; return createJobs(ctx, in) }, h.Options()...)
	method := otelop.Define(otelop.Spec{Name: "method_op", Description: "d", Category: "test", Observed: true},
		func(context.Context, methodValidated) (plainOut, error) { calls++; return plainOut{}, nil }, h.Options()...)
	unobserved := otelop.Define(otelop.Spec{Name: "unobserved_tagged", Description: "d", Category: "test"},
		func(ctx context.Context, in createIn) (createOut, error) { calls++; return createJobs(ctx, in) }, h.Options()...)

	tests := []struct {
		name    string
		call    func() (string, error)
		wantMsg string
	}{
		{"missing titles", func() (string, error) {
			o, err := tagged.Call(context.Background(), createIn{})
			return o.TaskRunID, err
		}, "titles is required"},
		{"empty title", func() (string, error) {
			o, err := tagged.Call(context.Background(), createIn{Titles: []string{""}})
			return o.TaskRunID, err
		}, "titles[0] is required"},
		{"method", func() (string, error) {
			o, err := method.Call(context.Background(), methodValidated{From: 2, To: 1})
			return o.TaskRunID, err
		}, "from must not be after to"},
		{"unobserved", func() (string, error) {
			o, err := unobserved.Call(context.Background(), createIn{})
			return o.TaskRunID, err
		}, "titles is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.call()
			if !errors.Is(err, otelop.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantMsg)
			}
			if tt.name == "unobserved" {
				return
			}
			r := h.Run(id)
			if r.Status != taskrun.StatusFailed || r.ErrorType != "invalid_input" {
				t.Errorf("run = %s %s", r.Status, r.ErrorType)
			}
		})
	}
	if calls != 0 {
		t.Errorf("fn called %d times on invalid input", calls)
	}
}

func TestVerboseLogEntries(t *testing.T) {
	h := taskruntest.New(t)
	op := otelop.Define(otelop.Spec{Name: "verbose_op", Description: "d", Category: "test", Observed: true},
		func(ctx context.Context, in plainIn) (plainOut, error) {
			otelop.Log(ctx, slog.LevelWarn, "halfway", "n", in.N, slog.Group("g", "k", "v"))
			if in.N < 0 {
				return plainOut{}, errBoom
			}
			return plainOut{N: in.N}, nil
		}, h.Options()...)
	ok, _ := op.Call(context.Background(), plainIn{Request: otelop.Request{Verbose: true}, N: 3})
	bad, _ := op.Call(context.Background(), plainIn{Request: otelop.Request{Verbose: true}, N: -1})
	quiet, _ := op.Call(context.Background(), plainIn{N: 1})

	msgs := func(id string) []string {
		var m []string
		for _, e := range h.Run(id).LogEntries {
			m = append(m, e.Level+" "+e.Message)
		}
		return m
	}
	if got := strings.Join(msgs(ok.TaskRunID), "|"); got != "INFO Starting operation: verbose_op|WARN halfway|INFO Operation completed: verbose_op" {
		t.Errorf("verbose success logs = %s", got)
	}
	if got := strings.Join(msgs(bad.TaskRunID), "|"); got != "INFO Starting operation: verbose_op|WARN halfway|ERROR Operation failed: verbose_op" {
		t.Errorf("verbose failure logs = %s", got)
	}
	if got := strings.Join(msgs(quiet.TaskRunID), "|"); got != "WARN halfway" {
		t.Errorf("quiet logs = %s", got)
	}
	entries := h.Run(ok.TaskRunID).LogEntries
	if entries[0].Attributes["input"] == nil || entries[1].Attributes["n"] != int64(3) || entries[1].Attributes["g.k"] != "v" {
		t.Errorf("attributes = %v / %v", entries[0].Attributes, entries[1].Attributes)
	}
	if _, ok := entries[2].Attributes["execution_time"].(float64); !ok {
		t.Errorf("completed entry lacks execution_time: %v", entries[2].Attributes)
	}
	if h.Run(bad.TaskRunID).LogEntries[2].Attributes["error"] != "boom" {
		t.Errorf("failed entry lacks the error: %v", h.Run(bad.TaskRunID).LogEntries[2].Attributes)
	}
}

func TestSlogHandler(t *testing.T) {
	h := taskruntest.New(t)
	var buf bytes.Buffer
	logger := slog.New(otelop.SlogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	op := otelop.Define(otelop.Spec{Name: "slog_op", Description: "d", Category: "test", Observed: true},
		func(ctx context.Context, in plainIn) (plainOut, error) {
			logger.With("job", "j1").WithGroup("req").DebugContext(ctx, "debug detail", "size", 2)
			logger.InfoContext(ctx, "processing", "n", in.N)
			return plainOut{}, nil
		}, h.Options()...)
	out, _ := op.Call(context.Background(), plainIn{N: 7})
	r := h.Run(out.TaskRunID)
	if len(r.LogEntries) != 2 {
		t.Fatalf("log entries = %+v", r.LogEntries)
	}
	if e := r.LogEntries[0]; e.Level != "DEBUG" || e.Message != "debug detail" || e.Attributes["job"] != "j1" || e.Attributes["req.size"] != int64(2) {
		t.Errorf("debug entry = %+v", e)
	}
	if e := r.LogEntries[1]; e.Message != "processing" || e.Attributes["n"] != int64(7) {
		t.Errorf("info entry = %+v", e)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("next handler output %q: %v", buf.String(), err)
	}
	if line["msg"] != "processing" || line["trace_id"] != r.TraceID || line["span_id"] != r.SpanID {
		t.Errorf("next handler got %v, want trace %s span %s", line, r.TraceID, r.SpanID)
	}
	if strings.Contains(buf.String(), "debug detail") {
		t.Error("debug record passed to a handler at INFO")
	}
}

func TestUnobservedCallHasNoSpanAndNoAllocs(t *testing.T) {
	for _, s := range []otelop.Spec{
		{Name: "plain", Description: "d", Category: "test"},
		{Name: "no_taskrun", Description: "d", Category: "test", Observed: true, NoTaskRun: true},
	} {
		t.Run(s.Name, func(t *testing.T) {
			h := taskruntest.New(t)
			op := otelop.Define(s, func(_ context.Context, in plainIn) (plainOut, error) { return plainOut{N: in.N + 1}, nil }, h.Options()...)
			ctx := context.Background()
			out, err := op.Call(ctx, plainIn{N: 1})
			if err != nil || out.N != 2 || out.TaskRunID != "" {
				t.Fatalf("out=%+v err=%v", out, err)
			}
			allocs := testing.AllocsPerRun(100, func() { _, _ = op.Call(ctx, plainIn{N: 1}) })
			if allocs != 0 {
				t.Errorf("unobserved Call allocates %v times", allocs)
			}
			h.Flush()
			if n := len(h.Spans()); n != 0 {
				t.Errorf("%d spans", n)
			}
			if n := len(h.Runs()); n != 0 {
				t.Errorf("%d runs", n)
			}
		})
	}
}

func TestRunningVisibleWhileRunning(t *testing.T) {
	h := taskruntest.New(t)
	started, release := make(chan struct{}), make(chan struct{})
	op := otelop.Define(otelop.Spec{Name: "slow_op", Description: "d", Category: "test", Observed: true},
		func(context.Context, plainIn) (plainOut, error) { close(started); <-release; return plainOut{}, nil }, h.Options()...)
	done := make(chan plainOut)
	go func() { out, _ := op.Call(context.Background(), plainIn{}); done <- out }()
	<-started
	runs := h.Runs()
	if len(runs) != 1 || runs[0].Status != taskrun.StatusRunning || runs[0].FinishedAt != nil {
		t.Fatalf("while running: %+v", runs)
	}
	close(release)
	out := <-done
	if r := h.Run(out.TaskRunID); r.Status != taskrun.StatusSuccess || r.ID != runs[0].ID {
		t.Errorf("after: %s %s", r.Status, r.ID)
	}
}

func TestFlowAndTask(t *testing.T) {
	h := taskruntest.New(t)
	op := otelop.Define(otelop.Spec{Name: "step_op", Description: "d", Category: "test", Observed: true},
		func(context.Context, plainIn) (plainOut, error) { return plainOut{}, nil }, h.Options()...)
	root, rootSpan := h.TracerProvider.Tracer("test").Start(context.Background(), "root")
	var inFlow, inTask, outside plainOut
	err := otelop.Flow(root, "nightly", func(ctx context.Context) error {
		inFlow, _ = op.Call(ctx, plainIn{})
		return otelop.Task(ctx, "load", func(ctx context.Context) error {
			inTask, _ = op.Call(ctx, plainIn{})
			return nil
		})
	})
	rootSpan.End()
	if err != nil {
		t.Fatal(err)
	}
	outside, _ = op.Call(context.Background(), plainIn{})

	f, tk, o := h.Run(inFlow.TaskRunID), h.Run(inTask.TaskRunID), h.Run(outside.TaskRunID)
	if !f.Orchestrated || f.Orchestrator != "otelop" || f.OrchestratorFlowRunID == "" || f.OrchestratorTaskRunID != "" {
		t.Errorf("in flow: %+v", f)
	}
	if !tk.Orchestrated || tk.OrchestratorFlowRunID != f.OrchestratorFlowRunID || tk.OrchestratorTaskRunID == "" {
		t.Errorf("in task: %+v", tk)
	}
	if o.Orchestrated || o.Orchestrator != "" {
		t.Errorf("outside: %+v", o)
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range h.Spans() {
		byName[s.Name] = s
	}
	flow, task := byName["flow nightly"], byName["task load"]
	if flow.Parent.SpanID() != rootSpan.SpanContext().SpanID() || task.Parent.SpanID() != flow.SpanContext.SpanID() {
		t.Errorf("flow/task span parents wrong")
	}
	if tk.ParentSpanID != task.SpanContext.SpanID().String() || f.ParentSpanID != flow.SpanContext.SpanID().String() {
		t.Errorf("operation spans not under flow/task")
	}
	if attrMap(flow.Attributes)["otelop.flow_run.id"].AsString() != f.OrchestratorFlowRunID {
		t.Errorf("flow span run id mismatch")
	}
	byFlow, err := h.Store.Find(context.Background(), taskrun.Query{FlowRunID: f.OrchestratorFlowRunID})
	if err != nil || len(byFlow) != 2 {
		t.Errorf("query by flow run id: %d runs, %v", len(byFlow), err)
	}
	err = otelop.Flow(root, "broken", func(context.Context) error { return errBoom })
	if !errors.Is(err, errBoom) {
		t.Errorf("flow error = %v", err)
	}
}

type fakeEngine struct{}

type engineKey struct{}

func (fakeEngine) Detect(ctx context.Context) (otelop.Orchestration, bool) {
	id, ok := ctx.Value(engineKey{}).(string)
	return otelop.Orchestration{Orchestrator: "fake", FlowRunID: id, TaskRunID: "t-" + id}, ok
}

var registerFake sync.Once

func TestDetector(t *testing.T) {
	registerFake.Do(func() { otelop.RegisterDetector(fakeEngine{}) })
	h := taskruntest.New(t)
	op := otelop.Define(otelop.Spec{Name: "detected_op", Description: "d", Category: "test", Observed: true},
		func(context.Context, plainIn) (plainOut, error) { return plainOut{}, nil }, h.Options()...)
	out, _ := op.Call(context.WithValue(context.Background(), engineKey{}, "wf-1"), plainIn{})
	r := h.Run(out.TaskRunID)
	if !r.Orchestrated || r.Orchestrator != "fake" || r.OrchestratorFlowRunID != "wf-1" || r.OrchestratorTaskRunID != "t-wf-1" {
		t.Errorf("detected: %+v", r)
	}
	// A built-in flow wins over registered detectors.
	var inFlow plainOut
	_ = otelop.Flow(context.WithValue(context.Background(), engineKey{}, "wf-2"), "f", func(ctx context.Context) error {
		inFlow, _ = op.Call(ctx, plainIn{})
		return nil
	})
	if r := h.Run(inFlow.TaskRunID); r.Orchestrator != "otelop" {
		t.Errorf("flow precedence: %+v", r)
	}
}

func TestConcurrentCallsOneFinalRunEach(t *testing.T) {
	h := taskruntest.New(t, taskrun.WithQueueSize(64), taskrun.WithBatchSize(16))
	op := otelop.Define(otelop.Spec{Name: "concurrent_op", Description: "d", Category: "test", Observed: true},
		func(_ context.Context, in plainIn) (plainOut, error) {
			if in.N%5 == 0 {
				return plainOut{}, errBoom
			}
			return plainOut{N: in.N}, nil
		}, h.Options()...)
	const goroutines, perG = 64, 40
	ids := make(chan string, goroutines*perG)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				out, _ := op.Call(context.Background(), plainIn{N: g*perG + i})
				ids <- out.TaskRunID
			}
		})
	}
	wg.Wait()
	close(ids)
	runs := h.Runs()
	byID := map[string]taskrun.TaskRun{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	n, failed := 0, 0
	for id := range ids {
		n++
		r, ok := byID[id]
		if !ok {
			t.Fatalf("run %s lost", id)
		}
		if !r.Status.Final() {
			t.Errorf("run %s is %s", id, r.Status)
		}
		if r.Status == taskrun.StatusFailed {
			failed++
		}
	}
	if len(runs) != n || n != goroutines*perG {
		t.Errorf("%d runs stored for %d calls", len(runs), n)
	}
	if failed != goroutines*perG/5 {
		t.Errorf("%d failed runs, want %d", failed, goroutines*perG/5)
	}
	st := h.Processor.Stats()
	if st.Enqueued != 2*uint64(n) || st.Written != st.Enqueued || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestDefineErrors(t *testing.T) {
	reg := registry.New()
	fn := func(context.Context, plainIn) (plainOut, error) { return plainOut{}, nil }
	if _, err := otelop.New(otelop.Spec{Name: "dup", Description: "d", Category: "c"}, fn, otelop.WithRegistry(reg)); err != nil {
		t.Fatal(err)
	}
	_, err := otelop.New(otelop.Spec{Name: "dup", Description: "d", Category: "c"}, fn, otelop.WithRegistry(reg))
	if err == nil || strings.Count(err.Error(), "otelop_test.go:") != 2 {
		t.Errorf("duplicate error should name both sites: %v", err)
	}
	type badRef struct {
		ID int `otelop:"ref=jobs"`
	}
	_, err = otelop.New(otelop.Spec{Name: "bad_ref", Description: "d", Category: "c"},
		func(context.Context, plainIn) (badRef, error) { return badRef{}, nil }, otelop.WithRegistry(reg))
	if err == nil || !strings.Contains(err.Error(), "must be string or []string") {
		t.Errorf("bad ref field error = %v", err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "snake_case") {
			t.Errorf("Define with a bad name: recovered %v", r)
		}
	}()
	otelop.Define(otelop.Spec{Name: "BadName", Description: "d", Category: "c"}, fn, otelop.WithRegistry(reg))
}

func TestInvoke(t *testing.T) {
	h := taskruntest.New(t)
	otelop.Define(spec, createJobs, h.Options()...)
	m, ok := h.Registry.Get("create_jobs")
	if !ok {
		t.Fatal("not registered")
	}
	res, err := m.Invoke(context.Background(), json.RawMessage(`{"titles":["x"],"user_id":"u1"}`))
	if err != nil {
		t.Fatal(err)
	}
	out, ok := res.(createOut)
	if !ok || len(out.JobIDs) != 1 || h.Run(out.TaskRunID).Actor.UserID != "u1" {
		t.Errorf("invoke result = %#v", res)
	}
	for _, bad := range []string{`{"titles":["x"],"extra":1}`, `{"titles":"x"}`, `{"titles":["x"]} {}`, `[`, `{"titles":[]}`} {
		_, err := m.Invoke(context.Background(), json.RawMessage(bad))
		if !errors.Is(err, otelop.ErrInvalidInput) {
			t.Errorf("Invoke(%s) err = %v, want ErrInvalidInput", bad, err)
		}
	}
	var schema map[string]any
	if err := json.Unmarshal(m.InputSchema, &schema); err != nil || schema["properties"] == nil {
		t.Errorf("input schema = %s", m.InputSchema)
	}
}

func TestNoProviderIsHarmless(t *testing.T) {
	op := otelop.Define(otelop.Spec{Name: "noop_op", Description: "d", Category: "test", Observed: true},
		func(_ context.Context, in plainIn) (plainOut, error) { return plainOut{N: in.N}, nil },
		otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(sdktrace.NewTracerProvider()))
	out, err := op.Call(context.Background(), plainIn{N: 5})
	if err != nil || out.N != 5 {
		t.Fatalf("%+v %v", out, err)
	}
}
