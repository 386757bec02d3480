package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelop/otelop/exporters"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

const (
	queryEnv   = "OTELOP_TEST_JAEGER_QUERY"
	grpcEnv    = "OTELOP_TEST_OTLP_GRPC"
	httpEnv    = "OTELOP_TEST_OTLP_HTTP"
	binEnv     = "OTELOP_TEST_JAEGER_BIN"
	requireEnv = "OTELOP_REQUIRE_SERVICES"
)

// waitFor bounds every wait on Jaeger, the collector or a child process.
// The waits poll; they end as soon as what they wait for has happened.
const waitFor = 30 * time.Second

// pollEvery is the polling interval of those waits.
const pollEvery = 50 * time.Millisecond

// testJaeger is the Jaeger v2 that scripts/test.sh starts: OTLP in, spans
// in memory, the query API out.
type testJaeger struct {
	query    string // http://127.0.0.1:PORT
	otlpGRPC string // 127.0.0.1:PORT
	otlpHTTP string // 127.0.0.1:PORT
}

// needJaeger returns the test Jaeger, skipping the test when there is none
// (failing it instead under OTELOP_REQUIRE_SERVICES=1).
func needJaeger(t *testing.T) testJaeger {
	t.Helper()
	j := testJaeger{
		query:    strings.TrimSuffix(os.Getenv(queryEnv), "/"),
		otlpGRPC: os.Getenv(grpcEnv),
		otlpHTTP: os.Getenv(httpEnv),
	}
	if j.query == "" || j.otlpGRPC == "" || j.otlpHTTP == "" {
		msg := fmt.Sprintf("%s, %s and %s must name a Jaeger v2 (scripts/test.sh starts one)", queryEnv, grpcEnv, httpEnv)
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s=1 but %s is unset: %s", requireEnv, firstUnset(queryEnv, grpcEnv, httpEnv), msg)
		}
		t.Skip(msg)
	}
	return j
}

func firstUnset(names ...string) string {
	for _, n := range names {
		if os.Getenv(n) == "" {
			return n
		}
	}
	return ""
}

// clearOTelEnv makes a test independent of the OTEL_* variables of the
// machine it runs on.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_EXPORTER",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_SERVICE_NAME",
		"OTEL_RESOURCE_ATTRIBUTES", exporters.StoreEnv} {
		t.Setenv(k, "")
	}
}

// setupOTLP builds the provider of exporters.Setup from the environment, as
// a user's process would: OTLP over protocol to endpoint, service name
// service, TaskRuns into store. The returned function flushes and shuts
// down; the test calls it before reading Jaeger (a second call, by the
// cleanup, is harmless).
func setupOTLP(t *testing.T, protocol, endpoint, service string, store taskrun.Store) (*sdktrace.TracerProvider, func()) {
	t.Helper()
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_SERVICE_NAME", service)
	tp, shutdown, err := exporters.Setup(context.Background(), exporters.WithStore(store), exporters.WithoutGlobal())
	if err != nil {
		t.Fatal(err)
	}
	done := false
	flush := func() {
		t.Helper()
		if done {
			return
		}
		done = true
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Fatalf("shutdown (flushing spans to %s over %s): %v", endpoint, protocol, err)
		}
	}
	t.Cleanup(func() {
		if !done {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = shutdown(ctx)
		}
	})
	return tp, flush
}

// uniqueService names the service of one test run, so that traces of
// earlier runs against a long-lived Jaeger never match.
func uniqueService(what string) string {
	return fmt.Sprintf("otelop-e2e-%s-%d", what, time.Now().UnixNano())
}

// The operations the tests call: one that creates jobs (its output refers
// to them) and one that fails.
type createJobsIn struct {
	otelop.Request
	Titles []string `json:"titles"`
}

type createJobsOut struct {
	otelop.Receipt
	JobIDs []string `json:"job_ids" otelop:"ref=jobs"`
}

type updateJobIn struct {
	otelop.Request
	JobID string `json:"job_id"`
}

type updateJobOut struct{ otelop.Receipt }

