package taskrun_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelop/otelop/taskrun"
)

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	traceID = trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
)

func stub(end time.Time, status sdktrace.Status, kv []attribute.KeyValue, events ...sdktrace.Event) sdktrace.ReadOnlySpan {
	return tracetest.SpanStub{
		Name: "op",
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: traceID, SpanID: trace.SpanID{1, 1, 1, 1, 1, 1, 1, 1},
		}),
		Parent:               trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: trace.SpanID{2, 2, 2, 2, 2, 2, 2, 2}}),
		StartTime:            t0,
		EndTime:              end,
		Attributes:           kv,
		Events:               events,
		Status:               status,
		Resource:             resource.NewSchemaless(attribute.String("service.name", "billing")),
		InstrumentationScope: instrumentation.Scope{Name: "github.com/otelop/otelop/otelop"},
	}.Snapshot()
}

func TestFromSpan(t *testing.T) {
	base := []attribute.KeyValue{
		attribute.String("otelop.taskrun.id", "run-1"),
		attribute.String("otelop.operation.name", "charge"),
		attribute.String("otelop.operation.category", "billing"),
		attribute.StringSlice("otelop.operation.tags", []string{"money"}),
		attribute.String("enduser.id", "u1"),
		attribute.Bool("otelop.dry_run", true),
		attribute.String("otelop.input", `{"amount":5}`),
		attribute.StringSlice("otelop.result_refs", []string{"invoices/in-1", "bad-ref", "files/a/b.pdf"}),
		attribute.String("otelop.error_list", `[{"item":"x","error":"nope"}]`),
		attribute.Int("otelop.metadata.attempt", 3),
	}
	logEvent := sdktrace.Event{Name: "charged", Time: t0.Add(time.Millisecond), Attributes: []attribute.KeyValue{
		attribute.String("otelop.log.level", "INFO"), attribute.Int("cents", 500)}}
	excEvent := sdktrace.Event{Name: "exception", Time: t0.Add(2 * time.Millisecond), Attributes: []attribute.KeyValue{
		attribute.String("exception.type", "*errors.errorString"), attribute.String("exception.message", "card declined"),
		attribute.String("exception.stacktrace", "goroutine 1 [running]:\nmain.charge()")}}
	otherEvent := sdktrace.Event{Name: "retry", Time: t0}

	tests := []struct {
		name  string
		span  sdktrace.ReadOnlySpan
		check func(t *testing.T, r taskrun.TaskRun)
	}{
		{"running", stub(time.Time{}, sdktrace.Status{}, base, logEvent), func(t *testing.T, r taskrun.TaskRun) {
			want := fmt.Sprint("run-1 charge billing [money] {u1 api} RUNNING <nil> 0 billing ", t0.Truncate(time.Millisecond))
			got := fmt.Sprint(r.ID, " ", r.OperationName, " ", r.Category, " ", r.Tags, " ", r.Actor, " ", r.Status, " ", r.FinishedAt, " ", r.DurationMS, " ", r.ServiceName, " ", r.StartedAt)
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if r.TraceID != traceID.String() || r.SpanID != "0101010101010101" || r.ParentSpanID != "0202020202020202" {
				t.Errorf("ids %s %s %s", r.TraceID, r.SpanID, r.ParentSpanID)
			}
			if fmt.Sprint(r.ResultRefs) != "[invoices/in-1 files/a/b.pdf]" {
				t.Errorf("refs %v", r.ResultRefs)
			}
			if r.Metadata["dry_run"] != true || r.Metadata["attempt"] != int64(3) || r.Metadata["execution_time"] != nil {
				t.Errorf("metadata %v", r.Metadata)
			}
			if len(r.LogEntries) != 1 || r.LogEntries[0].Message != "charged" || r.LogEntries[0].Attributes["cents"] != int64(500) {
				t.Errorf("logs %+v", r.LogEntries)
			}
		}},
		{"success", stub(t0.Add(1500*time.Microsecond), sdktrace.Status{Code: codes.Ok}, base), func(t *testing.T, r taskrun.TaskRun) {
			if r.Status != taskrun.StatusSuccess || r.DurationMS != 1.5 || r.FinishedAt == nil || r.ErrorMessage != "" {
				t.Errorf("%s %v %v %q", r.Status, r.DurationMS, r.FinishedAt, r.ErrorMessage)
			}
			if r.Metadata["execution_time"] != 0.0015 {
				t.Errorf("execution_time %v", r.Metadata["execution_time"])
			}
			if len(r.ErrorList) != 1 || r.ErrorList[0].Item != "x" {
				t.Errorf("error list %v", r.ErrorList)
			}
		}},
		{"failed", stub(t0.Add(time.Second), sdktrace.Status{Code: codes.Error, Description: "card declined"},
			append(base, attribute.String("error.type", "declined")), excEvent, otherEvent), func(t *testing.T, r taskrun.TaskRun) {
			if r.Status != taskrun.StatusFailed || r.ErrorMessage != "card declined" || r.ErrorType != "declined" || r.ErrorTraceback == "" {
				t.Errorf("%s %q %q %q", r.Status, r.ErrorMessage, r.ErrorType, r.ErrorTraceback)
			}
			if len(r.LogEntries) != 0 {
				t.Errorf("exception or plain events became log entries: %+v", r.LogEntries)
			}
		}},
		{"failed without error type", stub(t0.Add(time.Second), sdktrace.Status{Code: codes.Error}, base), func(t *testing.T, r taskrun.TaskRun) {
			if r.ErrorType != "error" {
				t.Errorf("error type %q", r.ErrorType)
			}
		}},
		{"input not an object", stub(time.Time{}, sdktrace.Status{}, append(base[:1:1], attribute.String("otelop.input", `[1,2]`))), func(t *testing.T, r taskrun.TaskRun) {
			if string(r.InputDump) != `{"value":[1,2]}` {
				t.Errorf("input %s", r.InputDump)
			}
		}},
		{"input not JSON", stub(time.Time{}, sdktrace.Status{}, append(base[:1:1], attribute.String("otelop.input", `{"a":`))), func(t *testing.T, r taskrun.TaskRun) {
			if string(r.InputDump) != `{"value":"{\"a\":"}` {
				t.Errorf("input %s", r.InputDump)
			}
		}},
		{"wrong attribute types", stub(time.Time{}, sdktrace.Status{}, []attribute.KeyValue{
			attribute.String("otelop.taskrun.id", "run-2"), attribute.Int("otelop.operation.tags", 7),
			attribute.String("otelop.orchestrated", "yes"), attribute.Bool("otelop.result_refs", true),
			attribute.String("otelop.error_list", "not json"),
		}), func(t *testing.T, r taskrun.TaskRun) {
			if fmt.Sprint(r.Tags) != "[7]" || r.Orchestrated || len(r.ResultRefs) != 0 || len(r.ErrorList) != 0 {
				t.Errorf("%v %v %v %v", r.Tags, r.Orchestrated, r.ResultRefs, r.ErrorList)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"tags", "result_refs", "error_list", "log_entries"} {
				if _, ok := doc[k].([]any); !ok {
					t.Errorf("%s = %v, want a JSON array", k, doc[k])
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := taskrun.FromSpan(tt.span)
			if !ok {
				t.Fatal("not decoded")
			}
			tt.check(t, r)
		})
	}
	if _, ok := taskrun.FromSpan(stub(time.Time{}, sdktrace.Status{}, base[1:])); ok {
		t.Error("a span without otelop.taskrun.id decoded as a run")
	}
}

// FuzzFromSpan decodes spans with arbitrary attribute values: decoding never
// panics and always yields a document that marshals to JSON.
func FuzzFromSpan(f *testing.F) {
	f.Add("run", "op", `{"a":1}`, "jobs/1", `[{"item":"a","error":"b"}]`, "INFO", int64(3), true)
	f.Add("", "", "", "", "", "", int64(0), false)
	f.Add("x", "y", `[`, "/", `{`, "", int64(-1), true)
	f.Fuzz(func(t *testing.T, id, op, input, ref, errList, level string, n int64, b bool) {
		kv := []attribute.KeyValue{
			attribute.String("otelop.taskrun.id", id),
			attribute.String("otelop.operation.name", op),
			attribute.String("otelop.input", input),
			attribute.StringSlice("otelop.result_refs", []string{ref}),
			attribute.String("otelop.error_list", errList),
			attribute.Int64("otelop.metadata."+op, n),
			attribute.Bool("otelop.orchestrated", b),
		}
		ev := sdktrace.Event{Name: op, Attributes: []attribute.KeyValue{
			attribute.String("otelop.log.level", level), attribute.String(id, input),
			attribute.Float64("f", float64(n)/float64(n%2)), // NaN, ±Inf or a number
		}}
		r, ok := taskrun.FromSpan(stub(t0.Add(time.Duration(n)), sdktrace.Status{Code: codes.Code(uint32(n) % 3), Description: input}, kv, ev))
		if ok != (id != "") {
			t.Fatalf("ok = %v for id %q", ok, id)
		}
		if !ok {
			return
		}
		if !json.Valid(r.InputDump) || r.InputDump[0] != '{' {
			t.Fatalf("input_dump %q is not a JSON object", r.InputDump)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