var errNoSuchJob = errors.New("no such job")

type jobOps struct {
	create *otelop.Op[createJobsIn, createJobsOut]
	update *otelop.Op[updateJobIn, updateJobOut]
}

func defineJobOps(tp *sdktrace.TracerProvider) jobOps {
	reg := registry.New()
	return jobOps{
		create: otelop.Define(otelop.Spec{Name: "e2e_create_jobs", Description: "Create jobs", Category: "jobs", Tags: []string{"e2e"}, Observed: true},
			func(_ context.Context, in createJobsIn) (createJobsOut, error) {
				var out createJobsOut
				for i := range in.Titles {
					out.JobIDs = append(out.JobIDs, fmt.Sprintf("job-%d", i+1))
				}
				return out, nil
			}, otelop.WithRegistry(reg), otelop.WithTracerProvider(tp)),
		update: otelop.Define(otelop.Spec{Name: "e2e_update_job", Description: "Update a job", Category: "jobs", Observed: true},
			func(_ context.Context, in updateJobIn) (updateJobOut, error) {
				return updateJobOut{}, fmt.Errorf("update %s: %w", in.JobID, errNoSuchJob)
			}, otelop.WithRegistry(reg), otelop.WithTracerProvider(tp)),
	}
}

func TestSpansReachJaeger(t *testing.T) {
	j := needJaeger(t)
	for _, tc := range []struct{ protocol, endpoint string }{
		{"grpc", "http://" + j.otlpGRPC},
		{"http/protobuf", "http://" + j.otlpHTTP},
	} {
		name := strings.ReplaceAll(tc.protocol, "/", "_")
		t.Run(name, func(t *testing.T) {
			clearOTelEnv(t)
			service := uniqueService(name)
			store := memstore.New()
			tp, flush := setupOTLP(t, tc.protocol, tc.endpoint, service, store)
			ops := defineJobOps(tp)
			ctx := context.Background()

			created, err := ops.create.Call(ctx, createJobsIn{Request: otelop.Request{UserID: "alice", Channel: "web"}, Titles: []string{"resize", "invoice"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ops.update.Call(ctx, updateJobIn{Request: otelop.Request{UserID: "bob"}, JobID: "job-404"}); !errors.Is(err, errNoSuchJob) {
				t.Fatalf("update_job error %v, want %v", err, errNoSuchJob)
			}
			// A flow run with a task run and an operation inside, under a
			// root span of tp (Flow and Task take their provider from it).
			rootCtx, root := tp.Tracer("github.com/otelop/otelop/internal/e2e").Start(ctx, "e2e nightly")
			var inFlow createJobsOut
			err = otelop.Flow(rootCtx, "nightly_processing", func(ctx context.Context) error {
				return otelop.Task(ctx, "ingest", func(ctx context.Context) error {
					var err error
					inFlow, err = ops.create.Call(ctx, createJobsIn{Request: otelop.Request{UserID: "scheduler", Channel: "cron"}, Titles: []string{"nightly report"}})
					return err
				})
			})
			root.End()
			if err != nil {
				t.Fatal(err)
			}
			flush()

			okRun := getRun(t, store, created.TaskRunID)
			failRun := onlyRun(t, store, "e2e_update_job")
			flowRun := getRun(t, store, inFlow.TaskRunID)

			t.Run("success", func(t *testing.T) {
				tr := waitTrace(t, j.query, okRun.TraceID, 1)
				sp := tr.span(t, okRun.SpanID)
				if sp.OperationName != "e2e_create_jobs" {
					t.Errorf("span name %q, want e2e_create_jobs", sp.OperationName)
				}
				if got := tr.serviceName(sp); got != service {
					t.Errorf("service %q, want %q", got, service)
				}
				sp.wantTag(t, "otelop.taskrun.id", okRun.ID)
				sp.wantTag(t, "otelop.operation.name", "e2e_create_jobs")
				sp.wantTag(t, "otelop.operation.category", "jobs")
				sp.wantTag(t, "enduser.id", "alice")
				sp.wantTag(t, "otelop.actor.channel", "web")
				sp.wantTag(t, "otelop.result_refs", `["jobs/job-1","jobs/job-2"]`) // a string slice, as JSON text
				if v, ok := sp.tag("otel.status_code"); ok && v == "ERROR" {
					t.Error("a successful call has an error status")
				}
				if v, ok := sp.tag("error"); ok && v == "true" {
					t.Error("a successful call is tagged error=true")
				}
			})

			t.Run("failure", func(t *testing.T) {
				if failRun.Status != taskrun.StatusFailed {
					t.Errorf("TaskRun status %s, want FAILED", failRun.Status)
				}
				tr := waitTrace(t, j.query, failRun.TraceID, 1)
				sp := tr.span(t, failRun.SpanID)
				if sp.OperationName != "e2e_update_job" {
					t.Errorf("span name %q, want e2e_update_job", sp.OperationName)
				}
				sp.wantTag(t, "otelop.taskrun.id", failRun.ID)
				sp.wantTag(t, "enduser.id", "bob")
				sp.wantTag(t, "otel.status_code", "ERROR")
				sp.wantTag(t, "error", "true")
				if d, _ := sp.tag("otel.status_description"); !strings.Contains(d, "no such job") {
					t.Errorf("otel.status_description = %q, want the error", d)
				}
				if et, _ := sp.tag("error.type"); et == "" || et != failRun.ErrorType {
					t.Errorf("error.type = %q, TaskRun error_type %q", et, failRun.ErrorType)
				}
				if !sp.hasLog("exception") {
					t.Error("no exception event on the failed span")
				}
			})

			t.Run("flow", func(t *testing.T) {
				tr := waitTrace(t, j.query, flowRun.TraceID, 4)
				if len(tr.Spans) != 4 {
					t.Errorf("%d spans in the flow's trace, want 4 (root, flow, task, operation): %v", len(tr.Spans), tr.names())
				}
				rootSp := tr.named(t, "e2e nightly")
				flowSp := tr.named(t, "flow nightly_processing")
				taskSp := tr.named(t, "task ingest")
				opSp := tr.span(t, flowRun.SpanID)
				if opSp.OperationName != "e2e_create_jobs" {
					t.Errorf("operation span %q", opSp.OperationName)
				}
				for _, c := range []struct {
					child, parent jaegerSpan
				}{{flowSp, rootSp}, {taskSp, flowSp}, {opSp, taskSp}} {
					if got := c.child.parentID(); got != c.parent.SpanID {
						t.Errorf("parent of %q is %q, want %q (%s)", c.child.OperationName, got, c.parent.OperationName, c.parent.SpanID)
					}
				}
				if p := rootSp.parentID(); p != "" {
					t.Errorf("the root span has parent %s", p)
				}
				if flowRun.ParentSpanID != taskSp.SpanID {
					t.Errorf("TaskRun parent_span_id %s, want the task span %s", flowRun.ParentSpanID, taskSp.SpanID)
				}
				flowRunID, _ := flowSp.tag("otelop.flow_run.id")
				taskRunID, _ := taskSp.tag("otelop.task_run.id")
				if flowRunID == "" || flowRunID != flowRun.OrchestratorFlowRunID {
					t.Errorf("flow span otelop.flow_run.id %q, TaskRun orchestrator_flow_run_id %q", flowRunID, flowRun.OrchestratorFlowRunID)
				}
				if taskRunID == "" || taskRunID != flowRun.OrchestratorTaskRunID {
					t.Errorf("task span otelop.task_run.id %q, TaskRun orchestrator_task_run_id %q", taskRunID, flowRun.OrchestratorTaskRunID)
				}
				opSp.wantTag(t, "otelop.taskrun.id", flowRun.ID)
				opSp.wantTag(t, "enduser.id", "scheduler")
				opSp.wantTag(t, "otelop.orchestrated", "true")
				opSp.wantTag(t, "otelop.orchestrator", "otelop")
				opSp.wantTag(t, "otelop.orchestrator.flow_run_id", flowRunID)
				opSp.wantTag(t, "otelop.orchestrator.task_run_id", taskRunID)
				opSp.wantTag(t, "otelop.result_refs", `["jobs/job-1"]`)
			})
		})
	}
}

// With a sampler that keeps no trace, nothing reaches Jaeger, and every
// call still leaves its TaskRun.
func TestSampledOutTracesStillWriteTaskRuns(t *testing.T) {
	j := needJaeger(t)
	clearOTelEnv(t)
	t.Setenv("OTEL_TRACES_SAMPLER", "traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0")
	store := memstore.New()
	tp, flush := setupOTLP(t, "grpc", "http://"+j.otlpGRPC, uniqueService("sampled-out"), store)
	ops := defineJobOps(tp)
	ctx := context.Background()
	const creates, updates = 5, 2
	for i := range creates {
		if _, err := ops.create.Call(ctx, createJobsIn{Request: otelop.Request{UserID: "alice"}, Titles: []string{fmt.Sprint("job ", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for range updates {
		if _, err := ops.update.Call(ctx, updateJobIn{Request: otelop.Request{UserID: "bob"}, JobID: "job-404"}); err == nil {
			t.Fatal("update_job did not fail")
		}
	}
	rootCtx, root := tp.Tracer("github.com/otelop/otelop/internal/e2e").Start(ctx, "e2e sampled-out flow")
	if err := otelop.Flow(rootCtx, "nightly_processing", func(ctx context.Context) error {
		return otelop.Task(ctx, "ingest", func(ctx context.Context) error {
			_, err := ops.create.Call(ctx, createJobsIn{Request: otelop.Request{UserID: "scheduler"}, Titles: []string{"nightly"}})
			return err
		})
	}); err != nil {
		t.Fatal(err)
	}
	root.End()
	flush()

	runs, err := store.Find(ctx, taskrun.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if want := creates + updates + 1; len(runs) != want {
		t.Fatalf("%d TaskRuns, want %d", len(runs), want)
	}
	traces := map[string]bool{}
	for _, r := range runs {
		if r.Status != taskrun.StatusSuccess && r.Status != taskrun.StatusFailed {
			t.Errorf("TaskRun %s (%s) is %s, want a final state", r.ID, r.OperationName, r.Status)
		}
		if r.TraceID == "" {
			t.Errorf("TaskRun %s has no trace id", r.ID)
		}
		if r.OperationName == "e2e_create_jobs" && r.Actor.UserID == "scheduler" && r.OrchestratorFlowRunID == "" {
			t.Errorf("the run inside the flow is not orchestrated: %+v", r)
		}
		traces[r.TraceID] = true
	}

	// A control trace over the same endpoint, sent after the sampled-out
	// provider was shut down: once Jaeger shows it, anything the first
	// provider had exported would be there too (Jaeger stores spans before
	// it answers the export, and shutdown waits for that answer).
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "")
	ctrlStore := memstore.New()
	tp2, flush2 := setupOTLP(t, "grpc", "http://"+j.otlpGRPC, uniqueService("control"), ctrlStore)
	ctrl, err := defineJobOps(tp2).create.Call(ctx, createJobsIn{Titles: []string{"control"}})
	if err != nil {
		t.Fatal(err)
	}
	flush2()
	waitTrace(t, j.query, getRun(t, ctrlStore, ctrl.TaskRunID).TraceID, 1)

	for id := range traces {
		if tr, found := fetchTrace(t, j.query, id); found {
			t.Errorf("sampled-out trace %s reached Jaeger: %v", id, tr.names())
		}
	}
}

func getRun(t *testing.T, store taskrun.Reader, id string) taskrun.TaskRun {
	t.Helper()
	if id == "" {
		t.Fatal("the output carries no TaskRun id")
	}
	r, err := store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("TaskRun %s: %v", id, err)
	}
	if r.TraceID == "" || r.SpanID == "" {
		t.Fatalf("TaskRun %s has no trace or span id: %+v", id, r)
	}
	return r
}

func onlyRun(t *testing.T, store taskrun.Reader, operation string) taskrun.TaskRun {
	t.Helper()
	runs, err := store.Find(context.Background(), taskrun.Query{Operation: operation})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("%d TaskRuns of %s, want 1", len(runs), operation)
	}
	return getRun(t, store, runs[0].ID)
}

// Jaeger's query API (GET /api/traces/{id}), the parts the tests read.
type jaegerResponse struct {
	Data   []jaegerTrace `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []jaegerKV `json:"tags"`
	Logs []struct {
		Fields []jaegerKV `json:"fields"`
	} `json:"logs"`
	ProcessID string `json:"processID"`
}

type jaegerKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

func (tr jaegerTrace) span(t *testing.T, spanID string) jaegerSpan {
	t.Helper()
	for _, s := range tr.Spans {
		if s.SpanID == spanID {
			return s
		}
	}
	t.Fatalf("no span %s in trace %s: %v", spanID, tr.TraceID, tr.names())
	return jaegerSpan{}
}

func (tr jaegerTrace) named(t *testing.T, name string) jaegerSpan {
	t.Helper()
	var found []jaegerSpan
	for _, s := range tr.Spans {
		if s.OperationName == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q in trace %s, want 1: %v", len(found), name, tr.TraceID, tr.names())
	}
	return found[0]
}

func (tr jaegerTrace) names() []string {
	var n []string
	for _, s := range tr.Spans {
		n = append(n, s.OperationName)
	}
	slices.Sort(n)
	return n
}

func (tr jaegerTrace) serviceName(s jaegerSpan) string { return tr.Processes[s.ProcessID].ServiceName }

// tag returns the value of the tag key as text (Jaeger types the values:
// bools and numbers come as JSON bools and numbers, string slices as JSON
// array text).
func (s jaegerSpan) tag(key string) (string, bool) {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return fmt.Sprint(kv.Value), true
		}
	}
	return "", false
}

func (s jaegerSpan) wantTag(t *testing.T, key, want string) {
	t.Helper()
	got, ok := s.tag(key)
	switch {
	case !ok:
		t.Errorf("span %q has no tag %s (tags: %v)", s.OperationName, key, s.Tags)
	case got != want:
		t.Errorf("span %q: %s = %q, want %q", s.OperationName, key, got, want)
	}
}

func (s jaegerSpan) hasLog(event string) bool {
	for _, l := range s.Logs {
		for _, f := range l.Fields {
			if f.Key == "event" && fmt.Sprint(f.Value) == event {
				return true
			}
		}
	}
	return false
}

func (s jaegerSpan) parentID() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// fetchTrace asks Jaeger for one trace; found is false on 404.
func fetchTrace(t *testing.T, query, traceID string) (tr jaegerTrace, found bool) {
	t.Helper()
	tr, found, err := getTrace(query, traceID)
	if err != nil {
		t.Fatal(err)
	}
	return tr, found
}

func getTrace(query, traceID string) (jaegerTrace, bool, error) {
	u := query + "/api/traces/" + url.PathEscape(traceID)
	resp, err := httpClient.Get(u)
	if err != nil {
		return jaegerTrace{}, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return jaegerTrace{}, false, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return jaegerTrace{}, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return jaegerTrace{}, false, fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	var r jaegerResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return jaegerTrace{}, false, fmt.Errorf("GET %s: %w: %s", u, err, body)
	}
	if len(r.Data) == 0 {
		return jaegerTrace{}, false, nil
	}
	return r.Data[0], true, nil
}

// waitTrace polls Jaeger until the trace holds at least minSpans spans.
func waitTrace(t *testing.T, query, traceID string, minSpans int) jaegerTrace {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var last jaegerTrace
	for {
		tr, found, err := getTrace(query, traceID)
		if err != nil {
			t.Fatal(err)
		}
		if found && len(tr.Spans) >= minSpans {
			return tr
		}
		last = tr
		if time.Now().After(deadline) {
			t.Fatalf("trace %s not in Jaeger (%s) with %d spans within %v; last seen: %v", traceID, query, minSpans, waitFor, last.names())
		}
		time.Sleep(pollEvery)
	}
}
